/**
 * The leader's view of one follower's replication (after etcd's tracker.Progress).
 * probe: one append in flight at a time until we find where logs match.
 * replicate: stream appends optimistically, at most `maxInflight` messages and `maxInflightBytes`
 *   of entries unacknowledged (the byte cap keeps a follower that is far behind from filling the
 *   transport with the whole gap at once: etcd's MaxInflightBytes).
 * snapshot: the follower needs entries we compacted; a snapshot is on its way, nothing else is sent.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probe state: an append is outstanding; cleared by a response or a heartbeat response. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** The highest commit index sent to the follower (appends, heartbeats), so that it hears of each commit once. */
  sentCommit = 0;
  /** snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  private readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, maxInflightBytes = Infinity) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  becomeProbe(): void {
    this.state = 'probe';
    this.next = this.match + 1;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** The follower's log ends at `index`, before `match`: it lost entries; probe from its end. */
  resetTo(index: number): void {
    this.match = index;
    this.becomeProbe();
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  /** An acknowledgement up to `index`; false if it tells us nothing new. */
  maybeUpdate(index: number): boolean {
    const updated = index > this.match;
    if (updated) this.match = index;
    this.probeSent = false;
    if (index + 1 > this.next) this.next = index + 1;
    return updated;
  }

  /** Records an append ending at `lastIndex`, carrying `bytes` of entries, just sent. */
  sent(lastIndex: number, bytes: number): void {
    if (this.state === 'replicate') {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else {
      this.probeSent = true;
    }
  }

  acked(index: number): void {
    this.inflights.freeTo(index);
  }

  /**
   * The follower rejected an append at `rejected`; `hint` is the next index it may match.
   * Returns false for a stale rejection (a response to an append we have moved past).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'snapshot') return false;
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === 'snapshot') return true;
    return this.state === 'probe' ? this.probeSent : this.inflights.full();
  }

}

/** A bounded FIFO of the last indices (and sizes) of unacknowledged appends. */
class Inflights {
  private readonly buf: number[] = [];
  private readonly sizes: number[] = [];
  private start = 0;
  private bytes = 0;

  constructor(
    private readonly cap: number,
    private readonly capBytes: number,
  ) {}

  add(lastIndex: number, bytes: number): void {
    this.buf.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  freeTo(index: number): void {
    while (this.start < this.buf.length && this.buf[this.start]! <= index) this.bytes -= this.sizes[this.start++]!;
    if (this.start === this.buf.length) this.reset();
    else if (this.start > 64 && this.start * 2 > this.buf.length) this.compact();
  }

  private compact(): void {
    this.buf.splice(0, this.start);
    this.sizes.splice(0, this.start);
    this.start = 0;
  }

  full(): boolean {
    return this.buf.length - this.start >= this.cap || this.bytes >= this.capBytes;
  }

  reset(): void {
    this.buf.length = 0;
    this.sizes.length = 0;
    this.start = 0;
    this.bytes = 0;
  }
}
