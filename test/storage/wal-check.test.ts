/**
 * The -wal check (src/raft/storage/wal-check.ts) on WALs written by the real SqliteStorage: a
 * crash image is the data dir copied while the storage is open, with its -wal full of frames.
 * Damage that would make SQLite drop committed transactions is refused, leaving every file as it
 * was; what a crash can leave (a torn end, a damaged last frame, garbage after the end) opens, with
 * exactly the transactions SQLite recovers.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRng } from '../../src/raft/core/rng.js';
import { SqliteStorage, StorageError } from '../../src/raft/storage/sqlite.js';
import { walChecksum } from '../../src/raft/storage/wal-check.js';
import { entry } from './conformance.js';

const ID = { clusterId: 'wal-cluster', nodeId: 1 } as const;
const HEADER = 32;
const PAGE = 4096;
const FRAME = 24 + PAGE;
/** Saves in the WAL under test, one transaction each. */
const SAVES = 30;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = fs.mkdtempSync(join(os.tmpdir(), 'raftkv-wal-test-'));
  dirs.push(d);
  return d;
}

/** A crash image: SAVES saves (entry i, commit i), synced; `ends[i]` is the -wal's size after save i. */
interface Image {
  dir: string;
  ends: number[];
}

let original: Image | undefined;
async function image(): Promise<Image> {
  if (!original) {
    const live = tempDir();
    const s = SqliteStorage.open(join(live, 'raft.db'), { ...ID, create: true });
    const ends = [HEADER];
    for (let i = 1; i <= SAVES; i++) {
      s.save({ term: 1, vote: 1, commit: i }, [entry(i, 1, randomBytes(300))]);
      ends.push(fs.statSync(join(live, 'raft.db-wal')).size);
    }
    await s.sync();
    const dir = tempDir();
    for (const f of fs.readdirSync(live)) fs.copyFileSync(join(live, f), join(dir, f));
    s.close();
    original = { dir, ends };
  }
  const copy = tempDir();
  for (const f of fs.readdirSync(original.dir)) fs.copyFileSync(join(original.dir, f), join(copy, f));
  return { dir: copy, ends: original.ends };
}

const walOf = (img: Image): string => join(img.dir, 'raft.db-wal');
const frames = (img: Image): number => (fs.statSync(walOf(img)).size - HEADER) / FRAME;
const frameAt = (k: number): number => HEADER + (k - 1) * FRAME;

function edit(path: string, change: (b: Buffer) => Buffer | void): void {
  const b = fs.readFileSync(path);
  fs.writeFileSync(path, change(b) ?? b);
}

/** Every file in `dir`: name → size and SHA-256. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const bytes = fs.readFileSync(join(dir, f));
    out[f] = `${bytes.length} ${createHash('sha256').update(bytes).digest('hex')}`;
  }
  return out;
}

/** Opens the image: the last entry and the commit index, or the refusal (then nothing changed). */
function open(img: Image): { last: number; commit: number } | StorageError {
  const before = listing(img.dir);
  let s: SqliteStorage;
  try {
    s = SqliteStorage.open(join(img.dir, 'raft.db'), { ...ID, create: false });
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    expect(listing(img.dir), 'a refusal leaves every file as it was').toEqual(before);
    return e as StorageError;
  }
  try {
    const st = s.load();
    return { last: st.entries.at(-1)?.index ?? 0, commit: st.hardState.commit };
  } finally {
    s.close();
  }
}

/** The saves whose frames all lie before byte `at` of the -wal: what SQLite recovers when a frame there fails. */
const savesBefore = (img: Image, at: number): number => img.ends.filter((end, i) => i > 0 && end <= at).length;

