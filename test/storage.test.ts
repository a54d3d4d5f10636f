import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c } from '../src/raft/storage/crc32c.js';
import { seededRng } from '../src/raft/core/rng.js';
import type { Storage } from '../src/raft/storage/storage.js';
import { SimLog, SimStorage, type FlushScheduler } from './sim/sim-log.js';
import { entryChecksum, GroupCommit, SCHEMA_VERSION, SqliteStorage, StorageError, VACUUM_MIN_FREE_PAGES } from '../src/raft/storage/sqlite.js';
import { entries, entry, storageConformance } from './storage/conformance.js';
import { expectRefused, ID, makeVersion1Db, metaOf, openError, removeTempDirs, snapshot, tempDir } from './storage/sqlite-fixtures.js';

/** The simulator's disk, flushing at once (on the next microtask). */
const immediate: FlushScheduler = { after: (_ms, fn) => queueMicrotask(fn), latency: () => 0 };

storageConformance('SimStorage (the simulator\'s disk)', () => {
  const log = new SimLog();
  let current = new SimStorage(log, immediate);
  return {
    storage: current,
    reopen: () => {
      current.close();
      current = new SimStorage(log, immediate);
      return current;
    },
    cleanup: () => current.close(),
  };
});

describe("the simulator's disk loses what a power loss would", () => {
  const e = (index: number) => entry(index, 1);
  it('a killed process keeps every save; a power loss keeps the synced ones, and of the rest at most a prefix', async () => {
    for (let seed = 1; seed <= 50; seed++) {
      const log = new SimLog();
      const s = new SimStorage(log, immediate);
      s.save({ term: 1, vote: 1, commit: 0 }, [e(1), e(2)]);
      await s.sync();
      s.save(undefined, [e(3)]);
      s.save(undefined, [e(4)]);
      s.save({ term: 1, vote: 1, commit: 4 }, [e(5)]);
      log.crash(seed % 2 === 0 ? 'power' : 'process', seededRng(seed));
      const after = log.view.load();
      const last = after.entries.at(-1)!.index;
      if (seed % 2 === 1) expect(last).toBe(5);
      else expect(last).toBeGreaterThanOrEqual(2); // synced: never lost
      // A prefix: the entries are contiguous from 1, and the commit never passes what survived.
      expect(after.entries.map((x) => x.index)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(after.hardState.commit).toBeLessThanOrEqual(last);
    }
  });
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
    raw.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(SCHEMA_VERSION + 1);
    raw.close();
    expectRefused(dir, path, { ...ID, create: false }, 'SCHEMA_VERSION', new RegExp(`schema version ${SCHEMA_VERSION + 1},.*newer raftkv`));
  });

  it('refuses a schema version older than the oldest it can read', () => {
    makeDb(path);
    const raw = new Database(path);
    raw.prepare("UPDATE meta SET value = 0 WHERE key = 'schema_version'").run();
    raw.close();
    expectRefused(dir, path, { ...ID, create: false }, 'SCHEMA_VERSION', /schema version 0, older.*no migration/);
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

  it('recovers synced writes from the WAL after a crash', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.save({ term: 2, vote: 1, commit: 3 }, entries(1, 5, 2));
    await s.sync();
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

  it('checks every entry at open, before anything is written; load() checks again what it returns', () => {
    makeDb(path, 1100);
    const raw = new Database(path);
    raw.prepare('UPDATE log SET term = 77 WHERE idx = 5').run();
    raw.close();
    // Found at open (read-only), not later by load(), after the file was opened for writing.
    const err = expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /checksum mismatch in log entry 5/);
    expect(err.index).toBe(5);
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
    expect(() => s.compact({ index: 0, term: 0 }, 0)).toThrow(/closed/);
    expect(() => s.installSnapshot({ index: 1, term: 1 })).toThrow(/closed/);
  });

  it('sync() after close rejects', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.close();
    await expect(s.sync()).rejects.toThrow(/closed/);
  });

  it('uses WAL with synchronous=NORMAL (sync() flushes), or OFF when asked to', () => {
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
    expect(read(false)).toEqual(['wal', 1]);
    expect(read(true)).toEqual(['wal', 0]);
  });

  it('flushes its own descriptor on the -wal, which keeps its inode through checkpoints, restarts and truncation', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    const fd = walFdOf(s)!;
    const inode = fs.fstatSync(fd).ino;
    const data = randomBytes(256);
    let last = 0;
    const syncs: Promise<void>[] = [];
    // ~5 MB in small batches (several automatic checkpoints and WAL restarts while flushes are in
    // flight), then one 10 MB transaction: the -wal outgrows journal_size_limit and is cut back
    // when the next checkpoint restarts it.
    for (let b = 0; b < 40; b++) {
      s.save({ term: 1, vote: 1, commit: last }, Array.from({ length: 500 }, (_, i) => entry(last + 1 + i, 1, data)));
      last += 500;
      syncs.push(s.sync());
    }
    s.save(undefined, Array.from({ length: 40_000 }, (_, i) => entry(last + 1 + i, 1, data)));
    last += 40_000;
    syncs.push(s.sync());
    expect(fs.fstatSync(fd).size).toBeGreaterThan(8 * 1024 * 1024);
    for (let b = 0; b < 20; b++) {
      s.save({ term: 1, vote: 1, commit: last }, Array.from({ length: 500 }, (_, i) => entry(last + 1 + i, 1, data)));
      last += 500;
      await s.sync();
    }
    await Promise.all(syncs);
    expect(fs.statSync(path + '-wal').ino).toBe(inode);
    expect(fs.fstatSync(fd).nlink).toBe(1);
    expect(fs.fstatSync(fd).size).toBeLessThanOrEqual(8 * 1024 * 1024); // cut back to journal_size_limit
    s.close();
    const r = SqliteStorage.open(path, { ...ID, create: false });
    const st = r.load();
    expect(st.entries).toHaveLength(last);
    expect(st.hardState.commit).toBe(last - 500);
    r.close();
  });

  it('close() flushes first: a sync() pending at close resolves', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 3, 1));
    const pending = s.sync();
    s.save(undefined, [entry(4, 1)]);
    const second = s.sync(); // waits for the flush after the one in flight
    s.close();
    await pending;
    await second;
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
    const r = SqliteStorage.open(path, { ...ID, create: false });
    expect(r.load().entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    r.close();
  });

  it('a failed flush rejects sync() with an IO error and refuses every later write', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    const real = walFdOf(s)!;
    s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 3, 1));
    (s as unknown as { walFd: number }).walFd = 1 << 30; // fdatasync on it fails (EBADF), as a dying disk's would (EIO)
    s.save(undefined, [entry(4, 1)]);
    const a = s.sync();
    const b = s.sync();
    await expect(a).rejects.toMatchObject({ name: 'StorageError', code: 'IO' });
    await expect(b).rejects.toThrow(/flushing to disk failed.*restart the node/);
    expect(() => s.save(undefined, [entry(5, 1)])).toThrow(/failed earlier/);
    await expect(s.sync()).rejects.toThrow(/failed earlier/);
    expect(() => s.compact({ index: 2, term: 1 }, 2)).toThrow(/failed earlier/);
    (s as unknown as { walFd: number }).walFd = real;
    s.close();
  });

  it('a failed flush in compact() throws and refuses every later write', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    const real = walFdOf(s)!;
    s.save({ term: 1, vote: 1, commit: 3 }, entries(1, 5, 1));
    (s as unknown as { walFd: number }).walFd = 1 << 30;
    let err: unknown;
    try {
      s.compact({ index: 3, term: 1 }, 3);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('IO');
    expect(() => s.save(undefined, [entry(6, 1)])).toThrow(/failed earlier/);
    (s as unknown as { walFd: number }).walFd = real;
    s.close();
  });

  it('unsafeNoFsync: no descriptor, sync() resolves at once', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
    expect(walFdOf(s)).toBeUndefined();
    s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 3, 1));
    await s.sync();
    s.compact({ index: 2, term: 1 }, 2);
    s.close();
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

