import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRng } from '../../src/raft/core/rng.js';
import { crc32c } from '../../src/raft/storage/crc32c.js';
import { decodeCommand, encodeCommand, type Command, type WriteOp } from '../../src/server/command.js';
import { systemClock } from '../../src/clock.js';
import { nodeFileSystem } from '../../src/files.js';
import type { SnapshotMeta } from '../../src/raft/core/types.js';
import { decodeSnapshot, decodeSnapshotAsync } from '../../src/server/snapshot/decode.js';
import { encodeSnapshot as encodeSliced } from '../../src/server/snapshot/encode.js';
import {
  listSnapshots,
  readLatestSnapshot,
  removeLeftoverTemps,
  snapshotFileName,
  writeSnapshot,
  type WriteSnapshotOptions,
} from '../../src/server/snapshot/files.js';
import {
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_BYTES,
  SnapshotError,
  type SnapshotErrorCode,
  type SnapshotIds,
} from '../../src/server/snapshot/format.js';
import { KvStateMachine, type CapturedState, type WriteResult } from '../../src/server/state-machine.js';

const IDS = { clusterId: 'test-cluster', nodeId: 3 };

const encodeSnapshot = (meta: SnapshotMeta, state: CapturedState, ids: SnapshotIds): Promise<Uint8Array> =>
  encodeSliced(meta, state, ids, systemClock.slicer());

/** The file functions on a real directory `dir`, with absolute paths. */
function onDisk(dir: string): { fs: ReturnType<typeof nodeFileSystem>; dir: string; abs: (p: string) => string } {
  const parent = nodePath.dirname(dir);
  return { fs: nodeFileSystem(parent), dir: nodePath.basename(dir), abs: (p) => nodePath.join(parent, p) };
}
async function write(dir: string, meta: SnapshotMeta, state: CapturedState, ids: SnapshotIds, opts?: WriteSnapshotOptions) {
  const d = onDisk(dir);
  const w = await writeSnapshot(d.fs, d.dir, meta, state, ids, systemClock.slicer(), opts);
  return { ...w, path: d.abs(w.path) };
}
async function readLatest(dir: string, ids: SnapshotIds, opts = { onWarning: (_m: string): void => {} }) {
  const d = onDisk(dir);
  const r = await readLatestSnapshot(d.fs, d.dir, ids, opts);
  return r && { ...r, path: d.abs(r.path) };
}
async function list(dir: string) {
  const d = onDisk(dir);
  return (await listSnapshots(d.fs, d.dir)).map((f) => ({ ...f, path: d.abs(f.path) }));
}
const EMPTY = new Uint8Array(0);

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-snap-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A plain, comparable picture of a captured state (keys and short values as hex). */
function plain(s: CapturedState): unknown {
  const show = (s: string): string => {
    const v = Buffer.from(s, 'latin1');
    return v.length <= 512 ? v.toString('hex') : `${v.length} bytes, crc ${crc32c(v)}`;
  };
  return {
    pairs: s.keys.map((k, i) => [Buffer.from(k, 'latin1').toString('hex'), show(s.values[i]!)]),
    sessions: s.sessions.map((x) => ({ ...x, results: x.results.map(([seq, r]) => [seq, { ...r }]) })),
    clockMs: s.clockMs,
    lastExpiryMs: s.lastExpiryMs,
  };
}

function expectSnapshotError(f: () => unknown, code: SnapshotErrorCode): SnapshotError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SnapshotError);
    expect((e as SnapshotError).code).toBe(code);
    return e as SnapshotError;
  }
  throw new Error(`expected a SnapshotError ${code}`);
}

// ---- a random workload ------------------------------------------------------------------

interface Client {
  id: number;
  nextSeq: number;
  firstIncomplete: number;
  sent: Map<number, Command>;
}

/**
 * Random commands as a leader would log them: several clients with pipelined requests, retries
 * (inside and below their window), clients that disappear and come back after their session
 * expired, new clients, binary keys, appends that grow values in place, and leader clocks that
 * jump forward (and sometimes lag a little).
 */
