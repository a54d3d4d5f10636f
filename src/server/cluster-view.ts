/**
 * The status page's view of the whole cluster (GET /cluster): every member's own Status, this
 * node's read here and the others' asked over the peer connections, which are up whenever Raft
 * is and already carry the peers' TLS. A member that does not answer in time is shown down.
 *
 * However many pages poll, one gathering runs at a time and its result serves for FRESH_MS: a
 * flood of requests to the HTTP port costs the peers at most a few small calls a second.
 */
import type { Clock } from '../clock.js';
import type { Load, StatusResponse } from '../kv-api.js';
import type { NodeId } from '../raft/core/types.js';
import type { StatusReport } from './health.js';

export interface MemberView {
  id: number;
  voter: boolean;
  peerAddr: string | null;
  clientAddr: string | null;
  /** The member's own answer; null when it did not answer (`error` says why). */
  status: MemberStatus | null;
  error: string | null;
  /** Entries the member's log trails the leader's: the leader's own figure when this node leads, else from the two answers. */
  lag: number | null;
}

export type MemberStatus = Omit<StatusResponse, 'leaderAddr' | 'clusterId' | 'quotaBytes' | 'quotaUsedBytes'>;

export interface ClusterView {
  /** When gathered (ms since the epoch). */
  at: number;
  self: number;
  clusterId: string;
  /** Leader changes this node has seen since it started. */
  leaderChanges: number;
  members: MemberView[];
}

export interface ClusterViewSource {
  report(): StatusReport | undefined;
  /** This node's Status. */
  self(): StatusResponse;
  /** A peer's Status, over the peer connection; rejects if it does not answer within `timeoutMs`. */
  ask(id: NodeId, timeoutMs: number): Promise<StatusResponse>;
  clock: Pick<Clock, 'now' | 'epochMs'>;
  timeoutMs: number;
}

/** How long one gathering serves: below the page's one-second refresh. */
const FRESH_MS = 500;
/** Bounds on what a peer's answer may carry into the page (it comes from the network). */
const MAX_ROLE_CHARS = 32;
const MAX_BUCKETS = 64;

export class ClusterViews {
  private last: { at: number; view: ClusterView } | undefined;
  private pending: Promise<ClusterView | undefined> | undefined;

  constructor(private readonly source: ClusterViewSource) {}

  /** undefined while the node is starting. */
  get(): Promise<ClusterView | undefined> {
    const now = this.source.clock.now();
    if (this.last && now - this.last.at < FRESH_MS) return Promise.resolve(this.last.view);
    this.pending ??= this.gather().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async gather(): Promise<ClusterView | undefined> {
    const s = this.source;
    const report = s.report();
    if (!report) return undefined;
    const started = s.clock.now();
    const answers = await Promise.all(
      report.members.map((m) =>
        m.id === report.node.id
          ? { status: s.self(), error: null }
          : s.ask(m.id, s.timeoutMs).then(
              (status) => ({ status, error: null }),
              (e: unknown) => ({ status: null, error: reason(e) }),
            ),
      ),
    );
    const statuses = answers.map((a, i) => (a.status && a.status.nodeId === report.members[i]!.id ? checked(a.status) : null));
    const leader = statuses.filter((x) => x?.role === 'leader').sort((a, b) => b!.term - a!.term)[0];
    const view: ClusterView = {
      at: s.clock.epochMs(),
      self: report.node.id,
      clusterId: report.clusterId,
      leaderChanges: report.node.leaderChanges,
      members: report.members.map((m, i) => {
        const st = statuses[i] ?? null;
        const derived = leader && st ? Math.max(0, leader.lastLogIndex - st.lastLogIndex) : null;
        return {
          id: m.id,
          voter: m.voter,
          peerAddr: m.peerAddr,
          clientAddr: m.clientAddr,
          status: st,
          error: st ? null : (answers[i]!.error ?? `node ${answers[i]!.status?.nodeId} answered for node ${m.id}`),
          lag: m.lag ?? derived,
        };
      }),
    };
    this.last = { at: started, view };
    return view;
  }
}

/** Why a peer did not answer, in a line: gRPC's resolver notes left out. */
function reason(e: unknown): string {
  return String((e as Error).message ?? e)
    .replace(/\.?\s*Resolution note:.*$/s, '')
    .slice(0, 200);
}

/** A Status as the page may show it: strings and the load's arrays capped, the load dropped if inconsistent. */
function checked(st: StatusResponse): MemberStatus {
  return {
    nodeId: st.nodeId,
    role: st.role.slice(0, MAX_ROLE_CHARS),
    term: st.term,
    leaderId: st.leaderId,
    commitIndex: st.commitIndex,
    appliedIndex: st.appliedIndex,
    lastLogIndex: st.lastLogIndex,
    snapshotIndex: st.snapshotIndex,
    load: st.load && saneLoad(st.load) ? st.load : null,
  };
}

function saneLoad(l: Load): boolean {
  const n = l.latencyBoundsSeconds.length;
  return n <= MAX_BUCKETS && l.latencyCounts.length === n && [l.fsyncSeconds, ...l.latencyBoundsSeconds].every(Number.isFinite);
}
