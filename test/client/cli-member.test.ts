/**
 * kv-cli's membership commands (issue 12) against fake nodes: what each prints, in text and with
 * --json, and its exit code: 0 done, 2 a usage error, 3 no leader within the deadline, 4 a change
 * the cluster refused (with the server's reason). `member add` prints the kv-server command that
 * starts the new node.
 */
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { main } from '../../src/client/cli-main.js';
import { kvServerInvocation } from '../../src/client/cli-member.js';
import { FakeCluster } from './fake-cluster.js';

let cluster: FakeCluster | undefined;
afterEach(() => cluster?.close());

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function kvCli(...argv: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { out: (t) => void (stdout += t.toString()), err: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** kv-cli against the fake cluster, by its first node (a follower when the test moves the leader). */
const cli = (...argv: string[]): Promise<Run> => kvCli('--endpoints', cluster!.node(1).addr, '--timeout', '2000', ...argv);

const addrs = (): string[] => cluster!.nodes.map((n) => n.addr);

it('member list: a table with the lag behind the leader and its marker', async () => {
  cluster = await FakeCluster.start(3);
  cluster.leaderId = 2;
  cluster.matchIndex.set(3, 60);
  cluster.members.push({ id: 4, peerAddr: '127.0.0.1:7004', clientAddr: '127.0.0.1:9004', learner: true });
  cluster.matchIndex.set(4, 7);
  const r = await cli('member', 'list');
  expect([r.code, r.stderr]).toEqual([0, '']);
  const [a1, a2, a3] = addrs();
  const w = a1!.length;
  const row = (...cells: string[]): string =>
    [cells[0]!.padEnd(2), cells[1]!.padEnd(14), cells[2]!.padEnd(Math.max(w, 14)), cells[3]!.padEnd(7), cells[4]!.padEnd(5), cells[5]!.padEnd(3), cells[6]!.padEnd(6), cells[7]!]
      .join('  ')
      .trimEnd();
  expect(r.stdout).toBe(
    [
      row('ID', 'PEER ADDRESS', 'CLIENT ADDRESS', 'ROLE', 'MATCH', 'LAG', 'ACTIVE', 'LEADER'),
      row('1', '127.0.0.1:7001', a1!, 'voter', '100', '0', 'yes', ''),
      row('2', '127.0.0.1:7002', a2!, 'voter', '100', '0', 'yes', '*'),
      row('3', '127.0.0.1:7003', a3!, 'voter', '60', '40', 'yes', ''),
      row('4', '127.0.0.1:7004', '127.0.0.1:9004', 'learner', '7', '93', 'yes', ''),
      'cluster c0ffee, leader node 2',
      '',
    ].join('\n'),
  );
});

it('member list --json: one object, lag from the leader; null where only the leader could say', async () => {
  cluster = await FakeCluster.start(2);
  cluster.matchIndex.set(2, 95);
  cluster.joint = true;
  let r = await cli('member', 'list', '--json');
  expect(r.code).toBe(0);
  const [a1, a2] = addrs();
  expect(JSON.parse(r.stdout)).toEqual({
    members: [
      { id: 1, peerAddr: '127.0.0.1:7001', clientAddr: a1, learner: false, matchIndex: 100, lag: 0, active: true },
      { id: 2, peerAddr: '127.0.0.1:7002', clientAddr: a2, learner: false, matchIndex: 95, lag: 5, active: true },
    ],
    leaderId: 1,
    clusterId: 'c0ffee',
    joint: true,
    nodeId: 1,
    commitIndex: 100,
  });
  // The leader does not answer: a follower's list, and no lag.
  cluster.script = (node, method) => (method === 'memberList' && node.id === 1 ? { hang: true } : undefined);
  r = await kvCli('--endpoints', a2!, 'member', 'list', '--json');
  expect(r.code).toBe(0);
  const list = JSON.parse(r.stdout) as { nodeId: number; members: object[] };
  expect(list.nodeId).toBe(2);
  expect(list.members[1]).toEqual({ id: 2, peerAddr: '127.0.0.1:7002', clientAddr: a2, learner: false, matchIndex: null, lag: null, active: null });
  r = await kvCli('--endpoints', a2!, 'member', 'list');
  expect(r.stdout).toMatch(/\na joint configuration is in force.*\nanswered by node 2, not the leader: match index, lag and activity are the leader's to say\n$/);
});

it('member add: the resulting members and the kv-server command that starts the node; --json gives it as startCommand', async () => {
  cluster = await FakeCluster.start(3);
  cluster.leaderId = 3; // asked of a follower: the hint is followed
  const join = addrs().join(',');
  const command = `${kvServerInvocation()} --id 4 --peer-addr 127.0.0.1:7004 --client-addr 127.0.0.1:9004 --data-dir ./data/node-4 --join ${join}`;
  let r = await cli('member', 'add', '4', '127.0.0.1:7004', '--client-addr', '127.0.0.1:9004', '--learner');
  expect([r.code, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toMatch(/^added node 4 as a learner at log index 91\nID {2}PEER ADDRESS {4}CLIENT ADDRESS/);
  expect(r.stdout).toMatch(/\n4 {3}127\.0\.0\.1:7004 {2}127\.0\.0\.1:9004 +learner\n/);
  expect(r.stdout).toContain(`\nStart it with:\n  ${command}\n`);
  expect(r.stdout).toMatch(/kv-cli member promote 4\n$/);

  r = await cli('--json', 'member', 'add', '5', '[::1]:7005', '--client-addr', '[::1]:9005');
  expect(r.code).toBe(0);
  const out = JSON.parse(r.stdout) as { members: { id: number }[]; index: number; startCommand: string };
  expect(out.index).toBe(92);
  expect(out.members.at(-1)).toEqual({ id: 5, peerAddr: '[::1]:7005', clientAddr: '[::1]:9005', learner: false });
  // The other members' client addresses, the learner 4 included; brackets quoted for the shell.
  expect(out.startCommand).toBe(
    `${kvServerInvocation()} --id 5 --peer-addr '[::1]:7005' --client-addr '[::1]:9005' --data-dir ./data/node-5 --join ${join},127.0.0.1:9004`,
  );
});

it('the printed start command works when pasted: kv-server if the shell finds it, else node and the kv-server beside kv-cli', () => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-path-'));
  try {
    fs.writeFileSync(nodePath.join(dir, 'kv-server'), '#!/bin/sh\n', { mode: 0o755 });
    expect(kvServerInvocation(`/nonexistent${nodePath.delimiter}${dir}`)).toBe('kv-server');
    fs.chmodSync(nodePath.join(dir, 'kv-server'), 0o644); // not executable: not what a shell runs
    expect(kvServerInvocation(dir)).toMatch(/^node \/.*\/server\/main\.js$/);
    expect(kvServerInvocation('')).toBe(kvServerInvocation(dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it('member promote and member remove: the resulting members, in text and JSON', async () => {
  cluster = await FakeCluster.start(3);
  cluster.members.push({ id: 4, peerAddr: '127.0.0.1:7004', clientAddr: '127.0.0.1:9004', learner: true });
  let r = await cli('member', 'promote', '4');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^promoted node 4 at log index 91\n/);
  expect(r.stdout).toMatch(/\n4 {3}127\.0\.0\.1:7004 {2}127\.0\.0\.1:9004 +voter\n$/);
  r = await cli('--json', 'member', 'remove', '2');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({
    members: [1, 3, 4].map((id) => ({ id, peerAddr: `127.0.0.1:${7000 + id}`, clientAddr: id === 4 ? '127.0.0.1:9004' : cluster!.node(id).addr, learner: false })),
    index: 92,
  });
});

it('leader transfer, to a node or to any: who leads now', async () => {
  cluster = await FakeCluster.start(3);
  let r = await cli('leader', 'transfer', '3');
  expect([r.code, r.stdout]).toEqual([0, 'node 3 leads now (term 4)\n']);
  r = await cli('--json', 'leader', 'transfer');
  expect([r.code, JSON.parse(r.stdout)]).toEqual([0, { leaderId: 1, term: 5 }]);
});

it("a refused change exits 4 with the server's reason, asked once", async () => {
  cluster = await FakeCluster.start(3);
  const reason = 'a configuration change is pending (index 90): wait for it to be applied';
  cluster.script = (_node, method) =>
    method === 'memberRemove' ? { refuse: { code: grpc.status.FAILED_PRECONDITION, details: reason, kind: 'conf-refused' } } : undefined;
  const r = await cli('member', 'remove', '3', '--force');
  expect([r.code, r.stdout]).toEqual([4, '']);
  expect(r.stderr).toBe(`kv-cli: the cluster refused the change: ${reason}\n`);
  expect(cluster.count('memberRemove')).toBe(1);
  // The transfer to a node that is not a voter: the same.
  const t = await cli('leader', 'transfer', '9');
  expect([t.code, t.stderr]).toEqual([4, 'kv-cli: the cluster refused the change: node 9 is not a voter\n']);
});

it('no leader within the deadline: exit 3', async () => {
  cluster = await FakeCluster.start(2);
  cluster.members.push({ id: 3, peerAddr: '127.0.0.1:7003', clientAddr: '127.0.0.1:9003', learner: true });
  cluster.leaderId = 0;
  const r = await cli('--timeout', '600', 'member', 'promote', '3');
  expect([r.code, r.stdout]).toEqual([3, '']);
  expect(r.stderr).toMatch(/^kv-cli: cluster unavailable: no leader answered within 600 ms/);
});

it('usage errors exit 2 with the reason and a pointer to --help, before anything is sent', async () => {
  cluster = await FakeCluster.start(1);
  const cases: [string[], RegExp][] = [
    [['member'], /give a member command: member list, member add, member promote, member remove/],
    [['member', 'join', '4'], /unknown command "member join" \(member commands: list, add, promote, remove\)/],
    [['leader', 'elect'], /unknown command "leader elect"/],
    [['member', 'add', '4', '127.0.0.1:7004'], /missing --client-addr CLIENT_ADDR: member add ID PEER_ADDR --client-addr CLIENT_ADDR \[--learner\]/],
    [['member', 'add', '4'], /missing PEER_ADDR: member add ID PEER_ADDR/],
    [['member', 'add', '4', 'nowhere', '--client-addr', '127.0.0.1:9004'], /PEER_ADDR: "nowhere" is not a host:port address/],
    [['member', 'promote', 'four'], /ID must be a whole number from 1, got "four"/],
    [['member', 'remove', '0'], /ID must be a whole number from 1, got "0"/],
    [['member', 'remove', '3', '--learner'], /--learner does not go with member remove/],
    [['member', 'list', 'extra'], /unexpected argument\(s\) "extra": member list/],
    [['leader', 'transfer', '1', '2'], /unexpected argument\(s\) "2": leader transfer \[ID\]/],
    [['member', 'list', '--hex'], /--hex does not go with member list/],
    [['put', 'k', 'v', '--force'], /--force does not go with put \(only with member remove\)/],
  ];
  for (const [argv, reason] of cases) {
    const r = await cli(...argv);
    expect([argv, r.code, r.stdout]).toEqual([argv, 2, '']);
    expect(r.stderr).toMatch(reason);
    expect(r.stderr).toMatch(/\nRun kv-cli --help for usage\.\n$/);
  }
  expect(cluster.nodes[0]!.calls.size).toBe(0);
});

it('--help lists the membership commands, their flags and exit code 4', async () => {
  const r = await kvCli('--help');
  expect(r.code).toBe(0);
  for (const line of ['member list', 'member add ID PEER_ADDR --client-addr CLIENT_ADDR [--learner]', 'member promote ID', 'member remove ID [--force]', 'leader transfer [ID]']) {
    expect(r.stdout).toContain(`\n  ${line}\n`);
  }
  expect(r.stdout).toMatch(/--client-addr HOST:PORT +member add: the new node's client address/);
  expect(r.stdout).toMatch(/\n4 the cluster refused a membership change or leadership transfer/);
});