function workload(seed: number, count: number, ttlMs: number): Command[] {
  const rng = seededRng(seed);
  const keys = [
    new Uint8Array([0]),
    new Uint8Array([0xff]),
    new Uint8Array([0x61]),
    new Uint8Array([0x61, 0]),
    new Uint8Array([0xc3, 0xbf]),
    Buffer.from('k1'),
    Buffer.from('k2'),
    Buffer.from('k3'),
  ];
  const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => rng.int(256));
  const clients: Client[] = [];
  let nextClient = 1;
  let t = 1_000;
  const out: Command[] = [];
  const encode = (c: Command): Command => decodeCommand(encodeCommand(c));
  while (out.length < count) {
    const r = rng.next();
    if (r < 0.02) t += ttlMs + rng.int(3 * ttlMs); // long silence: sessions expire
    else if (r < 0.1) t += rng.int(120_000);
    else t += rng.int(50);
    const stamp = rng.next() < 0.05 ? t - rng.int(5_000) : t; // a leader with a lagging clock
    if (clients.length === 0 || rng.next() < 0.03) clients.push({ id: nextClient++, nextSeq: 1, firstIncomplete: 1, sent: new Map() });
    const c = clients[rng.int(clients.length)]!;
    if (c.sent.size > 0 && rng.next() < 0.25) {
      // A retry of something it sent before, as it was sent, with the client's current window.
      const seqs = [...c.sent.keys()];
      const seq = seqs[rng.int(seqs.length)]!;
      const orig = c.sent.get(seq)!;
      out.push(encode({ ...orig, leaderTimeMs: stamp, firstIncomplete: Math.min(c.firstIncomplete, seq) }));
      continue;
    }
    const seq = c.nextSeq++;
    if (rng.next() < 0.5) c.firstIncomplete = c.firstIncomplete + rng.int(seq - c.firstIncomplete + 1);
    const op = (['put', 'append', 'append', 'delete', 'cas'] as const)[rng.int(5)]!;
    const key = keys[rng.int(keys.length)]!;
    const value = rng.next() < 0.1 ? EMPTY : bytes(1 + rng.int(rng.next() < 0.1 ? 300 : 12));
    const expected = op === 'cas' && rng.next() < 0.5 ? EMPTY : bytes(rng.int(3));
    const cmd: Command = { op, clientId: c.id, seq, firstIncomplete: c.firstIncomplete, leaderTimeMs: stamp, key, value, expected };
    c.sent.set(seq, cmd);
    out.push(encode(cmd));
  }
  return out;
}

/** Runs `rest` on every machine, checking they answer alike and end alike; returns the answers. */
function expectSameBehaviour(machines: KvStateMachine[], rest: Command[], allKeys: Uint8Array[]): WriteResult[] {
  const [first, ...others] = machines;
  const answers: WriteResult[] = [];
  for (const [i, cmd] of rest.entries()) {
    const want = first!.apply(cmd);
    answers.push(want);
    const wantJson = JSON.stringify(want);
    for (const m of others) {
      const got = m.apply(cmd);
      if (JSON.stringify(got) !== wantJson) expect(got, `answer to command ${i}`).toEqual(want);
    }
    for (const key of allKeys) {
      const v = hex(first!.get(key));
      for (const m of others) if (hex(m.get(key)) !== v) expect(hex(m.get(key)), `key ${hex(key)} after command ${i}`).toBe(v);
    }
    for (const m of others) if (m.sessionCount !== first!.sessionCount) expect(m.sessionCount, `sessions after command ${i}`).toBe(first!.sessionCount);
  }
  for (const m of others) expect(plain(m.capture())).toEqual(plain(first!.capture()));
  return answers;
}

function hex(v: Uint8Array | undefined): string | undefined {
  return v === undefined ? undefined : Buffer.from(v).toString('hex');
}

