/**
 * RaftNode's membership pass-throughs, on real nodes (SQLite, the system clock) over an in-memory
 * network that, like the gRPC transport, reaches only the peers a node was given and drops
 * messages from others: a change resolves once applied, a transfer once another node leads, and
 * the transport's peers follow the configuration applied.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { confOfVoters, membersOf, type ConfState } from '../../src/raft/core/conf.js';
import { decodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { Message, NodeId } from '../../src/raft/core/types.js';
import { MembershipError, RaftNode, type RaftObserver } from '../../src/raft/node.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import type { PeerAddress, Transport } from '../../src/raft/transport/transport.js';
import { waitFor } from '../e2e/cluster.js';

/** Delivers between the transports of one test, each way only between nodes that list each other. */
class Hub {
  readonly transports = new Map<NodeId, HubTransport>();
  deliver(m: Message): void {
    const to = this.transports.get(m.to);
    if (!to || to.closed || !to.peers.has(m.from)) return;
    setImmediate(() => !to.closed && to.handler?.(m));
  }
}

class HubTransport implements Transport {
  peers: Set<NodeId>;
  handler: ((m: Message) => void) | undefined;
  closed = false;
  /** Every peer set it was given, in order. */
  readonly history: NodeId[][] = [];
  constructor(
    private readonly hub: Hub,
    readonly id: NodeId,
    peers: NodeId[],
  ) {
    this.peers = new Set(peers);
    hub.transports.set(id, this);
  }
  send(m: Message): void {
    if (!this.closed && this.peers.has(m.to)) this.hub.deliver(m);
  }
  onMessage(h: (m: Message) => void): void {
    this.handler = h;
  }
  sendSnapshot(): Promise<void> {
    return Promise.reject(new Error('no snapshots here'));
  }
  onSnapshot(): void {}
  setPeers(peers: readonly PeerAddress[]): void {
    this.peers = new Set(peers.map((p) => p.id).filter((id) => id !== this.id));
    this.history.push([...this.peers].sort());
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

const dirs: string[] = [];
const nodes: RaftNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface TestNode {
  node: RaftNode;
  net: HubTransport;
  /** The configuration of the last conf entry applied (the test's address book follows it). */
  conf: () => ConfState | undefined;
}

/** Node `id`: a bootstrap voter of `voters`, or (voters undefined) one waiting to be added that knows `known`. */
function start(hub: Hub, id: NodeId, voters: NodeId[] | undefined, known: NodeId[] = voters ?? [], observer: RaftObserver = {}): TestNode {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-node-members-'));
  dirs.push(dir);
  let applied: ConfState | undefined;
  const net = new HubTransport(hub, id, known);
  const node = new RaftNode({
    id,
    peers: voters,
    storage: SqliteStorage.open(join(dir, 'raft.db'), { clusterId: 'm', nodeId: id, create: true, unsafeNoFsync: true }),
    transport: net,
    clock: systemClock,
    seed: id,
    // Long enough that a loaded test machine does not change leaders mid-test.
    electionTimeoutMs: 300,
    heartbeatMs: 30,
    peerAddresses: () => (applied ? membersOf(applied) : known).map((p) => ({ id: p, address: `n${p}` })),
    handler: {
      applied: (e) => {
        if (e.type !== 'conf') return;
        const d = decodeConfEntry(e.data);
        if (d.ok) applied = d.entry.conf;
      },
      readConfirmed: () => {},
      leadershipLost: () => {},
    },
    observer,
    onFatal: (e) => {
      throw e;
    },
  });
  nodes.push(node);
  return { node, net, conf: () => applied };
}

async function threeNodes(hub: Hub): Promise<TestNode[]> {
  const ns = [1, 2, 3].map((id) => start(hub, id, [1, 2, 3]));
  await waitFor('a leader', () => ns.some((n) => n.node.status().role === 'leader'));
  const leader = ns.find((n) => n.node.status().role === 'leader')!;
  await waitFor('an entry of its term to commit', () => leader.node.status().applied >= leader.node.status().lastIndex);
  return [leader, ...ns.filter((n) => n !== leader)];
}

describe('RaftNode membership', () => {
  it('proposeConfChange resolves once applied; the new learner, started empty, is reached and catches up', async () => {
    const hub = new Hub();
    const [leader] = await threeNodes(hub);
    const l = leader!.node;
    const four = start(hub, 4, undefined, [1, 2, 3]);
    const lastBefore = l.status().lastIndex;
    const done = await l.proposeConfChange({ changes: [{ type: 'addLearner', id: 4 }] }, new Uint8Array());
    expect(done).toEqual({ index: lastBefore + 1, term: l.status().term, conf: { ...confOfVoters([1, 2, 3]), learners: [4] } });
    // Resolved at the apply: the state machine had the entry by then.
    expect(leader!.conf()).toEqual(done.conf);
    // The leader's transport now reaches node 4 (it had no link to it before).
    expect(leader!.net.history.at(-1)).toEqual([1, 2, 3, 4].filter((id) => id !== l.id));
    await waitFor('node 4 to catch up', () => four.node.status().applied >= done.index);
    expect(four.node.conf).toEqual(done.conf);
    expect(l.members().find((m) => m.id === 4)).toMatchObject({ voter: false, match: expect.any(Number), active: true });
  });

  it('a change is refused while another is pending, with the core reason, and nothing else is proposed', async () => {
    const hub = new Hub();
    const [leader] = await threeNodes(hub);
    const l = leader!.node;
    const first = l.proposeConfChange({ changes: [{ type: 'addLearner', id: 4 }] }, new Uint8Array());
    const second = l.proposeConfChange({ changes: [{ type: 'addLearner', id: 5 }] }, new Uint8Array());
    await expect(second).rejects.toMatchObject({ name: 'MembershipError', kind: 'refused', message: expect.stringMatching(/pending/) });
    await first;
    expect(l.conf.learners).toEqual([4]);
  });

  it('a removed member is dropped from every transport that applies its removal', async () => {
    const hub = new Hub();
    const ns = await threeNodes(hub);
    const [leader, f1, f2] = ns as [TestNode, TestNode, TestNode];
    await leader.node.proposeConfChange({ changes: [{ type: 'remove', id: f2.node.id }] }, new Uint8Array());
    expect(leader.net.peers.has(f2.node.id)).toBe(false);
    await waitFor('the other follower to apply it', () => f1.conf() !== undefined);
    expect(f1.net.peers.has(f2.node.id)).toBe(false);
  });

  it('transferLeadership resolves with the new leader and term; a non-voter is refused, a stopped target abandoned', async () => {
    const hub = new Hub();
    const [leader, f1, f2] = (await threeNodes(hub)) as [TestNode, TestNode, TestNode];
    const term = leader.node.status().term;
    await expect(leader.node.transferLeadership(7, 1000)).rejects.toMatchObject({ kind: 'refused', message: expect.stringMatching(/not a voter/) });
    expect(await leader.node.transferLeadership(f1.node.id, 1000)).toEqual({ leaderId: f1.node.id, term: term + 1 });
    expect(f1.node.status().role).toBe('leader');
    // Node f2 stops; a transfer to it is given up after an election timeout, and f1 leads on.
    await f2.node.stop();
    await waitFor('f2 inactive', () => f1.node.members().find((m) => m.id === f2.node.id)?.active === false, 2000);
    const err = await f1.node.transferLeadership(f2.node.id, 5000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MembershipError);
    expect(err).toMatchObject({ kind: 'abandoned', message: expect.stringMatching(/did not take over/) });
    expect(f1.node.status()).toMatchObject({ role: 'leader', leadTransferee: 0 });
  });

  it('a leader just elected takes a change once it has applied an entry of its term (awaitTermApplied), not before', async () => {
    const hub = new Hub();
    const early: Promise<unknown>[] = [];
    const late: Promise<unknown>[] = [];
    const ns: TestNode[] = [];
    const observer: RaftObserver = {
      roleChanged: (st) => {
        if (st.role !== 'leader' || early.length > 0) return;
        const node = ns.find((n) => n.node.id === st.id)!.node;
        // Its no-op is not committed yet: the core refuses, and awaitTermApplied waits.
        early.push(node.proposeConfChange({ changes: [{ type: 'addLearner', id: 7 }] }, new Uint8Array()).catch((e: unknown) => e));
        late.push(node.awaitTermApplied(2000).then(() => node.proposeConfChange({ changes: [{ type: 'addLearner', id: 8 }] }, new Uint8Array())));
      },
    };
    for (const id of [1, 2, 3]) ns.push(start(hub, id, [1, 2, 3], [1, 2, 3], observer));
    await waitFor('a leader', () => late.length > 0);
    expect(await early[0]).toMatchObject({ kind: 'refused', message: expect.stringMatching(/not yet committed an entry of its term/) });
    expect(await late[0]).toMatchObject({ conf: { learners: [8] } });
  });

  it('a change whose leader steps down before it applies rejects as outcomeUnknown', async () => {
    const hub = new Hub();
    const [leader, f1, f2] = (await threeNodes(hub)) as [TestNode, TestNode, TestNode];
    // Cut the leader off: the change cannot commit, and check-quorum makes it step down.
    leader.net.peers.clear();
    f1.net.peers.delete(leader.node.id);
    f2.net.peers.delete(leader.node.id);
    const err = await leader.node.proposeConfChange({ changes: [{ type: 'addLearner', id: 4 }] }, new Uint8Array()).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'MembershipError', kind: 'outcomeUnknown', message: expect.stringMatching(/stopped leading/) });
  });
});
