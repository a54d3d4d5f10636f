import Database from 'better-sqlite3';
import type { ConfState } from '../core/conf.js';
import { decodeConfEntry } from '../core/conf-codec.js';
import type { HardState } from '../core/types.js';
import { entryChecksum, MEMBERSHIP_SCHEMA_VERSION, TYPE_CODE } from './sqlite-schema.js';
import { FORMER_CLUSTER_IDS_KEY, MAX_FORMER_CLUSTER_IDS, metaInt, parseFormerClusterIds, snapshotMeta, verify } from './sqlite-verify.js';
import { ADVICE_CORRUPT, isSqliteError, StorageError, wrapSqliteError } from './storage-error.js';

/**
 * Forks a node's log into a new cluster (kv-server --force-new-cluster): one SQLite transaction
 * that appends a conf entry after the last entry, commits everything up to it, and gives the file
 * a new cluster id, remembering the old one among its former ids (the snapshot files written
 * under it stay this node's: see SqliteStorage's `formerClusterIds`). One transaction, so a crash
 * leaves the file as it was or forked, never in between. What to append is the caller's to decide
 * (the server knows members and addresses; this knows the file), from a view read in the same
 * transaction, so nothing can change between the look and the write.
 */

/** The log as the fork sees it, read under the write lock. */
export interface ForkView {
  clusterId: string;
  hardState: HardState;
  lastIndex: number;
  /** The term of the entry at lastIndex (the snapshot's, if the log holds none after it). */
  lastTerm: number;
  /** The configuration as of lastIndex, the last conf entry's or the snapshot's; undefined if none is recorded (the --peers the cluster started from). */
  conf: ConfState | undefined;
}

/** What the fork writes: the new cluster id, and a conf entry's data to append at lastIndex + 1 in `term`. */
export interface Fork {
  clusterId: string;
  term: number;
  confEntry: Uint8Array;
}

export interface ForkResult {
  view: ForkView;
  /** Undefined when the caller decided there was nothing to do. */
  forked?: { clusterId: string; index: number; term: number };
}

/**
 * Verifies the file at `path` (node `nodeId`, any cluster) as a start does, then, under an
 * exclusive lock, shows `decide` the log and writes what it returns, durably (synchronous=FULL).
 * Throws StorageError for a file that cannot be used, and whatever `decide` throws (nothing is
 * written then).
 */
export function forkCluster(path: string, nodeId: number, decide: (view: ForkView) => Fork | undefined): ForkResult {
  let verified;
  try {
    verified = verify(path, { clusterId: '', nodeId }, true);
  } catch (e) {
    throw wrapSqliteError(e, path, 'verifying it');
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { fileMustExist: true, timeout: 1000 });
    // Set before the first access: one process holds the file until close(), and no -shm is used.
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // the commit is on disk when the transaction returns
    const conn = db;
    const run = conn.transaction((): ForkResult => {
      const view = read(conn, path);
      if (view.clusterId !== verified.clusterId || view.lastIndex !== Math.max(verified.lastEntry, verified.snapshot?.index ?? 0)) {
        throw new StorageError('LOCKED', path, `${path} changed between its check and the fork: another process is using it. Stop it and try again.`);
      }
      const fork = decide(view);
      if (!fork) return { view };
      const index = view.lastIndex + 1;
      if (!Number.isSafeInteger(fork.term) || fork.term <= view.hardState.term || fork.term < view.lastTerm) {
        throw new RangeError(`a forked entry's term must be above the node's term ${view.hardState.term}, got ${fork.term}`);
      }
      if (fork.clusterId === '' || fork.clusterId === view.clusterId) throw new RangeError('a fork needs a new cluster id');
      const decoded = decodeConfEntry(fork.confEntry);
      if (!decoded.ok) throw new RangeError(`a forked cluster's conf entry does not decode: ${decoded.reason}`);
      const type = TYPE_CODE.conf;
      conn.prepare('INSERT INTO log(idx, term, type, data, crc) VALUES (?, ?, ?, ?, ?)').run(index, fork.term, type, fork.confEntry, entryChecksum(index, fork.term, type, fork.confEntry));
      const put = conn.prepare('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
      const putInt = conn.prepare('INSERT INTO meta(key, value) VALUES (?, CAST(? AS INTEGER)) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
      const former = [...formerIds(conn, path), view.clusterId].slice(-MAX_FORMER_CLUSTER_IDS);
      put.run('cluster_id', fork.clusterId);
      put.run(FORMER_CLUSTER_IDS_KEY, JSON.stringify(former));
      putInt.run('term', fork.term);
      putInt.run('vote', 0);
      putInt.run('commit', index);
      const version = metaInt(path, metaMap(conn), 'schema_version');
      if (version < MEMBERSHIP_SCHEMA_VERSION) putInt.run('schema_version', MEMBERSHIP_SCHEMA_VERSION);
      return { view, forked: { clusterId: fork.clusterId, index, term: fork.term } };
    });
    return run.immediate();
  } catch (e) {
    // The caller's refusals, and ours, as they are; SQLite's as a StorageError that says where.
    if (!isSqliteError(e)) throw e;
    throw wrapSqliteError(e, path, 'forking it into a new cluster');
  } finally {
    db?.close(); // checkpoints the WAL into the file
  }
}

function metaMap(db: Database.Database): Map<string, unknown> {
  const meta = new Map<string, unknown>();
  for (const r of db.prepare('SELECT key, value FROM meta').raw().all() as [unknown, unknown][]) meta.set(String(r[0]), r[1]);
  return meta;
}

function read(db: Database.Database, path: string): ForkView {
  const meta = metaMap(db);
  const clusterId = meta.get('cluster_id');
  if (typeof clusterId !== 'string') throw new StorageError('CORRUPT', path, `${path}: meta 'cluster_id' is missing. ${ADVICE_CORRUPT}`);
  const hardState = { term: metaInt(path, meta, 'term'), vote: metaInt(path, meta, 'vote'), commit: metaInt(path, meta, 'commit') };
  const snapshot = snapshotMeta(path, meta);
  const last = db.prepare('SELECT idx, term FROM log ORDER BY idx DESC LIMIT 1').raw().get() as [number, number] | undefined;
  const snapIndex = snapshot?.index ?? 0;
  const [lastIndex, lastTerm] = last && last[0] >= snapIndex ? last : [snapIndex, snapshot?.term ?? 0];
  // The last conf entry after the snapshot, else the snapshot's configuration.
  const row = db.prepare('SELECT data FROM log WHERE type = ? AND idx > ? ORDER BY idx DESC LIMIT 1').pluck().get(TYPE_CODE.conf, snapIndex) as Uint8Array | undefined;
  let conf = snapshot?.conf;
  if (row) {
    const d = decodeConfEntry(row);
    if (!d.ok) throw new StorageError('CORRUPT', path, `${path}: a conf entry does not decode (${d.reason}). ${ADVICE_CORRUPT}`);
    conf = d.entry.conf;
  }
  return { clusterId, hardState, lastIndex, lastTerm, conf };
}

function formerIds(db: Database.Database, path: string): string[] {
  const v = db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(FORMER_CLUSTER_IDS_KEY);
  if (v === undefined) return [];
  return parseFormerClusterIds(path, v);
}
