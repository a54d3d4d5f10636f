import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import Database from 'better-sqlite3';
import { describeConf } from '../core/conf.js';
import type { Entry, HardState, SnapshotMeta } from '../core/types.js';
import { GroupCommit } from './group-commit.js';
import {
  create,
  encodeSnapshotConf,
  entryChecksum,
  exists,
  fsyncPath,
  isEntryType,
  MEMBERSHIP_SCHEMA_VERSION,
  refuseLeftovers,
  SNAPSHOT_SCHEMA_VERSION,
  TYPE_CODE,
  TYPE_OF_CODE,
} from './sqlite-schema.js';
import { checkRow, metaInt, removeCheckLeftovers, type Row, snapshotMeta, verify, type Verified } from './sqlite-verify.js';
import { isSqliteError, StorageError, wrapSqliteError } from './storage-error.js';
import type { PersistedState, Storage } from './storage.js';

// Callers import these from here, where they were defined before the split.
export { GroupCommit } from './group-commit.js';
export { APPLICATION_ID, entryChecksum, MIN_SCHEMA_VERSION, SCHEMA_VERSION } from './sqlite-schema.js';
export { StorageError, type StorageErrorCode } from './storage-error.js';

/**
 * Durable Raft state in one SQLite file per node.
 *
 * Layout: `log(idx, term, type, data, crc)` holds the entries, `meta(key, value)` holds the
 * schema version, the identity (cluster id, node id), the hard state (term, vote, commit) and,
 * once the log has been compacted, the snapshot (snapshot_index, snapshot_term, and
 * snapshot_conf, the configuration as of it, when the caller gave one).
 * The header's application_id marks the file as ours, so a foreign file is recognised
 * before SQLite is even asked to open it.
 *
 * The stored log is one contiguous run of entries [first, last]. Without a snapshot it starts at
 * 1; with one (index S) it starts anywhere in [1, S + 1] and reaches at least S: entries up to S
 * are a retained window for slow followers, which load() skips. The last index is
 * max(S, last entry); after installSnapshot() the log is empty and the last index is S.
 *
 * Integrity checks, all before anything is written (check(); open() is check() then opening for
 * writing): the header, the -wal read by hand (wal-check.ts: SQLite would silently drop committed
 * transactions behind a damaged frame), the schema version, identity, log contiguity (from the
 * first stored entry, which must not leave a gap after the snapshot), the term of a retained entry
 * at the snapshot's index, commit ≤ last index, and the checksum of every stored entry, through a
 * read-only connection. A refused file is left byte-for-byte as it was, and nothing is created
 * beside it: SQLite's reader of a WAL database would create a -shm (and a -wal if there is none)
 * next to what it opens, so it opens hard links in a private directory (`raft.db.check-XXXXXX`,
 * removed before check() returns; see readPrivately in sqlite-verify.ts). load() checks the
 * position, type and checksum of every entry it returns once more.
 *
 * Space: files are created with auto_vacuum=INCREMENTAL. Pages freed by compaction are reused by
 * later appends; once more than half of the file is free (and at least VACUUM_MIN_FREE_PAGES), a
 * compaction also returns up to VACUUM_MAX_PAGES of them to the file system, in the same
 * transaction. That moves at most as many live pages as it frees, so it costs no more than the
 * deletion it follows. Files created before auto_vacuum was used (auto_vacuum=NONE, which can only
 * be changed by a full VACUUM) still reuse freed pages, but never shrink. journal_size_limit keeps
 * a -wal that one large transaction inflated from staying that large.
 *
 * The read-write connection runs WAL with locking_mode=EXCLUSIVE: one process owns the file
 * for as long as the storage is open (a second raftkv process on the same data dir fails
 * with code LOCKED), and no -shm file is used. It runs synchronous=NORMAL: a commit does not wait
 * for the disk, and sync() makes commits durable by flushing the -wal off the event loop
 * (see "Durability" in group-commit.ts for why that is as durable as synchronous=FULL).
 */

