import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import Database from 'better-sqlite3';
import type { ConfState } from '../core/conf.js';
import { decodeConfEntry } from '../core/conf-codec.js';
import type { HardState, SnapshotMeta } from '../core/types.js';
import { APPLICATION_ID, decodeSnapshotConf, entryChecksum, type Identity, MIN_SCHEMA_VERSION, SCHEMA_VERSION, TYPE_OF_CODE } from './sqlite-schema.js';
import { ADVICE_CORRUPT, ADVICE_FOREIGN, StorageError } from './storage-error.js';
import { checkWal, type WalReplay } from './wal-check.js';

/**
 * The checks an existing file passes before it is opened for writing (header, WAL, schema,
 * identity, log contiguity, the checksum of every entry), and the checks of what is read from it
 * later. Everything that can refuse a file is checked here, before anything is written, so that a
 * refused file is left as it was.
 */

/** What verify() found: the state the read-write connection must find again under its lock. */
export interface Verified {
  /** The cluster the file belongs to (it may differ from the one asked for when that was adopted: see verify()). */
  clusterId: string;
  schemaVersion: number;
  hardState: HardState;
  snapshot: SnapshotMeta | undefined;
  /** The stored entries are [first, lastEntry]; none when lastEntry < first. */
  first: number;
  lastEntry: number;
  /** The clusters this node's log was forked from (--force-new-cluster), oldest first; usually none. */
  formerClusterIds?: string[];
}

/**
 * meta key of the clusters a node's log was forked from (sqlite-fork.ts), a JSON list, oldest
 * first: the snapshot files written under them are still this node's state.
 */
export const FORMER_CLUSTER_IDS_KEY = 'former_cluster_ids';
/** The most former ids a file keeps (older ones name snapshot files long replaced). */
export const MAX_FORMER_CLUSTER_IDS = 16;

/** meta 'former_cluster_ids': a JSON list of non-empty strings; anything else is damage. */
export function parseFormerClusterIds(path: string, v: unknown): string[] {
  let list: unknown;
  try {
    list = typeof v === 'string' ? JSON.parse(v) : undefined;
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || list.length > MAX_FORMER_CLUSTER_IDS || !list.every((x) => typeof x === 'string' && x !== '' && x.length <= 128)) {
    throw new StorageError('CORRUPT', path, `${path}: meta '${FORMER_CLUSTER_IDS_KEY}' is not a list of cluster ids. ${ADVICE_CORRUPT}`);
  }
  return list as string[];
}

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** `<file>.check-XXXXXX`: where a check's SQLite reader keeps its sidecar files (readPrivately). */
const CHECK_DIR_INFIX = '.check-';

export type Row = [idx: number, term: number, type: number, data: Buffer, crc: number];

