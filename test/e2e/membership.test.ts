/**
 * Cluster membership with real processes, under a writer: grow a 3-node cluster with a learner
 * (started with --join, promoted once caught up) and a voter, transfer leadership, remove the
 * leader and a member, replace a wiped node (remove it; a new node joins, is added as a learner
 * and promoted), then restart every node with SIGTERM one by one: nodes that joined, and one
 * started from --peers that no longer match the members; a stopping leader hands leadership over.
 * At the end every acknowledged write is on every member: read back through each, and in each
 * one's committed log or snapshot, with committed entries agreeing across them. (How long clients
 * wait during a rolling restart, and whether their history stays linearizable, is
 * rolling-restart.test.ts's.)
 */
import * as fs from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { AckedWriter, clusterIdOf, durabilityViolations, readDurableState, unreadable } from './acked-writes.js';
import { Cluster, ensureBuilt, freePorts, killAll, waitFor, type Node } from './cluster.js';
import { members, Refused } from './members.js';

const IN_FLIGHT = 8;

let cluster: Cluster | undefined;
const others: Cluster[] = [];
afterAll(async () => {
  await cluster?.close();
  for (const c of others) await c.close();
  await killAll();
});

it('a live cluster grows, hands over, shrinks, replaces a node and restarts every node; no acknowledged write is lost', { timeout: 120_000 }, async () => {
  await ensureBuilt();
  const started = Date.now();
  const c = (cluster = await Cluster.create('membership', { extraArgs: ['--snapshot-threshold', '2000', '--snapshot-retain', '200'] }));
  c.startAll();
  await c.waitForLeader();
  const clusterId = await clusterIdOf(c);
  const writer = new AckedWriter(c.endpoints, IN_FLIGHT);
  /** After each step: the writer follows the members, and its writes keep being acknowledged. */
  const steps: string[] = [];
  const settled = async (what: string): Promise<void> => {
    writer.retarget(c.endpoints);
    const n = writer.acked.length;
    await waitFor(`writes to go on after: ${what}`, () => writer.acked.length > n + IN_FLIGHT, 15_000).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${c.tailLogs()}`);
    });
    steps.push(`${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  };
  /** Starts a new node with --join and adds it (as a learner, or a voter); resolves once it has applied the change. */
  const join = async (learner: boolean): Promise<Node> => {
    const n = await c.addNode();
    c.start(n.id);
    await waitFor(`node ${n.id} to ask to join`, () => /joining cluster: waiting to be added/.test(n.log));
    const r = await members.add(c.endpoints, n, learner);
    expect(r.members.find((m) => m.id === n.id)).toMatchObject({ peerAddr: n.peerAddr, clientAddr: n.clientAddr, learner });
    await caughtUp(n, r.index);
    return n;
  };
  const caughtUp = (n: Node, index: number): Promise<unknown> =>
    waitFor(`node ${n.id} to apply ${index}`, async () => (await members.list(n.clientAddr)).commitIndex >= index, 20_000);

  // Node 4 joins as a learner and is promoted once caught up; node 5 is added as a voter at once.
  const n4 = await join(true);
  const promoted = await members.promoteWhenCaughtUp(c.endpoints, n4.id);
  expect(promoted.members.map((m) => [m.id, m.learner])).toEqual([1, 2, 3, 4].map((id) => [id, false]));
  await settled('node 4 joined as a learner and was promoted');
  await join(false);
  await settled('node 5 joined as a voter');

  // Leadership moves to the most up-to-date voter, and comes back in the answer.
  const before = await c.waitForLeader();
  const moved = await members.transfer(c.endpoints, 0);
  expect(moved.leaderId).not.toBe(before);
  await settled(`leadership handed from node ${before} to node ${moved.leaderId}`);

  // The leader removes itself (it steps down once the change commits); then node 4 goes (node 5,
  // if node 4 was that leader).
  const removedLeader = await c.waitForLeader();
  await members.remove(c.endpoints, removedLeader);
  c.markRemoved(removedLeader);
  expect(await c.waitForLeader(10_000, removedLeader)).not.toBe(removedLeader);
  await c.stop(removedLeader, 'SIGTERM');
  await settled(`the leader, node ${removedLeader}, removed`);
  const next = removedLeader === n4.id ? 5 : n4.id;
  await members.remove(c.endpoints, next);
  c.markRemoved(next);
  await c.stop(next, 'SIGTERM');
  await settled(`node ${next} removed`);

  // A node whose data is lost is replaced: removed, and a new node joins, is caught up and promoted.
  const wiped = c.members.find((n) => n.id === 2) ?? c.members.find((n) => n.id <= 3)!;
  await c.stop(wiped.id, 'SIGKILL');
  fs.rmSync(wiped.dataDir, { recursive: true, force: true });
  await members.remove(c.endpoints, wiped.id);
  c.markRemoved(wiped.id);
  const n6 = await join(true);
  await members.promoteWhenCaughtUp(c.endpoints, n6.id);
  await settled(`node ${wiped.id} wiped and replaced by node ${n6.id}`);
  // Its id is never given out again.
  const reuse = await members.add(c.endpoints, { ...n6, id: wiped.id }, true).catch((e: unknown) => e);
  expect(reuse).toBeInstanceOf(Refused);
  expect((reuse as Refused).message).toMatch(new RegExp(`node ${wiped.id} was removed from this cluster, and ids are never reused`));

  // Every member now lists the same voters, with the addresses the changes gave them.
  const expected = c.members.map((n) => ({ id: n.id, peerAddr: n.peerAddr, clientAddr: n.clientAddr, learner: false }));
  for (const n of c.members) {
    await waitFor(`node ${n.id} to list the members`, async () => {
      const l = await members.list(n.clientAddr);
      return JSON.stringify(l.members.map(({ id, peerAddr, clientAddr, learner }) => ({ id, peerAddr, clientAddr, learner }))) === JSON.stringify(expected) && l.clusterId === clusterId;
    });
  }

  // Rolling restart: each member in turn stops with SIGTERM (a leader hands over first) and comes back.
  const handedOver: number[] = [];
  for (const n of c.members) {
    const wasLeader = (await c.waitForLeader()) === n.id;
    const logBefore = n.log.length;
    expect(await c.stop(n.id, 'SIGTERM')).toEqual({ code: 0, signal: null });
    if (wasLeader) {
      expect(n.log.slice(logBefore)).toMatch(/handed leadership over .*leader=\d+/);
      handedOver.push(n.id);
    }
    c.start(n.id);
    await c.waitCaughtUp(20_000);
  }
  await settled(`every member restarted (${c.members.map((n) => `${n.id}${n.joins ? ' joined' : ''}`).join(', ')})`);
  expect(handedOver.length).toBeGreaterThan(0);

  await writer.stop();
  await c.waitCaughtUp(20_000);
  // Every acknowledged write reads back through every member, and all have applied the same.
  for (const n of c.members) {
    const one = new KvClient({ endpoints: [n.clientAddr], timeoutMs: 10_000 });
    try {
      expect(await unreadable(one, writer.acked), `through node ${n.id}`).toEqual([]);
    } finally {
      one.close();
    }
  }
  const statuses = (await c.status()).map((r) => (r.ok ? r.status : undefined));
  expect(new Set(statuses.map((s) => s?.appliedIndex)).size, JSON.stringify(statuses)).toBe(1);
  // And on disk: committed entries agree, and each holds every acknowledged write.
  for (const n of c.members) await c.stop(n.id, 'SIGTERM');
  const disks = await Promise.all(c.members.map((n) => readDurableState(n.id, n.dataDir, clusterId)));
  expect(durabilityViolations(disks, writer.acked)).toEqual([]);

  const wall = (Date.now() - started) / 1000;
  console.log(
    `membership: ${writer.acked.length} writes acknowledged, ${writer.failed} gave up; leaders handed over on SIGTERM: ${handedOver.join(', ')}; ` +
      `wall time ${wall.toFixed(1)} s\n  ` +
      steps.join('\n  '),
  );
  expect(writer.failed).toBe(0);
});

it('MemberAdd refuses addresses where a node of another cluster answers, on its peer port or its client port', async () => {
  await ensureBuilt();
  const [a, b] = await Promise.all([Cluster.create('probe-a', { size: 1 }), Cluster.create('probe-b', { size: 1 })]);
  others.push(a, b);
  a.startAll();
  b.startAll();
  await Promise.all([a.waitForLeader(), b.waitForLeader()]);
  const [p, q] = (await freePorts(2)).map((x) => `127.0.0.1:${x}`);
  const other = b.node(1);
  const asPeer = await members.add(a.endpoints, { id: 2, peerAddr: other.peerAddr, clientAddr: p! }, true).catch((e: unknown) => e);
  expect(asPeer).toBeInstanceOf(Refused);
  expect((asPeer as Refused).message).toMatch(new RegExp(`node 2's addresses: ${other.peerAddr} is the peer port of a node of another cluster`));
  const asClient = await members.add(a.endpoints, { id: 2, peerAddr: p!, clientAddr: other.clientAddr }, true).catch((e: unknown) => e);
  expect((asClient as Refused).message).toMatch(new RegExp(`${other.clientAddr} answers as node 1 of another cluster`));
  // Nothing answering is fine: the node may not be started yet.
  expect((await members.add(a.endpoints, { id: 2, peerAddr: p!, clientAddr: q! }, true)).members.map((m) => m.id)).toEqual([1, 2]);
});