/** Free pages (4 KiB each by default) below which compaction never shrinks the file. */
export const VACUUM_MIN_FREE_PAGES = 256;
/** The most pages one compaction returns to the file system (bounds its time; the rest follows later). */
export const VACUUM_MAX_PAGES = 4096;
/**
 * Log rows one write deletes, at most: a compaction deletes this many at once, and each later
 * save() as many more until the log starts where the compaction said (the rows in between are
 * entries the snapshot covers, a valid log either way). Deleting half a million rows at once held
 * the event loop for ~0.3 s (BENCHMARKS.md); 10,000 take a few milliseconds.
 */
export const TRIM_ROWS = 10_000;
/**
 * Pages of -wal after which a commit checkpoints them into the database (SQLite's default is
 * 1000, 4 MiB): a compacted log leaves the data dir only at a checkpoint, so a small -wal keeps
 * the dir near the size of what it holds. Each checkpoint is two fsyncs inside a save().
 */
const WAL_AUTOCHECKPOINT_PAGES = 256;
/** Size to which the -wal is cut back when SQLite restarts it after a checkpoint. */
const WAL_SIZE_LIMIT = 1024 * 1024;

/** A data file that passed every check made before anything is written (SqliteStorage.check). */
export interface CheckedLog {
  readonly path: string;
  /** There is no file yet: open() creates it. */
  readonly fresh: boolean;
  /** The snapshot the log was compacted into: the state up to it must come from elsewhere. */
  readonly snapshot: SnapshotMeta | undefined;
  /** The cluster the file belongs to (for a fresh one, the one it will be created for). */
  readonly clusterId: string;
  /** The clusters its log was forked from (--force-new-cluster), whose snapshot files are still its own. */
  readonly formerClusterIds: readonly string[];
  /** Opens the file for writing (creating it if fresh). Throws StorageError. */
  open(): SqliteStorage;
}

export interface SqliteStorageOptions {
  clusterId: string;
  nodeId: number;
  /**
   * An existing file of another cluster is taken, not refused (kv-server: the cluster id was not
   * given, and the one stored is authoritative). A fresh file needs a non-empty `clusterId` then
   * only when it is opened.
   */
  adoptStoredClusterId?: boolean;
  /** Create the file if it does not exist. If false, a missing file is an error (MISSING). */
  create: boolean;
  /** synchronous=OFF and no flushes: sync() resolves at once, nothing is ever durable. Tests and benchmarks only. */
  unsafeNoFsync?: boolean;
}

/** Closes a descriptor we only flushed, never wrote: an error on close cannot lose data. */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to lose
  }
}

export class SqliteStorage implements Storage {
  private db: Database.Database | undefined;
  /** The stored log is [first, lastEntry]; empty when lastEntry < first. */
  private first: number;
  /** max(last stored entry, snapshot index): the log's last index. */
  private lastIndex: number;
  private hardState: HardState;
  private snapshot: SnapshotMeta | undefined;
  private schemaVersion: number;
  /** auto_vacuum=INCREMENTAL: freed pages can be returned to the file system. */
  private readonly incrementalVacuum: boolean;
  private failure: unknown;
  /** Our own descriptor on the -wal, flushed by sync() (none with unsafeNoFsync). */
  private walFd: number | undefined;
  /** Counts writes and coalesces sync() calls into flushes of walFd (none with unsafeNoFsync). */
  private readonly commits: GroupCommit | undefined;

  private readonly selectFrom: Database.Statement;
  private readonly termAt: Database.Statement;
  private readonly write: (hs: HardState | undefined, entries: readonly Entry[], truncate: boolean, schema: number, trimUpTo: number) => void;
  /** Rows up to this index are deleted; compaction asked for up to `trimTo`, and writes delete the rest in steps of TRIM_ROWS. */
  private trimmed = 0;
  private trimTo = 0;
  private readonly writeSnapshot: (snapshot: SnapshotMeta, conf: Uint8Array | undefined, deleteUpTo: number | 'all', schema: number) => void;

