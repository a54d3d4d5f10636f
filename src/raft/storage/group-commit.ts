// Durability: synchronous=NORMAL, plus our own fdatasync of the -wal in SqliteStorage.sync() (sqlite.ts).
//
// Why a save is durable once a sync() called after it resolves:
// - A WAL-mode commit is durable once the WAL's frames up to its commit frame are on disk:
//   recovery replays every frame whose salt matches the WAL header and whose cumulative checksum
//   holds, up to the last valid commit frame. At a commit, synchronous=FULL does one thing more
//   than NORMAL: it syncs the WAL after writing the commit frame (sqlite3WalFrames; the sector
//   padding it could add is off, as the unix VFS assumes powersafe overwrite by default). NORMAL
//   keeps every other sync: the WAL before a checkpoint copies it into the database, the database
//   after, and the WAL header when a checkpointed WAL is restarted, before the new frames.
// - The unix VFS writes frames with pwrite() and buffers nothing itself, so when save() returns its
//   frames are dirty pages of the -wal's inode. fdatasync() writes back all of an inode's dirty
//   pages (and its size), whichever descriptor it is called on. So a flush of our own descriptor
//   that starts after save() returned makes that save durable, as FULL's sync would have, and it
//   runs on libuv's thread pool, off the event loop. GroupCommit resolves a sync() only by a flush
//   that started after every save before that sync() had returned. (On macOS libuv's fdatasync is
//   F_FULLFSYNC, matching fullfsync=ON.)
// - The -wal keeps its inode while we hold it: with WAL and locking_mode=EXCLUSIVE it exists from
//   open (journal_mode=WAL creates it) to close, when SQLite deletes it; meanwhile SQLite only
//   writes and truncates it (journal_size_limit). A checkpoint between a save and its flush is
//   harmless: it synced the WAL before copying it, so the save was durable before it could be
//   overwritten.
// - Frames written after the last flush may reach the disk torn or out of order; recovery stops at
//   the first frame whose checksum fails, so a crash loses only saves whose sync() had not
//   resolved, each one whole ("WAL mode is always consistent with synchronous=NORMAL").
// - The -wal's directory entry is synced once at open (SQLite syncs it with the file's first sync,
//   which under NORMAL may come much later).
// - A failed flush poisons the storage: Linux may drop the dirty pages and report success on a
//   retry, so after a failure nothing can be trusted. Our descriptor is opened before our first
//   write, so it reports every writeback error on the file from then on, even one that SQLite's own
//   sync reported first (Linux ≥ 4.13 tracks errors per open file).

/**
 * Group commit over a flush that runs off the event loop. Writes are counted with wrote(); a
 * sync() resolves when a flush that started after every write counted before it completes. At
 * most one flush runs at a time: sync() calls made meanwhile share the next one, which covers
 * every write made until it starts. A sync() with no write since the last completed flush resolves
 * without one. After a failed flush every pending and later sync() rejects.
 */
export class GroupCommit {
  /** Writes counted so far. */
  private written = 0;
  /** Writes 1..durable are on disk. */
  private durable = 0;
  private flushing = false;
  /** Pending sync() calls in call order, so `upTo` never decreases along the array. */
  private readonly waiters: { upTo: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private failure: { error: unknown } | undefined;

  constructor(private readonly flush: () => Promise<void>) {}

  /** A write has reached the OS. */
  wrote(): void {
    this.written++;
  }

  /** The caller flushed synchronously: every write counted so far is durable. */
  flushed(): void {
    this.settle(this.written);
  }

  /** Writes were counted that no completed flush covers. */
  get dirty(): boolean {
    return this.written > this.durable;
  }

  /** A flush is in flight. */
  get busy(): boolean {
    return this.flushing;
  }

  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure.error);
    const upTo = this.written;
    if (upTo <= this.durable) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ upTo, resolve, reject });
      this.startFlush();
    });
  }

  /** Rejects every pending sync(), and every later one, with `error` (the first failure wins). */
  fail(error: unknown): void {
    this.failure ??= { error };
    for (const w of this.waiters.splice(0)) w.reject(this.failure.error);
  }

  private startFlush(): void {
    if (this.flushing || this.failure || this.waiters.length === 0) return;
    const covers = this.written; // every write counted so far has returned: the flush starts after them
    this.flushing = true;
    this.flush().then(
      () => {
        this.flushing = false;
        this.settle(covers);
        this.startFlush(); // sync() calls that arrived during this flush
      },
      (e: unknown) => {
        this.flushing = false;
        this.fail(e);
      },
    );
  }

  private settle(upTo: number): void {
    if (upTo > this.durable) this.durable = upTo;
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.upTo <= this.durable) n++;
    for (const w of this.waiters.splice(0, n)) w.resolve();
  }
}
