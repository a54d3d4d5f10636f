import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { SnapshotMeta } from '../raft/core/types.js';
import { crc32c } from '../raft/storage/crc32c.js';
import type { CapturedSession, CapturedState, WriteResult } from './state-machine.js';

/**
 * KV state machine snapshots: a captured state (KvStateMachine.capture()) as bytes and as files.
 *
 * Layout (integers little-endian):
 *   0   "RKVS"                      magic
 *   4   u32 format version          SNAPSHOT_FORMAT_VERSION
 *   8   u64 body length
 *   16  u32 CRC-32C of the body
 *   20  u32 CRC-32C of bytes 0..19  (so a damaged length or version reads as damage)
 *   24  body: a protobuf raftkv.snapshot.Snapshot (proto/snapshot.proto)
 * The body is encoded here by hand, streaming and in time slices, so that serializing a large
 * state never holds the event loop for more than a few milliseconds at a time. The same bytes
 * are a snapshot file and what a leader streams to a follower.
 *
 * Files: `snap-<index, 20 digits>-<term>.snap` in a directory of their own (no other file there
 * may start with `snap-`), written as `<name>.<pid>-<n>.tmp`, fsynced, renamed, and the
 * directory fsynced; the newest `keep` are kept. A reader takes the newest file that verifies,
 * renames damaged ones to `<name>.corrupt` (kept for inspection, never read again) and removes
 * temp files left by a crash.
 */

export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 24;
/** How many snapshot files writeSnapshot keeps by default (the new one and the one before). */
export const DEFAULT_KEEP_SNAPSHOTS = 2;
/** The longest stretch of synchronous work between yields to the event loop, by default. */
export const DEFAULT_SLICE_MS = 5;

const MAGIC = 0x53564b52; // "RKVS" read as a little-endian u32
const CHUNK_BYTES = 256 * 1024;

/** Who a snapshot belongs to. */
export interface SnapshotIds {
  clusterId: string;
  nodeId: number;
}

/** What a snapshot says about itself. */
export interface SnapshotInfo extends SnapshotMeta {
  readonly formatVersion: number;
  readonly clusterId: string;
  /** The node that wrote it (for bytes from InstallSnapshot: the leader). */
  readonly nodeId: number;
}

export interface DecodedSnapshot {
  readonly meta: SnapshotInfo;
  /** For KvStateMachine.restore(). Values are views into one buffer owned by the snapshot. */
  readonly state: CapturedState;
}

export type SnapshotErrorCode =
  /** Damaged or truncated: the bytes are not what was written. */
  | 'CORRUPT'
  /** Written by a raftkv with another format version. */
  | 'VERSION'
  | 'WRONG_CLUSTER'
  | 'WRONG_NODE'
  | 'IO';

export class SnapshotError extends Error {
  override name = 'SnapshotError';
  constructor(
    readonly code: SnapshotErrorCode,
    message: string,
    /** The file concerned, when there is one. */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

// ---------------------------------------------------------------------------------------
// Encoding

export interface EncodeOptions {
  /** Longest synchronous stretch between yields, in ms (default DEFAULT_SLICE_MS). */
  sliceMs?: number;
}

/**
 * The snapshot as one byte array (header and body), encoded in time slices. The transport can
 * send it in chunks; decodeSnapshot() on the reassembled bytes verifies it.
 */
export async function encodeSnapshot(
  meta: SnapshotMeta,
  state: CapturedState,
  ids: SnapshotIds,
  options: EncodeOptions = {},
): Promise<Uint8Array> {
  const sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
  // One output buffer, sized up front: the pairs exactly, plus room for the small fields.
  const { keys, values } = state;
  let size = SNAPSHOT_HEADER_BYTES + 1024 + 64 * state.sessions.length;
  let deadline = performance.now() + sliceMs;
  for (let i = 0; i < keys.length; i++) {
    const kl = keys[i]?.length ?? 0;
    const vl = values[i]?.length ?? 0;
    const inner = 2 + varintLength(kl) + kl + varintLength(vl) + vl;
    size += 1 + varintLength(inner) + inner;
    if ((i & 1023) === 1023 && performance.now() >= deadline) {
      await nextTurn();
      deadline = performance.now() + sliceMs;
    }
  }
  // Not zero-filled (for 1M keys that alone would hold the event loop for ~100 ms): every byte
  // up to `at` is written, and the slack after it is zeroed at the end.
  let out = Buffer.allocUnsafeSlow(size);
  let at = SNAPSHOT_HEADER_BYTES;
  const sink = (chunk: Uint8Array): void => {
    if (at + chunk.length > out.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2 * out.length, at + chunk.length));
      grown.set(out.subarray(0, at));
      out = grown;
    }
    out.set(chunk, at);
    at += chunk.length;
  };
  const body = await encodeBody(meta, state, ids, sink, { buffers: 1, sliceMs });
  out.set(header(body.length, body.crc), 0);
  out.fill(0, at);
  return new Uint8Array(out.buffer, 0, at);
}