describe('KvStateMachine capture and restore', () => {
  const TTL = 5 * 60_000;

  it('a restored machine (in memory, and through snapshot bytes) behaves like the original on random further commands', async () => {
    let retries = 0;
    const kinds = new Map<string, number>();
    for (let seed = 1; seed <= 25; seed++) {
      const cmds = workload(seed, 1_200, TTL);
      const cut = 100 + seededRng(seed * 7919).int(900);
      const original = new KvStateMachine(TTL);
      for (const c of cmds.slice(0, cut)) original.apply(c);
      const captured = original.capture();
      const frozen = plain(captured);
      const bytes = await encodeSnapshot({ index: cut, term: 2 }, captured, IDS);
      const fromMemory = KvStateMachine.restore(captured, TTL);
      const fromBytes = KvStateMachine.restore(decodeSnapshot(bytes, IDS).state, TTL);
      const fromBytesAsync = await KvStateMachine.restoreAsync((await decodeSnapshotAsync(bytes, IDS, systemClock.slicer())).state, systemClock.slicer(), TTL);
      expect(plain(fromBytes.capture())).toEqual(frozen);

      const seen = new Set(cmds.slice(0, cut).map((c) => `${c.clientId}/${c.seq}`));
      for (const c of cmds.slice(cut)) {
        const id = `${c.clientId}/${c.seq}`;
        if (seen.has(id)) retries++;
        seen.add(id);
      }
      const allKeys = [...new Set(cmds.map((c) => hex(c.key)!))].map((h) => Buffer.from(h, 'hex'));
      const answers = expectSameBehaviour([original, fromMemory, fromBytes, fromBytesAsync], cmds.slice(cut), allKeys);
      for (const a of answers) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
      // The capture is a frozen view: the original moved on (appending in place), it did not.
      expect(plain(captured)).toEqual(frozen);
    }
    // The workload did exercise retries, expiry and every kind of answer after the restore.
    expect(retries).toBeGreaterThan(100);
    for (const kind of ['ok', 'deleted', 'cas', 'sessionExpired']) expect(kinds.get(kind), kind).toBeGreaterThan(10);
  });

  it('restores the session clock: sweeps and idle times after a restore are exactly as they would have been', () => {
    const ttl = 100_000;
    const cmd = (client: number, seq: number, t: number, fi = seq): Command =>
      decodeCommand(
        encodeCommand({ op: 'put', clientId: client, seq, firstIncomplete: fi, leaderTimeMs: t, key: Buffer.from('k'), value: Buffer.from('v'), expected: EMPTY }),
      );
    const a = new KvStateMachine(ttl);
    a.apply(cmd(1, 1, 0));
    a.apply(cmd(2, 1, 70_000)); // a sweep at 70 000 (client 1 idle 70 000 ≤ TTL: kept); the next is due at 130 000
    const b = KvStateMachine.restore(a.capture(), ttl);
    for (const m of [a, b]) {
      // Client 1 has been idle past its TTL, but no sweep is due yet: still served.
      m.apply(cmd(2, 2, 120_000));
      expect(m.sessionCount).toBe(2);
      expect(m.apply(cmd(1, 2, 125_000, 2))).toEqual({ kind: 'ok' });
      // A lagging leader's stamp does not move the clock back: client 3 is active as of 125 000.
      m.apply(cmd(3, 1, 10));
      // The sweep at 221 000 drops client 2 (idle 101 000), keeps 1 and 3 (idle 96 000).
      m.apply(cmd(1, 3, 221_000, 3));
      expect(m.sessionCount).toBe(2);
      expect(m.apply(cmd(2, 3, 221_001, 3))).toEqual({ kind: 'sessionExpired' });
      expect(m.apply(cmd(3, 2, 221_002, 2))).toEqual({ kind: 'ok' });
    }
    expect(plain(b.capture())).toEqual(plain(a.capture()));
  });

  it('a restored machine never writes into buffers the original may still grow', () => {
    const put = (op: WriteOp, seq: number, v: string): Command =>
      decodeCommand(
        encodeCommand({ op, clientId: 1, seq, firstIncomplete: seq, leaderTimeMs: 0, key: Buffer.from('k'), value: Buffer.from(v), expected: EMPTY }),
      );
    const a = new KvStateMachine();
    for (let seq = 1; seq <= 10; seq++) a.apply(put('append', seq, 'x')); // spare room after the value
    const b = KvStateMachine.restore(a.capture());
    a.apply(put('append', 11, 'A'));
    b.apply(put('append', 11, 'B'));
    expect(Buffer.from(a.get(Buffer.from('k'))!).toString()).toBe('xxxxxxxxxxA');
    expect(Buffer.from(b.get(Buffer.from('k'))!).toString()).toBe('xxxxxxxxxxB');
  });

  it('refuses a state that lists a key twice', () => {
    expect(() => KvStateMachine.restore({ keys: ['a', 'a'], values: ['v', 'v'], sessions: [], clockMs: 0, lastExpiryMs: 0 })).toThrow(/more than once/);
  });
});

