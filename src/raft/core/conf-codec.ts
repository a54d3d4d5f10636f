import { confInvalid, MAX_MEMBERS, type ConfState } from './conf.js';
import type { NodeId } from './types.js';

// The data of a `conf` entry: the whole configuration it puts in force (not the change), so that
// a node that learns the log from any point, or from a snapshot, knows the configuration exactly;
// and an opaque context for the driver (raftkv's: the members' addresses).
//
// Layout (little-endian): u8 version = 1, u8 flags (bit 0: autoLeave), then four id lists
// (voters, votersOutgoing, learners, learnersNext), each a u16 count and that many f64 ids, then
// a u32 context length and the context.

export interface ConfEntry {
  readonly conf: ConfState;
  readonly context: Uint8Array;
}

const VERSION = 1;
/** The most context bytes a conf entry carries: member addresses, far below it. */
export const MAX_CONF_CONTEXT_BYTES = 256 * 1024;

export function encodeConfEntry(e: ConfEntry): Uint8Array {
  const c = e.conf;
  const lists = [c.voters, c.votersOutgoing, c.learners, c.learnersNext];
  const size = 2 + lists.reduce((n, l) => n + 2 + 8 * l.length, 0) + 4 + e.context.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  v.setUint8(at++, VERSION);
  v.setUint8(at++, c.autoLeave ? 1 : 0);
  for (const l of lists) {
    v.setUint16(at, l.length, true);
    at += 2;
    for (const id of l) {
      v.setFloat64(at, id, true);
      at += 8;
    }
  }
  v.setUint32(at, e.context.length, true);
  at += 4;
  out.set(e.context, at);
  return out;
}

export type ConfDecode = { ok: true; entry: ConfEntry } | { ok: false; reason: string };

/** Decodes and checks a conf entry's data; anything malformed or not a valid configuration is refused. */
export function decodeConfEntry(data: Uint8Array): ConfDecode {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  const need = (n: number): boolean => at + n <= data.length;
  if (!need(2)) return { ok: false, reason: 'conf entry: truncated header' };
  const version = v.getUint8(at++);
  if (version !== VERSION) return { ok: false, reason: `conf entry: unknown version ${version}` };
  const flags = v.getUint8(at++);
  if (flags > 1) return { ok: false, reason: `conf entry: unknown flags ${flags}` };
  const lists: NodeId[][] = [];
  for (let i = 0; i < 4; i++) {
    if (!need(2)) return { ok: false, reason: 'conf entry: truncated list' };
    const n = v.getUint16(at, true);
    at += 2;
    if (n > MAX_MEMBERS || !need(8 * n)) return { ok: false, reason: `conf entry: list of ${n} ids does not fit` };
    const ids: NodeId[] = [];
    for (let j = 0; j < n; j++, at += 8) ids.push(v.getFloat64(at, true));
    lists.push(ids);
  }
  if (!need(4)) return { ok: false, reason: 'conf entry: truncated context length' };
  const len = v.getUint32(at, true);
  at += 4;
  if (len > MAX_CONF_CONTEXT_BYTES || at + len !== data.length) return { ok: false, reason: `conf entry: context of ${len} bytes does not match the data` };
  const conf: ConfState = { voters: lists[0]!, votersOutgoing: lists[1]!, learners: lists[2]!, learnersNext: lists[3]!, autoLeave: flags === 1 };
  for (const l of lists) {
    for (let j = 1; j < l.length; j++) if (!(l[j - 1]! < l[j]!)) return { ok: false, reason: 'conf entry: ids are not in ascending order' };
  }
  const invalid = confInvalid(conf);
  if (invalid) return { ok: false, reason: `conf entry: ${invalid}` };
  if (conf.voters.length === 0) return { ok: false, reason: 'conf entry: no voters' };
  return { ok: true, entry: { conf, context: data.slice(at, at + len) } };
}
