import type { Entry, HardState, Rng, SnapshotMeta } from '../../src/raft/core/types.js';
import type { PersistedState, Storage } from '../../src/raft/storage/storage.js';

/** Bytes a stored entry costs beyond its data (the lab's log-size bound counts both). */
export const ENTRY_OVERHEAD_BYTES = 16;

/** A Raft log and stable store as it lies on a disk: the contiguous entries from `offset`, and the snapshot record. */
export class LogImage {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  entries: Entry[] = [];
  /** Index of entries[0]. */
  offset = 1;
  snapshot: SnapshotMeta | undefined;
  /** Data bytes of the retained entries, plus ENTRY_OVERHEAD_BYTES each. */
  bytes = 0;

  clone(): LogImage {
    const c = new LogImage();
    c.hardState = this.hardState;
    c.entries = this.entries.slice();
    c.offset = this.offset;
    c.snapshot = this.snapshot;
    c.bytes = this.bytes;
    return c;
  }

  lastIndex(): number {
    return Math.max(this.offset + this.entries.length - 1, this.snapshot?.index ?? 0);
  }

  /** The term of the entry at `index` as stored, or of the snapshot there; undefined if neither holds it. */
  termAt(index: number): number | undefined {
    if (index === 0) return 0;
    const e = this.entries[index - this.offset];
    if (e) return e.term;
    return this.snapshot?.index === index ? this.snapshot.term : undefined;
  }

  /** SqliteStorage.save's contract, checks included: one atomic write. */
  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    const first = entries[0];
    let last = this.lastIndex();
    if (first) {
      if (first.index < 1 || first.index > last + 1) throw new RangeError(`gap in log: appending ${first.index} after ${last}`);
      if (first.index < this.offset) throw new RangeError(`entry ${first.index} rewrites the compacted log (first ${this.offset})`);
      if (first.index <= (this.snapshot?.index ?? 0)) {
        throw new RangeError(`entry ${first.index} rewrites an entry the snapshot covers (up to ${this.snapshot!.index})`);
      }
      entries.forEach((e, i) => {
        if (e.index !== first.index + i) throw new RangeError(`entries not contiguous: ${e.index} follows ${first.index + i - 1}`);
      });
      last = first.index + entries.length - 1;
    }
    const commit = (hardState ?? this.hardState).commit;
    if (commit > last) throw new RangeError(`commit index ${commit} beyond last log index ${last}`);
    if (hardState) {
      const { term, vote } = hardState;
      if (!Number.isSafeInteger(term) || !Number.isSafeInteger(vote) || !Number.isSafeInteger(commit) || term < 0 || vote < 0 || commit < 0) {
        throw new RangeError(`invalid hard state ${JSON.stringify(hardState)}`);
      }
      this.hardState = { term, vote, commit };
    }
    if (!first) return;
    for (const e of this.entries.splice(first.index - this.offset)) this.bytes -= e.data.length + ENTRY_OVERHEAD_BYTES;
    for (const e of entries) {
      this.entries.push(e);
      this.bytes += e.data.length + ENTRY_OVERHEAD_BYTES;
    }
  }

  /** SqliteStorage.compact's contract: record `snapshot`, drop entries up to `upTo`. */
  compact(snapshot: SnapshotMeta, upTo: number): void {
    if (upTo < 0 || upTo > snapshot.index) throw new RangeError(`invalid compaction point ${upTo} for snapshot ${snapshot.index}`);
    if (snapshot.index > this.lastIndex()) throw new RangeError(`snapshot ${snapshot.index} is beyond the last log index ${this.lastIndex()}`);
    const current = this.snapshot;
    if (current && (snapshot.index < current.index || (snapshot.index === current.index && snapshot.term !== current.term))) {
      throw new RangeError(`snapshot ${snapshot.index}/${snapshot.term} does not follow ${current.index}/${current.term}`);
    }
    const stored = this.entries[snapshot.index - this.offset];
    if (stored && stored.term !== snapshot.term) {
      throw new RangeError(`snapshot ${snapshot.index}/${snapshot.term} does not match the log's term ${stored.term} there`);
    }
    this.snapshot = snapshot;
    if (upTo < this.offset) return;
    for (const e of this.entries.splice(0, upTo + 1 - this.offset)) this.bytes -= e.data.length + ENTRY_OVERHEAD_BYTES;
    this.offset = upTo + 1;
  }

  /** SqliteStorage.installSnapshot's contract: a snapshot from the leader replaces the whole log. */
  installSnapshot(snapshot: SnapshotMeta): void {
    if (snapshot.index < this.hardState.commit) {
      throw new RangeError(`snapshot ${snapshot.index} is behind the commit index ${this.hardState.commit}`);
    }
    this.snapshot = snapshot;
    this.entries = [];
    this.bytes = 0;
    this.offset = snapshot.index + 1;
  }

  /** What a restart reads, with the checks SqliteStorage.open makes before it accepts a file. */
  load(): PersistedState {
    const last = this.lastIndex();
    if (this.hardState.commit > last) {
      throw new Error(`refusing the log: commit index ${this.hardState.commit} is beyond the last entry ${last}`);
    }
    const snap = this.snapshot;
    if (snap && this.offset > snap.index + 1) throw new Error(`refusing the log: entries ${snap.index + 1}..${this.offset - 1} are missing`);
    const from = Math.max(this.offset, (snap?.index ?? 0) + 1);
    return { hardState: this.hardState, entries: this.entries.slice(from - this.offset), snapshot: snap };
  }
}