// ---- the snapshot format ------------------------------------------------------------------

/** Every byte value in keys and values, empty values, a value bigger than a write chunk, all result kinds. */
function sampleState(): CapturedState {
  const keys: string[] = [];
  const values: string[] = [];
  const add = (k: Uint8Array, v: Uint8Array): void => {
    keys.push(Buffer.from(k).toString('latin1'));
    values.push(Buffer.from(v).toString('latin1'));
  };
  for (let b = 0; b < 256; b++) add(new Uint8Array([b]), b % 7 === 0 ? EMPTY : Uint8Array.from({ length: b }, (_, i) => (i * 31 + b) & 0xff));
  add(Uint8Array.from({ length: 256 }, (_, i) => 255 - i), new Uint8Array([0, 0, 0]));
  add(Buffer.from('big'), Uint8Array.from({ length: 1_500_000 }, (_, i) => (i * 7) & 0xff));
  add(Buffer.from('empty'), EMPTY);
  return {
    keys,
    values,
    sessions: [
      { clientId: 1, firstIncomplete: 1, lastActiveMs: 0, results: [] },
      {
        clientId: Number.MAX_SAFE_INTEGER,
        firstIncomplete: 2 ** 40,
        lastActiveMs: 1_700_000_000_123.5,
        results: [
          [2 ** 40, { kind: 'ok' }],
          [2 ** 40 + 1, { kind: 'deleted', existed: true }],
          [2 ** 40 + 2, { kind: 'deleted', existed: false }],
          [2 ** 40 + 3, { kind: 'cas', swapped: true }],
          [2 ** 40 + 4, { kind: 'cas', swapped: false }],
          [2 ** 40 + 5, { kind: 'sessionExpired' }],
        ],
      },
      { clientId: 77, firstIncomplete: 5, lastActiveMs: 12, results: [[5, { kind: 'ok' }]] },
    ],
    clockMs: 1_700_000_000_456.25,
    lastExpiryMs: 1_700_000_000_000,
  };
}

/** A small state, for exhaustive damage tests. */
function smallState(): CapturedState {
  return {
    keys: ['a', '\u0000\u00ff', 'e'],
    values: ['\u0001\u0002\u0003', '\u0009', ''],
    sessions: [{ clientId: 4, firstIncomplete: 2, lastActiveMs: 99, results: [[2, { kind: 'cas', swapped: true }]] }],
    clockMs: 100,
    lastExpiryMs: 60,
  };
}

