/**
 * A write as it travels in a Raft log entry. A fixed binary layout (little-endian), because it is
 * encoded once per write and decoded on every replica, on the hot path:
 *   u8 op | u8 version | u32 clientId hi | u32 clientId lo | f64 seq | f64 firstIncomplete |
 *   f64 leaderTimeMs | u32 keyLen | key | u32 valueLen | value | [u32 expectedLen | expected]
 * `leaderTimeMs` is stamped by the proposing leader, so replicas expire sessions identically.
 */
export type WriteOp = 'put' | 'append' | 'delete' | 'cas';

export interface Command {
  op: WriteOp;
  clientId: number;
  seq: number;
  firstIncomplete: number;
  leaderTimeMs: number;
  key: Uint8Array;
  value: Uint8Array;
  /** cas only */
  expected: Uint8Array;
}

const OPS: readonly WriteOp[] = ['put', 'append', 'delete', 'cas'];
const VERSION = 1;
const HEADER = 2 + 8 + 8 + 8 + 8;

export class CommandDecodeError extends Error {
  override name = 'CommandDecodeError';
}

export function encodeCommand(c: Command): Uint8Array {
  const withExpected = c.op === 'cas';
  const size = HEADER + 4 + c.key.length + 4 + c.value.length + (withExpected ? 4 + c.expected.length : 0);
  // From Node's shared pool (for all but large commands): a log entry's bytes, freed in log
  // order, so a pool slab is not held long; an ArrayBuffer of its own would cost ~200 bytes more
  // per entry, and the log may hold hundreds of thousands. Every byte is written below.
  const pooled = Buffer.allocUnsafe(size);
  // A plain Uint8Array over it: a Buffer's slice() would share bytes where a Uint8Array's copies.
  const buf = new Uint8Array(pooled.buffer, pooled.byteOffset, size);
  const v = new DataView(buf.buffer, buf.byteOffset, size);
  v.setUint8(0, OPS.indexOf(c.op));
  v.setUint8(1, VERSION);
  v.setUint32(2, Math.floor(c.clientId / 2 ** 32), true);
  v.setUint32(6, c.clientId >>> 0, true);
  v.setFloat64(10, c.seq, true);
  v.setFloat64(18, c.firstIncomplete, true);
  v.setFloat64(26, c.leaderTimeMs, true);
  let at = HEADER;
  const put = (bytes: Uint8Array): void => {
    v.setUint32(at, bytes.length, true);
    buf.set(bytes, at + 4);
    at += 4 + bytes.length;
  };
  put(c.key);
  put(c.value);
  if (withExpected) put(c.expected);
  return buf;
}

const EMPTY = new Uint8Array(0);

export function decodeCommand(buf: Uint8Array): Command {
  if (buf.length < HEADER + 8) throw new CommandDecodeError(`command of ${buf.length} bytes is too short`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const op = OPS[v.getUint8(0)];
  if (!op) throw new CommandDecodeError(`unknown write op ${v.getUint8(0)}`);
  if (v.getUint8(1) !== VERSION) throw new CommandDecodeError(`command version ${v.getUint8(1)} is not ${VERSION}`);
  let at = HEADER;
  const take = (): Uint8Array => {
    if (at + 4 > buf.length) throw new CommandDecodeError('command truncated');
    const n = v.getUint32(at, true);
    if (at + 4 + n > buf.length) throw new CommandDecodeError('command truncated');
    const out = buf.subarray(at + 4, at + 4 + n);
    at += 4 + n;
    return out;
  };
  const key = take();
  const value = take();
  const expected = op === 'cas' ? take() : EMPTY;
  if (at !== buf.length) throw new CommandDecodeError(`${buf.length - at} unexpected bytes after a ${op} command`);
  return {
    op,
    clientId: v.getUint32(2, true) * 2 ** 32 + v.getUint32(6, true),
    seq: v.getFloat64(10, true),
    firstIncomplete: v.getFloat64(18, true),
    leaderTimeMs: v.getFloat64(26, true),
    key,
    value,
    expected,
  };
}
