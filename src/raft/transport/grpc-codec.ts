import { MAX_INDEX, MAX_TERM } from '../core/acceptance.js';
import type { ConfState } from '../core/conf.js';
import { decodeConfEntry } from '../core/conf-codec.js';
import { CAMPAIGN_TRANSFER, type Entry, type EntryType, type Message, type MessageType } from '../core/types.js';
import { checkConf } from '../conf-input.js';
import type { RaftMessage, RaftMessage__Output } from './generated/raftkv/raft/RaftMessage.js';
import type { Entry as ProtoEntry } from './generated/raftkv/raft/Entry.js';
import type { ConfState as ProtoConfState } from './generated/raftkv/raft/ConfState.js';

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
  timeoutNow: 'MESSAGE_TYPE_TIMEOUT_NOW',
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
  timeoutNow: 10,
};
const TYPE_FROM_PROTO = new Map<unknown, MessageType>(
  Object.entries(TYPE_TO_PROTO).map(([core, wire]) => [wire, core as MessageType]),
);
type ProtoEntryType = Exclude<ProtoEntry['type'], number | undefined>;

/** ENTRY_TYPE_NORMAL is proto3's default: left off the wire. */
const ENTRY_TYPE_TO_PROTO: Readonly<Record<Exclude<EntryType, 'normal'>, ProtoEntryType>> = {
  noop: 'ENTRY_TYPE_NOOP',
  conf: 'ENTRY_TYPE_CONF',
};
const ENTRY_TYPE_FROM_PROTO = new Map<unknown, EntryType>([
  ['ENTRY_TYPE_NORMAL', 'normal'],
  ...Object.entries(ENTRY_TYPE_TO_PROTO).map(([core, wire]) => [wire, core as EntryType] as const),
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

/** A configuration in wire form and its encoded size (proto3 packs repeated uint64: one length-delimited field per non-empty list). */
function encodeConf(c: ConfState): { pc: ProtoConfState; size: number } {
  const pc: ProtoConfState = {};
  let size = 0;
  const list = (ids: readonly number[]): number[] | undefined => {
    if (ids.length === 0) return undefined;
    let bytes = 0;
    for (const id of ids) bytes += varintSize(id);
    size += lenFieldSize(bytes);
    return [...ids];
  };
  pc.voters = list(c.voters);
  pc.votersOutgoing = list(c.votersOutgoing);
  pc.learners = list(c.learners);
  pc.learnersNext = list(c.learnersNext);
  if (c.autoLeave) {
    pc.autoLeave = true;
    size += 2;
  }
  return { pc, size };
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
      if (e.type !== 'normal') {
        pe.type = ENTRY_TYPE_TO_PROTO[e.type];
        es += 2; // tag and a one-byte enum number
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
  if (m.conf) {
    const { pc, size: cs } = encodeConf(m.conf);
    msg.conf = pc;
    size += lenFieldSize(cs); // field 13: still a one-byte tag
  }
  return { msg, batchBytes: lenFieldSize(size) };
}

/** Encoded bytes of a RaftBatch's envelope (its cluster id) without the messages. */
export function batchOverheadBytes(clusterId: string): number {
  const len = Buffer.byteLength(clusterId);
  return len === 0 ? 0 : lenFieldSize(len);
}

// Caps of the peer wire format beside the core's (MAX_TERM, MAX_INDEX in core/acceptance.ts).
// Each is well above what our own sender produces, so that a legitimate message never meets it,
// and bounds the work one message or batch can cause. Entry bytes are capped at the transport's
// maxMessageBytes (GrpcTransport passes it to decodeMessage), a little below grpc's own limit.

/** Entries in one append: the core packs at most maxMsgBytes (1 MiB) / ENTRY_OVERHEAD (16) = 65,536; twice that. */
export const MAX_ENTRIES_PER_MESSAGE = 131_072;
/** Messages in one batch: a sender's queue holds peerQueueLimit (4096 by default), and PeerLink never puts more than this in a batch. */
export const MAX_MESSAGES_PER_BATCH = 65_536;
/** Read-round contexts count up from 1 per read (KvServer); the cap keeps ctx + 1 exact too. */
const MAX_CONTEXT = MAX_INDEX;

/** Why a received message is refused: `rule` names the check (a stable key for rate-limited logs), `detail` says what was found. */
export interface DecodeError {
  readonly rule: string;
  readonly detail: string;
}

type OptionalField = 'index' | 'logTerm' | 'commit' | 'reject' | 'rejectHint' | 'context' | 'entries' | 'conf';

/**
 * The fields each type carries besides type, from, to and term: exactly what raft.ts sets when it
 * sends one (see Message in core/types.ts). Any other field must be at its zero value: a message
 * with fields its type never has was not built by our core.
 */
const FIELDS: Readonly<Record<MessageType, ReadonlySet<OptionalField>>> = {
  preVote: new Set(['index', 'logTerm']),
  preVoteResp: new Set(['reject']),
  vote: new Set(['index', 'logTerm', 'context']),
  voteResp: new Set(['reject']),
  app: new Set(['index', 'logTerm', 'commit', 'entries']),
  appResp: new Set(['index', 'logTerm', 'reject', 'rejectHint']),
  heartbeat: new Set(['commit', 'context']),
  heartbeatResp: new Set(['index', 'reject', 'context']),
  snap: new Set(['index', 'logTerm', 'commit', 'conf']),
  timeoutNow: new Set(),
};
/** Sent by a leader or a candidate, whose term is at least 1. (A response may carry term 0: its sender never saw a term.) */
const NEEDS_TERM: ReadonlySet<MessageType> = new Set(['preVote', 'vote', 'app', 'heartbeat', 'snap', 'timeoutNow']);
/** logTerm is the term of an entry in the sender's log (or of the rejecting follower's hint), never above the message's term. */
const LOG_TERM_AT_MOST_TERM: ReadonlySet<MessageType> = new Set(['preVote', 'vote', 'app', 'appResp', 'snap']);

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
}

function refuse(rule: string, detail: string): DecodeError {
  return { rule, detail };
}

/**
 * Converts a received protobuf message to a core message, or says why it is refused. Every field
 * is checked before use: the type is known; ids, terms, indexes and counters are exact integers
 * within their caps (uint64 values past 2^53 arrive inexact, past the caps they are refused); a
 * type carries only its own fields; an append's entries follow its index one by one, with terms
 * between its logTerm and its term that never decrease (§5.3: log terms only grow), of known
 * types, with at most MAX_ENTRIES_PER_MESSAGE entries and `maxEntryBytes` bytes of data; a
 * conf entry's data decodes to a valid configuration (the core applies it without a second
 * look); a snapshot's configuration passes checkConf (conf-input.ts); a vote's context is 0 or
 * CAMPAIGN_TRANSFER.
 */
export function decodeMessage(pm: RaftMessage__Output, maxEntryBytes = Number.MAX_SAFE_INTEGER): Message | DecodeError {
  const type = TYPE_FROM_PROTO.get(pm.type);
  if (type === undefined) return refuse('type', `unknown message type ${String(pm.type)}`);
  const { from, to, term, index, logTerm, commit, reject, rejectHint, context } = pm;
  if (!isUint(from, Number.MAX_SAFE_INTEGER) || from === 0) return refuse('from', `sender id ${String(from)} is not a node id`);
  if (!isUint(to, Number.MAX_SAFE_INTEGER) || to === 0) return refuse('to', `receiver id ${String(to)} is not a node id`);
  if (!isUint(term, MAX_TERM)) return refuse('range', `term ${String(term)} is outside 0..${MAX_TERM}`);
  if (!isUint(index, MAX_INDEX)) return refuse('range', `index ${String(index)} is outside 0..${MAX_INDEX}`);
  if (!isUint(logTerm, MAX_TERM)) return refuse('range', `logTerm ${String(logTerm)} is outside 0..${MAX_TERM}`);
  if (!isUint(commit, MAX_INDEX)) return refuse('range', `commit ${String(commit)} is outside 0..${MAX_INDEX}`);
  if (!isUint(rejectHint, MAX_INDEX)) return refuse('range', `rejectHint ${String(rejectHint)} is outside 0..${MAX_INDEX}`);
  if (!isUint(context, MAX_CONTEXT)) return refuse('range', `context ${String(context)} is outside 0..${MAX_CONTEXT}`);
  if (typeof reject !== 'boolean' || !Array.isArray(pm.entries)) return refuse('shape', 'reject is not a boolean or entries not a list');
  const fields = FIELDS[type];
  const present: [OptionalField, boolean][] = [
    ['index', index !== 0],
    ['logTerm', logTerm !== 0],
    ['commit', commit !== 0],
    ['reject', reject],
    ['rejectHint', rejectHint !== 0],
    ['context', context !== 0],
    ['entries', pm.entries.length > 0],
    // A message field: absent is null (proto-loader's `defaults`), or undefined from a caller
    // that built the object by hand.
    ['conf', pm.conf != null],
  ];
  for (const [field, set] of present) {
    if (set && !fields.has(field)) return refuse('field', `${type} messages carry no ${field}`);
  }
  if (term === 0 && NEEDS_TERM.has(type)) return refuse('term', `${type} messages carry a term of at least 1, not 0`);
  if (LOG_TERM_AT_MOST_TERM.has(type) && logTerm > term) return refuse('logTerm', `logTerm ${logTerm} is above the term ${term}`);
  // A snapshot covers applied entries only, which the leader has committed.
  if (type === 'snap' && index > commit) return refuse('snap', `the snapshot's index ${index} is past the leader's commit ${commit}`);
  // Any other context would be a meaning no sender of ours gives a vote.
  if (type === 'vote' && context !== 0 && context !== CAMPAIGN_TRANSFER) {
    return refuse('context', `vote context ${context} is neither 0 nor ${CAMPAIGN_TRANSFER} (a leadership transfer)`);
  }
  const entries = decodeEntries(pm, term, maxEntryBytes);
  if (!Array.isArray(entries)) return entries;
  const m: Message = { type, from, to, term, index, logTerm, commit, reject, rejectHint, context, entries };
  if (pm.conf != null) {
    const conf = checkConf(pm.conf);
    if (!conf.ok) return refuse('conf', `the snapshot's configuration is invalid: ${conf.reason}`);
    m.conf = conf.conf;
  }
  return m;
}

/** An append's entries, checked as decodeMessage says. */
function decodeEntries(pm: RaftMessage__Output, term: number, maxEntryBytes: number): Entry[] | DecodeError {
  const n = pm.entries.length;
  if (n > MAX_ENTRIES_PER_MESSAGE) return refuse('entries', `${n} entries, more than ${MAX_ENTRIES_PER_MESSAGE}`);
  if (pm.index + n > MAX_INDEX) return refuse('range', `entries up to ${pm.index + n} run past index ${MAX_INDEX}`);
  const entries = new Array<Entry>(n);
  let minTerm = Math.max(pm.logTerm, 1);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const pe = pm.entries[i]!;
    const want = pm.index + 1 + i;
    if (pe.index !== want) return refuse('entries', `entry ${i} has index ${String(pe.index)}, expected ${want} (entries follow index ${pm.index} one by one)`);
    if (!isUint(pe.term, term) || pe.term < minTerm) {
      const why = "from the previous entry's term (or logTerm) up to the message's term";
      return refuse('entries', `entry ${want} has term ${String(pe.term)}, outside ${minTerm}..${term} (${why})`);
    }
    minTerm = pe.term;
    const entryType = ENTRY_TYPE_FROM_PROTO.get(pe.type);
    if (entryType === undefined) return refuse('entries', `entry ${want} has unknown type ${String(pe.type)}`);
    if (!(pe.data instanceof Uint8Array)) return refuse('entries', `entry ${want} has no byte data`);
    bytes += pe.data.length;
    if (bytes > maxEntryBytes) return refuse('size', `entries hold more than ${maxEntryBytes} bytes of data`);
    if (entryType === 'conf') {
      const conf = decodeConfEntry(pe.data);
      if (!conf.ok) return refuse('conf', `entry ${want}: ${conf.reason}`);
    }
    // pe.data is a Buffer view into grpc's receive buffer: no copy.
    entries[i] = { index: want, term: pe.term, type: entryType, data: pe.data };
  }
  return entries;
}
