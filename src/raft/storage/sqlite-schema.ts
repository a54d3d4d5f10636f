import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import Database from 'better-sqlite3';
import type { ConfState } from '../core/conf.js';
import { decodeConfEntry, type ConfDecode, encodeConfEntry } from '../core/conf-codec.js';
import type { EntryType } from '../core/types.js';
import { crc32c } from './crc32c.js';
import { StorageError } from './storage-error.js';

/** The layout of a raftkv SQLite file, the checksum of its rows, and the creation of a new one. */

/**
 * Version 2 adds the snapshot (snapshot_index, snapshot_term in meta) and lets the log start
 * after index 1. Version 1 files (no snapshot) open unchanged and are marked version 2 by the
 * first transaction that records a snapshot, so an older raftkv reports a compacted file as
 * "newer" instead of misreading it as a log with missing entries.
 *
 * Version 3 adds cluster membership: log entries of type 2 (conf) and the configuration as of
 * the snapshot (snapshot_conf in meta: a conf entry's data with an empty context, see
 * core/conf-codec.ts; absent in older files, whose node then starts from its --peers). Version
 * 1 and 2 files open unchanged and are marked version 3 by the first transaction that writes a
 * conf entry or a snapshot configuration, for the same reason: a version 2 raftkv would refuse
 * type 2 as damage, and would drop the configuration at its next compaction.
 */
export const SCHEMA_VERSION = 3;
/** The version a file must be marked with once it holds conf entries or a snapshot configuration. */
export const MEMBERSHIP_SCHEMA_VERSION = 3;
/** The version a file must be marked with once it records a snapshot. */
export const SNAPSHOT_SCHEMA_VERSION = 2;
/** The oldest schema version this build opens. */
export const MIN_SCHEMA_VERSION = 1;
/** Header application_id (bytes 68..71): "rakv". */
export const APPLICATION_ID = 0x72616b76;

export const SIDECARS = ['-wal', '-shm', '-journal'] as const;

export interface Identity {
  clusterId: string;
  nodeId: number;
}

export const TYPE_CODE: Readonly<Record<EntryType, number>> = { normal: 0, noop: 1, conf: 2 };
export const TYPE_OF_CODE: readonly EntryType[] = ['normal', 'noop', 'conf'];

/** Whether `type` is an entry type this build stores (a caller's value: anything may come). */
export function isEntryType(type: unknown): type is EntryType {
  return typeof type === 'string' && Object.hasOwn(TYPE_CODE, type);
}

/**
 * meta 'snapshot_conf': a conf entry's data without context, so that one decoder, which checks
 * everything, reads both. Throws RangeError for a configuration it would not read back (so
 * nothing unreadable is ever written).
 */
export function encodeSnapshotConf(conf: ConfState): Uint8Array {
  const data = encodeConfEntry({ conf, context: new Uint8Array(0) });
  const back = decodeSnapshotConf(data);
  if (!back.ok) throw new RangeError(`invalid snapshot configuration ${JSON.stringify(conf)}: ${back.reason}`);
  return data;
}

export function decodeSnapshotConf(data: Uint8Array): ConfDecode {
  return decodeConfEntry(data);
}

const crcHeader = new Uint8Array(17);
const crcHeaderView = new DataView(crcHeader.buffer);

/**
 * The checksum stored with each log row: CRC-32C over idx (u64 LE), term (u64 LE),
 * type (u8: 0 normal, 1 noop, 2 conf), then the data bytes.
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

export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function exists(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false }) !== undefined;
}

/** Refuses to create `path` next to the sidecar files of a database that is gone. */
export function refuseLeftovers(path: string): void {
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
}

/** Creates a fresh, initialized file at `path`, atomically (temp file, then link; never replaces a file). */
export function create(path: string, id: Identity): void {
  refuseLeftovers(path);
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