/** The log rows SQLite itself sees, without the check (on a copy: it checkpoints). */
function sqliteAlone(img: Image): number {
  const copy = tempDir();
  for (const f of fs.readdirSync(img.dir)) fs.copyFileSync(join(img.dir, f), join(copy, f));
  const db = new Database(join(copy, 'raft.db'));
  try {
    return db.prepare('SELECT count(*) FROM log').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('the -wal check', () => {
  it('an intact crash image opens with every save', async () => {
    const img = await image();
    expect(frames(img)).toBeGreaterThanOrEqual(SAVES);
    expect(open(img)).toEqual({ last: SAVES, commit: SAVES });
  });

  it('100 bytes flipped in the middle: refused, naming the file, the frame and its offset, files unchanged (SQLite alone rolls back)', async () => {
    const img = await image();
    const mid = Math.floor(fs.statSync(walOf(img)).size / 2);
    edit(walOf(img), (b) => {
      for (let i = 0; i < 100; i++) b[mid + i]! ^= 0xff;
    });
    const k = Math.floor((mid - HEADER) / FRAME) + 1;
    const err = open(img) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect(err.code).toBe('CORRUPT');
    expect(err.message).toContain(walOf(img));
    expect(err.message).toContain(`frame ${k} (bytes ${frameAt(k)}..${frameAt(k) + FRAME - 1})`);
    expect(err.message).toMatch(/committed transaction\(s\) after it are intact.*silently drop/);
    expect(err.message).toMatch(/backup/);
    // What the check prevents: SQLite on its own opens it without a word, some saves gone.
    expect(sqliteAlone(img)).toBe(savesBefore(img, frameAt(k)));
    expect(savesBefore(img, frameAt(k))).toBeLessThan(SAVES);
  });

  it('cut anywhere (a write torn at the end): opens with every save whose frames are whole', async () => {
    const rng = seededRng(5);
    const full = await image();
    const size = fs.statSync(walOf(full)).size;
    // In every frame (and the header) one cut, at its start or inside it.
    const cuts = [0, 10, HEADER];
    for (let at = HEADER; at < size; at += FRAME) cuts.push(at + (rng.int(3) === 0 ? 0 : 1 + rng.int(FRAME - 1)));
    for (const at of cuts) {
      const img = await image();
      fs.truncateSync(walOf(img), at);
      const expected = savesBefore(img, at);
      expect(open(img), `cut at byte ${at}`).toEqual({ last: expected, commit: expected });
    }
  });

  it('a damaged last frame opens without the last save; garbage after the end opens with every save, as SQLite reads it', async () => {
    const img = await image();
    const last = frames(img);
    edit(walOf(img), (b) => void (b[frameAt(last) + 24 + 1000]! ^= 0x01));
    expect(open(img)).toEqual({ last: SAVES - 1, commit: SAVES - 1 });

    for (const garbage of [randomBytes(100), randomBytes(3 * FRAME), randomBytes(3 * FRAME + 100)]) {
      const g = await image();
      fs.appendFileSync(walOf(g), garbage);
      expect(sqliteAlone(g)).toBe(SAVES);
      expect(open(g)).toEqual({ last: SAVES, commit: SAVES });
    }
    // Frames of this WAL copied after its end are not garbage: from the second on, each continues
    // the checksum of the one before, so they look like committed transactions SQLite would drop.
    const dup = await image();
    edit(walOf(dup), (b) => Buffer.concat([b, b.subarray(frameAt(1), frameAt(5))]));
    expect(sqliteAlone(dup)).toBe(SAVES);
    expect(open(dup)).toBeInstanceOf(StorageError);
  });

  it('one damaged byte in any frame (body, page number, salt or checksum): refused, unless it is the last frame, whose save is then lost, as in SQLite', async () => {
    const rng = seededRng(11);
    const full = await image();
    const n = frames(full);
    const spots = [() => 24 + rng.int(PAGE), () => rng.int(4), () => 8 + rng.int(8), () => 16 + rng.int(8)];
    for (let k = 1; k <= n; k++) {
      const img = await image();
      const at = frameAt(k) + spots[k % spots.length]!();
      edit(walOf(img), (b) => void (b[at]! ^= 1 << rng.int(8)));
      const r = open(img);
      if (k === n) {
        expect(r, `frame ${k}, byte ${at}`).toEqual({ last: SAVES - 1, commit: SAVES - 1 });
      } else {
        expect(r, `frame ${k}, byte ${at}`).toBeInstanceOf(StorageError);
        expect((r as StorageError).message).toContain(`frame ${k} `);
      }
    }
  });

  it('a damaged header (SQLite would ignore the whole WAL) is refused while committed frames lie behind it; a WAL of garbage opens', async () => {
    for (const at of [0, 3, 9, 12, 17, 22, 26]) {
      const img = await image();
      edit(walOf(img), (b) => void (b[at]! ^= 0x04));
      expect(sqliteAlone(img), `byte ${at}`).toBeLessThan(SAVES);
      const err = open(img) as StorageError;
      expect(err, `byte ${at}`).toBeInstanceOf(StorageError);
      expect(err.message).toMatch(/the WAL header is damaged .*committed transaction\(s\) in it are intact/);
    }
    const img = await image();
    fs.writeFileSync(walOf(img), randomBytes(HEADER + 5 * FRAME));
    expect(open(img)).toMatchObject({ commit: expect.any(Number) as number });
  });

  it('reads checksums over big-endian words when the magic says so (0x377f0683), as SQLite does', async () => {
    const img = await image();
    edit(walOf(img), (b) => toBigEndian(b));
    const damaged = await image();
    fs.copyFileSync(walOf(img), walOf(damaged));
    expect(sqliteAlone(img)).toBe(SAVES);
    expect(open(img)).toEqual({ last: SAVES, commit: SAVES });
    const mid = frameAt(Math.floor(frames(damaged) / 2)) + 24 + 50;
    edit(walOf(damaged), (b) => void (b[mid]! ^= 0x10));
    expect(open(damaged)).toBeInstanceOf(StorageError);
  });

  it('refuses a valid WAL header of another page size or an unknown format version', async () => {
    const pageSize = await image();
    edit(walOf(pageSize), (b) => rewriteHeader(b, (h) => h.writeUInt32BE(8192, 8)));
    expect((open(pageSize) as StorageError).message).toMatch(/page size \(8192\) differs from the database's \(4096\)/);
    const version = await image();
    edit(walOf(version), (b) => rewriteHeader(b, (h) => h.writeUInt32BE(3007001, 4)));
    expect((open(version) as StorageError).message).toMatch(/unknown WAL format version 3007001/);
  });

  it('refuses a database file cut short of a page the WAL does not hold', async () => {
    const img = await image();
    const inWal = new Set<number>();
    const b = fs.readFileSync(walOf(img));
    for (let k = 1; k <= frames(img); k++) inWal.add(b.readUInt32BE(frameAt(k)));
    const db = join(img.dir, 'raft.db');
    const pages = fs.statSync(db).size / PAGE;
    let missing = pages;
    while (inWal.has(missing)) missing--;
    expect(missing).toBeGreaterThan(1);
    fs.truncateSync(db, (missing - 1) * PAGE);
    const err = open(img) as StorageError;
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toMatch(new RegExp(`truncated: .* the WAL does not hold page ${missing}`));
  });
});

describe('SqliteStorage.check', () => {
  it('writes nothing, not even on a crash image; open() then opens what it checked', async () => {
    const img = await image();
    const before = listing(img.dir);
    const checked = SqliteStorage.check(join(img.dir, 'raft.db'), { ...ID, create: false });
    expect(checked.fresh).toBe(false);
    expect(listing(img.dir)).toEqual(before);
    const s = checked.open();
    expect(s.load().entries).toHaveLength(SAVES);
    s.close();
  });

  // inotify: queued as the files change and read by the event loop's next poll phase.
  it.runIf(process.platform === 'linux')('creates no -shm or -wal beside the file, not even for a moment (SQLite reads hard links in a directory of its own)', async () => {
    const clean = tempDir();
    SqliteStorage.open(join(clean, 'raft.db'), { ...ID, create: true }).close();
    for (const [dir, hasWal] of [[(await image()).dir, true], [clean, false]] as const) {
      const before = listing(dir);
      const seen: string[] = [];
      const watcher = fs.watch(dir, (_event, name) => void seen.push(String(name)));
      try {
        SqliteStorage.check(join(dir, 'raft.db'), { ...ID, create: false });
        // A poll phase of the event loop lies between two turns of its check phase: it delivers
        // every event inotify queued during check().
        for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
      } finally {
        watcher.close();
      }
      expect(seen.some((n) => n.startsWith('raft.db.check-')), `the watcher saw the check's own directory: ${seen.join(', ')}`).toBe(true);
      expect(seen.filter((n) => n === 'raft.db-shm' || n === 'raft.db-journal' || (!hasWal && n === 'raft.db-wal'))).toEqual([]);
      expect(listing(dir)).toEqual(before);
    }
  });

  it('a start that goes ahead removes the directory an interrupted check left', async () => {
    const img = await image();
    const left = join(img.dir, 'raft.db.check-AbC123');
    fs.mkdirSync(left);
    fs.linkSync(join(img.dir, 'raft.db'), join(left, 'raft.db'));
    const checked = SqliteStorage.check(join(img.dir, 'raft.db'), { ...ID, create: false });
    expect(fs.existsSync(left)).toBe(true); // a check changes nothing
    checked.open().close();
    expect(fs.readdirSync(img.dir)).toEqual(['raft.db']);
  });

  it('a file that changed between check() and open() is refused (another process is using it)', async () => {
    const img = await image();
    const path = join(img.dir, 'raft.db');
    const checked = SqliteStorage.check(path, { ...ID, create: false });
    const other = SqliteStorage.open(path, { ...ID, create: false });
    other.save(undefined, [entry(SAVES + 1, 1)]);
    other.close();
    let err: unknown;
    try {
      checked.open().close();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('LOCKED');
    expect((err as StorageError).message).toMatch(/changed between its check and its opening/);
  });

  it('a missing file with create: nothing is made until open()', () => {
    const dir = tempDir();
    const checked = SqliteStorage.check(join(dir, 'raft.db'), { ...ID, create: true });
    expect(checked.fresh).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([]);
    checked.open().close();
    expect(fs.readdirSync(dir)).toEqual(['raft.db']);
  });
});

/** Rewrites the header with `change` and a valid checksum (in its byte order). */
function rewriteHeader(b: Buffer, change: (h: Buffer) => void): Buffer {
  const h = b.subarray(0, HEADER);
  change(h);
  const [s1, s2] = walChecksum(h, 0, 24, (h.readUInt32BE(0) & 1) === 1, [0, 0]);
  h.writeUInt32BE(s1, 24);
  h.writeUInt32BE(s2, 28);
  return b;
}

/** The same WAL with big-endian checksums: the magic, the header's checksum and every frame's, chained. */
function toBigEndian(b: Buffer): Buffer {
  rewriteHeader(b, (h) => h.writeUInt32BE(0x377f0683, 0));
  let sum: [number, number] = [b.readUInt32BE(24), b.readUInt32BE(28)];
  for (let at = HEADER; at + FRAME <= b.length; at += FRAME) {
    sum = walChecksum(b, at + 24, at + FRAME, true, walChecksum(b, at, at + 8, true, sum));
    b.writeUInt32BE(sum[0], at + 16);
    b.writeUInt32BE(sum[1], at + 20);
  }
  return b;
}