/** The storage's own connection (pragmas are per connection, and the file is locked exclusively). */
function connection(s: SqliteStorage): Database.Database {
  return (s as unknown as { db: Database.Database }).db;
}

function pragmaInt(db: Database.Database, name: string): number {
  return db.pragma(name, { simple: true }) as number;
}

/** Copies every file of `from` into a new directory, as a power cut at this moment would leave them. */
function crashImage(from: string, walSize?: number): string {
  const to = tempDir();
  for (const f of fs.readdirSync(from)) fs.copyFileSync(join(from, f), join(to, f));
  if (walSize !== undefined) fs.truncateSync(join(to, 'raft.db-wal'), walSize);
  return join(to, 'raft.db');
}

describe('SqliteStorage: snapshots and compaction', () => {
  let dir: string;
  let path: string;
  beforeEach(() => {
    dir = tempDir();
    path = join(dir, 'raft.db');
  });
  afterEach(removeTempDirs);

  /** A closed database: entries 1..n (term 1, random 256 bytes), commit c, compacted to `snap` keeping (upTo, snap]. */
  function makeCompactedDb(n: number, commit: number, snap: number, upTo: number): void {
    const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
    const list = [];
    for (let i = 1; i <= n; i++) list.push(entry(i, 1, randomBytes(256)));
    s.save({ term: 1, vote: 1, commit }, list);
    s.compact({ index: snap, term: 1 }, upTo);
    s.close();
  }

  function rawExec(sql: string): void {
    const raw = new Database(path);
    raw.exec(sql);
    raw.close();
  }

  it('records the snapshot in meta', () => {
    makeCompactedDb(50, 40, 40, 30);
    expect(metaOf(path)).toMatchObject({ schema_version: SCHEMA_VERSION, snapshot_index: 40, snapshot_term: 1 });
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT min(idx), max(idx) FROM log').raw().get()).toEqual([31, 50]);
    raw.close();
  });

  it('opens and verifies a file with a snapshot and a retained window, and loads the entries after the snapshot', () => {
    makeCompactedDb(1500, 1400, 1000, 700);
    const s = SqliteStorage.open(path, { ...ID, create: false });
    try {
      const st = s.load();
      expect(st.snapshot).toEqual({ index: 1000, term: 1 });
      expect(st.hardState.commit).toBe(1400);
      expect(st.entries.map((e) => e.index)).toEqual(Array.from({ length: 500 }, (_, i) => 1001 + i));
    } finally {
      s.close();
    }
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
  });

  it('verifies the checksums of the entries after the snapshot, and of the retained window, at open', () => {
    makeCompactedDb(200, 150, 150, 100);
    const flip = (idx: number): void => {
      const raw = new Database(path);
      const data = raw.prepare('SELECT data FROM log WHERE idx = ?').pluck().get(idx) as Buffer;
      data[3] = data[3]! ^ 0x40;
      raw.prepare('UPDATE log SET data = ? WHERE idx = ?').run(data, idx);
      raw.close();
    };
    flip(170);
    expect(expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /checksum mismatch in log entry 170/).index).toBe(170);
    flip(170); // repaired
    flip(120); // in the retained window, which load() never returns
    expect(expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /checksum mismatch in log entry 120/).index).toBe(120);
  });

  it('refuses a gap between the snapshot and the first entry, leaving the file unchanged', () => {
    makeCompactedDb(50, 40, 40, 40);
    rawExec('DELETE FROM log WHERE idx = 41');
    const err = expectRefused(
      dir,
      path,
      { ...ID, create: false },
      'CORRUPT',
      /not contiguous: the snapshot covers entries up to 40, but the log starts at 42: entries 41\.\.41 are missing/,
    );
    expect(err.index).toBe(41);
  });

  it('refuses a gap after a retained window that no longer reaches past the snapshot', () => {
    makeCompactedDb(50, 40, 40, 30);
    rawExec('DELETE FROM log WHERE idx <= 43');
    const err = expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /log starts at 44: entries 41\.\.43 are missing/);
    expect(err.index).toBe(41);
  });

  it('refuses a hole after the snapshot', () => {
    makeCompactedDb(50, 40, 40, 30);
    rawExec('DELETE FROM log WHERE idx = 45');
    const err = expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /not contiguous: entry 45 is missing/);
    expect(err.index).toBe(45);
  });

  it('refuses a retained window that ends before the snapshot', () => {
    makeCompactedDb(50, 40, 40, 30);
    rawExec('DELETE FROM log WHERE idx >= 36');
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /log ends at entry 35, but the snapshot covers entries up to 40/);
  });

  it('refuses a retained entry at the snapshot index whose term differs from the snapshot', () => {
    makeCompactedDb(50, 40, 40, 30);
    rawExec("UPDATE meta SET value = 7 WHERE key = 'snapshot_term'");
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /snapshot ends at entry 40 in term 7, but the log holds that entry in term 1/);
  });

  it('refuses half a snapshot record', () => {
    makeCompactedDb(50, 40, 40, 30);
    rawExec("DELETE FROM meta WHERE key = 'snapshot_term'");
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /meta 'snapshot_term' is missing/);
  });

  it('checks commit against max(snapshot index, last entry)', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.save({ term: 1, vote: 1, commit: 3 }, entries(1, 5, 1));
    s.installSnapshot({ index: 40, term: 2 });
    s.save({ term: 2, vote: 0, commit: 40 }, []); // commit = the snapshot, no entries: valid
    expect(() => s.save({ term: 2, vote: 0, commit: 41 }, [])).toThrow(/commit index 41 beyond last log index 40/);
    s.close();
    SqliteStorage.open(path, { ...ID, create: false }).close();
    rawExec("UPDATE meta SET value = 41 WHERE key = 'commit'");
    expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', /commit index 41 is beyond the last log entry 40 \(the snapshot\)/);
  });

  it('rejects compactions that would leave the file inconsistent, and changes nothing', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    try {
      s.save({ term: 1, vote: 1, commit: 5 }, entries(1, 10, 1));
      expect(() => s.compact({ index: 8, term: 1 }, 9)).toThrow(/compaction point 9/);
      expect(() => s.compact({ index: 8, term: 1 }, -1)).toThrow(RangeError);
      expect(() => s.compact({ index: 11, term: 1 }, 11)).toThrow(/beyond the last log index 10.*installSnapshot/);
      expect(() => s.compact({ index: 8, term: 2 }, 8)).toThrow(/holds entry 8 in term 1/);
      expect(() => s.compact({ index: 1.5, term: 1 }, 1)).toThrow(/invalid snapshot/);
      expect(() => s.installSnapshot({ index: 4, term: 1 })).toThrow(/behind the commit index 5/);
      let st = s.load();
      expect(st.snapshot).toBeUndefined();
      expect(st.entries).toHaveLength(10);

      s.compact({ index: 8, term: 1 }, 5);
      expect(() => s.compact({ index: 7, term: 1 }, 7)).toThrow(/does not follow the recorded snapshot 8\/1/);
      expect(() => s.compact({ index: 8, term: 2 }, 8)).toThrow(/does not follow the recorded snapshot 8\/1/);
      // Entries 6..8 are kept, but the snapshot covers them: committed, never rewritten.
      expect(() => s.save(undefined, [entry(7, 2)])).toThrow(/rewrites an entry the snapshot covers/);
      st = s.load();
      expect(st.snapshot).toEqual({ index: 8, term: 1 });
      expect(st.entries.map((e) => e.index)).toEqual([9, 10]);
      // The same snapshot again, with the window trimmed: fine.
      s.compact({ index: 8, term: 1 }, 8);
    } finally {
      s.close();
    }
    SqliteStorage.open(path, { ...ID, create: false }).close();
  });

  it('every crash image around save and compact reopens consistent', async () => {
    const s = SqliteStorage.open(path, { ...ID, create: true });
    s.save({ term: 2, vote: 1, commit: 40 }, entries(1, 50, 2));
    await s.sync();
    const walAfterSave = fs.statSync(path + '-wal').size;
    const afterSave = crashImage(dir);
    s.compact({ index: 40, term: 2 }, 30);
    const walAfterCompact = fs.statSync(path + '-wal').size;
    expect(walAfterCompact).toBeGreaterThan(walAfterSave);
    const afterCompact = crashImage(dir);
    // The compaction's transaction half written, or all but the end of its commit frame.
    const tornHalf = crashImage(dir, walAfterSave + Math.floor((walAfterCompact - walAfterSave) / 2));
    const tornCommit = crashImage(dir, walAfterCompact - 1);
    s.installSnapshot({ index: 60, term: 3 });
    const afterInstall = crashImage(dir); // before the driver saves the hard state that goes with it
    s.close();

    const look = (p: string) => {
      const r = SqliteStorage.open(p, { ...ID, create: false });
      try {
        const st = r.load();
        return { snapshot: st.snapshot, commit: st.hardState.commit, first: st.entries[0]?.index, last: st.entries.at(-1)?.index };
      } finally {
        r.close();
      }
    };
    const before = { snapshot: undefined, commit: 40, first: 1, last: 50 };
    expect(look(afterSave)).toEqual(before);
    expect(look(tornHalf)).toEqual(before);
    expect(look(tornCommit)).toEqual(before);
    expect(look(afterCompact)).toEqual({ snapshot: { index: 40, term: 2 }, commit: 40, first: 41, last: 50 });
    expect(look(afterInstall)).toEqual({ snapshot: { index: 60, term: 3 }, commit: 40, first: undefined, last: undefined });
    // A torn image that reopened as "before" is fully usable: the compaction can simply be redone.
    const r = SqliteStorage.open(tornHalf, { ...ID, create: false });
    r.compact({ index: 40, term: 2 }, 30);
    r.close();
    expect(look(tornHalf)).toEqual({ snapshot: { index: 40, term: 2 }, commit: 40, first: 41, last: 50 });
  });

  it('opens a file of schema version 1 and upgrades it only when a snapshot is first recorded', () => {
    makeVersion1Db(path, 30);
    let s = SqliteStorage.open(path, { ...ID, create: false });
    let st = s.load();
    expect(st.snapshot).toBeUndefined();
    expect(st.hardState).toEqual({ term: 2, vote: 1, commit: 25 });
    expect(st.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(Array.from({ length: 30 }, (_, i) => `v1-${i + 1}`));
    s.save({ term: 2, vote: 1, commit: 30 }, entries(31, 40, 2));
    expect(pragmaInt(connection(s), 'auto_vacuum')).toBe(0);
    s.close();
    expect(metaOf(path)).toMatchObject({ schema_version: 1 }); // still readable by the build that wrote it

    s = SqliteStorage.open(path, { ...ID, create: false });
    s.compact({ index: 30, term: 2 }, 20);
    s.close();
    expect(metaOf(path)).toMatchObject({ schema_version: 2, snapshot_index: 30, snapshot_term: 2 });

    s = SqliteStorage.open(path, { ...ID, create: false });
    st = s.load();
    expect(st.snapshot).toEqual({ index: 30, term: 2 });
    expect(st.entries.map((e) => e.index)).toEqual(Array.from({ length: 10 }, (_, i) => 31 + i));
    s.close();
  });

  it('creates files with auto_vacuum=INCREMENTAL and returns freed pages to the file system', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
    const db = connection(s);
    expect(pragmaInt(db, 'auto_vacuum')).toBe(2);
    const data = randomBytes(256);
    let last = 0;
    let peak = 0;
    for (let round = 0; round < 4; round++) {
      for (let b = 0; b < 20; b++) {
        s.save(undefined, Array.from({ length: 500 }, (_, i) => entry(last + 1 + i, 1, data)));
        last += 500;
      }
      peak = Math.max(peak, pragmaInt(db, 'page_count'));
      s.compact({ index: last, term: 1 }, last - 1000);
    }
    // 10,000 entries of 256 bytes fill ~700 pages; the 1,000 retained fill ~75.
    expect(peak).toBeGreaterThan(600);
    expect(pragmaInt(db, 'page_count')).toBeLessThan(150);
    expect(pragmaInt(db, 'freelist_count')).toBeLessThan(VACUUM_MIN_FREE_PAGES);
    s.close();
    expect(fs.statSync(path).size).toBeLessThan(150 * 4096);
    const r = SqliteStorage.open(path, { ...ID, create: false });
    expect(r.load().entries).toEqual([]);
    r.close();
  });

  it('reuses freed pages in a file without auto_vacuum, so it stops growing', () => {
    makeVersion1Db(path, 1);
    const s = SqliteStorage.open(path, { ...ID, create: false, unsafeNoFsync: true });
    const db = connection(s);
    const data = randomBytes(256);
    let last = 1;
    const sizes: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (let b = 0; b < 10; b++) {
        s.save(undefined, Array.from({ length: 500 }, (_, i) => entry(last + 1 + i, 2, data)));
        last += 500;
      }
      s.compact({ index: last, term: 2 }, last - 1000);
      sizes.push(pragmaInt(db, 'page_count'));
    }
    s.close();
    // From round 2 on, each round peaks at the same 6,000 live entries (window + new), in pages
    // that earlier compactions freed: the file stops growing.
    expect(Math.max(...sizes.slice(2))).toBeLessThanOrEqual(Math.ceil(sizes[1]! * 1.05));
  });
});