function header(bodyLength: number, bodyCrc: number): Uint8Array {
  const h = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const v = new DataView(h.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, SNAPSHOT_FORMAT_VERSION, true);
  v.setUint32(8, bodyLength >>> 0, true);
  v.setUint32(12, Math.floor(bodyLength / 2 ** 32), true);
  v.setUint32(16, bodyCrc, true);
  v.setUint32(20, crc32c(h.subarray(0, 20)), true);
  return h;
}

type Sink = (chunk: Uint8Array) => void | Promise<void>;

/**
 * Buffers protobuf bytes into chunks for a sink, keeping a running CRC-32C. Chunk buffers:
 * 1 — one, reused, for a sink that is done with a chunk when its promise settles; 2 — two in
 * turn, for a sink whose promise settles once every chunk but the one just handed over is done
 * with. Byte arrays too long to copy go to the sink as they are, to keep as it likes.
 */
class ChunkWriter {
  buf: Buffer;
  pos = 0;
  crc = 0;
  length = 0;
  private spare: Buffer | undefined;

  constructor(
    private readonly sink: Sink,
    buffers: 1 | 2,
  ) {
    this.buf = Buffer.allocUnsafeSlow(CHUNK_BYTES);
    if (buffers === 2) this.spare = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  }

  /** Makes room for `n` ≤ CHUNK_BYTES bytes. */
  async ensure(n: number): Promise<void> {
    if (CHUNK_BYTES - this.pos < n) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pos === 0) return;
    const chunk = this.buf.subarray(0, this.pos);
    this.crc = crc32c(chunk, this.crc);
    this.length += chunk.length;
    await this.sink(chunk);
    if (this.spare) [this.buf, this.spare] = [this.spare, this.buf];
    this.pos = 0;
  }

  /** Appends bytes of any length; long ones go to the sink as they are (they are immutable). */
  async bytes(b: Uint8Array): Promise<void> {
    if (b.length <= CHUNK_BYTES - this.pos) {
      this.buf.set(b, this.pos);
      this.pos += b.length;
      return;
    }
    await this.flush();
    if (b.length < CHUNK_BYTES / 4) {
      this.buf.set(b, 0);
      this.pos = b.length;
      return;
    }
    this.crc = crc32c(b, this.crc);
    this.length += b.length;
    await this.sink(b);
  }
}

