import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import Database from 'better-sqlite3';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../core/types.js';
import { crc32c } from './crc32c.js';
import type { PersistedState, Storage } from './storage.js';

/**
 * Durable Raft state in one SQLite file per node.
 *
 * Layout: `log(idx, term, type, data, crc)` holds the entries, `meta(key, value)` holds the
 * schema version, the identity (cluster id, node id), the hard state (term, vote, commit) and,
 * once the log has been compacted, the snapshot (snapshot_index, snapshot_term).
 * The header's application_id marks the file as ours, so a foreign file is recognised
 * before SQLite is even asked to open it.
 *
 * The stored log is one contiguous run of entries [first, last]. Without a snapshot it starts at
 * 1; with one (index S) it starts anywhere in [1, S + 1] and reaches at least S: entries up to S
 * are a retained window for slow followers, which load() skips. The last index is
 * max(S, last entry); after installSnapshot() the log is empty and the last index is S.
 *
 * Integrity checks: open() verifies the header, schema version, identity, log contiguity (from
 * the first stored entry, which must not leave a gap after the snapshot), the term of a retained
 * entry at the snapshot's index, commit ≤ last index, and the checksums of the last TAIL_VERIFY
 * (1000) entries — all through a read-only connection, before anything is written. load() then
 * verifies the position, type and checksum of every entry it returns, so a full load checks the
 * whole log after the snapshot. A refused file is left byte-for-byte as it was; the -wal/-shm
 * files that SQLite's read-only WAL reader creates during the check are removed again, so no new
 * files remain either.
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
 * (see "Durability" below for why that is as durable as synchronous=FULL).
 */

/**
 * Version 2 adds the snapshot (snapshot_index, snapshot_term in meta) and lets the log start
 * after index 1. Version 1 files (no snapshot) open unchanged and are marked version 2 by the
 * first transaction that records a snapshot, so an older raftkv reports a compacted file as
 * "newer" instead of misreading it as a log with missing entries.
 */
export const SCHEMA_VERSION = 2;
/** The oldest schema version this build opens. */
export const MIN_SCHEMA_VERSION = 1;
/** Header application_id (bytes 68..71): "rakv". */
export const APPLICATION_ID = 0x72616b76;
/** How many of the newest entries open() checksums. load() checks all of them. */
export const TAIL_VERIFY = 1000;
/** Free pages (4 KiB each by default) below which compaction never shrinks the file. */
export const VACUUM_MIN_FREE_PAGES = 256;
/** The most pages one compaction returns to the file system (bounds its time; the rest follows later). */
export const VACUUM_MAX_PAGES = 4096;
/**
 * Pages of -wal after which a commit checkpoints them into the database (SQLite's default is
 * 1000, 4 MiB): a compacted log leaves the data dir only at a checkpoint, so a small -wal keeps
 * the dir near the size of what it holds. Each checkpoint is two fsyncs inside a save().
 */
const WAL_AUTOCHECKPOINT_PAGES = 256;
/** Size to which the -wal is cut back when SQLite restarts it after a checkpoint. */
const WAL_SIZE_LIMIT = 1024 * 1024;

export type StorageErrorCode =
  | 'MISSING'
  | 'NOT_RAFTKV'
  | 'CORRUPT'
  | 'WRONG_CLUSTER'
  | 'WRONG_NODE'
  | 'SCHEMA_VERSION'
  | 'LOCKED'
  | 'IO';

/** A data file that cannot be used as it is. The message says what, where, and what to do. */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    readonly path: string,
    message: string,
    options?: { index?: number; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.index !== undefined) this.index = options.index;
  }
  /** The log index concerned, when there is one. */
  readonly index?: number;
}

export interface SqliteStorageOptions {
  clusterId: string;
  nodeId: number;
  /** Create the file if it does not exist. If false, a missing file is an error (MISSING). */
  create: boolean;
  /** synchronous=OFF and no flushes: sync() resolves at once, nothing is ever durable. Tests and benchmarks only. */
  unsafeNoFsync?: boolean;
}


