/** When a node snapshots its state machine, counted since its last snapshot. */
export interface SnapshotPolicy {
  /** Entries applied (0: never by count). */
  entries: number;
  /** Bytes of entry data applied (0 or absent: never by size): a bound on the log (the lab's maxraftstate), taken as given. */
  bytes?: number;
  /**
   * A floor under the count, that follows the cost: a snapshot writes the whole state, so one due
   * by count waits until the log since the last holds at least `logPerStateByte` bytes per byte
   * of that snapshot (`lastSnapshotBytes()`; 0 before the first). Writing snapshots then costs at
   * most 1/`logPerStateByte` of what the log itself writes, however large the state grows, and the
   * log on disk stays within about that multiple of the state. 0 or absent: no floor.
   */
  logPerStateByte?: number;
  lastSnapshotBytes?: () => number;
  /** Entries kept in the log behind a snapshot, so a follower a little behind catches up from the log. */
  retain: number;
}

/** Whether a snapshot is due after `since` (entries and bytes of entry data applied since the last one). */
export function snapshotDue(p: SnapshotPolicy, since: { entries: number; bytes: number }): boolean {
  const byCount = p.entries > 0 && since.entries >= p.entries;
  const bySize = p.bytes !== undefined && p.bytes > 0 && since.bytes >= p.bytes;
  if (bySize) return true;
  return byCount && since.bytes >= (p.logPerStateByte ?? 0) * (p.lastSnapshotBytes?.() ?? 0);
}
