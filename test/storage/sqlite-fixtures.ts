/** Helpers of the SqliteStorage tests (test/storage.test.ts, test/storage/*.test.ts). */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { APPLICATION_ID, entryChecksum, SqliteStorage, StorageError, type SqliteStorageOptions, type StorageErrorCode } from '../../src/raft/storage/sqlite.js';

const tempDirs: string[] = [];
export function tempDir(): string {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'raftkv-storage-test-'));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export const ID = { clusterId: 'cluster-a', nodeId: 1 } as const;

/** File name → sha256 of its bytes, for every file in `dir`. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    out[f] = createHash('sha256').update(fs.readFileSync(join(dir, f))).digest('hex');
  }
  return out;
}

export function openError(path: string, opts: SqliteStorageOptions): StorageError {
  let storage: SqliteStorage | undefined;
  try {
    storage = SqliteStorage.open(path, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    return e as StorageError;
  }
  storage.close();
  throw new Error(`open(${path}) succeeded, expected a StorageError`);
}

/** Opening `path` fails with `code`, a message matching `what` and naming the file, and nothing in `dir` changes. */
export function expectRefused(
  dir: string,
  path: string,
  opts: SqliteStorageOptions,
  code: StorageErrorCode,
  what: RegExp,
): StorageError {
  const before = snapshot(dir);
  const err = openError(path, opts);
  expect(err.code).toBe(code);
  expect(err.message).toMatch(what);
  expect(err.message).toContain(path);
  expect(err.path).toBe(path);
  expect(snapshot(dir)).toEqual(before);
  return err;
}

/** The meta table of the (closed) file at `path`, as key → value. */
export function metaOf(path: string): Record<string, unknown> {
  const raw = new Database(path, { readonly: true });
  try {
    return Object.fromEntries(raw.prepare('SELECT key, value FROM meta').raw().all() as [string, unknown][]);
  } finally {
    raw.close();
  }
}

/** What the previous schema version (1) created: no auto_vacuum, no snapshot keys, log from index 1. */
export function makeVersion1Db(path: string, n: number): void {
  const db = new Database(path);
  db.pragma(`application_id = ${APPLICATION_ID}`);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE meta(key TEXT PRIMARY KEY, value);
    CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL);
  `);
  const putInt = db.prepare('INSERT INTO meta(key, value) VALUES (?, CAST(? AS INTEGER))');
  const insert = db.prepare('INSERT INTO log(idx, term, type, data, crc) VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => {
    putInt.run('schema_version', 1);
    db.prepare("INSERT INTO meta(key, value) VALUES ('cluster_id', ?)").run(ID.clusterId);
    putInt.run('node_id', ID.nodeId);
    putInt.run('term', 2);
    putInt.run('vote', 1);
    putInt.run('commit', Math.max(0, n - 5));
    for (let i = 1; i <= n; i++) {
      const data = Buffer.from(`v1-${i}`);
      insert.run(i, 2, 0, data, entryChecksum(i, 2, 'normal', data));
    }
  })();
  db.close();
}