const TYPE_CODE: Record<EntryType, number> = { normal: 0, noop: 1 };
const TYPE_OF_CODE: readonly EntryType[] = ['normal', 'noop'];

const crcHeader = new Uint8Array(17);
const crcHeaderView = new DataView(crcHeader.buffer);

/**
 * The checksum stored with each log row: CRC-32C over idx (u64 LE), term (u64 LE),
 * type (u8: 0 normal, 1 noop), then the data bytes.
 */
export function entryChecksum(index: number, term: number, type: EntryType | number, data: Uint8Array): number {
  const code = typeof type === 'number' ? type : TYPE_CODE[type];
  crcHeaderView.setUint32(0, index >>> 0, true);
  crcHeaderView.setUint32(4, Math.floor(index / 0x1_0000_0000) >>> 0, true);
  crcHeaderView.setUint32(8, term >>> 0, true);
  crcHeaderView.setUint32(12, Math.floor(term / 0x1_0000_0000) >>> 0, true);
  crcHeader[16] = code & 0xff;
  return crc32c(data, crc32c(crcHeader));
}

// ---------------------------------------------------------------------------------------

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const SIDECARS = ['-wal', '-shm', '-journal'] as const;

const ADVICE_FOREIGN =
  'Check the data directory option: it must point at this node\'s own raftkv data directory. ' +
  'Move the file away if it belongs to something else.';
const ADVICE_CORRUPT =
  'The file is damaged; raftkv will not guess at its contents. Keep it for inspection and restore ' +
  'the data directory from a backup. If there is none, do NOT just delete it and restart under the same ' +
  'node id (this node may have voted and acknowledged entries that the cluster relies on): remove this ' +
  'node from the cluster and add a replacement with a fresh data directory and a new node id.';

function isSqliteError(e: unknown): e is Error & { code: string } {
  const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** Turns an error from SQLite (or the file system) while reading `path` into a StorageError. */
function wrapSqliteError(e: unknown, path: string, doing: string): StorageError {
  if (e instanceof StorageError) return e;
  const code = isSqliteError(e) ? e.code : (e as { code?: string } | undefined)?.code ?? 'unknown';
  const detail = e instanceof Error ? e.message : String(e);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StorageError(
      'LOCKED',
      path,
      `${path}: database is locked while ${doing} (${detail}): another process has it open, probably another raftkv ` +
        'node started with the same data directory (or another SqliteStorage in this process). Stop it, or give this node its own data directory.',
      { cause: e },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) {
    return new StorageError('CORRUPT', path, `${path}: SQLite reports corruption while ${doing}: ${detail}. ${ADVICE_CORRUPT}`, {
      cause: e,
    });
  }
  return new StorageError(
    'IO',
    path,
    `${path}: cannot read the database while ${doing}: ${code}: ${detail}. Check that the file and its directory ` +
      'are readable and writable by this process, and that the disk is healthy.',
    { cause: e },
  );
}

function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Closes a descriptor we only flushed, never wrote: an error on close cannot lose data. */
function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // nothing to lose
  }
}

function exists(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false }) !== undefined;
}

function fileSize(p: string): number | undefined {
  return fs.statSync(p, { throwIfNoEntry: false })?.size;
}

interface Identity {
  clusterId: string;
  nodeId: number;
}

type Row = [idx: number, term: number, type: number, data: Buffer, crc: number];