/** Checks one row read from the log: position, term and type, checksum, and a conf entry's configuration. */
export function checkRow(path: string, row: Row, expectIdx: number): void {
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
  if (!(Number.isInteger(type) && TYPE_OF_CODE[type] !== undefined)) {
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
  if (TYPE_OF_CODE[type] === 'conf') {
    // The checksum matched, so these are the bytes once written: a writer's bug, found here
    // rather than when the node applies the entry.
    const conf = decodeConfEntry(data);
    if (!conf.ok) {
      throw new StorageError('CORRUPT', path, `${path}: log entry ${idx} is a configuration change that does not decode (${conf.reason}). ${ADVICE_CORRUPT}`, {
        index: idx,
      });
    }
  }
}

export function metaInt(path: string, meta: Map<string, unknown>, key: string): number {
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
 * Everything open() checks before writing: the raw bytes of the header and the WAL, then the
 * contents through a read-only connection (readPrivately). Throws StorageError. Changes no file
 * and creates none beside `path`, save its own private directory for the time of the check.
 * `adoptStoredClusterId`: a file of another cluster than `id.clusterId` is taken (its cluster id
 * is in the result) rather than refused; the node id must still match.
 */
export function verify(path: string, id: Identity, adoptStoredClusterId = false): Verified {
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
  // 2. The WAL, by hand: SQLite would silently drop what lies behind a damaged frame.
  const wal = checkWal(path, pageSize);
  if (wal.replayed > 0) {
    // The main file may lag behind what the WAL replays (an interrupted checkpoint is redone
    // from it), but every page it does not hold must come from the WAL.
    checkPagesPresent(path, st.size, pageSize, wal);
  } else {
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

  // 3. The contents, through a read-only connection.
  return readPrivately(path, (ro) => verifyContents(path, ro, id, adoptStoredClusterId));
}

/**
 * Runs `read` on a read-only connection to `path` that creates nothing beside it. To read a WAL
 * database SQLite needs a -shm, and a -wal if there is none, and creates them next to the file
 * it opens; removing them again afterwards races with another process checking the same file
 * (one's "new" file is the other's "already there"), and a removed -wal may be the one a
 * starting node just opened. So SQLite opens hard links to the file and its -wal and -journal,
 * in a directory of this check's own beside the file (a hard link needs the same file system,
 * which create() relies on too), and its -shm and any empty -wal come and go in there. Removed,
 * links and all, before this returns; a crash in between leaves `<file>.check-XXXXXX`, which
 * the next start that goes ahead removes.
 */
function readPrivately<T>(path: string, read: (db: Database.Database) => T): T {
  const dir = fs.mkdtempSync(`${path}${CHECK_DIR_INFIX}`);
  try {
    const view = nodePath.join(dir, nodePath.basename(path));
    fs.linkSync(path, view);
    for (const s of ['-wal', '-journal']) {
      try {
        fs.linkSync(path + s, view + s);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOENT') throw e;
      }
    }
    const db = new Database(view, { readonly: true, fileMustExist: true, timeout: 1000 });
    try {
      return read(db);
    } finally {
      db.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes the private directories of checks of `path` that a crash interrupted (see readPrivately). */
export function removeCheckLeftovers(path: string): void {
  const prefix = nodePath.basename(path) + CHECK_DIR_INFIX;
  for (const name of fs.readdirSync(nodePath.dirname(path))) {
    if (name.startsWith(prefix)) fs.rmSync(nodePath.join(nodePath.dirname(path), name), { recursive: true, force: true });
  }
}

/** Pages 1..wal.dbPages lie in the main file or in the frames the WAL replays. */
function checkPagesPresent(path: string, size: number, pageSize: number, wal: WalReplay): void {
  const inFile = Math.floor(size / pageSize);
  let fromWal = 0;
  for (const p of wal.pages) if (p > inFile && p <= wal.dbPages) fromWal++;
  if (inFile + fromWal >= wal.dbPages) return;
  let missing = inFile + 1;
  while (wal.pages.has(missing)) missing++;
  throw new StorageError(
    'CORRUPT',
    path,
    `${path}: the database file is truncated: after the WAL it has ${wal.dbPages} pages of ${pageSize} bytes, but the file holds ` +
      `${inFile} (${size} bytes) and the WAL does not hold page ${missing}. ${ADVICE_CORRUPT}`,
  );
}

function verifyContents(path: string, db: Database.Database, id: Identity, adoptStoredClusterId: boolean): Verified {
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
  if (typeof clusterId !== 'string' || clusterId === '') {
    throw new StorageError('CORRUPT', path, `${path}: meta 'cluster_id' is missing or invalid. ${ADVICE_CORRUPT}`);
  }
  if (clusterId !== id.clusterId && !adoptStoredClusterId) {
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

  const hardState = { term: metaInt(path, meta, 'term'), vote: metaInt(path, meta, 'vote'), commit: metaInt(path, meta, 'commit') };
  const commit = hardState.commit;

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

  // Every entry: a damaged one found later, by load(), would be found after the file was opened
  // for writing, which may already have changed it (SQLite checkpoints the WAL when it closes).
  const first = min ?? snapIndex + 1;
  let expect = first;
  for (const row of db.prepare('SELECT idx, term, type, data, crc FROM log ORDER BY idx').raw().iterate()) {
    checkRow(path, row as Row, expect++);
  }
  const former = meta.has(FORMER_CLUSTER_IDS_KEY) ? parseFormerClusterIds(path, meta.get(FORMER_CLUSTER_IDS_KEY)) : [];
  return { clusterId, schemaVersion: version, hardState, snapshot, first, lastEntry, ...(former.length > 0 ? { formerClusterIds: former } : {}) };
}

/**
 * The recorded snapshot: both meta keys or neither; and the configuration as of it, if one was
 * recorded (files of schema version 2 and older have none).
 */
export function snapshotMeta(path: string, meta: Map<string, unknown>): SnapshotMeta | undefined {
  const hasConf = meta.has('snapshot_conf');
  if (!meta.has('snapshot_index') && !meta.has('snapshot_term')) {
    if (hasConf) throw new StorageError('CORRUPT', path, `${path}: meta 'snapshot_conf' is set, but there is no snapshot. ${ADVICE_CORRUPT}`);
    return undefined;
  }
  const snapshot = { index: metaInt(path, meta, 'snapshot_index'), term: metaInt(path, meta, 'snapshot_term') };
  return hasConf ? { ...snapshot, conf: snapshotConf(path, meta.get('snapshot_conf')) } : snapshot;
}

function snapshotConf(path: string, v: unknown): ConfState {
  const d = v instanceof Uint8Array ? decodeSnapshotConf(v) : { ok: false as const, reason: `${v === null ? 'null' : `a ${typeof v}`}, not a blob` };
  if (!d.ok) {
    throw new StorageError('CORRUPT', path, `${path}: meta 'snapshot_conf' is not a valid configuration (${d.reason}). ${ADVICE_CORRUPT}`);
  }
  return d.entry.conf;
}