/** Writes a small message: grows as needed. For everything but the key-value pairs. */
class SmallEncoder {
  buf = Buffer.allocUnsafe(256);
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
  varint(field: number, n: number): void {
    this.room(20);
    this.pos = putVarint(this.buf, this.pos, field << 3);
    this.pos = putVarint(this.buf, this.pos, n);
  }
  double(field: number, x: number): void {
    this.room(14);
    this.pos = putVarint(this.buf, this.pos, (field << 3) | 1);
    this.buf.writeDoubleLE(x, this.pos);
    this.pos += 8;
  }
  bytes(field: number, b: Uint8Array): void {
    this.room(20 + b.length);
    this.pos = putVarint(this.buf, this.pos, (field << 3) | 2);
    this.pos = putVarint(this.buf, this.pos, b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  done(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

// Field tags of proto/snapshot.proto.
const T_FORMAT_VERSION = 1;
const T_CLUSTER_ID = 2;
const T_NODE_ID = 3;
const T_LAST_INDEX = 4;
const T_LAST_TERM = 5;
const T_CLOCK_MS = 6;
const T_LAST_EXPIRY_MS = 7;
const T_KEY_COUNT = 8;
const T_SESSIONS = 9;
const T_PAIRS = 10;
const TAG_PAIRS = (T_PAIRS << 3) | 2;
const TAG_KEY = (1 << 3) | 2;
const TAG_VALUE = (2 << 3) | 2;

const RESULT_KIND = { ok: 0, deleted: 1, cas: 2, sessionExpired: 3 } as const;

async function encodeBody(
  meta: SnapshotMeta,
  state: CapturedState,
  ids: SnapshotIds,
  sink: Sink,
  opts: { buffers: 1 | 2; sliceMs: number },
): Promise<{ length: number; crc: number }> {
  checkUint('index', meta.index);
  checkUint('term', meta.term);
  checkUint('node id', ids.nodeId);
  if (typeof ids.clusterId !== 'string' || ids.clusterId === '') throw new TypeError('clusterId must be a non-empty string');
  const { keys, values } = state;
  if (keys.length !== values.length) throw new RangeError(`state has ${keys.length} keys but ${values.length} values`);

  const w = new ChunkWriter(sink, opts.buffers);
  const head = new SmallEncoder();
  head.varint(T_FORMAT_VERSION, SNAPSHOT_FORMAT_VERSION);
  head.bytes(T_CLUSTER_ID, Buffer.from(ids.clusterId, 'utf8'));
  head.varint(T_NODE_ID, ids.nodeId);
  head.varint(T_LAST_INDEX, meta.index);
  head.varint(T_LAST_TERM, meta.term);
  head.double(T_CLOCK_MS, state.clockMs);
  head.double(T_LAST_EXPIRY_MS, state.lastExpiryMs);
  head.varint(T_KEY_COUNT, keys.length);
  await w.bytes(head.done());

  const sliceMs = opts.sliceMs;
  let deadline = performance.now() + sliceMs;
  const pause = async (): Promise<void> => {
    await w.flush();
    await nextTurn();
    deadline = performance.now() + sliceMs;
  };

  for (const s of state.sessions) {
    await w.bytes(encodeSession(s));
    if (performance.now() >= deadline) await pause();
  }

  const n = keys.length;
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const v = values[i]!;
    const kl = k.length;
    const vl = v.length;
    const inner = 2 + varintLength(kl) + kl + varintLength(vl) + vl;
    const whole = 1 + varintLength(inner) + inner;
    if (whole <= CHUNK_BYTES) {
      if (CHUNK_BYTES - w.pos < whole) await w.flush();
      const b = w.buf;
      let p = w.pos;
      b[p++] = TAG_PAIRS;
      p = putVarint(b, p, inner);
      b[p++] = TAG_KEY;
      p = putVarint(b, p, kl);
      p += b.write(k, p, kl, 'latin1');
      b[p++] = TAG_VALUE;
      p = putVarint(b, p, vl);
      b.set(v, p);
      w.pos = p + vl;
    } else {
      // A pair bigger than a chunk: its framing, then its bytes as they are.
      await w.ensure(32);
      w.pos = putVarint(w.buf, w.pos, TAG_PAIRS);
      w.pos = putVarint(w.buf, w.pos, inner);
      w.buf[w.pos++] = TAG_KEY;
      w.pos = putVarint(w.buf, w.pos, kl);
      await w.bytes(Buffer.from(k, 'latin1'));
      await w.ensure(16);
      w.buf[w.pos++] = TAG_VALUE;
      w.pos = putVarint(w.buf, w.pos, vl);
      await w.bytes(v);
    }
    if ((i & 63) === 63 && performance.now() >= deadline) await pause();
  }
  await w.flush();
  return { length: w.length, crc: w.crc };
}

function encodeSession(s: CapturedSession): Uint8Array {
  checkUint('session client id', s.clientId);
  checkUint('session firstIncomplete', s.firstIncomplete);
  const e = new SmallEncoder();
  e.varint(1, s.clientId);
  e.varint(2, s.firstIncomplete);
  e.double(3, s.lastActiveMs);
  for (const [seq, r] of s.results) {
    checkUint('session seq', seq);
    const re = new SmallEncoder();
    re.varint(1, seq);
    re.varint(2, RESULT_KIND[r.kind]);
    re.varint(3, (r.kind === 'deleted' && r.existed) || (r.kind === 'cas' && r.swapped) ? 1 : 0);
    e.bytes(4, re.done());
  }
  const out = new SmallEncoder();
  out.bytes(T_SESSIONS, e.done());
  return out.done();
}

function checkUint(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`snapshot: ${what} must be an integer in [0, 2^53), got ${String(n)}`);
}

function varintLength(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x20_0000) return 3;
  if (n < 0x1000_0000) return 4;
  let len = 4;
  n = Math.floor(n / 0x1000_0000);
  while (n > 0) {
    len++;
    n = Math.floor(n / 128);
  }
  return len;
}

/** Writes a varint for a safe non-negative integer; returns the new position. */
function putVarint(b: Uint8Array, p: number, n: number): number {
  if (n < 0x8000_0000) {
    while (n > 0x7f) {
      b[p++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
  } else {
    while (n > 0x7f) {
      b[p++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
  }
  b[p++] = n;
  return p;
}

// ---------------------------------------------------------------------------------------
// Decoding

export interface DecodeOptions {
  /**
   * Decode in place: the state's values are views into `bytes`, so the caller must never
   * change them afterwards. By default the body is copied first.
   */
  inPlace?: boolean;
}

/**
 * Verifies and decodes a snapshot (header and body), synchronously. Throws SnapshotError:
 * CORRUPT for bytes that are damaged or truncated, VERSION, WRONG_CLUSTER, and WRONG_NODE when
 * `ids.nodeId` is given and differs (leave it out for a snapshot received from the leader).
 */
export function decodeSnapshot(
  bytes: Uint8Array,
  ids: { clusterId: string; nodeId?: number },
  options: DecodeOptions = {},
): DecodedSnapshot {
  const h = readHeader(bytes);
  let body = bytes.subarray(SNAPSHOT_HEADER_BYTES);
  if (crc32c(body) !== h.bodyCrc) throw bodyCrcMismatch();
  if (!options.inPlace) body = new Uint8Array(body);
  const parser = new BodyParser(asBuffer(body));
  parser.run(Infinity);
  return checkIds(parser.result(), ids);
}

/** decodeSnapshot in time slices, for a node that must keep serving meanwhile. */
export async function decodeSnapshotAsync(
  bytes: Uint8Array,
  ids: { clusterId: string; nodeId?: number },
  options: DecodeOptions & EncodeOptions = {},
): Promise<DecodedSnapshot> {
  const sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
  const h = readHeader(bytes);
  let body = bytes.subarray(SNAPSHOT_HEADER_BYTES);
  const step = 1 << 20;
  let crc = 0;
  let deadline = performance.now() + sliceMs;
  for (let at = 0; at < body.length; at += step) {
    crc = crc32c(body.subarray(at, at + step), crc);
    if (performance.now() >= deadline) {
      await nextTurn();
      deadline = performance.now() + sliceMs;
    }
  }
  if (crc !== h.bodyCrc) throw bodyCrcMismatch();
  if (!options.inPlace) {
    const copy = new Uint8Array(body.length);
    for (let at = 0; at < body.length; at += 8 * step) {
      copy.set(body.subarray(at, at + 8 * step), at);
      if (performance.now() >= deadline) {
        await nextTurn();
        deadline = performance.now() + sliceMs;
      }
    }
    body = copy;
  }
  const parser = new BodyParser(asBuffer(body));
  while (!parser.run(deadline)) {
    await nextTurn();
    deadline = performance.now() + sliceMs;
  }
  return checkIds(parser.result(), ids);
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function checkIds(decoded: DecodedSnapshot, ids: { clusterId: string; nodeId?: number }): DecodedSnapshot {
  const { meta } = decoded;
  if (meta.clusterId !== ids.clusterId) {
    throw new SnapshotError(
      'WRONG_CLUSTER',
      `snapshot belongs to cluster ${JSON.stringify(meta.clusterId)} (written by node ${meta.nodeId}), but this node is in cluster ` +
        `${JSON.stringify(ids.clusterId)}. Each cluster needs its own data directories.`,
    );
  }
  if (ids.nodeId !== undefined && meta.nodeId !== ids.nodeId) {
    throw new SnapshotError(
      'WRONG_NODE',
      `snapshot was written by node ${meta.nodeId} of cluster ${JSON.stringify(meta.clusterId)}, but this is node ${ids.nodeId}. ` +
        'Every node must use its own data directory.',
    );
  }
  return decoded;
}

function bodyCrcMismatch(): SnapshotError {
  return new SnapshotError('CORRUPT', 'body checksum mismatch: the snapshot is damaged');
}

/** Checks the header and that the body is exactly as long as it says. */
function readHeader(bytes: Uint8Array): { bodyCrc: number } {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) {
    throw new SnapshotError('CORRUPT', `truncated: ${bytes.length} bytes, shorter than the ${SNAPSHOT_HEADER_BYTES}-byte header`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== MAGIC) throw new SnapshotError('CORRUPT', 'not a raftkv snapshot (bad magic number)');
  if (v.getUint32(20, true) !== crc32c(bytes.subarray(0, 20))) {
    throw new SnapshotError('CORRUPT', 'header checksum mismatch: the header is damaged');
  }
  const version = v.getUint32(4, true);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotError(
      'VERSION',
      `snapshot format version ${version}; this build reads version ${SNAPSHOT_FORMAT_VERSION}. ` +
        'Run the raftkv version that wrote it, or remove the snapshot and let the node catch up from the leader.',
    );
  }
  const bodyLength = v.getUint32(8, true) + v.getUint32(12, true) * 2 ** 32;
  const actual = bytes.length - SNAPSHOT_HEADER_BYTES;
  if (actual < bodyLength) throw new SnapshotError('CORRUPT', `truncated: body is ${actual} of ${bodyLength} bytes`);
  if (actual > bodyLength) throw new SnapshotError('CORRUPT', `${actual - bodyLength} unexpected bytes after the body`);
  return { bodyCrc: v.getUint32(16, true) };
}

const KIND_OF = ['ok', 'deleted', 'cas', 'sessionExpired'] as const;

/**
 * Parses a protobuf Snapshot, resumably (between top-level fields). Values are views into
 * `body`. Unknown fields are skipped.
 */
class BodyParser {
  private readonly r: Reader;
  private formatVersion = 0;
  private clusterId = '';
  private nodeId = 0;
  private index = 0;
  private term = 0;
  private clockMs = 0;
  private lastExpiryMs = 0;
  private keyCount: number | undefined;
  private keys: string[] = [];
  private values: Uint8Array[] = [];
  private n = 0;
  private readonly sessions: CapturedSession[] = [];

  constructor(private readonly body: Buffer) {
    this.r = new Reader(body, 0, body.length);
  }

  /** Parses until the end (true) or until `deadline` (by performance.now()) has passed. */
  run(deadline: number): boolean {
    const r = this.r;
    const body = this.body;
    const ab = body.buffer;
    const base = body.byteOffset;
    let keys = this.keys;
    let values = this.values;
    let n = this.n;
    let fields = 0;
    while (r.pos < r.end) {
      if ((++fields & 255) === 0 && performance.now() >= deadline) break;
      const tag = r.varint();
      if (tag === TAG_PAIRS) {
        const end = r.len();
        let p = r.pos;
        let key = '';
        let value: Uint8Array | undefined;
        // The usual layout (key, then value, nothing else) without a Reader per pair.
        if (body[p] === TAG_KEY) {
          r.pos = p + 1;
          const ke = r.len();
          key = body.toString('latin1', r.pos, ke);
          p = ke;
          if (p < end && body[p] === TAG_VALUE) {
            r.pos = p + 1;
            const ve = r.len();
            value = new Uint8Array(ab, base + r.pos, ve - r.pos);
            p = ve;
          }
          if (p > end) corrupt('a key or value runs past its pair');
        }
        if (p < end) {
          // Anything else: field by field.
          const pair = new Reader(body, p, end);
          while (pair.pos < end) {
            const t = pair.varint();
            if (t === TAG_KEY) {
              const e = pair.len();
              key = body.toString('latin1', pair.pos, e);
              pair.pos = e;
            } else if (t === TAG_VALUE) {
              const e = pair.len();
              value = new Uint8Array(ab, base + pair.pos, e - pair.pos);
              pair.pos = e;
            } else {
              pair.skip(t);
            }
          }
        }
        keys[n] = key;
        values[n++] = value ?? new Uint8Array(0);
        r.pos = end;
        continue;
      }
      this.n = n;
      this.field(tag);
      keys = this.keys; // key_count may have preallocated them
      values = this.values;
    }
    this.n = n;
    return r.pos >= r.end;
  }

  private field(tag: number): void {
    const r = this.r;
    switch (tag) {
      case (T_FORMAT_VERSION << 3) | 0:
        this.formatVersion = r.varint();
        break;
      case (T_CLUSTER_ID << 3) | 2: {
        const e = r.len();
        this.clusterId = this.body.toString('utf8', r.pos, e);
        r.pos = e;
        break;
      }
      case (T_NODE_ID << 3) | 0:
        this.nodeId = r.varint();
        break;
      case (T_LAST_INDEX << 3) | 0:
        this.index = r.varint();
        break;
      case (T_LAST_TERM << 3) | 0:
        this.term = r.varint();
        break;
      case (T_CLOCK_MS << 3) | 1:
        this.clockMs = r.double();
        break;
      case (T_LAST_EXPIRY_MS << 3) | 1:
        this.lastExpiryMs = r.double();
        break;
      case (T_KEY_COUNT << 3) | 0: {
        const count = r.varint();
        this.keyCount = count;
        if (this.n === 0 && count <= this.body.length / 2) {
          // Preallocate (a pair takes at least 2 bytes, so a damaged count cannot ask for more).
          this.keys = new Array<string>(count);
          this.values = new Array<Uint8Array>(count);
        }
        break;
      }
      case (T_SESSIONS << 3) | 2: {
        const e = r.len();
        this.sessions.push(parseSession(new Reader(this.body, r.pos, e)));
        r.pos = e;
        break;
      }
      default:
        r.skip(tag);
    }
  }

  result(): DecodedSnapshot {
    const { keys, values, n } = this;
    if (this.keyCount !== undefined && this.keyCount !== n) corrupt(`says ${this.keyCount} keys but holds ${n}`);
    keys.length = n;
    values.length = n;
    if (this.formatVersion !== SNAPSHOT_FORMAT_VERSION) {
      corrupt(`body says format version ${this.formatVersion}, the header ${SNAPSHOT_FORMAT_VERSION}`);
    }
    if (this.clusterId === '') corrupt('no cluster id');
    const meta: SnapshotInfo = {
      formatVersion: this.formatVersion,
      clusterId: this.clusterId,
      nodeId: this.nodeId,
      index: this.index,
      term: this.term,
    };
    return { meta, state: { keys, values, sessions: this.sessions, clockMs: this.clockMs, lastExpiryMs: this.lastExpiryMs } };
  }
}

function parseSession(r: Reader): CapturedSession {
  let clientId = 0;
  let firstIncomplete = 0;
  let lastActiveMs = 0;
  const results: [number, WriteResult][] = [];
  while (r.pos < r.end) {
    const tag = r.varint();
    switch (tag) {
      case (1 << 3) | 0:
        clientId = r.varint();
        break;
      case (2 << 3) | 0:
        firstIncomplete = r.varint();
        break;
      case (3 << 3) | 1:
        lastActiveMs = r.double();
        break;
      case (4 << 3) | 2: {
        const e = r.len();
        results.push(parseResult(new Reader(r.buf, r.pos, e)));
        r.pos = e;
        break;
      }
      default:
        r.skip(tag);
    }
  }
  return { clientId, firstIncomplete, lastActiveMs, results };
}

function parseResult(r: Reader): [number, WriteResult] {
  let seq = 0;
  let kind = 0;
  let flag = false;
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | 0)) seq = r.varint();
    else if (tag === ((2 << 3) | 0)) kind = r.varint();
    else if (tag === ((3 << 3) | 0)) flag = r.varint() !== 0;
    else r.skip(tag);
  }
  const k = KIND_OF[kind];
  switch (k) {
    case 'ok':
      return [seq, { kind: 'ok' }];
    case 'deleted':
      return [seq, { kind: 'deleted', existed: flag }];
    case 'cas':
      return [seq, { kind: 'cas', swapped: flag }];
    case 'sessionExpired':
      return [seq, { kind: 'sessionExpired' }];
    default:
      return corrupt(`unknown session result kind ${kind}`);
  }
}

function corrupt(what: string): never {
  throw new SnapshotError('CORRUPT', `malformed snapshot body: ${what}`);
}

/** A bounds-checked protobuf reader over buf[pos, end). */
class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
  ) {}