/** The storage's own descriptor on the -wal, which sync() flushes. */
function walFdOf(s: SqliteStorage): number | undefined {
  return (s as unknown as { walFd: number | undefined }).walFd;
}

describe('GroupCommit', () => {
  /** A flush that completes only when the test says so. */
  function controlledFlush() {
    const flushes: { resolve: () => void; reject: (e: unknown) => void }[] = [];
    const flush = () => new Promise<void>((resolve, reject) => flushes.push({ resolve, reject }));
    return { flushes, group: new GroupCommit(flush) };
  }
  /** Lets settled promises run their callbacks. */
  const settle = () => new Promise<void>((r) => setImmediate(r));
  function watch(p: Promise<void>): () => string {
    let state = 'pending';
    p.then(
      () => (state = 'resolved'),
      () => (state = 'rejected'),
    );
    return () => state;
  }

  it('resolves without a flush when nothing was written since the last completed one', async () => {
    const { flushes, group } = controlledFlush();
    await group.sync();
    expect(flushes).toHaveLength(0);
    group.wrote();
    const p = watch(group.sync());
    expect(flushes).toHaveLength(1);
    flushes[0]!.resolve();
    await settle();
    expect(p()).toBe('resolved');
    await group.sync();
    expect(flushes).toHaveLength(1);
  });

  it('never resolves a sync() by a flush that started before its write', async () => {
    const { flushes, group } = controlledFlush();
    group.wrote();
    const first = watch(group.sync());
    group.wrote(); // lands while flush 1 runs: flush 1 may or may not have it on disk
    const second = watch(group.sync());
    expect(flushes).toHaveLength(1);
    flushes[0]!.resolve();
    await settle();
    expect(first()).toBe('resolved');
    expect(second()).toBe('pending');
    expect(flushes).toHaveLength(2);
    flushes[1]!.resolve();
    await settle();
    expect(second()).toBe('resolved');
  });

  it('sync() calls made while a flush runs share the next one', async () => {
    const { flushes, group } = controlledFlush();
    group.wrote();
    const calls = [watch(group.sync())];
    for (let i = 0; i < 5; i++) {
      group.wrote();
      calls.push(watch(group.sync()), watch(group.sync()));
    }
    expect(flushes).toHaveLength(1);
    flushes[0]!.resolve();
    await settle();
    expect(flushes).toHaveLength(2);
    flushes[1]!.resolve();
    await settle();
    expect(calls.map((c) => c())).toEqual(calls.map(() => 'resolved'));
    expect(flushes).toHaveLength(2);
  });

  it('a synchronous flush (flushed()) settles every pending sync()', async () => {
    const { flushes, group } = controlledFlush();
    group.wrote();
    const a = watch(group.sync());
    group.wrote();
    const b = watch(group.sync());
    group.flushed();
    await settle();
    expect([a(), b()]).toEqual(['resolved', 'resolved']);
    expect(group.dirty).toBe(false);
    flushes[0]!.resolve();
    await settle();
    expect(flushes).toHaveLength(1); // nobody waits: no second flush
  });

  it('a failed flush rejects every pending and later sync()', async () => {
    const { flushes, group } = controlledFlush();
    group.wrote();
    const a = group.sync();
    group.wrote();
    const b = group.sync();
    const error = new Error('EIO');
    flushes[0]!.reject(error);
    await expect(a).rejects.toBe(error);
    await expect(b).rejects.toBe(error);
    await expect(group.sync()).rejects.toBe(error);
    expect(flushes).toHaveLength(1);
  });
});
