/**
 * The SDK's membership calls against fake nodes (issue 12): a change goes to the leader by its
 * hints; a refusal is the server's reason, not retried; a change whose outcome is unknown is
 * looked for in the configuration before it is sent again, so it never takes effect twice.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { ClusterUnavailableError, KvClient, MembershipRefusedError, NoSpaceError } from '../../src/index.js';
import { FakeCluster, outcomeUnknown } from './fake-cluster.js';

let cluster: FakeCluster | undefined;
let kv: KvClient | undefined;
afterEach(() => {
  kv?.close();
  cluster?.close();
});

/** A client of `endpoints`, with short attempts and no endpoint refresh (tested on its own). */
function client(endpoints: string[], timeoutMs = 3_000): KvClient {
  return (kv = new KvClient({ endpoints, timeoutMs, attemptTimeoutMs: 200, endpointRefreshMs: 0 }));
}

const failure = (p: Promise<unknown>): Promise<Error> =>
  p.then(
    () => {
      throw new Error('the call succeeded');
    },
    (e: unknown) => e as Error,
  );

const member4 = { id: 4, peerAddr: '127.0.0.1:7004', clientAddr: '127.0.0.1:9004', learner: true };

it('members(): asked of a follower, answered from the leader, with match indexes', async () => {
  cluster = await FakeCluster.start(3);
  cluster.matchIndex.set(3, 60);
  const m = await client([cluster.node(2).addr]).members();
  expect(m).toMatchObject({ leaderId: 1, nodeId: 1, clusterId: 'c0ffee', joint: false, commitIndex: 100 });
  expect(m.members.map((x) => [x.id, x.matchIndex, x.active])).toEqual([
    [1, 100, true],
    [2, 100, true],
    [3, 60, true],
  ]);
  expect(cluster.node(1).calls.get('memberList')).toBe(1);
});

it('a change sent to a node that no longer leads follows its hint to the leader, which applies it once', async () => {
  cluster = await FakeCluster.start(3);
  const c = cluster;
  // Node 1 leads when the client reads the configuration, and node 2 once it sends the change.
  c.script = (_node, method) => (method === 'memberList' && c.leaderId === 1 ? { applyThen: 'answer', after: () => (c.leaderId = 2) } : undefined);
  const res = await client([c.node(1).addr]).addMember(4, member4.peerAddr, { clientAddr: member4.clientAddr, learner: true });
  expect(res.members.find((m) => m.id === 4)).toMatchObject(member4);
  expect(res.index).toBe(91);
  expect([c.node(1).calls.get('memberAdd'), c.node(2).calls.get('memberAdd')]).toEqual([1, 1]);
  // The hint, not the membership, led it there: node 1 was not asked again who leads.
  expect(c.node(1).calls.get('memberList')).toBe(1);
  expect(cluster.members.filter((m) => m.id === 4)).toHaveLength(1);
});

it("a refused change fails with MembershipRefusedError and the server's reason, sent once", async () => {
  cluster = await FakeCluster.start(3);
  const reason = 'removing node 3 would leave 1 of 2 voters active: no live quorum (use force)';
  cluster.script = (_node, method) =>
    method === 'memberRemove' ? { refuse: { code: grpc.status.FAILED_PRECONDITION, details: reason, kind: 'conf-refused' } } : undefined;
  const err = await failure(client(cluster.nodes.map((n) => n.addr)).removeMember(3));
  expect(err).toBeInstanceOf(MembershipRefusedError);
  expect((err as MembershipRefusedError).reason).toBe(reason);
  expect(err.message).toContain(reason);
  expect(cluster.count('memberRemove')).toBe(1);
});

it('an add applied but not answered is found in force by MemberList, not sent again', async () => {
  cluster = await FakeCluster.start(3);
  cluster.script = (_node, method) => (method === 'memberAdd' ? { applyThen: 'hang' } : undefined);
  const res = await client(cluster.nodes.map((n) => n.addr)).addMember(4, member4.peerAddr, { clientAddr: member4.clientAddr, learner: true });
  expect(res.index).toBe(0); // found in force: its log index is not known
  expect(res.members.find((m) => m.id === 4)).toMatchObject(member4);
  // Sent to the leader once (a follower the first attempt may reach refuses it with a hint).
  expect(cluster.node(1).calls.get('memberAdd')).toBe(1);
  expect(cluster.count('memberList')).toBeGreaterThanOrEqual(1);
});