  varint(): number {
    const b = this.buf;
    if (this.pos >= this.end) corrupt('truncated varint');
    let byte = b[this.pos++]!;
    if (byte < 0x80) return byte;
    let result = byte & 0x7f;
    let mul = 0x80;
    for (let i = 1; i < 10; i++) {
      if (this.pos >= this.end) corrupt('truncated varint');
      byte = b[this.pos++]!;
      result += (byte & 0x7f) * mul;
      if (byte < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) corrupt('integer beyond 2^53');
        return result;
      }
      mul *= 0x80;
    }
    return corrupt('varint longer than 10 bytes');
  }

  /** Reads a length prefix; returns where the field's bytes end. */
  len(): number {
    const n = this.varint();
    const e = this.pos + n;
    if (e > this.end) corrupt('field runs past its message');
    return e;
  }

  double(): number {
    if (this.pos + 8 > this.end) corrupt('truncated double');
    const x = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return x;
  }

  skip(tag: number): void {
    switch (tag & 7) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.len();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        corrupt(`unsupported wire type ${tag & 7}`);
    }
    if (this.pos > this.end) corrupt('field runs past its message');
  }
}

// ---------------------------------------------------------------------------------------
// Files

const SNAP_NAME = /^snap-(\d{20})-(\d+)\.snap$/;
const TEMP_NAME = /^snap-.*\.tmp$/;
/** Temp files being written by this process: not leftovers. */
const writing = new Set<string>();
let tempCounter = 0;

