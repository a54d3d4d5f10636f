/**
 * Durable append throughput of SqliteStorage (save() then await sync(), as the node commits) against
 * raw better-sqlite3 with synchronous=FULL on the same disk, and how long save() itself blocks the
 * event loop. Each measurement runs for a bounded time and stops by itself.
 *
 *   npx tsc -p . && node build/test/bench/storage-bench.js [seconds-per-measurement=3] [dir=os.tmpdir()]
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Entry } from '../../src/raft/core/types.js';
import { entryChecksum, SqliteStorage } from '../../src/raft/storage/sqlite.js';

const SECONDS = Number(process.argv[2] ?? 3);
const BASE = process.argv[3] ?? os.tmpdir();
const ENTRY_BYTES = 256;
const payload = new Uint8Array(randomBytes(ENTRY_BYTES));

/** The mount that holds `dir`: filesystem type and device, from /proc/mounts (Linux). */
function filesystemOf(dir: string): string {
  const real = fs.realpathSync(dir);
  try {
    let best: { mnt: string; dev: string; type: string; opts: string } | undefined;
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [dev, mnt, type, opts] = line.split(' ');
      if (!dev || !mnt || !type) continue;
      const m = mnt.replace(/\\040/g, ' ');
      const under = m === '/' || real === m || real.startsWith(m + '/');
      if (under && (!best || m.length >= best.mnt.length)) best = { mnt: m, dev, type, opts: opts ?? '' };
    }
    if (best) return `${best.type} on ${best.dev}, mounted at ${best.mnt} (${best.opts})`;
  } catch {
    // not Linux
  }
  return 'unknown filesystem';
}

interface Result {
  ops: number;
  rows: number;
  seconds: number;
  /** How long each save() call held the event loop, in µs (SqliteStorage measurements only). */
  blockedUs?: number[];
}