describe('snapshot encoding', () => {
  it('round-trips binary keys and values, empty values, sessions with results, and the clock', async () => {
    const state = sampleState();
    const bytes = await encodeSnapshot({ index: 123_456, term: 7 }, state, IDS);
    const d = decodeSnapshot(bytes, IDS);
    expect(d.meta).toEqual({ formatVersion: SNAPSHOT_FORMAT_VERSION, clusterId: IDS.clusterId, nodeId: IDS.nodeId, index: 123_456, term: 7 });
    expect(plain(d.state)).toEqual(plain(state));
    const a = await decodeSnapshotAsync(bytes, IDS, systemClock.slicer(0));
    expect(plain(a.state)).toEqual(plain(state));
    expect(a.meta).toEqual(d.meta);
  });

  it('decodes into strings of their own: later changes to the bytes do not leak in', async () => {
    const bytes = await encodeSnapshot({ index: 1, term: 1 }, smallState(), IDS);
    const d = decodeSnapshot(bytes, IDS);
    bytes.fill(0);
    expect(d.state.values[0]).toBe('\u0001\u0002\u0003');
  });

  it('is a protobuf raftkv.snapshot.Snapshot behind a 24-byte header (read back with protobufjs)', async () => {
    const state = smallState();
    const bytes = await encodeSnapshot({ index: 2 ** 40 + 3, term: 9 }, state, IDS);
    const header = new DataView(bytes.buffer, bytes.byteOffset, SNAPSHOT_HEADER_BYTES);
    expect(Buffer.from(bytes.subarray(0, 4)).toString('latin1')).toBe('RKVS');
    expect(header.getUint32(4, true)).toBe(SNAPSHOT_FORMAT_VERSION);
    expect(header.getUint32(8, true) + header.getUint32(12, true) * 2 ** 32).toBe(bytes.length - SNAPSHOT_HEADER_BYTES);
    expect(header.getUint32(16, true)).toBe(crc32c(bytes.subarray(SNAPSHOT_HEADER_BYTES)));

    const root = protobuf.loadSync(fileURLToPath(new URL('../../proto/snapshot.proto', import.meta.url)));
    const Snapshot = root.lookupType('raftkv.snapshot.Snapshot');
    const msg = Snapshot.toObject(Snapshot.decode(bytes.subarray(SNAPSHOT_HEADER_BYTES)), {
      longs: Number,
      enums: String,
      bytes: Array,
      defaults: true,
    });
    expect(msg).toEqual({
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      clusterId: IDS.clusterId,
      nodeId: IDS.nodeId,
      lastIndex: 2 ** 40 + 3,
      lastTerm: 9,
      clockMs: 100,
      lastExpiryMs: 60,
      keyCount: 3,
      sessions: [{ clientId: 4, firstIncomplete: 2, lastActiveMs: 99, results: [{ seq: 2, kind: 'RESULT_CAS', flag: true }] }],
      pairs: [
        { key: [0x61], value: [1, 2, 3] },
        { key: [0, 0xff], value: [9] },
        { key: [0x65], value: [] },
      ],
      conf: null, // none given: not written (snapshot-conf.test.ts has one)
      members: [], // no member table: none written (members.test.ts has one)
      removedIds: [],
    });
    // And the other way: protobufjs's own encoding of the body decodes the same (field order, defaults left out).
    const body = Snapshot.encode(Snapshot.fromObject(msg)).finish();
    const rebuilt = new Uint8Array(SNAPSHOT_HEADER_BYTES + body.length);
    rebuilt.set(bytes.subarray(0, SNAPSHOT_HEADER_BYTES));
    rebuilt.set(body, SNAPSHOT_HEADER_BYTES);
    const v = new DataView(rebuilt.buffer);
    v.setUint32(8, body.length, true);
    v.setUint32(16, crc32c(body), true);
    v.setUint32(20, crc32c(rebuilt.subarray(0, 20)), true);
    expect(plain(decodeSnapshot(rebuilt, IDS).state)).toEqual(plain(state));
  });

  it('any flipped bit is caught (every byte of a small snapshot, and bytes across a large one)', async () => {
    const small = await encodeSnapshot({ index: 5, term: 1 }, smallState(), IDS);
    for (let i = 0; i < small.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const damaged = Uint8Array.from(small);
        damaged[i]! ^= bit;
        expectSnapshotError(() => decodeSnapshot(damaged, IDS), 'CORRUPT');
      }
    }
    const large = await encodeSnapshot({ index: 5, term: 1 }, sampleState(), IDS);
    const rng = seededRng(42);
    for (let n = 0; n < 40; n++) {
      const damaged = large.slice();
      damaged[rng.int(large.length)]! ^= 1 << rng.int(8);
      expectSnapshotError(() => decodeSnapshot(damaged, IDS), 'CORRUPT');
      await expect(decodeSnapshotAsync(damaged, IDS, systemClock.slicer())).rejects.toMatchObject({ code: 'CORRUPT' });
    }
  });

  it('any truncation, and any bytes appended, are caught', async () => {
    const bytes = await encodeSnapshot({ index: 5, term: 1 }, smallState(), IDS);
    for (let n = 0; n < bytes.length; n++) {
      const e = expectSnapshotError(() => decodeSnapshot(bytes.subarray(0, n), IDS), 'CORRUPT');
      if (n >= SNAPSHOT_HEADER_BYTES) expect(e.message).toMatch(/truncated/);
    }
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expectSnapshotError(() => decodeSnapshot(longer, IDS), 'CORRUPT');
  });

  it('refuses another cluster, another node (unless the node is left out), and another format version', async () => {
    const bytes = await encodeSnapshot({ index: 5, term: 1 }, smallState(), IDS);
    expect(expectSnapshotError(() => decodeSnapshot(bytes, { clusterId: 'other', nodeId: 3 }), 'WRONG_CLUSTER').message).toMatch(
      /cluster "test-cluster".*cluster "other"/,
    );
    expectSnapshotError(() => decodeSnapshot(bytes, { clusterId: IDS.clusterId, nodeId: 1 }), 'WRONG_NODE');
    expect(decodeSnapshot(bytes, { clusterId: IDS.clusterId }).meta.nodeId).toBe(3); // from the leader
    const newer = Uint8Array.from(bytes);
    const v = new DataView(newer.buffer);
    v.setUint32(4, SNAPSHOT_FORMAT_VERSION + 1, true);
    v.setUint32(20, crc32c(newer.subarray(0, 20)), true);
    expectSnapshotError(() => decodeSnapshot(newer, IDS), 'VERSION');
  });

  it('refuses to write what it could not read back exactly', async () => {
    const state = smallState();
    await expect(encodeSnapshot({ index: 1.5, term: 1 }, state, IDS)).rejects.toThrow(/index/);
    await expect(encodeSnapshot({ index: 1, term: 1 }, state, { clusterId: 'c', nodeId: -1 })).rejects.toThrow(/node id/);
  });
});

