import type { Entry, SnapshotMeta } from './types.js';

/** Thrown when the protocol would break a Raft safety rule: a bug, never a recoverable condition. */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError';
}

/**
 * The log as the protocol sees it. Indices are 1-based. Entries up to `offset - 1` are compacted
 * into a snapshot (only the last one's term is kept); entries up to `stabled` are durable in
 * Storage and later ones wait for the next Ready. The retained log is kept in memory: snapshots
 * bound its length.
 */
export class RaftLog {
  private entries: Entry[];
  /** Index of entries[0]; offset - 1 is the last compacted index (0: none). */
  private offset: number;
  /** Term of the entry at offset - 1. */
  private prefixTerm: number;
  committed: number;
  applied: number;
  stabled: number;

  constructor(stored: Entry[], committed: number, snapshot: SnapshotMeta = { index: 0, term: 0 }) {
    this.entries = stored.slice();
    this.offset = snapshot.index + 1;
    this.prefixTerm = snapshot.term;
    if (stored[0] && stored[0].index !== this.offset) {
      throw new RaftInvariantError(`stored log starts at ${stored[0].index}, not after snapshot ${snapshot.index}`);
    }
    this.stabled = this.lastIndex();
    if (committed > this.stabled) throw new RaftInvariantError(`commit ${committed} beyond stored log ${this.stabled}`);
    this.committed = Math.max(committed, snapshot.index);
    this.applied = snapshot.index;
  }

  /** The first index still held as an entry. */
  firstIndex(): number {
    return this.offset;
  }

  lastIndex(): number {
    return this.offset + this.entries.length - 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex())!;
  }

  /** The term of the entry at `index` (0 for index 0); undefined if compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index === this.offset - 1) return this.prefixTerm;
    if (index < this.offset) return undefined;
    return this.entries[index - this.offset]?.term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi), at least one if lo < hi, then more while under maxBytes. */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entries[i - this.offset]!;
      bytes += e.data.length + ENTRY_OVERHEAD;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  entry(index: number): Entry | undefined {
    return index >= this.offset ? this.entries[index - this.offset] : undefined;
  }

  /** Leader path: entries continue the log. */
  append(entries: Entry[]): void {
    for (const e of entries) this.entries.push(e);
  }

  /**
   * Follower path (§5.3): if our log holds (prevIndex, prevTerm), merge `entries`, truncating
   * at the first conflict, and commit up to min(leaderCommit, last new index).
   * Returns the last index now known to match the leader, or undefined on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new RaftInvariantError(`entry ${conflict} conflicts with committed entry (commit ${this.committed})`);
      }
      this.truncateAndAppend(entries.slice(conflict - entries[0]!.index));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** The first index in `entries` that is not already in our log with the same term (0 if none). */
  private findConflict(entries: Entry[]): number {
    for (const e of entries) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  private truncateAndAppend(entries: Entry[]): void {
    const first = entries[0]!.index;
    if (first <= this.lastIndex()) {
      this.entries.length = first - this.offset;
      this.stabled = Math.min(this.stabled, first - 1);
    }
    this.append(entries);
  }

  /**
   * The conflict hint (after etcd's findConflictByTerm): the largest index ≤ `index` whose term
   * is ≤ `term`, with that term. Everything after it up to `index` cannot match a log whose entry
   * at `index` has `term`, so replication can skip a whole term per round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = Math.min(index, this.lastIndex()); i >= this.offset; i--) {
      const t = this.term(i)!;
      if (t <= term) return { index: i, term: t };
    }
    return { index: this.offset - 1, term: 0 };
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) throw new RaftInvariantError(`commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  unstableEntries(): Entry[] {
    return this.entries.slice(this.stabled + 1 - this.offset);
  }

  /** Committed entries not yet handed to the state machine. */
  nextCommittedEntries(): Entry[] {
    return this.entries.slice(Math.max(this.applied + 1, this.offset) - this.offset, this.committed + 1 - this.offset);
  }

  /** Drops the entries up to `index`, which must be applied: a snapshot now covers them. */
  compact(index: number): void {
    if (index < this.offset) return;
    if (index > this.applied || index > this.stabled) {
      throw new RaftInvariantError(`cannot compact to ${index}: applied ${this.applied}, stable ${this.stabled}`);
    }
    this.prefixTerm = this.term(index)!;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  /** Replaces the whole log by a snapshot from the leader (§7): everything up to it is committed. */
  restore(s: SnapshotMeta): void {
    this.entries = [];
    this.offset = s.index + 1;
    this.prefixTerm = s.term;
    this.committed = s.index;
    this.stabled = s.index;
  }

  /** Storage confirmed entries up to (index, term); ignore if that entry was replaced meanwhile. */
  stableTo(index: number, term: number): void {
    if (index > this.stabled && this.matchTerm(index, term)) this.stabled = index;
  }

  /** The state machine now holds a snapshot up to `index`. */
  snapshotApplied(index: number): void {
    this.applied = Math.max(this.applied, index);
  }

  appliedTo(index: number): void {
    if (index > this.committed) throw new RaftInvariantError(`applied ${index} beyond commit ${this.committed}`);
    if (index > this.applied) this.applied = index;
  }
}

/** Approximate per-entry framing cost, used to bound message sizes. */
export const ENTRY_OVERHEAD = 16;