type Op = { kind: 'save'; hardState: HardState | undefined; entries: readonly Entry[] };

/**
 * A node's Raft log on a disk with a volatile tier: a save is visible at once but lies in the
 * page cache until a flush (sync) that started after it completes; a crash of the process keeps
 * the page cache, a power loss does not. Of the saves not flushed, a power loss keeps none, or a
 * prefix: SQLite's WAL replays frames up to the first one whose checksum fails, so a commit is
 * whole or absent and later ones never survive an earlier one's loss.
 */
export class SimLog {
  /** What is on the platter. */
  durable = new LogImage();
  /** What the running node sees: the durable image with the unflushed saves applied. */
  view = new LogImage();
  private unflushed: Op[] = [];
  /** Saves so far, and how many of them are durable (the first `durableCount`). */
  private saved = 0;
  private durableCount = 0;
  /** The most bytes the node's log held at any moment. */
  peakBytes = 0;

  get savedCount(): number {
    return this.saved;
  }

  get durableSaves(): number {
    return this.durableCount;
  }

  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    this.view.save(hardState, entries);
    this.peakBytes = Math.max(this.peakBytes, this.view.bytes);
    this.unflushed.push({ kind: 'save', hardState, entries });
    this.saved++;
  }

  /** A flush that started when `upTo` saves had been made has completed. */
  flushed(upTo: number): void {
    while (this.durableCount < upTo) {
      const op = this.unflushed.shift()!;
      this.durable.save(op.hardState, op.entries);
      this.durableCount++;
    }
  }

  /** compact/installSnapshot: durable on return, with everything saved before. */
  durably(apply: (image: LogImage) => void): void {
    this.flushed(this.saved);
    apply(this.view);
    apply(this.durable);
  }

  /** The machine goes down. The node restarts on `view`, which is what survived. */
  crash(kind: 'process' | 'power', rng: Rng): void {
    // Power loss: half the time every unflushed save is gone, else a random prefix of them made it.
    if (kind === 'process') this.flushed(this.saved);
    else if (rng.int(2) === 1) this.flushed(this.durableCount + rng.int(this.unflushed.length + 1));
    this.unflushed = [];
    this.saved = this.durableCount;
    this.view = this.durable.clone();
  }
}

/** When a flush completes: the disk's latency, the node's liveness and clock. */
export interface FlushScheduler {
  after(delayMs: number, fn: () => void): void;
  latency(): number;
}

/**
 * The Storage one node incarnation writes through: SimLog under SqliteStorage's contract, with
 * group commit (a sync waits for a flush that started after every save before it).
 */
export class SimStorage implements Storage {
  private flushing = false;
  private waiters: { upTo: number; resolve: () => void }[] = [];
  private closed = false;

  constructor(
    private readonly log: SimLog,
    private readonly scheduler: FlushScheduler,
  ) {}

  load(): PersistedState {
    return this.log.view.load();
  }

  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    this.live();
    this.log.save(hardState, entries);
  }

  sync(): Promise<void> {
    this.live();
    const upTo = this.log.savedCount;
    if (upTo <= this.log.durableSaves) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ upTo, resolve });
      this.flush();
    });
  }

  compact(snapshot: SnapshotMeta, upTo: number): void {
    this.live();
    this.log.durably((image) => image.compact(snapshot, upTo));
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    this.live();
    this.log.durably((image) => image.installSnapshot(snapshot));
  }

  close(): void {
    if (this.closed) return;
    this.log.flushed(this.log.savedCount);
    this.closed = true;
  }

  logBytes(): number {
    return this.log.view.bytes;
  }

  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    const upTo = this.log.savedCount;
    this.scheduler.after(this.scheduler.latency(), () => {
      this.flushing = false;
      this.log.flushed(upTo);
      const waiting = this.waiters;
      this.waiters = waiting.filter((w) => w.upTo > upTo);
      for (const w of waiting) if (w.upTo <= upTo) w.resolve();
      if (this.waiters.length > 0) this.flush();
    });
  }

  private live(): void {
    if (this.closed) throw new Error('storage is closed');
  }
}
