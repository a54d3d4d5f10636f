import { isVoter, membersOf, type ConfState } from './conf.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult, type VoteResult } from './quorum.js';
import type { NodeId } from './types.js';

/**
 * The configuration in force and, on a leader, the replication progress of each member (after
 * etcd's tracker.ProgressTracker): every quorum decision of the node goes through here, so that
 * joint configurations and learners are honoured everywhere alike.
 */
export class Tracker {
  readonly progress = new Map<NodeId, Progress>();
  /**
   * The configurations applied since the latest snapshot (the first: the one in force as of it),
   * with the index of their entry and the driver's context, for confAt().
   */
  private history: { index: number; conf: ConfState; context: Uint8Array }[];

  /** `conf` is in force as of `index` (a snapshot's, or 0). */
  constructor(
    public conf: ConfState,
    index: number,
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {
    this.history = [{ index, conf, context: new Uint8Array(0) }];
  }

  /** The configuration in force as of applied index `index` (at or after the latest snapshot). */
  confAt(index: number): ConfState {
    let conf = this.history[0]!.conf;
    for (const h of this.history) if (h.index <= index) conf = h.conf;
    return conf;
  }

  /** The driver's context of the configuration in force (empty if it came from a snapshot). */
  context(): Uint8Array {
    return this.history[this.history.length - 1]!.context;
  }

  /** A conf entry at `index` was applied: its configuration is in force (see setConf). */
  applied(index: number, conf: ConfState, context: Uint8Array, leading: boolean, next: number): void {
    this.history.push({ index, conf, context });
    this.setConf(conf, leading, next);
  }

  /** A snapshot at `index` replaced the log: its configuration is in force, and no other is known. */
  restored(index: number, conf: ConfState): void {
    this.history = [{ index, conf, context: new Uint8Array(0) }];
    this.setConf(conf, false, 0);
  }

  /** A snapshot at `index` was taken: history before the configuration in force as of it goes. */
  compacted(index: number): void {
    let asOf = 0;
    while (asOf + 1 < this.history.length && this.history[asOf + 1]!.index <= index) asOf++;
    this.history = this.history.slice(asOf);
  }

  isVoter(id: NodeId): boolean {
    return isVoter(this.conf, id);
  }

  /** A fresh progress for every member, each to be probed from `next` (a new leader's). */
  resetProgress(next: number): void {
    this.progress.clear();
    for (const id of membersOf(this.conf)) this.progress.set(id, this.newProgress(next));
  }

  /** Puts `conf` in force; a leader tracks new members from `next` and forgets removed ones. */
  setConf(conf: ConfState, leading: boolean, next: number): void {
    this.conf = conf;
    if (!leading) return;
    const members = new Set(membersOf(conf));
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) if (!this.progress.has(id)) this.progress.set(id, this.newProgress(next));
  }

  /** The highest index a quorum of the configuration holds durably. */
  committed(): number {
    return committedIndex(this.conf, (id) => this.progress.get(id)?.match ?? 0);
  }

  tally(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    return voteResult(this.conf, votes);
  }

  hasQuorum(yes: (id: NodeId) => boolean): boolean {
    return hasQuorum(this.conf, yes);
  }

  /** Check-quorum: whether a quorum was heard from since the last call (which starts a new round). */
  quorumActive(self: NodeId): boolean {
    const active = this.hasQuorum((id) => id === self || this.progress.get(id)?.recentActive === true);
    for (const [id, pr] of this.progress) if (id !== self) pr.recentActive = false;
    return active;
  }

  private newProgress(next: number): Progress {
    return new Progress(next, this.maxInflight, this.maxInflightBytes);
  }
}
