import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStorage, type Storage } from '../src/raft/storage/storage.js';
import {
  crc32c,
  entryChecksum,
  SqliteStorage,
  StorageError,
  TAIL_VERIFY,
  type SqliteStorageOptions,
  type StorageErrorCode,
} from '../src/raft/storage/sqlite.js';
import { entries, entry, storageConformance } from './storage/conformance.js';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'raftkv-storage-test-'));
  tempDirs.push(dir);
  return dir;
}
function removeTempDirs(): void {
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

const ID = { clusterId: 'cluster-a', nodeId: 1 } as const;

storageConformance('MemoryStorage', () => {
  const storage = new MemoryStorage();
  return { storage, reopen: () => storage, cleanup: () => {} };
});

storageConformance('SqliteStorage', () => {
  const dir = tempDir();
  const path = join(dir, 'raft.db');
  let current: Storage = SqliteStorage.open(path, { ...ID, create: true });
  return {
    storage: current,
    reopen: () => {
      current.close();
      current = SqliteStorage.open(path, { ...ID, create: false });
      return current;
    },
    cleanup: () => {
      current.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});

/** File name → sha256 of its bytes, for every file in `dir`. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    out[f] = createHash('sha256').update(fs.readFileSync(join(dir, f))).digest('hex');
  }
  return out;
}

function openError(path: string, opts: SqliteStorageOptions): StorageError {
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
function expectRefused(
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

/** A valid, closed database with `n` entries of 256 bytes. */
function makeDb(path: string, n = 50): void {
  const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
  const list = [];
  for (let i = 1; i <= n; i++) list.push(entry(i, 1 + Math.floor(i / 10), randomBytes(256)));
  s.save({ term: 1 + Math.floor(n / 10), vote: 1, commit: Math.floor(n / 2) }, list);
  s.close();
}

describe('SqliteStorage: opening bad data', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'raft.db');
  });
  afterEach(removeTempDirs);

  it('refuses a missing file when create is false', () => {
    const err = expectRefused(dir, path, { ...ID, create: false }, 'MISSING', /does not exist/);
    expect(err.message).toMatch(/create/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a file of garbage bytes', () => {
    fs.writeFileSync(path, randomBytes(64 * 1024));
    expectRefused(dir, path, { ...ID, create: true }, 'NOT_RAFTKV', /not a SQLite database/);
  });

  it('refuses an empty file', () => {
    fs.writeFileSync(path, '');
    expectRefused(dir, path, { ...ID, create: true }, 'NOT_RAFTKV', /not a SQLite database.*empty/);
  });

  it('refuses a truncated database (a valid file cut in half)', () => {
    makeDb(path, 2000);
    const size = fs.statSync(path).size;
    expect(size).toBeGreaterThan(100 * 4096);
    fs.truncateSync(path, Math.floor(size / 2 / 4096) * 4096); // whole pages: only the header's page count tells
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /truncated/);
  });

  it('refuses a database cut mid-page', () => {
    makeDb(path, 200);
    fs.truncateSync(path, Math.floor(fs.statSync(path).size / 2) + 123);
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /truncated/);
  });

  it('refuses a valid SQLite database that is not ours', () => {
    const db = new Database(path);
    db.exec("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('ada')");
    db.close();
    expectRefused(dir, path, { ...ID, create: true }, 'NOT_RAFTKV', /SQLite database but not a raftkv log/);
  });

  it('refuses a foreign SQLite database in WAL mode without leaving -wal/-shm behind', () => {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(x)');
    db.close();
    expectRefused(dir, path, { ...ID, create: true }, 'NOT_RAFTKV', /not a raftkv log/);
  });

  it('refuses a database of another cluster', () => {
    makeDb(path);
    const err = expectRefused(dir, path, { clusterId: 'cluster-b', nodeId: 1, create: true }, 'WRONG_CLUSTER', /cluster/);
    expect(err.message).toContain('"cluster-a"');
    expect(err.message).toContain('"cluster-b"');
  });

  it('refuses a database of another node', () => {
    makeDb(path);
    const err = expectRefused(dir, path, { ...ID, nodeId: 2, create: false }, 'WRONG_NODE', /belongs to node 1.*started as node 2/);
    expect(err.message).toMatch(/data directory/);
  });

  it('refuses a log entry whose data was changed (checksum mismatch)', () => {
    makeDb(path);
    const raw = new Database(path);
    const data = raw.prepare('SELECT data FROM log WHERE idx = 37').pluck().get() as Buffer;
    data[100] = data[100]! ^ 0x01;
    raw.prepare('UPDATE log SET data = ? WHERE idx = 37').run(data);
    raw.close();
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
    const err = expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /checksum mismatch in log entry 37/);
    expect(err.index).toBe(37);
    expect(err.message).toMatch(/backup/);
  });

  it('refuses a schema version from the future', () => {
    makeDb(path);
    const raw = new Database(path);
    raw.prepare("UPDATE meta SET value = 2 WHERE key = 'schema_version'").run();
    raw.close();
    expectRefused(dir, path, { ...ID, create: false }, 'SCHEMA_VERSION', /schema version 2.*newer raftkv/);
  });

  it('refuses a log with a hole', () => {
    makeDb(path);
    const raw = new Database(path);
    raw.prepare('DELETE FROM log WHERE idx = 20').run();
    raw.close();
    const err = expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /not contiguous: entry 20 is missing/);
    expect(err.index).toBe(20);
  });

  it('refuses a commit index beyond the last entry', () => {
    makeDb(path, 10);
    const raw = new Database(path);
    raw.prepare("UPDATE meta SET value = 11 WHERE key = 'commit'").run();
    raw.close();
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /commit index 11 is beyond the last log entry 10/);
  });

  it('refuses a file already open in another SqliteStorage (LOCKED)', () => {
    makeDb(path);
    const first = SqliteStorage.open(path, { ...ID, create: false });
    try {
      const err = openError(path, { ...ID, create: false });
      expect(err.code).toBe('LOCKED');
      expect(err.message).toMatch(/another process/);
      expect(first.load().entries).toHaveLength(50);
    } finally {
      first.close();
    }
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
  });

  it('refuses to create next to a leftover -wal of a deleted database', () => {
    fs.writeFileSync(path + '-wal', randomBytes(1000));
    expectRefused(dir, path, { ...ID, create: true }, 'CORRUPT', /leftover/);
  });
});

