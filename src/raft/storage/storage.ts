import type { Entry, HardState } from '../core/types.js';

/** What a node needs to resume after a restart. */
export interface PersistedState {
  hardState: HardState;
  /** The retained log, contiguous, starting at index 1 (until snapshots exist). */
  entries: Entry[];
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
  close(): void;
}

/** Storage that lives as long as the object: the simulator's "disk", which survives crashes of the core. */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private entries: Entry[] = [];

  load(): PersistedState {
    return { hardState: this.hardState, entries: this.entries.slice() };
  }

  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    const first = entries[0];
    if (first) {
      if (first.index > this.entries.length + 1) {
        throw new RangeError(`gap in log: appending ${first.index} after ${this.entries.length}`);
      }
      this.entries.length = first.index - 1;
      for (const e of entries) this.entries.push(e);
    }
    if (hardState) this.hardState = hardState;
  }

  close(): void {}
}
