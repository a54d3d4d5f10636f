/**
 * What a RaftNode tells those who listen (hashicorp/raft's observer.go): logs, metrics and the
 * simulator's checks subscribe here instead of reaching into the node. Timings use the node's
 * injected clock, so the simulator replays them like everything else.
 */
import type { Clock } from '../clock.js';
import type { RaftStatus, Raft } from './core/raft.js';
import type { Entry, Message, NodeId, Ready, SnapshotMeta } from './core/types.js';

/** Everything optional: each listener takes what it needs. Called synchronously; must not throw. */
export interface RaftObserver {
  /** Each Ready as the core hands it over, before anything in it is acted on. */
  ready?(rd: Ready, core: Raft): void;
  /** A committed entry is being handed to the state machine (just before it is). */
  applied?(entry: Entry): void;
  /** Role, term or leader changed (once the change is durable). */
  roleChanged?(status: RaftStatus): void;
  /**
   * The leader this node knows of changed (NONE: it knows of none now), in `term`; called after
   * roleChanged. A metric of leader changes counts these, not role changes (etcd's meaning).
   */
  leaderChanged?(leaderId: NodeId, term: number): void;
  /**
   * A Ready's write reached the disk (the storage's sync): how long the flush took and how many
   * entries it made durable (0: a term or vote only). etcd's wal_fsync_duration.
   */
  synced?(durationMs: number, entries: number): void;
  /**
   * This leader stepped down for want of a quorum (check-quorum): it heard from too few voters in
   * an election timeout. `silences`: how long ago (ms) each other voter was last heard from.
   */
  quorumLost?(silences: ReadonlyMap<NodeId, number>): void;
  /** A heartbeat to `peer` was answered `durationMs` after it was sent: the round trip over the transport. */
  roundTrip?(peer: NodeId, durationMs: number): void;
  /** A ReadIndex round this node started was confirmed, `durationMs` after it started. */
  readConfirmed?(durationMs: number): void;
  /** A snapshot was taken and the log compacted behind it; `durationMs` from the start of the capture. */
  snapshotTaken?(meta: SnapshotMeta, durationMs: number): void;
  snapshotSent?(to: NodeId, meta: SnapshotMeta, bytes: number): void;
  snapshotFailed?(what: string, error: unknown): void;
  /** A snapshot from the leader is durable and the state machine was restored from it. */
  snapshotInstalled?(meta: SnapshotMeta, bytes: number): void;
  fatal?(error: unknown): void;
  /** A peer's message the core refused (one no peer could have sent: a forgery, or a bug). */
  refused?(m: Message, kind: string, detail: string): void;
}

/**
 * Round trips (a heartbeat to its answer, one in flight per peer) and ReadIndex rounds (start to
 * confirmation), timed only while the observer listens for them: otherwise each call is one check.
 */
export class Timings {
  /** When each ReadIndex round started, by ctx. */
  private readonly reads = new Map<number, number>();
  /** When the heartbeat being timed to each peer was sent. */
  private readonly pinged = new Map<NodeId, number>();

  constructor(
    private readonly clock: Clock,
    private readonly observer: RaftObserver,
    /** A heartbeat unanswered this long was lost: the next one is timed instead. */
    private readonly lostAfterMs: number,
  ) {}

  sent(m: Message): void {
    if (m.type !== 'heartbeat' || !this.observer.roundTrip) return;
    const now = this.clock.now();
    const sent = this.pinged.get(m.to);
    if (sent === undefined || now - sent > this.lostAfterMs) this.pinged.set(m.to, now);
  }

  received(m: Message): void {
    if (m.type !== 'heartbeatResp' || this.pinged.size === 0) return;
    const sent = this.pinged.get(m.from);
    if (sent === undefined) return;
    this.pinged.delete(m.from);
    this.observer.roundTrip?.(m.from, this.clock.now() - sent);
  }

  readStarted(ctx: number): void {
    if (this.observer.readConfirmed) this.reads.set(ctx, this.clock.now());
  }

  /** The reads `rd` confirms; those of a lost leadership never will be, and are forgotten. */
  readsConfirmed(rd: Ready): void {
    if (this.reads.size === 0) return;
    const now = this.clock.now();
    for (const rs of rd.readStates) {
      const started = this.reads.get(rs.ctx);
      if (started === undefined) continue;
      this.reads.delete(rs.ctx);
      this.observer.readConfirmed?.(now - started);
    }
    if (rd.softState && rd.softState.role !== 'leader') this.reads.clear();
  }
}