  /**
   * Checks the node's database at `path` without writing anything. Everything that can refuse an
   * existing file is checked here, so a refused file is left as it was; any problem is a
   * StorageError. open() on the result opens the file for writing (and first creates it if there
   * is none and `create` is set): from then on the file may change.
   */
  static check(path: string, options: SqliteStorageOptions): CheckedLog {
    const { clusterId, nodeId, create: mayCreate } = options;
    const adopt = options.adoptStoredClusterId === true;
    if (typeof clusterId !== 'string' || (clusterId === '' && !adopt)) throw new TypeError('clusterId must be a non-empty string');
    if (!Number.isSafeInteger(nodeId) || nodeId < 1) throw new TypeError(`nodeId must be a positive integer, got ${nodeId}`);
    const id = { clusterId, nodeId };
    const unsafeNoFsync = options.unsafeNoFsync === true;
    const checked = (): Verified => {
      try {
        return verify(path, id, adopt);
      } catch (e) {
        throw wrapSqliteError(e, path, 'verifying it');
      }
    };

    if (!exists(path)) {
      if (!mayCreate) {
        throw new StorageError(
          'MISSING',
          path,
          `${path} does not exist: there is no raftkv data for node ${nodeId} here. If this is a new node, create it ` +
            '(create: true). If the node has run before, its data directory is wrong or was lost; a node that lost its ' +
            'log must not rejoin under the same node id: add it as a new member instead.',
        );
      }
      refuseLeftovers(path);
      return {
        path,
        fresh: true,
        snapshot: undefined,
        clusterId,
        formerClusterIds: [],
        open: () => {
          if (clusterId === '') throw new TypeError('a new data file needs a cluster id');
          create(path, id);
          return new SqliteStorage(path, checked(), unsafeNoFsync); // checked: another process may have created it first
        },
      };
    }
    const verified = checked();
    return {
      path,
      fresh: false,
      snapshot: verified.snapshot,
      clusterId: verified.clusterId,
      formerClusterIds: verified.formerClusterIds ?? [],
      open: () => new SqliteStorage(path, verified, unsafeNoFsync),
    };
  }

  /** check(), then open(): verifies an existing file, opens it for writing, creates one if missing and `create`. */
  static open(path: string, options: SqliteStorageOptions): SqliteStorage {
    return SqliteStorage.check(path, options).open();
  }

