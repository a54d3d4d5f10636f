import type { Entry, HardState, SnapshotMeta } from '../core/types.js';

/** What a node needs to resume after a restart. */
export interface PersistedState {
  hardState: HardState;
  /** The retained log, contiguous, starting right after `snapshot` (or at index 1). */
  entries: Entry[];
  /** The latest snapshot the log was compacted into, if any. */
  snapshot?: SnapshotMeta;
}

/**
 * Durable Raft state. The driver calls save() once per Ready, before sending any message
 * that depends on it; save() returns only when the write is durable.
 */
export interface Storage {
  load(): PersistedState;
  /**
   * One atomic, durable write: delete every stored entry with index ≥ entries[0].index,
   * append `entries` (contiguous, starting at most one past the stored last index), and record
   * `hardState` (if given; its commit never exceeds the resulting last index). An error is fatal
   * for the node: after a failed fsync the disk's state is unknown, so the caller must stop.
   */
  save(hardState: HardState | undefined, entries: readonly Entry[]): void;
  /**
   * One atomic, durable write, after the state machine's snapshot covering `snapshot` (an applied
   * entry) is durable elsewhere: record `snapshot` as the node's snapshot and delete every stored
   * entry with index ≤ `upTo` (upTo ≤ snapshot.index; the entries between stay as a window for slow
   * followers, but load() no longer returns them). `snapshot.index` must not exceed the last index
   * nor precede the recorded snapshot; entries it covers are committed and are never rewritten by
   * save(). Errors as for save().
   */
  compact(snapshot: SnapshotMeta, upTo: number): void;
  /**
   * One atomic, durable write, after a snapshot from the leader is durable elsewhere: record
   * `snapshot` and delete every stored entry; the log continues at snapshot.index + 1. The
   * recorded commit must not exceed snapshot.index (the last index from now on). Errors as for save().
   */
  installSnapshot(snapshot: SnapshotMeta): void;
  close(): void;
}

/** Storage that lives as long as the object: the simulator's "disk", which survives crashes of the core. */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private entries: Entry[] = [];
  /** Index of entries[0]. */
  private offset = 1;
  private snapshot: SnapshotMeta | undefined;

  load(): PersistedState {
    // Entries the snapshot covers are not needed to restart (a retained window serves only a running leader).
    const from = Math.max(this.offset, (this.snapshot?.index ?? 0) + 1);
    return { hardState: this.hardState, entries: this.entries.slice(from - this.offset), snapshot: this.snapshot };
  }

  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    const first = entries[0];
    if (first) {
      const last = this.offset + this.entries.length - 1;
      if (first.index > last + 1) throw new RangeError(`gap in log: appending ${first.index} after ${last}`);
      if (first.index < this.offset) throw new RangeError(`entry ${first.index} rewrites the compacted log (first ${this.offset})`);
      this.entries.length = first.index - this.offset;
      for (const e of entries) this.entries.push(e);
    }
    if (hardState) this.hardState = hardState;
  }

  /** The state machine's snapshot now covers `snapshot`: drop entries up to `upTo` (≤ snapshot.index). */
  compact(snapshot: SnapshotMeta, upTo: number): void {
    this.snapshot = snapshot;
    if (upTo < this.offset) return;
    this.entries = this.entries.slice(upTo + 1 - this.offset);
    this.offset = upTo + 1;
  }

  /** A snapshot from the leader replaces the whole log. */
  installSnapshot(snapshot: SnapshotMeta): void {
    this.snapshot = snapshot;
    this.entries = [];
    this.offset = snapshot.index + 1;
  }

  /** Bytes of retained log entries (data plus a fixed per-entry overhead), for size bounds. */
  logBytes(): number {
    return this.entries.reduce((n, e) => n + e.data.length + 16, 0);
  }

  close(): void {}
}
