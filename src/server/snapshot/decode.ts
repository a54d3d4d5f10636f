import type { Slicer } from '../../clock.js';
import { MAX_MEMBERS, type ConfState } from '../../raft/core/conf.js';
import { checkConf } from '../../raft/conf-input.js';
import { crc32c } from '../../crc32c.js';
import { parseHeader } from '../../snapshot-header.js';
import { checkMemberTable, MAX_REMOVED_IDS, type MemberTable } from '../members.js';
import type { CapturedSession, WriteResult } from '../state-machine.js';
import {
  KIND_OF,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_BYTES,
  SnapshotError,
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
  type DecodedSnapshot,
  type SnapshotInfo,
} from './format.js';

/** Snapshot decoding and verification (layout in format.ts), at once or in time slices. */

/**
 * Verifies and decodes a snapshot (header and body), synchronously. Throws SnapshotError:
 * CORRUPT for bytes that are damaged or truncated, VERSION, WRONG_CLUSTER, and WRONG_NODE when
 * `ids.nodeId` is given and differs (leave it out for a snapshot received from the leader).
 */
export function decodeSnapshot(
  bytes: Uint8Array,
  ids: { clusterId: string; nodeId?: number; formerClusterIds?: readonly string[] },
): DecodedSnapshot {
  const h = readHeader(bytes);
  const body = bytes.subarray(SNAPSHOT_HEADER_BYTES);
  if (crc32c(body) !== h.bodyCrc) throw bodyCrcMismatch();
  // Keys and values come out as strings: copies, so `bytes` may change or go afterwards.
  const parser = new BodyParser(asBuffer(body));
  parser.run(undefined);
  return checkIds(parser.result(), ids);
}

/** decodeSnapshot in time slices, for a node that must keep serving meanwhile. */
export async function decodeSnapshotAsync(
  bytes: Uint8Array,
  ids: { clusterId: string; nodeId?: number },
  slicer: Slicer,
): Promise<DecodedSnapshot> {
  return checkIds(await decodeAnyAsync(bytes, slicer), ids);
}

/**
 * A snapshot of any cluster and node, verified and decoded in time slices: a backup that kv-server
 * --restore starts a new cluster from (whose it was is for the caller to report). Throws
 * SnapshotError: CORRUPT (damaged, truncated) or VERSION.
 */
export function decodeBackupAsync(bytes: Uint8Array, slicer: Slicer): Promise<DecodedSnapshot> {
  return decodeAnyAsync(bytes, slicer);
}

