import * as fs from 'node:fs';
import { ADVICE_CORRUPT, StorageError } from './storage-error.js';

/**
 * The -wal file read by hand, before SQLite sees it (https://sqlite.org/fileformat2.html#walformat).
 *
 * SQLite's recovery replays the frames of the WAL header's generation (salts) whose cumulative
 * checksum holds, up to the last commit frame among them; the first frame that fails ends the log,
 * silently. After a power loss that is right: the frames written after the last flush may be torn,
 * and dropping them drops only transactions nobody was told were durable. But when a frame in the
 * middle is damaged (a flipped bit, a bad sector, a bad copy), SQLite drops every transaction after
 * it as well, and a node that forgets entries it acknowledged can help elect a leader that lacks
 * committed entries. So this check refuses a WAL in which a transaction SQLite would drop is still
 * intact behind the frame that stops recovery: a frame of the same generation, ending a transaction,
 * whose own checksum holds. Tearing leaves nothing like that (a commit is the last frame its
 * transaction writes); damage in the middle does. A damaged header is judged the same way: SQLite
 * ignores the whole file then.
 *
 * What this cannot tell apart (and refuses): a power loss whose disk wrote a later frame but not an
 * earlier one of the same unflushed batch, leaving a hole in the middle of a frame. Writes are
 * flushed in order and a hole needs the disk (or a copy racing with the flush) to reorder them; a
 * refusal then costs a rejoin, where a silent rollback would cost committed data.
 *
 * Not a concern here: a transaction larger than SQLite's page cache may rewrite one of its frames
 * in place and fix the checksums only at its commit; until then its later frames carry zero salts,
 * commit frame included, so nothing of it counts as intact and a crash meanwhile passes this check.
 */

const WAL_MAGIC = 0x377f0682; // | 1: checksums over big-endian words
const WAL_VERSION = 3007000;
const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;

/** What SQLite's recovery will make of the WAL. */
export interface WalReplay {
  /** Frames 1..replayed are replayed (0: none, the database file alone is the database). */
  replayed: number;
  /** The database's size in pages after them (0 when nothing is replayed). */
  dbPages: number;
  /** The pages they hold. */
  pages: Set<number>;
}

const nothing = (): WalReplay => ({ replayed: 0, dbPages: 0, pages: new Set() });

type Sum = [s1: number, s2: number];
type Salts = [salt1: number, salt2: number];

/**
 * SQLite's WAL checksum of b[start, end) (a multiple of 8 bytes), continuing from `seed`: 32-bit
 * words in the byte order the header's magic names, summed Fletcher-style modulo 2^32.
 */
export function walChecksum(b: Uint8Array, start: number, end: number, bigEndian: boolean, seed: Sum): Sum {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength); // ~15x faster than Buffer.readUInt32LE here
  const little = !bigEndian;
  let [s1, s2] = seed;
  for (let i = start; i < end; i += 8) {
    s1 = (s1 + v.getUint32(i, little) + s2) >>> 0;
    s2 = (s2 + v.getUint32(i + 4, little) + s1) >>> 0;
  }
  return [s1, s2];
}

/** The generation a walk follows: its salts, the checksum byte order and the seed of frame 1. */
interface Generation {
  salts: Salts;
  bigEndian: boolean;
  /** The header's checksum as stored, and as computed (they differ only in a damaged header). */
  storedSeed: Sum;
  computedSeed: Sum;
  pageSize: number;
}

/** One walk over the frames, as SQLite recovers them and, past where it stops, what it would drop. */
interface Walk {
  replay: WalReplay;
  /** The frame that ends recovery (0: none did), and why. */
  stop: number;
  why: string;
  /** Frames after `stop` that are intact on their own and end a transaction. */
  lostCommits: number;
  firstLostCommit: number;
  lastLostCommit: number;
}

/**
 * Checks `dbPath`-wal against SQLite's recovery rules and returns what recovery will replay.
 * Throws StorageError (CORRUPT) when recovery would drop a committed transaction that is intact,
 * or when the file cannot be a WAL of this database. Only reads.
 */