/** Checks one row read from the log: position, term and type, checksum. */
function checkRow(path: string, row: Row, expectIdx: number): void {
  const [idx, term, type, data, crc] = row;
  if (idx !== expectIdx) {
    throw new StorageError(
      'CORRUPT',
      path,
      `${path}: log is not contiguous: expected entry ${expectIdx}, found ${idx}. ${ADVICE_CORRUPT}`,
      { index: expectIdx },
    );
  }
  if (!Number.isSafeInteger(term) || term < 0) {
    throw new StorageError('CORRUPT', path, `${path}: log entry ${idx} has invalid term ${String(term)}. ${ADVICE_CORRUPT}`, {
      index: idx,
    });
  }
  if (type !== 0 && type !== 1) {
    throw new StorageError('CORRUPT', path, `${path}: log entry ${idx} has unknown type ${String(type)}. ${ADVICE_CORRUPT}`, {
      index: idx,
    });
  }
  if (!(data instanceof Uint8Array)) {
    throw new StorageError('CORRUPT', path, `${path}: log entry ${idx} has no data blob. ${ADVICE_CORRUPT}`, { index: idx });
  }
  const actual = entryChecksum(idx, term, type, data);
  if (actual !== crc) {
    throw new StorageError(
      'CORRUPT',
      path,
      `${path}: checksum mismatch in log entry ${idx} (stored 0x${(Number(crc) >>> 0).toString(16).padStart(8, '0')}, ` +
        `computed 0x${actual.toString(16).padStart(8, '0')}). ${ADVICE_CORRUPT}`,
      { index: idx },
    );
  }
}

function metaInt(path: string, meta: Map<string, unknown>, key: string): number {
  const v = meta.get(key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new StorageError(
      'CORRUPT',
      path,
      `${path}: meta '${key}' is ${v === undefined ? 'missing' : `invalid (${JSON.stringify(v)})`}. ${ADVICE_CORRUPT}`,
    );
  }
  return v;
}

/**
 * Everything open() checks before writing, on the raw bytes and then through a read-only
 * connection. Throws StorageError. Leaves no files behind that were not there before.
 */