describe('SqliteStorage', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'raft.db');
  });
  afterEach(removeTempDirs);

  it('creates the file only once, then opens it, and leaves only the database file after close', () => {
    const a = SqliteStorage.open(path, { ...ID, create: true });
    a.save({ term: 1, vote: 1, commit: 1 }, [entry(1, 1)]);
    a.close();
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
    const b = SqliteStorage.open(path, { ...ID, create: true });
    expect(b.load().hardState).toEqual({ term: 1, vote: 1, commit: 1 });
    b.close();
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
  });

  it('creates missing parent directories', () => {
    const deep = join(dir, 'a', 'b', 'raft.db');
    SqliteStorage.open(deep, { ...ID, create: true }).close();
    expect(fs.readdirSync(join(dir, 'a', 'b'))).toEqual(['raft.db']);
  });

  it('recovers committed writes from the WAL after a crash', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.save({ term: 2, vote: 1, commit: 3 }, entries(1, 5, 2));
    // "Crash": copy the files while the storage is open, as a power cut would leave them.
    const crashed = tempDir();
    for (const f of fs.readdirSync(dir)) fs.copyFileSync(join(dir, f), join(crashed, f));
    s.close();
    expect(fs.readdirSync(crashed)).toContain('raft.db-wal');
    const r = SqliteStorage.open(join(crashed, 'raft.db'), { ...ID, create: false });
    const st = r.load();
    expect(st.hardState).toEqual({ term: 2, vote: 1, commit: 3 });
    expect(st.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5]);
    r.close();
    expect(fs.readdirSync(crashed)).toEqual(['raft.db']);
  });

  it('checks the last TAIL_VERIFY entries at open and every entry at load', () => {
    makeDb(path, TAIL_VERIFY + 100);
    const raw = new Database(path);
    raw.prepare('UPDATE log SET term = 77 WHERE idx = 5').run();
    raw.close();
    const s = SqliteStorage.open(path, { ...ID, create: false }); // entry 5 is outside the tail
    try {
      let err: unknown;
      try {
        s.load();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).code).toBe('CORRUPT');
      expect((err as StorageError).index).toBe(5);
      expect((err as StorageError).message).toMatch(/checksum mismatch in log entry 5/);
    } finally {
      s.close();
    }
  });

  it('rejects a commit index beyond the last entry at save time', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    try {
      s.save(undefined, entries(1, 3, 1));
      expect(() => s.save({ term: 1, vote: 0, commit: 4 }, [])).toThrow(RangeError);
      expect(() => s.save({ term: 1, vote: 0, commit: 3 }, [entry(2, 1)])).toThrow(RangeError);
      s.save({ term: 1, vote: 0, commit: 4 }, [entry(4, 1)]);
      expect(s.load().hardState.commit).toBe(4);
    } finally {
      s.close();
    }
  });

  it('rejects non-contiguous entries within one batch', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    try {
      expect(() => s.save(undefined, [entry(1, 1), entry(3, 1)])).toThrow(/contiguous/);
      expect(s.load().entries).toEqual([]);
    } finally {
      s.close();
    }
  });

  it('throws after close', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.close();
    s.close();
    expect(() => s.load()).toThrow(/closed/);
    expect(() => s.save(undefined, [entry(1, 1)])).toThrow(/closed/);
  });

  it('uses WAL with synchronous=FULL, or OFF when asked to', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.close();
    // The pragmas are per connection, so look at them through the storage's own statements.
    const read = (unsafe: boolean) => {
      const st = SqliteStorage.open(path, { ...ID, create: false, unsafeNoFsync: unsafe });
      const db = (st as unknown as { db: Database.Database }).db;
      const r = [db.pragma('journal_mode', { simple: true }), db.pragma('synchronous', { simple: true })];
      st.close();
      return r;
    };
    expect(read(false)).toEqual(['wal', 2]);
    expect(read(true)).toEqual(['wal', 0]);
  });
});

describe('checksums', () => {
  it('computes CRC-32C', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    const data = randomBytes(1000);
    expect(crc32c(data.subarray(300), crc32c(data.subarray(0, 300)))).toBe(crc32c(data));
  });

  it('covers index, term, type and data', () => {
    const d = new Uint8Array([1, 2, 3]);
    const base = entryChecksum(1, 1, 'normal', d);
    expect(entryChecksum(1, 1, 0, d)).toBe(base);
    expect(entryChecksum(2, 1, 'normal', d)).not.toBe(base);
    expect(entryChecksum(1, 2, 'normal', d)).not.toBe(base);
    expect(entryChecksum(1, 1, 'noop', d)).not.toBe(base);
    expect(entryChecksum(1, 1, 'normal', new Uint8Array([1, 2, 4]))).not.toBe(base);
    expect(entryChecksum(2 ** 40, 1, 'normal', d)).not.toBe(entryChecksum(0, 1, 'normal', d));
  });
});