export function snapshotFileName(meta: SnapshotMeta): string {
  return `snap-${String(meta.index).padStart(20, '0')}-${meta.term}.snap`;
}

/** The snapshot files in `dir`, newest (highest index, then term) first. */
export function listSnapshots(dir: string): { path: string; index: number; term: number }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: { path: string; index: number; term: number }[] = [];
  for (const name of names) {
    const m = SNAP_NAME.exec(name);
    if (m) out.push({ path: nodePath.join(dir, name), index: Number(m[1]), term: Number(m[2]) });
  }
  return out.sort((a, b) => b.index - a.index || b.term - a.term);
}

export interface WriteSnapshotOptions extends EncodeOptions {
  /** How many snapshot files to keep, the new one included (default DEFAULT_KEEP_SNAPSHOTS). */
  keep?: number;
}

/**
 * Writes `state` as of `meta` to `dir` durably: a temp file, fsynced, renamed to
 * snapshotFileName(meta), the directory fsynced; then deletes all but the newest `keep`
 * snapshot files and any temp files left by a crash. Serializes in time slices, so the node
 * keeps serving; `state` must be a capture (it is read across many turns of the event loop).
 */
export async function writeSnapshot(
  dir: string,
  meta: SnapshotMeta,
  state: CapturedState,
  ids: SnapshotIds,
  options: WriteSnapshotOptions = {},
): Promise<{ path: string; bytes: number }> {
  const keep = options.keep ?? DEFAULT_KEEP_SNAPSHOTS;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${String(keep)}`);
  const sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
  await fsp.mkdir(dir, { recursive: true });
  const name = snapshotFileName(meta);
  const path = nodePath.join(dir, name);
  const temp = nodePath.join(dir, `${name}.${process.pid}-${++tempCounter}.tmp`);
  writing.add(temp);
  let bytes: number;
  try {
    const fh = await fsp.open(temp, 'wx');
    try {
      let at = SNAPSHOT_HEADER_BYTES;
      // One write in flight while the next chunk is encoded (two chunk buffers in turn).
      let inFlight: Promise<void> = Promise.resolve();
      const sink = async (chunk: Uint8Array): Promise<void> => {
        const pos = at;
        at += chunk.length;
        await inFlight;
        inFlight = writeFully(fh, chunk, pos);
        inFlight.catch(() => undefined); // seen by the next await of it, not unhandled meanwhile
      };
      const body = await encodeBody(meta, state, ids, sink, { buffers: 2, sliceMs }).finally(() => inFlight);
      await inFlight;
      await writeFully(fh, header(body.length, body.crc), 0);
      await fh.sync();
      bytes = SNAPSHOT_HEADER_BYTES + body.length;
    } finally {
      await fh.close();
    }
    await fsp.rename(temp, path);
  } catch (e) {
    await fsp.rm(temp, { force: true }).catch(() => undefined);
    throw e;
  } finally {
    writing.delete(temp);
  }
  await syncDir(dir);
  for (const old of listSnapshots(dir).slice(keep)) if (old.path !== path) await fsp.rm(old.path, { force: true });
  removeLeftoverTemps(dir);
  return { path, bytes };
}

async function writeFully(fh: fsp.FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some platforms cannot open or fsync a directory; there the rename is as durable as it gets.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES') throw e;
  } finally {
    await fh?.close();
  }
}

function removeLeftoverTemps(dir: string, warn?: (message: string) => void): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const p = nodePath.join(dir, name);
    if (!TEMP_NAME.test(name) || writing.has(p)) continue;
    fs.rmSync(p, { force: true });
    warn?.(`snapshot: removed ${p}, left by a snapshot write that did not finish`);
  }
}

export interface ReadSnapshotOptions {
  /** Receives a line for each snapshot file skipped (and why). Default: console.error. */
  onWarning?: (message: string) => void;
}

/**
 * The newest snapshot in `dir` that verifies, or undefined if there is none. A damaged or
 * truncated file is skipped with a warning and renamed to `<name>.corrupt`, and the next older
 * one is tried: never wrong data. Undefined after skipping files means the state is not
 * recoverable from here: the caller must check its log still starts at index 1 before
 * replaying it, and otherwise needs a snapshot from the leader; likewise, after a fallback,
 * its log must continue right after the returned snapshot's index.
 * Throws SnapshotError for a snapshot of another cluster or node (WRONG_CLUSTER, WRONG_NODE),
 * of another format version (VERSION), or a file that cannot be read (IO).
 */
export function readLatestSnapshot(
  dir: string,
  ids: SnapshotIds,
  options: ReadSnapshotOptions = {},
): (DecodedSnapshot & { path: string }) | undefined {
  const warn = options.onWarning ?? ((m: string) => console.error(m));
  removeLeftoverTemps(dir, warn);
  for (const f of listSnapshots(dir)) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(f.path);
    } catch (e) {
      throw new SnapshotError('IO', `cannot read snapshot ${f.path}: ${(e as Error).message}`, f.path, { cause: e });
    }
    let decoded: DecodedSnapshot;
    try {
      decoded = decodeSnapshot(bytes, ids, { inPlace: true });
      if (decoded.meta.index !== f.index || decoded.meta.term !== f.term) {
        throw new SnapshotError(
          'CORRUPT',
          `it holds the state at index ${decoded.meta.index}, term ${decoded.meta.term}, which its name does not say`,
        );
      }
    } catch (e) {
      if (!(e instanceof SnapshotError)) throw e;
      if (e.code !== 'CORRUPT') throw new SnapshotError(e.code, `${f.path}: ${e.message}`, f.path, { cause: e });
      let moved = `renamed it to ${nodePath.basename(f.path)}.corrupt`;
      try {
        fs.renameSync(f.path, `${f.path}.corrupt`);
      } catch (re) {
        moved = `could not rename it aside (${(re as Error).message})`;
      }
      warn(`snapshot: skipping ${f.path}: ${e.message}; ${moved}; trying an older snapshot`);
      continue;
    }
    return { ...decoded, path: f.path };
  }
  return undefined;
}