async function decodeAnyAsync(bytes: Uint8Array, slicer: Slicer): Promise<DecodedSnapshot> {
  const h = readHeader(bytes);
  const body = bytes.subarray(SNAPSHOT_HEADER_BYTES);
  const step = 1 << 20;
  let crc = 0;
  for (let at = 0; at < body.length; at += step) {
    crc = crc32c(body.subarray(at, at + step), crc);
    if (slicer.expired()) await slicer.next();
  }
  if (crc !== h.bodyCrc) throw bodyCrcMismatch();
  const parser = new BodyParser(asBuffer(body));
  while (!parser.run(slicer)) await slicer.next();
  return parser.result();
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function checkIds(decoded: DecodedSnapshot, ids: { clusterId: string; nodeId?: number; formerClusterIds?: readonly string[] }): DecodedSnapshot {
  const { meta } = decoded;
  if (meta.clusterId !== ids.clusterId && !ids.formerClusterIds?.includes(meta.clusterId)) {
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
  const h = parseHeader(bytes);
  if (!h.ok) {
    if (h.problem === 'damaged') throw new SnapshotError('CORRUPT', h.message);
    throw new SnapshotError('VERSION', `${h.message}. Run the raftkv version that wrote it, or remove the snapshot and let the node catch up from the leader.`);
  }
  const actual = bytes.length - SNAPSHOT_HEADER_BYTES;
  if (actual < h.bodyLength) throw new SnapshotError('CORRUPT', `truncated: body is ${actual} of ${h.bodyLength} bytes`);
  if (actual > h.bodyLength) throw new SnapshotError('CORRUPT', `${actual - h.bodyLength} unexpected bytes after the body`);
  return { bodyCrc: h.bodyCrc };
}


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
  private values: string[] = [];
  private n = 0;
  private readonly sessions: CapturedSession[] = [];
  private conf: ConfState | undefined;
  private readonly members: unknown[] = [];
  private readonly removed: number[] = [];

  constructor(private readonly body: Buffer) {
    this.r = new Reader(body, 0, body.length);
  }

  /** Parses until the end (true) or until the slicer's slice has expired (false). */
  run(slicer: Slicer | undefined): boolean {
    const r = this.r;
    const body = this.body;
    let keys = this.keys;
    let values = this.values;
    let n = this.n;
    let fields = 0;
    while (r.pos < r.end) {
      if ((++fields & 255) === 0 && slicer?.expired()) break;
      const tag = r.varint();
      if (tag === TAG_PAIRS) {
        const end = r.len();
        let p = r.pos;
        let key = '';
        let value: string | undefined;
        // The usual layout (key, then value, nothing else) without a Reader per pair.
        if (body[p] === TAG_KEY) {
          r.pos = p + 1;
          const ke = r.len();
          key = body.toString('latin1', r.pos, ke);
          p = ke;
          if (p < end && body[p] === TAG_VALUE) {
            r.pos = p + 1;
            const ve = r.len();
            value = body.toString('latin1', r.pos, ve);
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
              value = body.toString('latin1', pair.pos, e);
              pair.pos = e;
            } else {
              pair.skip(t);
            }
          }
        }
        keys[n] = key;
        values[n++] = value ?? '';
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
          this.values = new Array<string>(count);
        }
        break;
      }
      case (T_SESSIONS << 3) | 2: {
        const e = r.len();
        this.sessions.push(parseSession(new Reader(this.body, r.pos, e)));
        r.pos = e;
        break;
      }
      case (T_CONF << 3) | 2: {
        // Our writer sets it once; protobuf would merge a second one into the first, which no
        // writer of ours means.
        if (this.conf) corrupt('two configurations');
        const e = r.len();
        this.conf = parseConf(new Reader(this.body, r.pos, e));
        r.pos = e;
        break;
      }
      case (T_MEMBERS << 3) | 2: {
        if (this.members.length === MAX_MEMBERS) corrupt(`more than ${MAX_MEMBERS} members`);
        const e = r.len();
        this.members.push(parseMember(new Reader(this.body, r.pos, e)));
        r.pos = e;
        break;
      }
      case (T_REMOVED_IDS << 3) | 2:
      case (T_REMOVED_IDS << 3) | 0:
        readIds(r, tag, this.removed, MAX_REMOVED_IDS);
        break;
      default:
        r.skip(tag);
    }
  }

  /** The member table, if the snapshot has one; checked as one from a conf entry is. */
  private table(): MemberTable | undefined {
    if (this.members.length === 0) {
      if (this.removed.length > 0) corrupt('removed ids without a member table');
      return undefined;
    }
    const t = checkMemberTable(this.members, this.removed);
    if (!t.ok) corrupt(t.reason);
    return t.table;
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
      ...(this.conf ? { conf: this.conf } : {}),
    };
    const table = this.table();
    const state = { keys, values, sessions: this.sessions, clockMs: this.clockMs, lastExpiryMs: this.lastExpiryMs, ...(table ? { table } : {}) };
    return { meta, state };
  }
}

/** A ConfState (proto/snapshot.proto), checked as one from a peer is (conf-input.ts). */
function parseConf(r: Reader): ConfState {
  const lists: number[][] = [[], [], [], []];
  let autoLeave = false;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const list = field >= 1 && field <= 4 ? lists[field - 1]! : undefined;
    if (list && ((tag & 7) === 2 || (tag & 7) === 0)) {
      readIds(r, tag, list, MAX_MEMBERS);
    } else if (tag === ((5 << 3) | 0)) {
      autoLeave = r.varint() !== 0;
    } else {
      r.skip(tag);
    }
  }
  const [voters, votersOutgoing, learners, learnersNext] = lists;
  const checked = checkConf({ voters, votersOutgoing, learners, learnersNext, autoLeave });
  if (!checked.ok) corrupt(`invalid configuration: ${checked.reason}`);
  return checked.conf;
}

/**
 * A repeated uint64 field's values into `list`: packed (as we write them) or one unpacked value
 * (what a protobuf writer may also send), bounded to `max` before the ids are read.
 */
function readIds(r: Reader, tag: number, list: number[], max: number): void {
  const push = (): void => {
    if (list.length === max) corrupt(`a list of more than ${max} ids`);
    list.push(r.varint());
  };
  if ((tag & 7) === 0) return push();
  const end = r.len();
  while (r.pos < end) push();
  if (r.pos !== end) corrupt('a packed list runs past its field');
}

/** A Member (proto/snapshot.proto), as fields; checkMemberTable() judges them. */
function parseMember(r: Reader): { id: number; peerAddr: string; clientAddr: string } {
  const m = { id: 0, peerAddr: '', clientAddr: '' };
  while (r.pos < r.end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | 0)) m.id = r.varint();
    else if (tag === ((2 << 3) | 2) || tag === ((3 << 3) | 2)) {
      const e = r.len();
      m[tag === ((2 << 3) | 2) ? 'peerAddr' : 'clientAddr'] = r.buf.toString('utf8', r.pos, e);
      r.pos = e;
    } else r.skip(tag);
  }
  return m;
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
    case 'tooLarge':
      return [seq, { kind: 'tooLarge' }];
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
