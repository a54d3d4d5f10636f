import type { Slicer } from '../../clock.js';
import type { ConfState } from '../../raft/core/conf.js';
import type { SnapshotMeta } from '../../raft/core/types.js';
import { checkConf } from '../../raft/conf-input.js';
import { crc32c } from '../../crc32c.js';
import { encodeHeader } from '../../snapshot-header.js';
import { checkMemberTable, type MemberTable } from '../members.js';
import type { CapturedSession, CapturedState } from '../state-machine.js';
import {
  RESULT_KIND,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_BYTES,
  T_CLOCK_MS,
  T_CLUSTER_ID,
  T_CONF,
  T_FORMAT_VERSION,
  T_KEY_COUNT,
  T_LAST_EXPIRY_MS,
  T_LAST_INDEX,
  T_LAST_TERM,
  T_MEMBERS,
  T_NODE_ID,
  T_REMOVED_IDS,
  T_SESSIONS,
  TAG_KEY,
  TAG_PAIRS,
  TAG_VALUE,
  type SnapshotIds,
} from './format.js';

/** Snapshot encoding (layout in format.ts), streaming and in time slices. */

const CHUNK_BYTES = 256 * 1024;

/**
 * The snapshot as one byte array (header and body), encoded in time slices. The transport can
 * send it in chunks; decodeSnapshot() on the reassembled bytes verifies it.
 */
export async function encodeSnapshot(
  meta: SnapshotMeta,
  state: CapturedState,
  ids: SnapshotIds,
  slicer: Slicer,
): Promise<Uint8Array> {
  // One output buffer, sized up front: the pairs exactly, plus room for the small fields.
  const { keys, values } = state;
  let size = SNAPSHOT_HEADER_BYTES + 1024 + 64 * state.sessions.length;
  for (let i = 0; i < keys.length; i++) {
    const kl = keys[i]?.length ?? 0;
    const vl = values[i]?.length ?? 0;
    const inner = 2 + varintLength(kl) + kl + varintLength(vl) + vl;
    size += 1 + varintLength(inner) + inner;
    if ((i & 1023) === 1023 && slicer.expired()) await slicer.next();
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
  const body = await encodeBody(meta, state, ids, sink, { buffers: 1, slicer });
  out.set(header(body.length, body.crc), 0);
  out.fill(0, at);
  return new Uint8Array(out.buffer, 0, at);
}

export const header = encodeHeader;

export type Sink = (chunk: Uint8Array) => void | Promise<void>;

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
  /** A packed repeated uint64 field (proto3's encoding of one), left off when empty. */
  packed(field: number, ns: readonly number[]): void {
    if (ns.length === 0) return;
    const inner = new SmallEncoder();
    for (const n of ns) {
      inner.room(10);
      inner.pos = putVarint(inner.buf, inner.pos, n);
    }
    this.bytes(field, inner.done());
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

export async function encodeBody(
  meta: SnapshotMeta,
  state: CapturedState,
  ids: SnapshotIds,
  sink: Sink,
  opts: { buffers: 1 | 2; slicer: Slicer },
): Promise<{ length: number; crc: number }> {
  checkUint('index', meta.index);
  checkUint('term', meta.term);
  checkUint('node id', ids.nodeId);
  if (typeof ids.clusterId !== 'string' || ids.clusterId === '') throw new TypeError('clusterId must be a non-empty string');
  if (meta.conf) {
    // What decode refuses is never written.
    const conf = checkConf(meta.conf);
    if (!conf.ok) throw new RangeError(`snapshot: invalid configuration: ${conf.reason}`);
  }
  if (state.table) {
    const table = checkMemberTable(state.table.members, state.table.removed);
    if (!table.ok) throw new RangeError(`snapshot: invalid ${table.reason}`);
  }
  const { keys, values } = state;
  if (keys.length !== values.length) throw new RangeError(`state has ${keys.length} keys but ${values.length} values`);

  const w = new ChunkWriter(sink, opts.buffers);
  const head = new SmallEncoder();
  head.varint(T_FORMAT_VERSION, SNAPSHOT_FORMAT_VERSION);
  head.bytes(T_CLUSTER_ID, Buffer.from(ids.clusterId, 'utf8'));
  head.varint(T_NODE_ID, ids.nodeId);
  head.varint(T_LAST_INDEX, meta.index);
  head.varint(T_LAST_TERM, meta.term);
  if (meta.conf) head.bytes(T_CONF, encodeConf(meta.conf));
  if (state.table) encodeTable(head, state.table);
  head.double(T_CLOCK_MS, state.clockMs);
  head.double(T_LAST_EXPIRY_MS, state.lastExpiryMs);
  head.varint(T_KEY_COUNT, keys.length);
  await w.bytes(head.done());

  const { slicer } = opts;
  const pause = async (): Promise<void> => {
    await w.flush();
    await slicer.next();
  };

  for (const s of state.sessions) {
    await w.bytes(encodeSession(s));
    if (slicer.expired()) await pause();
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
      w.pos = p + b.write(v, p, vl, 'latin1');
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
      await w.bytes(Buffer.from(v, 'latin1'));
    }
    if ((i & 63) === 63 && slicer.expired()) await pause();
  }
  await w.flush();
  return { length: w.length, crc: w.crc };
}

/** A ConfState message (proto/snapshot.proto). */
function encodeConf(c: ConfState): Uint8Array {
  const e = new SmallEncoder();
  e.packed(1, c.voters);
  e.packed(2, c.votersOutgoing);
  e.packed(3, c.learners);
  e.packed(4, c.learnersNext);
  if (c.autoLeave) e.varint(5, 1);
  return e.done();
}

/** Member messages and the removed ids (proto/snapshot.proto). */
function encodeTable(head: SmallEncoder, t: MemberTable): void {
  for (const m of t.members) {
    const e = new SmallEncoder();
    e.varint(1, m.id);
    e.bytes(2, Buffer.from(m.peerAddr, 'utf8'));
    e.bytes(3, Buffer.from(m.clientAddr, 'utf8'));
    head.bytes(T_MEMBERS, e.done());
  }
  head.packed(T_REMOVED_IDS, t.removed);
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