it('an add lost before it was applied is sent again once it is not found, and applied once', async () => {
  cluster = await FakeCluster.start(3);
  let lost = 0;
  cluster.script = (node, method) => (method === 'memberAdd' && node.id === 1 && lost++ === 0 ? { hang: true } : undefined);
  await client(cluster.nodes.map((n) => n.addr)).addMember(4, member4.peerAddr, { clientAddr: member4.clientAddr });
  expect(cluster.node(1).calls.get('memberAdd')).toBe(2);
  expect(cluster.members.filter((m) => m.id === 4)).toEqual([{ ...member4, learner: false }]);
});

it('a removal answered by a dropped connection after it was applied resolves, sent once', async () => {
  cluster = await FakeCluster.start(3);
  cluster.script = (_node, method) =>
    method === 'memberRemove' ? { applyThen: { code: grpc.status.UNAVAILABLE, details: 'Connection dropped' } } : undefined;
  const res = await client(cluster.nodes.map((n) => n.addr)).removeMember(3);
  expect(res.members.map((m) => m.id)).toEqual([1, 2]);
  expect(cluster.node(1).calls.get('memberRemove')).toBe(1);
});

it('a promotion refused as not leader by a leader that lost its leadership after applying it: found in force, not sent again', async () => {
  cluster = await FakeCluster.start(3);
  cluster.members.push({ ...member4 });
  const c = cluster;
  c.script = (node, method) =>
    method === 'memberPromote' && node.id === 1
      ? {
          applyThen: { code: grpc.status.FAILED_PRECONDITION, details: 'node 1 is not the leader', kind: 'not-leader', leader: c.node(2).addr },
          after: () => (c.leaderId = 2),
        }
      : undefined;
  const res = await client([c.node(1).addr]).promoteMember(4);
  expect(res.members.find((m) => m.id === 4)?.learner).toBe(false);
  expect(c.count('memberPromote')).toBe(1);
});

it('a leader that says the outcome is unknown has answered: the change is found in the members, not sent again, and the leader is not avoided', async () => {
  cluster = await FakeCluster.start(3);
  const c = cluster;
  // Node 1 applies the add and answers as kv-server does when it stopped leading first; it leads
  // again by the time the client looks (it lost its leadership and won it back).
  c.script = (node, method) => (method === 'memberAdd' && node.id === 1 ? { applyThen: outcomeUnknown(1) } : undefined);
  const kv = client(c.nodes.map((n) => n.addr));
  const res = await kv.addMember(4, member4.peerAddr, { clientAddr: member4.clientAddr, learner: true });
  expect(res.index).toBe(0); // found in force
  expect(res.members.find((m) => m.id === 4)).toMatchObject(member4);
  expect(c.count('memberAdd')).toBe(1);
  // Taken for a node that did not answer, node 1 would be avoided for 10 s, its followers' hints to
  // it not followed (and this fake's followers do not forward): the put would fail at its deadline.
  await kv.put('k', 'v');
  expect(c.nodes.map((n) => n.calls.get('put') ?? 0)).toEqual([1, 0, 0]);
});

it('a change the old leader left pending takes effect under the next: looked for, sent again, refused as in force, looked for again, found; applied once', async () => {
  cluster = await FakeCluster.start(3);
  const c = cluster;
  let pending = false;
  c.script = (node, method) => {
    if (method !== 'memberAdd') return undefined;
    if (node.id === 1) {
      // Node 1 proposes the add, hands leadership to node 2, and answers before applying it.
      c.leaderId = 2;
      pending = true;
      return { refuse: outcomeUnknown(1) };
    }
    // Node 2, a new leader, first applies what earlier leaders left in its log: the add.
    if (pending) c.members.push({ ...member4 });
    pending = false;
    return undefined;
  };
  const res = await client([c.node(1).addr]).addMember(4, member4.peerAddr, { clientAddr: member4.clientAddr, learner: true });
  expect(res.index).toBe(0);
  expect([c.node(1).calls.get('memberAdd'), c.node(2).calls.get('memberAdd')]).toEqual([1, 1]);
  expect(c.members.filter((m) => m.id === 4)).toEqual([member4]);
});

