import type { Entry, EntryType, Message, MessageType } from '../core/types.js';
import type { RaftMessage, RaftMessage__Output } from './generated/raftkv/raft/RaftMessage.js';
import type { Entry as ProtoEntry } from './generated/raftkv/raft/Entry.js';

// Core Message <-> protobuf, field by field.

type ProtoMessageType = Exclude<RaftMessage['type'], number | undefined>;

const TYPE_TO_PROTO: Readonly<Record<MessageType, ProtoMessageType>> = {
  preVote: 'MESSAGE_TYPE_PRE_VOTE',
  preVoteResp: 'MESSAGE_TYPE_PRE_VOTE_RESP',
  vote: 'MESSAGE_TYPE_VOTE',
  voteResp: 'MESSAGE_TYPE_VOTE_RESP',
  app: 'MESSAGE_TYPE_APP',
  appResp: 'MESSAGE_TYPE_APP_RESP',
  heartbeat: 'MESSAGE_TYPE_HEARTBEAT',
  heartbeatResp: 'MESSAGE_TYPE_HEARTBEAT_RESP',
  snap: 'MESSAGE_TYPE_SNAPSHOT',
};
/** Wire numbers, for the size computation (must match proto/raft.proto). */
const TYPE_NUMBER: Readonly<Record<MessageType, number>> = {
  preVote: 1,
  preVoteResp: 2,
  vote: 3,
  voteResp: 4,
  app: 5,
  appResp: 6,
  heartbeat: 7,
  heartbeatResp: 8,
  snap: 9,
};
const TYPE_FROM_PROTO = new Map<unknown, MessageType>(
  Object.entries(TYPE_TO_PROTO).map(([core, wire]) => [wire, core as MessageType]),
);
const ENTRY_TYPE_FROM_PROTO = new Map<unknown, EntryType>([
  ['ENTRY_TYPE_NORMAL', 'normal'],
  ['ENTRY_TYPE_NOOP', 'noop'],
]);

/** Bytes of a varint (non-negative integers up to 2^53; anything else is costed at the maximum). */
function varintSize(n: number): number {
  if (n < 0x80) return n >= 0 ? 1 : 10;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let rest = Math.floor(n / 0x10000000);
  while (rest > 0) {
    size++;
    rest = Math.floor(rest / 0x80);
  }
  return size;
}

/** Tag (one byte: every field number is < 16) plus varint, or nothing for the proto3 default 0. */
function uintFieldSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

/** Size of a length-delimited field holding `len` bytes. */
function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

/** An outbound message in wire form, with its exact encoded size inside a RaftBatch. */
export interface EncodedMessage {
  readonly msg: RaftMessage;
  /** Bytes this message adds to a RaftBatch (field tag and length prefix included). */
  readonly batchBytes: number;
}

/**
 * Converts a core message to its protobuf object. Fields equal to their proto3 default are left
 * off (not encoded, and filled back in by `defaults: true` on the receiver), which saves bytes
 * and Long conversions on the hot path.
 */
export function encodeMessage(m: Message): EncodedMessage | undefined {
  const type = TYPE_TO_PROTO[m.type];
  const typeNumber = TYPE_NUMBER[m.type];
  if (type === undefined || typeNumber === undefined) return undefined;
  const msg: RaftMessage = { type };
  let size = 1 + varintSize(typeNumber);
  if (m.from !== 0) {
    msg.from = m.from;
    size += uintFieldSize(m.from);
  }
  if (m.to !== 0) {
    msg.to = m.to;
    size += uintFieldSize(m.to);
  }
  if (m.term !== 0) {
    msg.term = m.term;
    size += uintFieldSize(m.term);
  }
  if (m.index !== 0) {
    msg.index = m.index;
    size += uintFieldSize(m.index);
  }
  if (m.logTerm !== 0) {
    msg.logTerm = m.logTerm;
    size += uintFieldSize(m.logTerm);
  }
  if (m.commit !== 0) {
    msg.commit = m.commit;
    size += uintFieldSize(m.commit);
  }
  if (m.reject) {
    msg.reject = true;
    size += 2;
  }
  if (m.rejectHint !== 0) {
    msg.rejectHint = m.rejectHint;
    size += uintFieldSize(m.rejectHint);
  }
  if (m.context !== 0) {
    msg.context = m.context;
    size += uintFieldSize(m.context);
  }
  const n = m.entries.length;
  if (n > 0) {
    const entries = new Array<ProtoEntry>(n);
    for (let i = 0; i < n; i++) {
      const e = m.entries[i] as Entry;
      const pe: ProtoEntry = {};
      let es = 0;
      if (e.index !== 0) {
        pe.index = e.index;
        es += uintFieldSize(e.index);
      }
      if (e.term !== 0) {
        pe.term = e.term;
        es += uintFieldSize(e.term);
      }
      if (e.type === 'noop') {
        pe.type = 'ENTRY_TYPE_NOOP';
        es += 2;
      }
      if (e.data.length > 0) {
        pe.data = e.data; // encoded straight from the caller's bytes, no intermediate copy
        es += lenFieldSize(e.data.length);
      }
      entries[i] = pe;
      size += lenFieldSize(es);
    }
    msg.entries = entries;
  }
  return { msg, batchBytes: lenFieldSize(size) };
}

/** Encoded bytes of a RaftBatch's envelope (its cluster id) without the messages. */
export function batchOverheadBytes(clusterId: string): number {
  const len = Buffer.byteLength(clusterId);
  return len === 0 ? 0 : lenFieldSize(len);
}

/** Converts a received protobuf message to a core message, or explains why it cannot. */
export function decodeMessage(pm: RaftMessage__Output): Message | string {
  const type = TYPE_FROM_PROTO.get(pm.type);
  if (type === undefined) return `unknown message type ${String(pm.type)}`;
  const n = pm.entries.length;
  const entries = new Array<Entry>(n);
  for (let i = 0; i < n; i++) {
    const pe = pm.entries[i]!;
    const entryType = ENTRY_TYPE_FROM_PROTO.get(pe.type);
    if (entryType === undefined) return `entry ${pe.index} has unknown type ${String(pe.type)}`;
    // pe.data is a Buffer view into grpc's receive buffer: no copy.
    entries[i] = { index: pe.index, term: pe.term, type: entryType, data: pe.data };
  }
  return {
    type,
    from: pm.from,
    to: pm.to,
    term: pm.term,
    index: pm.index,
    logTerm: pm.logTerm,
    commit: pm.commit,
    reject: pm.reject,
    rejectHint: pm.rejectHint,
    context: pm.context,
    entries,
  };
}
