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

  constructor(
    public conf: ConfState,
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {}

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