it('a transfer whose answer is lost is not asked again once its target leads (by id, and with no id)', async () => {
  cluster = await FakeCluster.start(3);
  cluster.script = (_node, method) => (method === 'leaderTransfer' ? { applyThen: 'hang' } : undefined);
  const c = client(cluster.nodes.map((n) => n.addr));
  // Each transfer the fake makes is a new term: one term more, one transfer.
  expect(await c.transferLeader(3)).toEqual({ leaderId: 3, term: 4 });
  expect(cluster.term).toBe(4);
  // No id: done once another node than the one that led at the start leads.
  expect(await c.transferLeader()).toEqual({ leaderId: 1, term: 5 });
  expect(cluster.term).toBe(5);
});

it('a change in force when the call starts is refused, though it first reached a node that no longer leads', async () => {
  cluster = await FakeCluster.start(3);
  const c = cluster;
  c.members.push({ ...member4 });
  // The refusal of node 1, which led when the configuration was read, leaves the outcome unknown;
  // the member found there must not make the call a success.
  c.script = (_node, method) => (method === 'memberList' && c.leaderId === 1 ? { applyThen: 'answer', after: () => (c.leaderId = 2) } : undefined);
  const err = await failure(client([c.node(1).addr]).addMember(4, member4.peerAddr, { clientAddr: member4.clientAddr, learner: true }));
  expect(err).toBeInstanceOf(MembershipRefusedError);
  expect((err as MembershipRefusedError).reason).toBe('node 4 is a member already');
});

it('an outcome still unknown at the deadline is said to be unknown', async () => {
  cluster = await FakeCluster.start(1);
  // The configuration is read when the call starts, and never again.
  cluster.script = (_node, method) => (method === 'memberPromote' || (method === 'memberList' && cluster!.count('memberList') > 1) ? { hang: true } : undefined);
  cluster.members.push({ ...member4 });
  const err = await failure(client([cluster.node(1).addr], 1_500).promoteMember(4));
  expect(err).toBeInstanceOf(ClusterUnavailableError);
  expect(err.message).toMatch(/outcome is unknown/);
  expect(cluster.count('memberPromote')).toBe(1);
});

it('ids and addresses are checked before anything is sent', async () => {
  cluster = await FakeCluster.start(1);
  const c = client([cluster.node(1).addr]);
  await expect(c.addMember(0, '127.0.0.1:7004', { clientAddr: '127.0.0.1:9004' })).rejects.toThrow(/id must be a whole number from 1/);
  await expect(c.addMember(4, 'nowhere', { clientAddr: '127.0.0.1:9004' })).rejects.toThrow(/peerAddr: "nowhere" is not a host:port/);
  await expect(c.removeMember(1.5)).rejects.toThrow(/id must be a whole number/);
  expect(cluster.count('memberAdd') + cluster.count('memberRemove')).toBe(0);
});

it('a write refused as no-space is not retried: NoSpaceError, the outcome known unless an earlier attempt may have been applied', async () => {
  cluster = await FakeCluster.start(3);
  const noSpace = { refuse: { code: grpc.status.RESOURCE_EXHAUSTED, details: 'node 1: no space: past the quota', kind: 'no-space' } };
  cluster.script = (_n, method) => (method === 'put' ? noSpace : undefined);
  const c = client(cluster.nodes.map((n) => n.addr));
  const first = await failure(c.put('k', 'v'));
  expect(first).toBeInstanceOf(NoSpaceError);
  expect((first as NoSpaceError).outcomeUnknown).toBe(false);
  expect(first.message).toMatch(/no space: past the quota$/);
  expect(cluster.count('put')).toBe(1);
  // The first attempt's leader stepped down (it may have proposed the write: the next leader may
  // commit it); the retry at the new leader finds no space.
  let puts = 0;
  cluster.script = (_n, method) => {
    if (method !== 'put') return undefined;
    if (puts++ > 0) return noSpace;
    cluster!.leaderId = 2;
    return { refuse: { code: grpc.status.FAILED_PRECONDITION, details: 'not the leader', kind: 'not-leader', leader: cluster!.node(2).addr } };
  };
  const second = await failure(c.put('k2', 'v'));
  expect(second).toBeInstanceOf(NoSpaceError);
  expect((second as NoSpaceError).outcomeUnknown).toBe(true);
  expect(second.message).toMatch(/it may yet be applied/);
});