// ---- files ----------------------------------------------------------------------------------

function flipByte(path: string, at: number): void {
  const b = fs.readFileSync(path);
  b[at]! ^= 0x10;
  fs.writeFileSync(path, b);
}

/** Every file in `dir`: name → size and SHA-256, so "changes nothing" can be checked. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) {
    const bytes = fs.readFileSync(nodePath.join(dir, f));
    out[f] = `${bytes.length} ${createHash('sha256').update(bytes).digest('hex')}`;
  }
  return out;
}

describe('snapshot files', () => {
  it('writes snap-<index>-<term>.snap, the same bytes as encodeSnapshot, and reads it back', async () => {
    const dir = tempDir();
    const state = sampleState();
    const w = await write(dir, { index: 42, term: 3 }, state, IDS);
    expect(nodePath.basename(w.path)).toBe('snap-00000000000000000042-3.snap');
    expect(w.path).toBe(nodePath.join(dir, snapshotFileName({ index: 42, term: 3 })));
    expect(w.bytes).toBe(fs.statSync(w.path).size);
    expect(Buffer.from(fs.readFileSync(w.path)).equals(Buffer.from(await encodeSnapshot({ index: 42, term: 3 }, state, IDS)))).toBe(true);
    expect(fs.readdirSync(dir)).toEqual([nodePath.basename(w.path)]);
    const r = (await readLatest(dir, IDS, { onWarning: (m) => expect.fail(m) }))!;
    expect(r.path).toBe(w.path);
    expect(r.meta).toMatchObject({ index: 42, term: 3, clusterId: IDS.clusterId, nodeId: IDS.nodeId });
    expect(plain(r.state)).toEqual(plain(state));
  });

  it('no directory or no snapshot: undefined', async () => {
    const dir = tempDir();
    expect(await readLatest(nodePath.join(dir, 'missing'), IDS)).toBeUndefined();
    expect(await readLatest(dir, IDS)).toBeUndefined();
  });

  it('takes the newest; skips a damaged or truncated newest file with a warning, leaves it as it is, and falls back', async () => {
    const dir = tempDir();
    const state = (tag: number): CapturedState => ({ ...smallState(), clockMs: tag });
    await write(dir, { index: 10, term: 1 }, state(10), IDS, { keep: 5 });
    await write(dir, { index: 20, term: 2 }, state(20), IDS, { keep: 5 });
    const third = await write(dir, { index: 30, term: 2 }, state(30), IDS, { keep: 5 });
    expect((await readLatest(dir, IDS))!.meta.index).toBe(30);

    flipByte(third.path, third.bytes - 2);
    const damaged = listing(dir);
    const warnings: string[] = [];
    const r = (await readLatest(dir, IDS, { onWarning: (m) => warnings.push(m) }))!;
    expect(r.meta.index).toBe(20);
    expect(r.state.clockMs).toBe(20);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(nodePath.basename(third.path));
    expect(warnings[0]).toMatch(/checksum mismatch.*left as it is/);
    // Reading changes nothing: the damaged file stays, under its name, for inspection.
    expect(listing(dir)).toEqual(damaged);

    // Truncated (e.g. copied or restored from a backup incompletely).
    const second = (await list(dir))[1]!.path;
    fs.truncateSync(second, fs.statSync(second).size - 1);
    warnings.length = 0;
    expect((await readLatest(dir, IDS, { onWarning: (m) => warnings.push(m) }))!.meta.index).toBe(10);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/truncated/);

    // Nothing usable left: undefined, never wrong data.
    const first = (await list(dir))[2]!.path;
    fs.writeFileSync(first, 'garbage');
    warnings.length = 0;
    expect((await readLatest(dir, IDS, { onWarning: (m) => warnings.push(m) }))).toBeUndefined();
    expect(warnings[2]).toMatch(/shorter than the 24-byte header/);
    expect((await list(dir)).map((f) => f.index)).toEqual([30, 20, 10]);

    // A newer snapshot's write deletes the damaged files with the other old ones.
    await write(dir, { index: 40, term: 2 }, state(40), IDS, { keep: 1 });
    expect((await list(dir)).map((f) => f.index)).toEqual([40]);
  });

  it('a file whose name disagrees with its contents is skipped', async () => {
    const dir = tempDir();
    await write(dir, { index: 10, term: 1 }, smallState(), IDS);
    const w = await write(dir, { index: 20, term: 1 }, smallState(), IDS);
    fs.renameSync(w.path, nodePath.join(dir, snapshotFileName({ index: 25, term: 1 })));
    const warnings: string[] = [];
    expect((await readLatest(dir, IDS, { onWarning: (m) => warnings.push(m) }))!.meta.index).toBe(10);
    expect(warnings[0]).toMatch(/index 20, term 1, which its name does not say/);
  });

  it("refuses another cluster's or node's snapshot with an error, rather than skipping it", async () => {
    const dir = tempDir();
    await write(dir, { index: 10, term: 1 }, smallState(), IDS);
    let e: unknown;
    try {
      await readLatest(dir, { clusterId: 'another', nodeId: 3 });
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(SnapshotError);
    expect((e as SnapshotError).code).toBe('WRONG_CLUSTER');
    expect((e as SnapshotError).message).toContain(nodePath.basename(dir));
    await expect(readLatest(dir, { clusterId: IDS.clusterId, nodeId: 4 })).rejects.toThrow(/written by node 3/);
    expect((await list(dir))).toHaveLength(1); // left as it was
  });

  it('keeps the newest K snapshots (default 2) and deletes older ones', async () => {
    const dir = tempDir();
    for (const index of [5, 10, 15, 20]) await write(dir, { index, term: 1 }, smallState(), IDS);
    expect((await list(dir)).map((s) => s.index)).toEqual([20, 15]);
    await write(dir, { index: 25, term: 2 }, smallState(), IDS, { keep: 3 });
    expect((await list(dir)).map((s) => s.index)).toEqual([25, 20, 15]);
    await write(dir, { index: 30, term: 2 }, smallState(), IDS, { keep: 1 });
    expect(fs.readdirSync(dir)).toEqual([snapshotFileName({ index: 30, term: 2 })]);
    // Index order is numeric, and the term breaks ties.
    await write(dir, { index: 100, term: 2 }, smallState(), IDS, { keep: 5 });
    await write(dir, { index: 100, term: 3 }, smallState(), IDS, { keep: 5 });
    expect((await list(dir)).map((s) => [s.index, s.term])).toEqual([
      [100, 3],
      [100, 2],
      [30, 2],
    ]);
    await expect(write(dir, { index: 1, term: 1 }, smallState(), IDS, { keep: 0 })).rejects.toThrow(/keep/);
  });

  it('a temp file left by a crash mid-write is ignored by a read, and removed by removeLeftoverTemps and by a write', async () => {
    const dir = tempDir();
    const state = smallState();
    await write(dir, { index: 10, term: 1 }, state, IDS);
    // A crash while writing the snapshot at 20: part of its bytes in a temp file, never renamed.
    const partial = await encodeSnapshot({ index: 20, term: 1 }, state, IDS);
    const tempA = nodePath.join(dir, `${snapshotFileName({ index: 20, term: 1 })}.999999-1.tmp`);
    fs.writeFileSync(tempA, partial.subarray(0, partial.length >> 1));
    // ... and one that was complete but not yet renamed when the crash came: not committed either.
    const tempB = nodePath.join(dir, `${snapshotFileName({ index: 30, term: 1 })}.999999-2.tmp`);
    fs.writeFileSync(tempB, await encodeSnapshot({ index: 30, term: 1 }, state, IDS));

    const before = listing(dir);
    const r = (await readLatest(dir, IDS, { onWarning: (m) => expect.fail(m) }))!;
    expect(r.meta.index).toBe(10);
    expect(listing(dir)).toEqual(before); // a read removes nothing

    // A start that goes ahead removes them.
    const d = onDisk(dir);
    const warnings: string[] = [];
    await removeLeftoverTemps(d.fs, d.dir, (m) => warnings.push(m));
    expect(fs.existsSync(tempA)).toBe(false);
    expect(fs.existsSync(tempB)).toBe(false);
    expect(warnings.join('\n')).toMatch(/did not finish/);

    // writeSnapshot clears leftovers too.
    fs.writeFileSync(tempA, 'partial');
    await write(dir, { index: 40, term: 1 }, state, IDS);
    expect(fs.readdirSync(dir).sort()).toEqual([snapshotFileName({ index: 10, term: 1 }), snapshotFileName({ index: 40, term: 1 })]);
  });

  it('a failed write leaves no temp file and no snapshot', async () => {
    const dir = tempDir();
    const bad = { ...smallState(), sessions: [{ clientId: 1.5, firstIncomplete: 1, lastActiveMs: 0, results: [] }] };
    await expect(write(dir, { index: 10, term: 1 }, bad, IDS)).rejects.toThrow(/client id/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('yields to the event loop while writing a large state: a 1 ms timer keeps firing', { retry: 2 }, async () => {
    const n = 200_000;
    const keys = new Array<string>(n);
    const values = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      keys[i] = `key-${String(i).padStart(8, '0')}`;
      const v = new Uint8Array(256);
      v[0] = i & 0xff;
      v[1] = (i >> 8) & 0xff;
      values[i] = Buffer.from(v).toString('latin1');
    }
    const state: CapturedState = { keys, values, sessions: [], clockMs: 0, lastExpiryMs: 0 };
    const dir = tempDir();
    let last = performance.now();
    let maxGap = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 1);
    // Let the timer settle into its rhythm (its first firing can be late), then measure.
    await new Promise((resolve) => setTimeout(resolve, 20));
    maxGap = 0;
    ticks = 0;
    const start = performance.now();
    const w = await write(dir, { index: n, term: 1 }, state, IDS);
    const took = performance.now() - start;
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    clearInterval(timer);
    console.log(`writeSnapshot ${n} keys: ${took.toFixed(0)} ms, ${w.bytes} bytes, ${ticks} timer ticks, max gap ${maxGap.toFixed(1)} ms`);
    expect(ticks).toBeGreaterThan(10);
    expect(maxGap).toBeLessThan(50);
    const r = (await readLatest(dir, IDS))!;
    expect(r.state.keys.length).toBe(n);
    expect(r.state.keys[n - 1]).toBe(keys[n - 1]);
    expect(Array.from(Buffer.from(r.state.values[n - 1]!, 'latin1').subarray(0, 2))).toEqual([(n - 1) & 0xff, ((n - 1) >> 8) & 0xff]);
  });
});