function verify(path: string, id: Identity): void {
  const st = fs.statSync(path);
  if (!st.isFile()) {
    throw new StorageError('NOT_RAFTKV', path, `${path} is not a regular file. ${ADVICE_FOREIGN}`);
  }

  // 1. The 100-byte SQLite header, read by hand.
  const header = Buffer.alloc(100);
  const fd = fs.openSync(path, 'r');
  let got: number;
  try {
    got = fs.readSync(fd, header, 0, 100, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (got < 16 || !header.subarray(0, 16).equals(SQLITE_MAGIC)) {
    throw new StorageError(
      'NOT_RAFTKV',
      path,
      `${path} is not a SQLite database (${got === 0 ? 'the file is empty' : 'no SQLite header'}), so it is not raftkv data. ${ADVICE_FOREIGN}`,
    );
  }
  if (got < 100) {
    throw new StorageError('CORRUPT', path, `${path}: truncated SQLite file (${st.size} bytes, shorter than its header). ${ADVICE_CORRUPT}`);
  }
  const appId = header.readUInt32BE(68);
  if (appId !== APPLICATION_ID) {
    throw new StorageError(
      'NOT_RAFTKV',
      path,
      `${path} is a SQLite database but not a raftkv log (application_id 0x${appId.toString(16).padStart(8, '0')}, ` +
        `expected 0x${APPLICATION_ID.toString(16)}). ${ADVICE_FOREIGN}`,
    );
  }
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0) {
    throw new StorageError('CORRUPT', path, `${path}: invalid page size ${rawPageSize} in the SQLite header. ${ADVICE_CORRUPT}`);
  }
  // With a non-empty WAL the main file may legitimately lag behind (an interrupted checkpoint
  // is redone from the WAL), so the size checks only apply when there is none.
  const walSize = fileSize(path + '-wal') ?? 0;
  if (walSize === 0) {
    const pages = header.readUInt32BE(28);
    const headerSizeValid = pages > 0 && header.readUInt32BE(24) === header.readUInt32BE(92);
    if (st.size % pageSize !== 0 || (headerSizeValid && st.size < pages * pageSize)) {
      throw new StorageError(
        'CORRUPT',
        path,
        `${path}: the database file is truncated: ${st.size} bytes, but its header says ` +
          `${headerSizeValid ? `${pages} pages of ${pageSize} bytes (${pages * pageSize} bytes)` : `pages of ${pageSize} bytes`}. ${ADVICE_CORRUPT}`,
      );
    }
  }

  // 2. The contents, through a read-only connection. (On a WAL database SQLite creates
  // -wal/-shm even for reading; open() removes them again if the file is refused.)
  const ro = new Database(path, { readonly: true, fileMustExist: true, timeout: 1000 });
  try {
    verifyContents(path, ro, id);
  } finally {
    ro.close();
  }
}

/** Removes the sidecar files of `path` that were not there `before`. */
function removeNewSidecars(path: string, before: readonly string[]): void {
  for (const s of SIDECARS) {
    if (before.includes(s)) continue;
    const p = path + s;
    // A WAL created by a reader is empty; never delete one with content.
    if (s === '-wal' && (fileSize(p) ?? 0) > 0) continue;
    try {
      fs.unlinkSync(p);
    } catch {
      // not there
    }
  }
}

function verifyContents(path: string, db: Database.Database, id: Identity): void {
  const tables = new Set(
    (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as unknown[]).map(String),
  );
  if (!tables.has('meta') || !tables.has('log')) {
    throw new StorageError(
      'CORRUPT',
      path,
      `${path} is marked as raftkv data but lacks the ${tables.has('meta') ? 'log' : 'meta'} table ` +
        `(tables: ${[...tables].join(', ') || 'none'}). ${ADVICE_CORRUPT}`,
    );
  }
  const meta = new Map<string, unknown>();
  for (const r of db.prepare('SELECT key, value FROM meta').raw().all() as [unknown, unknown][]) meta.set(String(r[0]), r[1]);

  const version = meta.get('schema_version');
  if (typeof version !== 'number' || !Number.isSafeInteger(version)) {
    throw new StorageError('CORRUPT', path, `${path}: meta 'schema_version' is missing or invalid. ${ADVICE_CORRUPT}`);
  }
  if (version < MIN_SCHEMA_VERSION || version > SCHEMA_VERSION) {
    throw new StorageError(
      'SCHEMA_VERSION',
      path,
      version > SCHEMA_VERSION
        ? `${path} has schema version ${version}, written by a newer raftkv; this build understands versions ` +
            `${MIN_SCHEMA_VERSION} to ${SCHEMA_VERSION}. Run this node with the raftkv version that wrote it (or newer).`
        : `${path} has schema version ${version}, older than this build's ${MIN_SCHEMA_VERSION} to ${SCHEMA_VERSION}, and there is no migration for it. ` +
            'Run this node with the raftkv version that wrote it.',
    );
  }

  const clusterId = meta.get('cluster_id');
  if (clusterId !== id.clusterId) {
    throw new StorageError(
      'WRONG_CLUSTER',
      path,
      `${path} belongs to cluster ${JSON.stringify(clusterId)}, but this node was started for cluster ` +
        `${JSON.stringify(id.clusterId)}. Check the cluster id and the data directory options: each cluster needs its own data directories.`,
    );
  }
  const nodeId = meta.get('node_id');
  if (nodeId !== id.nodeId) {
    throw new StorageError(
      'WRONG_NODE',
      path,
      `${path} belongs to node ${String(nodeId)} of cluster ${JSON.stringify(clusterId)}, but this process was started as node ` +
        `${id.nodeId}. Check the node id and data directory options: every node must use its own data directory.`,
    );
  }

  metaInt(path, meta, 'term');
  metaInt(path, meta, 'vote');
  const commit = metaInt(path, meta, 'commit');

  const snapshot = snapshotMeta(path, meta);
  const snapIndex = snapshot?.index ?? 0;

  const [count, min, max] = db.prepare('SELECT count(*), min(idx), max(idx) FROM log').raw().get() as [
    number,
    number | null,
    number | null,
  ];
  if (count > 0 && min !== null && max !== null) {
    if (!Number.isSafeInteger(min) || min < 1) {
      throw new StorageError('CORRUPT', path, `${path}: the log holds an entry with invalid index ${String(min)}. ${ADVICE_CORRUPT}`, {
        index: min,
      });
    }
    if (min > snapIndex + 1) {
      const missing = snapIndex + 1;
      throw new StorageError(
        'CORRUPT',
        path,
        snapshot
          ? `${path}: log is not contiguous: the snapshot covers entries up to ${snapIndex}, but the log starts at ${min}: ` +
              `entries ${missing}..${min - 1} are missing. ${ADVICE_CORRUPT}`
          : `${path}: log is not contiguous: entry ${missing} is missing (${count} entries, indexes ${min}..${max}). ${ADVICE_CORRUPT}`,
        { index: missing },
      );
    }
    if (count !== max - min + 1) {
      const missing = db
        .prepare('SELECT a.idx - 1 FROM log a WHERE a.idx > ? AND NOT EXISTS (SELECT 1 FROM log b WHERE b.idx = a.idx - 1) LIMIT 1')
        .pluck()
        .get(min) as number;
      throw new StorageError(
        'CORRUPT',
        path,
        `${path}: log is not contiguous: entry ${missing} is missing (${count} entries, indexes ${min}..${max}). ${ADVICE_CORRUPT}`,
        { index: missing },
      );
    }
    if (max < snapIndex) {
      throw new StorageError(
        'CORRUPT',
        path,
        `${path}: log is not contiguous: the log ends at entry ${max}, but the snapshot covers entries up to ${snapIndex}: ` +
          `entries ${max + 1}..${snapIndex} are missing. ${ADVICE_CORRUPT}`,
        { index: max + 1 },
      );
    }
    if (snapshot && min <= snapIndex) {
      const term = db.prepare('SELECT term FROM log WHERE idx = ?').pluck().get(snapIndex) as unknown;
      if (term !== snapshot.term) {
        throw new StorageError(
          'CORRUPT',
          path,
          `${path}: the snapshot ends at entry ${snapIndex} in term ${snapshot.term}, but the log holds that entry in term ` +
            `${String(term)}. ${ADVICE_CORRUPT}`,
          { index: snapIndex },
        );
      }
    }
  }
  const lastEntry = max ?? 0;
  const last = Math.max(lastEntry, snapIndex);
  if (commit > last) {
    throw new StorageError(
      'CORRUPT',
      path,
      `${path}: commit index ${commit} is beyond the last log entry ${last}${lastEntry < snapIndex ? ' (the snapshot)' : ''}: ` +
        `committed entries are missing. ${ADVICE_CORRUPT}`,
      { index: last + 1 },
    );
  }

  if (count > 0 && min !== null) {
    let expect = Math.max(min, lastEntry - TAIL_VERIFY + 1);
    for (const row of db.prepare('SELECT idx, term, type, data, crc FROM log WHERE idx >= ? ORDER BY idx').raw().iterate(expect)) {
      checkRow(path, row as Row, expect++);
    }
  }
}

/** The recorded snapshot: both meta keys or neither. */
function snapshotMeta(path: string, meta: Map<string, unknown>): SnapshotMeta | undefined {
  if (!meta.has('snapshot_index') && !meta.has('snapshot_term')) return undefined;
  return { index: metaInt(path, meta, 'snapshot_index'), term: metaInt(path, meta, 'snapshot_term') };
}

/** Creates a fresh, initialized file at `path`, atomically (temp file, then link; never replaces a file). */
function create(path: string, id: Identity): void {
  for (const s of SIDECARS) {
    if (exists(path + s)) {
      throw new StorageError(
        'CORRUPT',
        path,
        `${path} does not exist but ${path + s} does: a leftover of a deleted database. Creating a new database next to it ` +
          `could let SQLite replay stale data. Remove ${path + s} by hand if you really mean to start this node from scratch.`,
      );
    }
  }
  const dir = nodePath.dirname(path);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${path}.creating-${process.pid}`;
  for (const s of ['', ...SIDECARS]) fs.rmSync(tmp + s, { force: true });
  const db = new Database(tmp);
  try {
    db.pragma('auto_vacuum = INCREMENTAL'); // only possible before the first table exists
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`
      CREATE TABLE meta(key TEXT PRIMARY KEY, value);
      CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL);
    `);
    const put = db.prepare('INSERT INTO meta(key, value) VALUES (?, ?)');
    const putInt = db.prepare('INSERT INTO meta(key, value) VALUES (?, CAST(? AS INTEGER))');
    db.transaction(() => {
      putInt.run('schema_version', SCHEMA_VERSION);
      put.run('cluster_id', id.clusterId);
      putInt.run('node_id', id.nodeId);
      putInt.run('term', 0);
      putInt.run('vote', 0);
      putInt.run('commit', 0);
    })();
  } finally {
    db.close(); // checkpoints and removes the -wal
  }
  fsyncPath(tmp);
  try {
    fs.linkSync(tmp, path); // fails if another process created `path` meanwhile; then verify() judges that file
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST') throw e;
  } finally {
    fs.unlinkSync(tmp);
  }
  fsyncPath(dir);
}

// ---------------------------------------------------------------------------------------
// Durability: synchronous=NORMAL, plus our own fdatasync of the -wal in sync().
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

// ---------------------------------------------------------------------------------------

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
  private readonly write: (hs: HardState | undefined, entries: readonly Entry[], truncate: boolean) => void;
  private readonly writeSnapshot: (snapshot: SnapshotMeta, deleteUpTo: number | 'all') => void;

  /**
   * Opens (or, with `create`, creates) the node's database at `path`. An existing file is
   * verified before anything is written to it; any problem is a StorageError.
   */
  static open(path: string, options: SqliteStorageOptions): SqliteStorage {
    const { clusterId, nodeId, create: mayCreate } = options;
    if (typeof clusterId !== 'string' || clusterId === '') throw new TypeError('clusterId must be a non-empty string');
    if (!Number.isSafeInteger(nodeId) || nodeId < 1) throw new TypeError(`nodeId must be a positive integer, got ${nodeId}`);
    const id = { clusterId, nodeId };

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
      create(path, id);
    }
    const before = SIDECARS.filter((s) => exists(path + s));
    try {
      verify(path, id);
      return new SqliteStorage(path, options.unsafeNoFsync === true);
    } catch (e) {
      removeNewSidecars(path, before); // "refused" means untouched: no new files either
      throw wrapSqliteError(e, path, 'verifying it');
    }
  }

  private constructor(
    readonly path: string,
    unsafeNoFsync: boolean,
  ) {
    let db: Database.Database | undefined;
    try {
      db = new Database(path, { fileMustExist: true, timeout: 1000 });
      db.pragma('locking_mode = EXCLUSIVE');
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`could not enable WAL mode (got ${String(mode)})`);
      db.pragma(`synchronous = ${unsafeNoFsync ? 'OFF' : 'NORMAL'}`); // sync() flushes the -wal (see "Durability")
      db.pragma('fullfsync = ON'); // macOS: F_FULLFSYNC; no effect elsewhere
      db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
      db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
      // Take the exclusive lock now (WAL + EXCLUSIVE holds it until close); from here on no
      // other connection can use the file, so a -shm left by the read-only check is stale.
      db.prepare('SELECT count(*) FROM meta').get();
      fs.rmSync(path + '-shm', { force: true });
      this.incrementalVacuum = db.pragma('auto_vacuum', { simple: true }) === 2;

      // verify() checked all of this; it is read again under the lock.
      const meta = new Map<string, unknown>();
      for (const r of db
        .prepare("SELECT key, value FROM meta WHERE key IN ('schema_version', 'term', 'vote', 'commit', 'snapshot_index', 'snapshot_term')")
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
      this.lastIndex = Math.max(max ?? 0, snapIndex);

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
      const deleteUpTo = db.prepare('DELETE FROM log WHERE idx <= ?');
      const deleteAll = db.prepare('DELETE FROM log'); // no WHERE: SQLite drops the table's pages wholesale
      const freePages = db.prepare('PRAGMA freelist_count').pluck();
      const pages = db.prepare('PRAGMA page_count').pluck();
      this.selectFrom = db.prepare('SELECT idx, term, type, data, crc FROM log WHERE idx >= ? ORDER BY idx').raw();
      this.termAt = db.prepare('SELECT term FROM log WHERE idx = ?').pluck();

      this.write = db.transaction((hs: HardState | undefined, entries: readonly Entry[], truncate: boolean) => {
        if (truncate) truncateFrom.run(entries[0]!.index);
        for (const e of entries) {
          const type = TYPE_CODE[e.type];
          insert.run(e.index, e.term, type, e.data, entryChecksum(e.index, e.term, type, e.data));
        }
        if (hs) upsertHardState.run(hs.term, hs.vote, hs.commit);
      });
      const conn = db;
      const incremental = this.incrementalVacuum;
      this.writeSnapshot = db.transaction((snapshot: SnapshotMeta, upTo: number | 'all') => {
        upsertSnapshot.run(snapshot.index, snapshot.term);
        if (this.schemaVersion < 2) setSchemaVersion.run(2); // an older raftkv could not read this file any more
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
    if (this.snapshot) state.snapshot = { index: this.snapshot.index, term: this.snapshot.term };
    return state;
  }

  save(hardState: HardState | undefined, entries: readonly Entry[]): void {
    this.live();
    const first = entries[0];
    let last = this.lastIndex;
    let truncate = false;
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
        if (!Number.isSafeInteger(e.term) || e.term < 0 || (e.type !== 'normal' && e.type !== 'noop') || !(e.data instanceof Uint8Array)) {
          throw new RangeError(`invalid entry ${e.index}: term ${e.term}, type ${String(e.type)}`);
        }
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
    this.guard(() => this.write(hardState, entries, truncate));
    this.commits?.wrote();
    this.lastIndex = last;
    if (hardState) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  compact(snapshot: SnapshotMeta, upTo: number): void {
    this.live();
    const { index, term } = checkSnapshotMeta(snapshot);
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
    this.guard(() => this.writeSnapshot({ index, term }, upTo));
    this.flushNow();
    this.snapshot = { index, term };
    this.first = Math.max(this.first, upTo + 1);
    if (this.schemaVersion < 2) this.schemaVersion = 2;
  }

  installSnapshot(snapshot: SnapshotMeta): void {
    this.live();
    const { index, term } = checkSnapshotMeta(snapshot);
    if (index < this.hardState.commit) {
      // The log would end before the commit index: open() would refuse the file.
      throw new RangeError(`snapshot ${index} is behind the commit index ${this.hardState.commit}: the log already holds it`);
    }
    this.guard(() => this.writeSnapshot({ index, term }, 'all'));
    this.flushNow();
    this.snapshot = { index, term };
    this.first = index + 1;
    this.lastIndex = index;
    if (this.schemaVersion < 2) this.schemaVersion = 2;
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

function checkSnapshotMeta(snapshot: SnapshotMeta): SnapshotMeta {
  const { index, term } = snapshot;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || index < 0 || term < 0) {
    throw new RangeError(`invalid snapshot ${JSON.stringify(snapshot)}`);
  }
  return { index, term };
}