  private constructor(
    readonly path: string,
    verified: Verified,
    unsafeNoFsync: boolean,
  ) {
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { fileMustExist: true, timeout: 1000 });
      db.pragma('locking_mode = EXCLUSIVE');
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`could not enable WAL mode (got ${String(mode)})`);
      db.pragma(`synchronous = ${unsafeNoFsync ? 'OFF' : 'NORMAL'}`); // sync() flushes the -wal (see "Durability" in group-commit.ts)
      db.pragma('fullfsync = ON'); // macOS: F_FULLFSYNC; no effect elsewhere
      db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      // Take the exclusive lock now (WAL + EXCLUSIVE holds it until close); from here on no
      // other connection can use the file, so a -shm is stale, and so is what an interrupted
      // check left.
      db.prepare('SELECT count(*) FROM meta').get();
      fs.rmSync(path + '-shm', { force: true });
      removeCheckLeftovers(path);
      this.incrementalVacuum = db.pragma('auto_vacuum', { simple: true }) === 2;

      // verify() checked all of this; it is read again under the lock, and must not have changed.
      const meta = new Map<string, unknown>();
      for (const r of db
        .prepare("SELECT key, value FROM meta WHERE key IN ('schema_version', 'term', 'vote', 'commit', 'snapshot_index', 'snapshot_term', 'snapshot_conf')")
        .raw()
        .all() as [string, unknown][]) {
        meta.set(r[0], r[1]);
      }
      this.schemaVersion = metaInt(path, meta, 'schema_version');
      this.hardState = {
        term: metaInt(path, meta, 'term'),
        vote: metaInt(path, meta, 'vote'),
        commit: metaInt(path, meta, 'commit'),
      };
      this.snapshot = snapshotMeta(path, meta);
      const [min, max] = db.prepare('SELECT min(idx), max(idx) FROM log').raw().get() as [number | null, number | null];
      const snapIndex = this.snapshot?.index ?? 0;
      this.first = min ?? snapIndex + 1;
      this.trimmed = this.first - 1;
      this.lastIndex = Math.max(max ?? 0, snapIndex);
      const found: Verified = { clusterId: verified.clusterId, schemaVersion: this.schemaVersion, hardState: this.hardState, snapshot: this.snapshot, first: this.first, lastEntry: max ?? 0 };
      if (!sameState(found, verified)) {
        throw new StorageError(
          'LOCKED',
          path,
          `${path} changed between its check and its opening for writing (checked ${JSON.stringify(verified)}, found ` +
            `${JSON.stringify(found)}): another process is using it. Stop it, or give this node its own data directory.`,
        );
      }

      const insert = db.prepare('INSERT INTO log(idx, term, type, data, crc) VALUES (?, ?, ?, ?, ?)');
      const truncateFrom = db.prepare('DELETE FROM log WHERE idx >= ?');
      const upsertHardState = db.prepare(
        "INSERT INTO meta(key, value) VALUES ('term', CAST(? AS INTEGER)), ('vote', CAST(? AS INTEGER)), ('commit', CAST(? AS INTEGER)) " +
          'ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      );
      const upsertSnapshot = db.prepare(
        "INSERT INTO meta(key, value) VALUES ('snapshot_index', CAST(? AS INTEGER)), ('snapshot_term', CAST(? AS INTEGER)) " +
          'ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      );
      const setSchemaVersion = db.prepare("UPDATE meta SET value = CAST(? AS INTEGER) WHERE key = 'schema_version'");
      const upsertSnapshotConf = db.prepare(
        "INSERT INTO meta(key, value) VALUES ('snapshot_conf', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      );
      const deleteSnapshotConf = db.prepare("DELETE FROM meta WHERE key = 'snapshot_conf'");
      /** Marks the file for the oldest raftkv that can read what this transaction writes (an older one refuses it as "newer"). */
      const needSchema = (version: number): void => {
        if (this.schemaVersion < version) setSchemaVersion.run(version);
      };
      const deleteUpTo = db.prepare('DELETE FROM log WHERE idx <= ?');
      const deleteAll = db.prepare('DELETE FROM log'); // no WHERE: SQLite drops the table's pages wholesale
      const freePages = db.prepare('PRAGMA freelist_count').pluck();
      const pages = db.prepare('PRAGMA page_count').pluck();
      this.selectFrom = db.prepare('SELECT idx, term, type, data, crc FROM log WHERE idx >= ? ORDER BY idx').raw();
      this.termAt = db.prepare('SELECT term FROM log WHERE idx = ?').pluck();

      this.write = db.transaction((hs: HardState | undefined, entries: readonly Entry[], truncate: boolean, schema: number, trimUpTo: number) => {
        needSchema(schema);
        if (trimUpTo > 0) deleteUpTo.run(trimUpTo);
        if (truncate) truncateFrom.run(entries[0]!.index);
        for (const e of entries) {
          const type = TYPE_CODE[e.type];
          insert.run(e.index, e.term, type, e.data, entryChecksum(e.index, e.term, type, e.data));
        }
        if (hs) upsertHardState.run(hs.term, hs.vote, hs.commit);
      });
      const conn = db;
      const incremental = this.incrementalVacuum;
      this.writeSnapshot = db.transaction((snapshot: SnapshotMeta, conf: Uint8Array | undefined, upTo: number | 'all', schema: number) => {
        upsertSnapshot.run(snapshot.index, snapshot.term);
        // Without a configuration, an older one must not pass for this snapshot's.
        if (conf) upsertSnapshotConf.run(conf);
        else deleteSnapshotConf.run();
        needSchema(schema);
        if (upTo === 'all') deleteAll.run();
        else deleteUpTo.run(upTo);
        if (incremental) {
          // Return freed pages once more than half of the file is free. incremental_vacuum moves a
          // live page from the end into a free slot for each page it cannot simply cut off, so
          // this moves at most as many pages as the deletions freed. (exec: run() would step once,
          // which frees just one page.)
          const free = freePages.get() as number;
          if (free >= VACUUM_MIN_FREE_PAGES && free * 2 > (pages.get() as number)) {
            conn.exec(`PRAGMA incremental_vacuum(${Math.min(free, VACUUM_MAX_PAGES)})`);
          }
        }
      });
      if (!unsafeNoFsync) {
        // journal_mode=WAL under the exclusive lock has created the -wal; it stays until close().
        this.walFd = fs.openSync(path + '-wal', 'r+'); // r+: some platforms flush only writable descriptors
        fsyncPath(nodePath.dirname(path)); // the -wal's directory entry, once
        this.commits = new GroupCommit(() => this.flushWal());
      }
      this.db = db;
    } catch (e) {
      if (this.walFd !== undefined) closeQuietly(this.walFd);
      db?.close();
      throw wrapSqliteError(e, path, 'opening it for writing');
    }
  }

  load(): PersistedState {
    this.live();
    const entries: Entry[] = [];
    // Entries in the retained window are covered by the snapshot: a restarted node does not need them.
    const from = (this.snapshot?.index ?? 0) + 1;
    try {
      for (const r of this.selectFrom.iterate(from)) {
        const row = r as Row;
        checkRow(this.path, row, from + entries.length);
        const data = row[3];
        entries.push({
          index: row[0],
          term: row[1],
          type: TYPE_OF_CODE[row[2]]!,
          // A plain Uint8Array view (SQLite gives each blob its own Buffer).
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        });
      }
    } catch (e) {
      throw wrapSqliteError(e, this.path, 'loading the log');
    }
    const state: PersistedState = { hardState: this.hardState, entries };
    if (this.snapshot) state.snapshot = { ...this.snapshot };
    return state;
  }

  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    this.live();
    const first = entries[0];
    let last = this.lastIndex;
    let truncate = false;
    let schema = 0; // the version this write needs: none unless it holds a conf entry
    if (first) {
      if (!Number.isSafeInteger(first.index) || first.index < 1) {
        throw new RangeError(`invalid entry index ${first.index}`);
      }
      if (first.index > this.lastIndex + 1) {
        throw new RangeError(`gap in log: appending ${first.index} after ${this.lastIndex}`);
      }
      if (first.index < this.first) {
        throw new RangeError(`entry ${first.index} rewrites the compacted log (first ${this.first})`);
      }
      const snapIndex = this.snapshot?.index ?? 0;
      if (first.index <= snapIndex) {
        throw new RangeError(`entry ${first.index} rewrites an entry the snapshot covers (up to ${snapIndex}): committed entries never change`);
      }
      truncate = first.index <= this.lastIndex;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        if (e.index !== first.index + i) {
          throw new RangeError(`entries not contiguous: ${e.index} follows ${first.index + i - 1}`);
        }
        if (!Number.isSafeInteger(e.term) || e.term < 0 || !isEntryType(e.type) || !(e.data instanceof Uint8Array)) {
          throw new RangeError(`invalid entry ${e.index}: term ${e.term}, type ${String(e.type)}`);
        }
        if (e.type === 'conf') schema = MEMBERSHIP_SCHEMA_VERSION;
      }
      last = first.index + entries.length - 1;
    }
    if (hardState) {
      const { term, vote, commit } = hardState;
      if (!Number.isSafeInteger(term) || !Number.isSafeInteger(vote) || !Number.isSafeInteger(commit) || term < 0 || vote < 0 || commit < 0) {
        throw new RangeError(`invalid hard state ${JSON.stringify(hardState)}`);
      }
      if (hardState === this.hardState || (term === this.hardState.term && vote === this.hardState.vote && commit === this.hardState.commit)) {
        hardState = undefined; // unchanged: skip the write
      }
    }
    const commit = (hardState ?? this.hardState).commit;
    if (commit > last) {
      // open() would refuse such a file; refuse to write it instead.
      throw new RangeError(`commit index ${commit} beyond last log index ${last}`);
    }
    if (!first && !hardState) return;
    const trimUpTo = this.trimmed < this.trimTo ? Math.min(this.trimTo, this.trimmed + TRIM_ROWS) : 0;
    this.guard(() => this.write(hardState, entries, truncate, schema, trimUpTo));
    if (trimUpTo > 0) this.trimmed = trimUpTo;
    this.commits?.wrote();
    this.schemaVersion = Math.max(this.schemaVersion, schema);
    this.lastIndex = last;
    if (hardState) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  compact(snapshot: SnapshotMeta, upTo: number): void {
    this.live();
    const { index, term, conf } = checkSnapshotMeta(snapshot);
    if (!Number.isSafeInteger(upTo) || upTo < 0 || upTo > index) {
      throw new RangeError(`invalid compaction point ${upTo}: must be in 0..${index} (the snapshot's index)`);
    }
    if (index > this.lastIndex) {
      throw new RangeError(`snapshot ${index} is beyond the last log index ${this.lastIndex}: a snapshot from the leader goes to installSnapshot()`);
    }
    const current = this.snapshot;
    if (current && (index < current.index || (index === current.index && term !== current.term))) {
      throw new RangeError(`snapshot ${index}/${term} does not follow the recorded snapshot ${current.index}/${current.term}`);
    }
    if (index >= this.first) {
      const stored = this.termAt.get(index) as number | undefined;
      if (stored !== term) throw new RangeError(`snapshot ${index}/${term} does not match the log, which holds entry ${index} in term ${String(stored)}`);
    }
    this.recordSnapshot(snapshot, conf, upTo);
    this.first = Math.max(this.first, upTo + 1);
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    this.live();
    const { index, conf } = checkSnapshotMeta(snapshot);
    if (index < this.hardState.commit) {
      // The log would end before the commit index: open() would refuse the file.
      throw new RangeError(`snapshot ${index} is behind the commit index ${this.hardState.commit}: the log already holds it`);
    }
    this.recordSnapshot(snapshot, conf, 'all');
    this.first = index + 1;
    this.lastIndex = index;
  }

  /** compact() and installSnapshot(), once checked: the snapshot's record, durable on return. */
  private recordSnapshot(snapshot: SnapshotMeta, conf: Uint8Array | undefined, upTo: number | 'all'): void {
    const schema = conf ? MEMBERSHIP_SCHEMA_VERSION : SNAPSHOT_SCHEMA_VERSION;
    // At most TRIM_ROWS rows now, the lowest first (the log stays contiguous); save() deletes the rest.
    // (DELETE … WHERE idx <= n takes every row below n too: rows up to `trimmed` are gone already.)
    const now = upTo === 'all' ? 'all' : Math.min(upTo, this.trimmed + TRIM_ROWS);
    this.guard(() => this.writeSnapshot(snapshot, conf, now, schema));
    this.trimmed = now === 'all' ? snapshot.index : Math.max(this.trimmed, now);
    this.trimTo = upTo === 'all' ? 0 : Math.max(this.trimTo, upTo);
    this.flushNow();
    this.snapshot = { index: snapshot.index, term: snapshot.term, ...(snapshot.conf ? { conf: snapshot.conf } : {}) };
    this.schemaVersion = Math.max(this.schemaVersion, schema);
  }

  sync(): Promise<void> {
    try {
      this.live();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.commits?.sync() ?? Promise.resolve();
  }

  /**
   * Flushes what sync() has not (pending sync() calls resolve), then closes. A failed flush rejects
   * them and is thrown, after everything is closed.
   */
  close(): void {
    const db = this.db;
    if (!db) return;
    this.db = undefined;
    let error: unknown;
    if (this.failure === undefined && this.commits?.dirty) {
      try {
        this.flushNow();
      } catch (e) {
        error = e;
      }
    }
    this.commits?.fail(new Error(`SqliteStorage ${this.path} is closed`)); // none left unless the flush failed
    // A flush in flight still uses the descriptor: flushWal closes it when it completes.
    if (this.walFd !== undefined && !this.commits?.busy) closeQuietly(this.walFd);
    db.close(); // checkpoints and deletes the -wal
    if (error !== undefined) throw error;
  }

  /** Blocks until every write so far is durable (compact, installSnapshot, close: rare). */
  private flushNow(): void {
    if (this.walFd === undefined) return;
    try {
      fs.fdatasyncSync(this.walFd);
    } catch (e) {
      throw this.poison(this.flushError(e));
    }
    this.commits!.flushed();
  }

  /** sync()'s flush: fdatasync on the thread pool. */
  private flushWal(): Promise<void> {
    const fd = this.walFd!;
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (err) => {
        if (this.db === undefined) closeQuietly(fd); // closed meanwhile: close() left the descriptor to us
        if (err) reject(this.poison(this.flushError(err)));
        else resolve();
      });
    });
  }

  private flushError(e: unknown): StorageError {
    const code = (e as { code?: string } | undefined)?.code ?? 'unknown';
    return new StorageError(
      'IO',
      this.path,
      `${this.path}-wal: flushing to disk failed (${code}): writes since the last flush may be lost and the disk's state is unknown. ` +
        'Check the disk, then restart the node: the storage accepts no more writes.',
      { cause: e },
    );
  }

  /** After an I/O error (a failed write or flush) the disk's state is unknown: no further writes, no more syncs. */
  private poison(e: unknown): unknown {
    this.failure ??= e;
    this.commits?.fail(e);
    return e;
  }

  /** Runs a write transaction; an error from SQLite poisons the storage. */
  private guard(write: () => void): void {
    try {
      write();
    } catch (e) {
      if (isSqliteError(e)) this.poison(e);
      throw e;
    }
  }

  private live(): Database.Database {
    if (!this.db) throw new Error(`SqliteStorage ${this.path} is closed`);
    if (this.failure !== undefined) {
      throw new Error(`SqliteStorage ${this.path} failed earlier and must be reopened (restart the node)`, { cause: this.failure });
    }
    return this.db;
  }
}

function sameState(a: Verified, b: Verified): boolean {
  const hs = (x: HardState): string => `${x.term}/${x.vote}/${x.commit}`;
  const snap = (x: SnapshotMeta | undefined): string => (x ? `${x.index}/${x.term}/${x.conf ? describeConf(x.conf) : '-'}` : '-');
  return (
    a.schemaVersion === b.schemaVersion &&
    hs(a.hardState) === hs(b.hardState) &&
    snap(a.snapshot) === snap(b.snapshot) &&
    a.first === b.first &&
    a.lastEntry === b.lastEntry
  );
}

/** The snapshot's position, and its configuration encoded for meta (RangeError if either is invalid). */
function checkSnapshotMeta(snapshot: SnapshotMeta): { index: number; term: number; conf: Uint8Array | undefined } {
  const { index, term } = snapshot;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || index < 0 || term < 0) {
    throw new RangeError(`invalid snapshot ${JSON.stringify(snapshot)}`);
  }
  return { index, term, conf: snapshot.conf && encodeSnapshotConf(snapshot.conf) };
}