export function checkWal(dbPath: string, dbPageSize: number): WalReplay {
  const walPath = `${dbPath}-wal`;
  const st = fs.statSync(walPath, { throwIfNoEntry: false });
  if (!st) return nothing();
  if (!st.isFile()) throw corrupt(dbPath, `${walPath} is not a regular file`);
  if (st.size <= WAL_HEADER_BYTES) return nothing(); // SQLite reads no frames from it

  const fd = fs.openSync(walPath, 'r');
  try {
    const header = readAt(fd, WAL_HEADER_BYTES, 0, st.size)!;
    const magic = header.readUInt32BE(0);
    const pageSize = header.readUInt32BE(8);
    const bigEndian = (magic & 1) === 1;
    const computed = walChecksum(header, 0, 24, bigEndian, [0, 0]);
    const stored: Sum = [header.readUInt32BE(24), header.readUInt32BE(28)];
    const magicOk = (magic & 0xfffffffe) >>> 0 === WAL_MAGIC;
    const problem = !magicOk
      ? `bad magic number 0x${magic.toString(16).padStart(8, '0')}`
      : !validPageSize(pageSize)
        ? `invalid page size ${pageSize}`
        : computed[0] !== stored[0] || computed[1] !== stored[1]
          ? 'its checksum does not match'
          : undefined;
    const gen: Generation = {
      salts: [header.readUInt32BE(16), header.readUInt32BE(20)],
      bigEndian,
      storedSeed: stored,
      computedSeed: computed,
      pageSize: dbPageSize,
    };
    if (problem !== undefined) {
      // SQLite ignores the whole WAL: harmless unless committed frames lie behind the header.
      const walk = intactBehindDamagedHeader(fd, st.size, gen, magicOk);
      if (walk) {
        throw corrupt(
          dbPath,
          `${walPath}: the WAL header is damaged (${problem}), so SQLite would ignore the whole file, yet ` +
            `${walk.lostCommits} committed transaction(s) in it are intact (${commitFrames(walk)}): opening the database would ` +
            'silently roll it back to before them.',
        );
      }
      return nothing();
    }
    const version = header.readUInt32BE(4);
    if (version !== WAL_VERSION) {
      throw corrupt(dbPath, `${walPath}: unknown WAL format version ${version} (SQLite writes ${WAL_VERSION}), so it cannot be read.`);
    }
    if (pageSize !== dbPageSize) {
      throw corrupt(
        dbPath,
        `${walPath}: its page size (${pageSize}) differs from the database's (${dbPageSize}): it is not this database's WAL, or it is damaged.`,
      );
    }
    const walk = walFrames(fd, st.size, gen, 1);
    if (walk.lostCommits > 0) {
      const frameBytes = FRAME_HEADER_BYTES + pageSize;
      const at = WAL_HEADER_BYTES + (walk.stop - 1) * frameBytes;
      throw corrupt(
        dbPath,
        `${walPath}: frame ${walk.stop} (bytes ${at}..${at + frameBytes - 1}) is damaged (${walk.why}), but ` +
          `${walk.lostCommits} committed transaction(s) after it are intact (${commitFrames(walk)}). ` +
          `SQLite would stop at frame ${walk.stop} and silently drop them, rolling the log back. A crash tears the last ` +
          'writes of a WAL, not what lies before intact commits: this is damage to data that was already written.',
      );
    }
    return walk.replay;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The frames behind a damaged header, walked with its stored checksum as the seed, under its
 * salts or (if those are what was damaged) the first frame's, and in either byte order if the
 * magic is gone: the first walk that finds intact committed frames, if any does.
 */
function intactBehindDamagedHeader(fd: number, size: number, gen: Generation, magicOk: boolean): Walk | undefined {
  const orders = magicOk ? [gen.bigEndian] : [false, true];
  const salts = [gen.salts];
  const firstFrame = readAt(fd, 8, WAL_HEADER_BYTES + 8, size);
  if (firstFrame) salts.push([firstFrame.readUInt32BE(0), firstFrame.readUInt32BE(4)]);
  for (const bigEndian of orders) {
    for (const s of salts) {
      const walk = walFrames(fd, size, { ...gen, salts: s, bigEndian }, 0);
      if (walk.lostCommits > 0) return walk;
    }
  }
  return undefined;
}

/**
 * Walks every whole frame. `trusted` is 1 when the header is valid (recovery follows the frames
 * from the first) and 0 when SQLite ignores the file (every frame is "after the stop").
 */
function walFrames(fd: number, fileSize: number, gen: Generation, trusted: 0 | 1): Walk {
  const frameBytes = FRAME_HEADER_BYTES + gen.pageSize;
  const frames = Math.floor((fileSize - WAL_HEADER_BYTES) / frameBytes);
  const buf = Buffer.alloc(frameBytes);
  const walk: Walk = { replay: nothing(), stop: trusted ? 0 : 1, why: '', lostCommits: 0, firstLostCommit: 0, lastLostCommit: 0 };
  const pending: number[] = []; // pages of the replayed frames since the last commit
  // A frame's checksum continues from the previous frame's. Past a damaged frame, its stored
  // checksum still seeds the next one (the damage was in its body), or the checksum computed over
  // it does (the damage was in its stored checksum).
  let storedPrev = gen.storedSeed;
  let computedPrev = gen.computedSeed;
  for (let k = 1; k <= frames; k++) {
    readInto(fd, buf, WAL_HEADER_BYTES + (k - 1) * frameBytes);
    const pgno = buf.readUInt32BE(0);
    const commitPages = buf.readUInt32BE(4);
    const saltsMatch = buf.readUInt32BE(8) === gen.salts[0] && buf.readUInt32BE(12) === gen.salts[1];
    const stored: Sum = [buf.readUInt32BE(16), buf.readUInt32BE(20)];
    const sum = (seed: Sum): Sum => walChecksum(buf, FRAME_HEADER_BYTES, frameBytes, gen.bigEndian, walChecksum(buf, 0, 8, gen.bigEndian, seed));
    const fromStored = sum(storedPrev);
    const sumOk = fromStored[0] === stored[0] && fromStored[1] === stored[1];
    if (walk.stop === 0) {
      // Still in recovery's run: here the stored checksums are the computed ones.
      if (saltsMatch && pgno !== 0 && sumOk) {
        pending.push(pgno);
        if (commitPages !== 0) {
          walk.replay.replayed = k;
          walk.replay.dbPages = commitPages;
          for (const p of pending.splice(0)) walk.replay.pages.add(p);
        }
      } else {
        walk.stop = k;
        walk.why = !saltsMatch ? 'its salt is not the WAL header\'s' : pgno === 0 ? 'page number 0' : 'its checksum does not match';
      }
    } else if (saltsMatch && pgno !== 0 && commitPages !== 0) {
      const fromComputed = sumOk ? fromStored : sum(computedPrev);
      if (sumOk || (fromComputed[0] === stored[0] && fromComputed[1] === stored[1])) {
        walk.lostCommits++;
        walk.firstLostCommit ||= k;
        walk.lastLostCommit = k;
      }
    }
    computedPrev = fromStored;
    storedPrev = stored;
  }
  return walk;
}

function commitFrames(walk: Walk): string {
  return walk.firstLostCommit === walk.lastLostCommit
    ? `its commit frame is frame ${walk.firstLostCommit}`
    : `their commit frames lie in frames ${walk.firstLostCommit}..${walk.lastLostCommit}`;
}

function validPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** `length` bytes at `position`, or undefined if the file (of `size` bytes) ends before. */
function readAt(fd: number, length: number, position: number, size: number): Buffer | undefined {
  if (position + length > size) return undefined;
  const b = Buffer.alloc(length);
  readInto(fd, b, position);
  return b;
}

function readInto(fd: number, b: Buffer, position: number): void {
  let got = 0;
  while (got < b.length) {
    const n = fs.readSync(fd, b, got, b.length - got, position + got);
    if (n === 0) throw new Error(`short read at ${position + got}`); // the file shrank while being read
    got += n;
  }
}

function corrupt(dbPath: string, what: string): StorageError {
  return new StorageError('CORRUPT', dbPath, `${what} ${ADVICE_CORRUPT}`);
}
