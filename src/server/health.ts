/**
 * What a node says about itself to probes and operators: whether it is healthy (a leader exists
 * and can commit), ready (serving, and caught up enough), and its view of the cluster as JSON.
 * Served over HTTP (metrics-http.ts) and, for health, over grpc.health.v1 on the client port.
 */
import type { Clock } from '../clock.js';
import { NONE } from '../raft/core/types.js';
import type { RaftNode } from '../raft/node.js';
import type { KvService } from './kv-service.js';
import type { KvStore } from './kv-store.js';
import type { AddressBook } from './members.js';

export interface Health {
  ok: boolean;
  /** Why not (or "ok"): one line for a human reading a probe's answer. */
  reason: string;
}

/**
 * A key health reads through the cluster. The read is a ReadIndex round on the leader (forwarded
 * there by a follower, as a client's read is), which completes only if the leader still has a
 * quorum: what "can commit" means without writing anything. Its value is never looked at.
 */
const HEALTH_KEY = Buffer.from('\u0000raftkv-health');

/**
 * What tells at once, without a round: no leader known, or this node leads and has not heard from
 * a quorum of voters within an election timeout (it steps down soon after: check-quorum). Looked
 * at on every call, also while a round is in flight.
 */
export function quickHealth(raft: RaftNode): Health | undefined {
  if (raft.leaderId() === NONE) return { ok: false, reason: 'no leader' };
  if (raft.leaderId() === raft.id && !raft.quorumHeard()) {
    return { ok: false, reason: 'this leader has not heard from a quorum of voters within an election timeout' };
  }
  return undefined;
}

/**
 * The round, once quickHealth has nothing to say: unhealthy unless a ReadIndex round completes
 * within `timeoutMs` (a follower whose leader went away stops knowing one within an election
 * timeout or two; the timeout bounds the rest).
 */
export function probeHealth(o: { service: KvService; clock: Clock; timeoutMs: number }): Promise<Health> {
  return new Promise<Health>((resolve) => {
    let done = false;
    const settle = (h: Health): void => {
      if (done) return;
      done = true;
      timer.cancel();
      resolve(h);
    };
    const timer = o.clock.setTimeout(() => settle({ ok: false, reason: `a ReadIndex round did not complete within ${o.timeoutMs} ms` }), o.timeoutMs);
    o.service.get({ key: HEALTH_KEY }, (err) => settle(err ? { ok: false, reason: err.details } : { ok: true, reason: 'ok' }));
  });
}

/**
 * How far (entries) the applied index may trail the commit index for the node to be ready: a
 * node replaying a long log, or installing a snapshot, serves stale reads no sooner than it
 * catches up, and a load balancer should send clients elsewhere meanwhile.
 */
export const READY_MAX_LAG = 1000;

/** Ready: serving clients, a leader known, and applied within READY_MAX_LAG of the commit index. */
export function readiness(raft: RaftNode | undefined, serving: boolean): Health {
  if (!raft || !serving) return { ok: false, reason: 'starting' };
  const s = raft.status();
  if (s.leaderId === NONE) return { ok: false, reason: 'no leader' };
  const behind = s.commit - s.applied;
  if (behind > READY_MAX_LAG) return { ok: false, reason: `applying: ${behind} committed entries not applied yet` };
  return { ok: true, reason: 'ok' };
}

/** /status: this node's view, and on the leader each member's replication progress. */
export interface StatusReport {
  clusterId: string;
  node: {
    id: number;
    role: string;
    term: number;
    leaderId: number | null;
    commit: number;
    applied: number;
    lastIndex: number;
    snapshotIndex: number;
    leaderChanges: number;
    /** The quota on the state (kv-server --quota-bytes; 0: none), and the state as it counts it (KvStore.stateBytes). */
    quotaBytes: number;
    quotaUsedBytes: number;
  };
  /** Every member of the configuration in force, with what this node knows of it. */
  members: {
    id: number;
    voter: boolean;
    peerAddr: string | null;
    clientAddr: string | null;
    /** Leader only (null elsewhere): the highest index known replicated there, and how far it trails our last index. */
    match: number | null;
    lag: number | null;
    active: boolean | null;
  }[];
}

export function statusReport(o: {
  raft: RaftNode;
  book: AddressBook;
  clusterId: string;
  leaderChanges: number;
  store: Pick<KvStore, 'quotaBytes' | 'stateBytes'>;
}): StatusReport {
  const s = o.raft.status();
  const leader = s.role === 'leader';
  const progress = new Map(leader ? o.raft.members().map((m) => [m.id, m]) : []);
  const voters = new Set([...s.conf.voters, ...(s.conf.votersOutgoing ?? [])]);
  const ids = [...new Set([...voters, ...s.conf.learners])].sort((a, b) => a - b);
  return {
    clusterId: o.clusterId,
    node: {
      id: s.id,
      role: s.role,
      term: s.term,
      leaderId: s.leaderId === NONE ? null : s.leaderId,
      commit: s.commit,
      applied: s.applied,
      lastIndex: s.lastIndex,
      snapshotIndex: s.snapshotIndex,
      leaderChanges: o.leaderChanges,
      quotaBytes: o.store.quotaBytes,
      quotaUsedBytes: o.store.stateBytes(),
    },
    members: ids.map((id) => {
      const a = o.book.member(id);
      const p = progress.get(id);
      return {
        id,
        voter: voters.has(id),
        peerAddr: a?.peerAddr ?? null,
        clientAddr: a?.clientAddr ?? null,
        match: p ? p.match : null,
        lag: p ? Math.max(0, s.lastIndex - p.match) : null,
        active: p ? p.active : null,
      };
    }),
  };
}
