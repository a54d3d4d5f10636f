/**
 * RaftNode's observer events that metrics and logs use instead of reaching into the node: leader
 * changes, flush timings, ReadIndex confirmations and heartbeat round trips, on real nodes
 * (SQLite, the system clock) over an in-memory network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { Message, NodeId } from '../../src/raft/core/types.js';
import { RaftNode, type RaftObserver } from '../../src/raft/node.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import type { Transport } from '../../src/raft/transport/transport.js';
import { waitFor } from '../e2e/cluster.js';

/** Delivers between the nodes of one test, on a later turn, unless a node is cut off. */
class Hub {
  readonly handlers = new Map<NodeId, (m: Message) => void>();
  readonly cut = new Set<NodeId>();
  transport(id: NodeId): Transport {
    return {
      send: (m) => {
        if (this.cut.has(m.from) || this.cut.has(m.to)) return;
        setImmediate(() => this.handlers.get(m.to)?.(m));
      },
      onMessage: (h) => void this.handlers.set(id, h),
      sendSnapshot: () => Promise.reject(new Error('no snapshots here')),
      onSnapshot: () => {},
      setPeers: () => {},
      close: () => Promise.resolve(),
    };
  }
}

const dirs: string[] = [];
const nodes: RaftNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function start(hub: Hub, id: NodeId, observer: RaftObserver): RaftNode {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-node-observer-'));
  dirs.push(dir);
  const node = new RaftNode({
    id,
    peers: [1, 2, 3],
    storage: SqliteStorage.open(join(dir, 'raft.db'), { clusterId: 'o', nodeId: id, create: true, unsafeNoFsync: true }),
    transport: hub.transport(id),
    clock: systemClock,
    seed: id,
    electionTimeoutMs: 300,
    heartbeatMs: 30,
    handler: { applied: () => {}, readConfirmed: () => {}, leadershipLost: () => {} },
    observer,
    onFatal: (e) => {
      throw e;
    },
  });
  nodes.push(node);
  return node;
}

describe('RaftNode observer', () => {
  it('reports leader changes (once per leader, not per role change), flushes with their entries, reads and round trips', async () => {
    const hub = new Hub();
    const leaders = new Map<NodeId, NodeId[]>();
    const roles = new Map<NodeId, number>();
    const synced: { id: NodeId; ms: number; entries: number }[] = [];
    const reads: number[] = [];
    const trips: { id: NodeId; peer: NodeId; ms: number }[] = [];
    const lost: { id: NodeId; silences: ReadonlyMap<NodeId, number> }[] = [];
    const ns = [1, 2, 3].map((id) =>
      start(hub, id, {
        quorumLost: (silences) => lost.push({ id, silences }),
        roleChanged: () => roles.set(id, (roles.get(id) ?? 0) + 1),
        leaderChanged: (leader) => leaders.set(id, [...(leaders.get(id) ?? []), leader]),
        synced: (ms, entries) => synced.push({ id, ms, entries }),
        readConfirmed: (ms) => reads.push(ms),
        roundTrip: (peer, ms) => trips.push({ id, peer, ms }),
      }),
    );
    await waitFor('a leader', () => ns.find((n) => n.status().role === 'leader'));
    const leader = ns.find((n) => n.status().role === 'leader')!;
    await waitFor('every node to know it', () => ns.every((n) => n.leaderId() === leader.id));
    const proposed = leader.propose(new Uint8Array([1, 2, 3]))!;
    await waitFor('the entry to commit', () => leader.status().commit >= proposed.index);
    expect(leader.readIndex(1)).toBe(true);
    await waitFor('the read to be confirmed', () => reads.length === 1);
    await waitFor('round trips to both followers', () => new Set(trips.filter((t) => t.id === leader.id).map((t) => t.peer)).size === 2);

    for (const n of ns) {
      // The last leader each node reported is the leader; no leader is reported twice in a row.
      const seen = leaders.get(n.id)!;
      expect(seen.at(-1)).toBe(leader.id);
      expect(seen.every((l, i) => i === 0 || l !== seen[i - 1])).toBe(true);
      expect(seen.length).toBeLessThanOrEqual(roles.get(n.id)!);
    }
    expect(synced.some((s) => s.id === leader.id && s.entries >= 1)).toBe(true);
    expect(synced.every((s) => s.ms >= 0 && Number.isFinite(s.ms))).toBe(true);
    expect(reads[0]).toBeGreaterThanOrEqual(0);
    expect(trips.every((t) => t.ms >= 0 && t.ms < 1000 && t.peer !== t.id)).toBe(true);

    // Cut off: within an election timeout it knows it has not heard from a quorum; then it steps
    // down (check-quorum); the others stop knowing it and elect another.
    expect(leader.quorumHeard()).toBe(true);
    hub.cut.add(leader.id);
    const cut = Date.now();
    await waitFor('the leader to know it lost its quorum', () => !leader.quorumHeard(), 2000);
    expect(Date.now() - cut).toBeLessThan(300 + 200); // the election timeout, and a loaded machine's slack
    expect(lost).toEqual([]);
    await waitFor('the old leader to know of no leader', () => leaders.get(leader.id)!.at(-1) === 0, 5000);
    // It said why: neither follower heard from for about an election timeout (300 ms) or more.
    expect(lost.map((l) => l.id)).toEqual([leader.id]);
    const silences = [...lost[0]!.silences];
    expect(silences.map(([id]) => id).sort()).toEqual(ns.map((n) => n.id).filter((id) => id !== leader.id).sort());
    for (const [, ms] of silences) expect(ms).toBeGreaterThanOrEqual(250);
  });
});