/** Runs `step` (which returns how many rows it wrote) until `seconds` have passed. */
async function timed(seconds: number, step: () => number | Promise<number>): Promise<Result> {
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let ops = 0;
  let rows = 0;
  let now = start;
  while (now < deadline) {
    rows += await step();
    ops++;
    now = process.hrtime.bigint();
  }
  return { ops, rows, seconds: Number(now - start) / 1e9 };
}

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(join(BASE, 'raftkv-storage-bench-'));
  try {
    return await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Raw better-sqlite3: the same table, WAL, synchronous=FULL (or `sync`); default locking unless `exclusive`. */
function raw(rowsPerTxn: number, exclusive: boolean, seconds: number, sync = 'FULL'): Promise<Result> {
  return withDir(async (dir) => {
    const db = new Database(join(dir, 'raw.db'));
    if (exclusive) db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${sync}`);
    db.exec('CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO log(idx, term, type, data, crc) VALUES (?, ?, ?, ?, ?)');
    let idx = 0;
    const batch = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) insert.run(++idx, 1, 0, payload, 0);
    });
    const r =
      rowsPerTxn === 1
        ? await timed(seconds, () => {
            insert.run(++idx, 1, 0, payload, 0); // autocommit: one transaction per row
            return 1;
          })
        : await timed(seconds, () => {
            batch(rowsPerTxn);
            return rowsPerTxn;
          });
    db.close();
    return r;
  });
}

/**
 * A durable commit as the node makes one: save() with `batch` entries (and the commit index
 * advancing as a leader's would), then await sync(). Records how long each save() blocked.
 */
function storage(batch: number, withHardState: boolean, seconds: number, unsafeNoFsync = false): Promise<Result> {
  return withDir(async (dir) => {
    const s = SqliteStorage.open(join(dir, 'raft.db'), { clusterId: 'bench', nodeId: 1, create: true, unsafeNoFsync });
    const blockedUs: number[] = [];
    let last = 0;
    const r = await timed(seconds, async () => {
      const entries: Entry[] = new Array<Entry>(batch);
      for (let i = 0; i < batch; i++) entries[i] = { index: last + 1 + i, term: 1, type: 'normal', data: payload };
      const t0 = process.hrtime.bigint();
      s.save(withHardState ? { term: 1, vote: 1, commit: last } : undefined, entries);
      blockedUs.push(Number(process.hrtime.bigint() - t0) / 1e3);
      last += batch;
      await s.sync();
      return batch;
    });
    s.close();
    return { ...r, blockedUs };
  });
}

/**
 * Group commit: `writers` concurrent loops, each saving one entry (plus hard state) and awaiting
 * sync() before its next one, as that many independent proposals would. A commit counts once its
 * sync() resolves; saves made while a flush is in flight share the next one.
 */
function groupCommit(writers: number, seconds: number): Promise<Result> {
  return withDir(async (dir) => {
    const s = SqliteStorage.open(join(dir, 'raft.db'), { clusterId: 'bench', nodeId: 1, create: true });
    const blockedUs: number[] = [];
    let last = 0;
    let ops = 0;
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(seconds * 1e9));
    const writer = async () => {
      while (process.hrtime.bigint() < deadline) {
        const t0 = process.hrtime.bigint();
        s.save({ term: 1, vote: 1, commit: last }, [{ index: last + 1, term: 1, type: 'normal', data: payload }]);
        blockedUs.push(Number(process.hrtime.bigint() - t0) / 1e3);
        last++;
        await s.sync();
        ops++;
      }
    };
    await Promise.all(Array.from({ length: writers }, writer));
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    s.close();
    return { ops, rows: ops, seconds: elapsed, blockedUs };
  });
}

function crcRate(): number {
  const deadline = performance.now() + 500;
  let n = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 1000; i++) entryChecksum(n + i, 1, 0, payload);
    n += 1000;
  }
  return n / 0.5;
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

console.log(`SqliteStorage benchmark: ${ENTRY_BYTES}-byte entries, WAL, a commit = save() + await sync(), ${SECONDS} s per measurement`);
console.log(`directory: ${BASE} — ${filesystemOf(BASE)}`);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'} ×${os.cpus().length}`);
console.log(`entry checksum (CRC-32C, ${ENTRY_BYTES} B): ${fmt(crcRate())} entries/s in memory`);
console.log('');

// fsync latency on shared or virtual disks drifts from one second to the next, so the
// measurements are interleaved: ROUNDS rounds, each giving every measurement SECONDS / ROUNDS
// seconds, the two sides of each compared pair back to back (alternating which goes first).
const ROUNDS = 6;
type Unit = 'commits' | 'rows';
interface Measurement {
  key: string;
  label: string;
  unit: Unit;
  run: (sec: number) => Promise<Result>;
}
const GROUP_WRITERS = 16;
const PAIRS: [Measurement, Measurement][] = [
  [
    { key: 'raw1', label: 'raw better-sqlite3, 1 row per commit', unit: 'commits', run: (t) => raw(1, false, t) },
    { key: 'save1', label: 'SqliteStorage, batch 1 + hard state', unit: 'commits', run: (t) => storage(1, true, t) },
  ],
  [
    { key: 'raw256', label: 'raw better-sqlite3, 256 rows per commit', unit: 'rows', run: (t) => raw(256, false, t) },
    { key: 'save256', label: 'SqliteStorage, batch 256 + hard state', unit: 'rows', run: (t) => storage(256, true, t) },
  ],
  [
    { key: 'save16', label: 'SqliteStorage, batch 16 + hard state', unit: 'rows', run: (t) => storage(16, true, t) },
    {
      key: 'group',
      label: `SqliteStorage, ${GROUP_WRITERS} concurrent writers, batch 1`,
      unit: 'commits',
      run: (t) => groupCommit(GROUP_WRITERS, t),
    },
  ],
  [
    { key: 'rawx1', label: 'raw, locking_mode=EXCLUSIVE, 1 row/commit', unit: 'commits', run: (t) => raw(1, true, t) },
    { key: 'rawx256', label: 'raw, locking_mode=EXCLUSIVE, 256 rows/commit', unit: 'rows', run: (t) => raw(256, true, t) },
  ],
  [
    { key: 'off-raw1', label: 'synchronous=OFF (CPU only): raw, 1 row/commit', unit: 'commits', run: (t) => raw(1, false, t, 'OFF') },
    { key: 'off-save1', label: 'synchronous=OFF (CPU only): save, batch 1', unit: 'commits', run: (t) => storage(1, true, t, true) },
  ],
  [
    { key: 'off-raw256', label: 'synchronous=OFF (CPU only): raw, 256 rows/commit', unit: 'rows', run: (t) => raw(256, false, t, 'OFF') },
    { key: 'off-save256', label: 'synchronous=OFF (CPU only): save, batch 256', unit: 'rows', run: (t) => storage(256, true, t, true) },
  ],
];
const rates = new Map<string, { ops: number[]; rows: number[]; blockedUs: number[] }>();
for (let round = 0; round < ROUNDS; round++) {
  for (const pair of PAIRS) {
    for (const m of round % 2 === 0 ? pair : [pair[1], pair[0]]) {
      const r = await m.run(SECONDS / ROUNDS);
      const acc = rates.get(m.key) ?? { ops: [], rows: [], blockedUs: [] };
      acc.ops.push(r.ops / r.seconds);
      acc.rows.push(r.rows / r.seconds);
      for (const us of r.blockedUs ?? []) acc.blockedUs.push(us);
      rates.set(m.key, acc);
    }
  }
}
const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length / 2;
  return s.length % 2 ? s[Math.floor(mid)]! : (s[mid - 1]! + s[mid]!) / 2;
};
const get = (key: string) => rates.get(key)!;
console.log(`median over ${ROUNDS} rounds of ${(SECONDS / ROUNDS).toFixed(2)} s (min–max in brackets)`);
for (const m of PAIRS.flat()) {
  const r = get(m.key);
  const xs = m.unit === 'commits' ? r.ops : r.rows;
  const main = m.unit === 'commits' ? `${fmt(median(r.ops))} commits/s` : `${fmt(median(r.rows))} rows/s (${fmt(median(r.ops))} commits/s)`;
  console.log(`${m.label.padEnd(50)} ${main.padEnd(36)} [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`);
}

// Ratios per round (the two sides ran back to back), then the median.
const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
const ratio256 = ratio(get('save256').rows, get('raw256').rows);
const ratio1 = ratio(get('save1').ops, get('raw1').ops);
console.log('');
console.log(`batch-256 entries/s ÷ raw batched rows/s: ${pct(ratio256)}  (target ≥ 50%) ${ratio256 >= 0.5 ? 'OK' : 'SHORT'}`);
console.log(`batch-1 commits/s ÷ raw commits/s:        ${pct(ratio1)}  (target ≥ 80%) ${ratio1 >= 0.8 ? 'OK' : 'SHORT'}`);
console.log(
  `CPU-only (synchronous=OFF) ratios: batch-256 ${pct(ratio(get('off-save256').rows, get('off-raw256').rows))}, ` +
    `batch-1 ${pct(ratio(get('off-save1').ops, get('off-raw1').ops))}`,
);
console.log(`${GROUP_WRITERS} concurrent writers ÷ one writer, batch 1:     ${ratio(get('group').ops, get('save1').ops).toFixed(1)}×`);

// The time save() holds the event loop: with the flush in sync() this excludes the disk's latency.
const quantile = (xs: number[], q: number) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
console.log('');
console.log(`${'save() blocking the event loop, µs'.padEnd(48)}      p50      p99      max   (samples)`);
for (const key of ['save1', 'save16', 'save256', 'group']) {
  const m = PAIRS.flat().find((x) => x.key === key)!;
  const us = get(key).blockedUs;
  const f = (x: number) => x.toFixed(0).padStart(8);
  console.log(`${m.label.padEnd(48)} ${f(quantile(us, 0.5))} ${f(quantile(us, 0.99))} ${f(us.reduce((a, b) => Math.max(a, b), 0))}   (${us.length})`);
}
