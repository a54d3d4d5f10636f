import type { Entry, HardState, SnapshotMeta } from '../core/types.js';

/** What a node needs to resume after a restart. */
export interface PersistedState {
  hardState: HardState;
  /** The retained log, contiguous, starting right after `snapshot` (or at index 1). */
  entries: Entry[];
  /**
   * The latest snapshot the log was compacted into, if any, with the configuration as of it
   * exactly as recorded (none if none was: data written before cluster membership existed).
   */
  snapshot?: SnapshotMeta;
}

/**
 * Durable Raft state. The driver calls save() once per Ready and then awaits sync() before sending
 * any message that depends on what it saved (a vote, an append acknowledgement) or treating its own
 * entries as acknowledged. Splitting the two lets a leader send entries to its followers while its
 * own disk write is in flight (thesis §10.2.1), and lets several saves share one disk flush.
 */
export interface Storage {
  load(): PersistedState;
  /**
   * One atomic write: delete every stored entry with index ≥ entries[0].index, append `entries`
   * (contiguous, starting at most one past the stored last index), and record `hardState` (if
   * given; its commit never exceeds the resulting last index). It is visible to load() at once but
   * durable only once a later sync() resolves; a crash before that keeps either all of it or none
   * of it. An error is fatal for the node: the disk's state is unknown, so the caller must stop
   * (the storage refuses every later write).
   */
  save(hardState: HardState | undefined, entries: readonly Entry[]): void;
  /**
   * Resolves once everything saved before the call is durable. Calls may share one disk flush; one
   * made when nothing was saved since the last flush resolves without touching the disk. Rejects
   * on an I/O error, which is fatal as for save(): after a failed flush the disk's state is
   * unknown, so the storage refuses every later write.
   */
  sync(): Promise<void>;
  /**
   * One atomic write, after the state machine's snapshot covering `snapshot` (an applied entry) is
   * durable elsewhere: record `snapshot` (its configuration too, if it has one, replacing any
   * earlier snapshot's; it must be valid: a RangeError otherwise) as the node's snapshot and delete every stored entry with
   * index ≤ `upTo` (upTo ≤ snapshot.index; the entries between stay as a window for slow
   * followers, but load() no longer returns them). `snapshot.index` must not exceed the last index
   * nor precede the recorded snapshot; entries it covers are committed and are never rewritten by
   * save(). Durable on return, and so is everything saved before it (it is rare: it may block).
   * Errors as for save().
   */
  compact(snapshot: SnapshotMeta, upTo: number): void;
  /**
   * One atomic write, after a snapshot from the leader is durable elsewhere: record `snapshot`
   * (with its configuration, as for compact()) and delete every stored entry; the log continues at snapshot.index + 1. The recorded commit must
   * not exceed snapshot.index (the last index from now on). Durable on return, with everything
   * saved before it, as for compact(). Errors as for save().
   */
  installSnapshot(snapshot: SnapshotMeta): void;
  /** Makes everything saved durable (pending sync() calls then resolve, or reject if that fails) and releases the storage. */
  close(): void;
}
