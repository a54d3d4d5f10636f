/**
 * A rogue peer for the fuzz tests: it turns real peer messages into hostile ones and sends them
 * over gRPC as raw bytes, so that it can also send what our own encoder never would (unknown
 * enum numbers, varints past 2^64, truncated frames, garbage).
 *
 * Every message it builds carries at least one defect that the receiver must refuse: the codec
 * (range, shape, size), the transport (cluster, addressing), the core's acceptance guard (term
 * jump, an acknowledgement past the leader's log) or Raft itself (a stale term). What it never
 * builds is a well-formed message with plausible fields under a real peer's id: nothing short of
 * peer authentication (mTLS, DESIGN.md wave 2) can tell that one from the real peer's, so no
 * check of ours could be expected to stop it.
 */
import * as grpc from '@grpc/grpc-js';
import { MAX_TERM_JUMP } from '../../src/raft/core/acceptance.js';
import { confOfVoters, MAX_MEMBERS } from '../../src/raft/core/conf.js';
import { encodeConfEntry } from '../../src/raft/core/conf-codec.js';
import { CAMPAIGN_TRANSFER, type Message, type MessageType, type NodeId } from '../../src/raft/core/types.js';
import { loadRaftProto } from '../../src/raft/transport/grpc.js';
import { encodeMessage } from '../../src/raft/transport/grpc-codec.js';

/** A uint64 as the serializer takes it: a number, or a decimal string beyond 2^53. */
type U64 = number | string;

interface WireEntry {
  index: U64;
  term: U64;
  type: string | number;
  data: Uint8Array;
}

interface WireConf {
  voters: U64[];
  votersOutgoing: U64[];
  learners: U64[];
  learnersNext: U64[];
  autoLeave: boolean;
}

/** A RaftMessage with every field present and nothing checked: what the rogue peer edits. */
export interface WireMessage {
  type: string | number;
  from: U64;
  to: U64;
  term: U64;
  index: U64;
  logTerm: U64;
  commit: U64;
  reject: boolean;
  rejectHint: U64;
  context: U64;
  entries: WireEntry[];
  conf: WireConf | null;
}

/** What the rogue peer knows of the node it attacks, as of the round being built. */
export interface TargetView {
  readonly id: NodeId;
  readonly term: number;
  readonly lastIndex: number;
  readonly commit: number;
  /** The leader the target follows, or 0. */
  readonly leader: NodeId;
}

export interface RogueConfig {
  readonly clusterId: string;
  readonly peers: readonly NodeId[];
  /** The receivers' maxMessageBytes. */
  readonly maxMessageBytes: number;
  /** The receivers' maxSnapshotBytes. */
  readonly maxSnapshotBytes: number;
}

export interface Rng {
  int(n: number): number;
  next(): number;
}

/** One call's worth of hostile traffic. */
export interface Round {
  readonly method: 'Stream' | 'InstallSnapshot';
  /** Request metadata (our transports send cluster, from and to; a stranger may send anything). */
  readonly metadata: Record<string, string>;
  /** The serialized requests (RaftBatch or SnapshotChunk), or bytes that are neither. */
  readonly payloads: Buffer[];
  /** Peer messages in the round (a garbage payload counts as one). */
  readonly messages: number;
  /** The defects used, for the report. */
  readonly defects: string[];
}

/** uint64 values no real message carries: from just past the cap up to 2^64 − 1. */
const HUGE: readonly U64[] = [2 ** 52, 2 ** 52 + 1, 2 ** 53 - 1, 2 ** 53, '9007199254740993', '9223372036854775807', '18446744073709551615'];
const NUMERIC_FIELDS = ['term', 'index', 'logTerm', 'commit', 'rejectHint', 'context'] as const;
/** Field numbers of RaftMessage's uint64 fields (proto/raft.proto). */
const UINT64_FIELD_NUMBERS = [2, 3, 4, 5, 6, 7, 9, 10];

const proto = loadRaftProto().raftkv.raft.Raft.service;
const serializeBatch = proto.Stream.requestSerialize as (b: object) => Buffer;
const serializeChunk = proto.InstallSnapshot.requestSerialize as (c: object) => Buffer;

export function toWire(m: Message): WireMessage {
  const pm = encodeMessage(m)!.msg;
  const c = m.conf;
  return {
    type: pm.type as string,
    from: m.from,
    to: m.to,
    term: m.term,
    index: m.index,
    logTerm: m.logTerm,
    commit: m.commit,
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context,
    entries: m.entries.map((e, i) => ({ index: e.index, term: e.term, type: (pm.entries![i]!.type as string | undefined) ?? 'ENTRY_TYPE_NORMAL', data: e.data })),
    conf: c ? { voters: [...c.voters], votersOutgoing: [...c.votersOutgoing], learners: [...c.learners], learnersNext: [...c.learnersNext], autoLeave: c.autoLeave } : null,
  };
}

const num = (v: U64): number => Number(v);

/** A serialized RaftBatch. */
export function batch(clusterId: string, messages: WireMessage[]): Buffer {
  return serializeBatch({ clusterId, messages });
}

/** A Stream call carrying `payloads`, as our own transports open it (no metadata). */
export function streamRound(payloads: Buffer[], messages: number): Round {
  return { method: 'Stream', metadata: {}, payloads, messages, defects: [] };
}

/** Builds hostile rounds from templates: real messages the target received, or plausible stand-ins. */
export class RoguePeer {
  constructor(
    private readonly cfg: RogueConfig,
    private readonly rng: Rng,
  ) {}

  /** A Stream call: a few batches of defective messages, or a call refused up front. */
  streamRound(target: TargetView, templates: readonly Message[]): Round {
    const defects: string[] = [];
    const metadata: Record<string, string> = {};
    if (this.chance(0.05)) {
      const [key, value, name] = this.pick<[string, string, string]>([
        ['raft-cluster-id', 'another-cluster', 'metadata: other cluster'],
        ['raft-to', String(this.otherPeer(target.id)), 'metadata: addressed to another node'],
        ['raft-from', String(100 + this.rng.int(1000)), 'metadata: unknown sender'],
      ]);
      metadata[key] = value;
      defects.push(name);
    }
    const payloads: Buffer[] = [];
    let messages = 0;
    const batches = 1 + this.rng.int(4);
    for (let b = 0; b < batches; b++) {
      const roll = this.rng.next();
      if (roll < 0.06) {
        payloads.push(randomBytesFrom(this.rng, 1 + this.rng.int(512)));
        defects.push('bytes: garbage');
        messages++;
        continue;
      }
      const count = 1 + this.rng.int(8);
      const msgs = Array.from({ length: count }, () => this.defective(target, templates, defects));
      messages += count;
      let clusterId = this.cfg.clusterId;
      if (roll < 0.12) {
        clusterId = this.pick(['', 'x', this.cfg.clusterId + ' ', 'é'.repeat(1000), '\n'.repeat(3)]);
        defects.push('batch: other cluster');
      }
      let bytes = serializeBatch({ clusterId, messages: msgs });
      if (roll >= 0.12 && roll < 0.18) {
        bytes = bytes.subarray(0, this.rng.int(bytes.length));
        defects.push('bytes: truncated');
      } else if (roll >= 0.18 && roll < 0.24) {
        bytes = this.withNanVarint(clusterId, msgs, defects);
      }
      payloads.push(bytes);
    }
    return { method: 'Stream', metadata, payloads, messages, defects };
  }

  /**
   * An InstallSnapshot call: either a well-formed transfer whose message is defective, or a
   * transfer with a plausible message whose chunks are malformed (so that it is never delivered).
   */
  snapshotRound(target: TargetView): Round {
    const defects: string[] = [];
    const max = this.cfg.maxSnapshotBytes;
    const total = this.rng.int(Math.min(max, 64 * 1024) + 1);
    const data = randomBytesFrom(this.rng, total);
    const m = toWire(this.snapTemplate(target));
    const step = 1 + this.rng.int(Math.max(1, total));
    const chunks: Record<string, unknown>[] = [];
    for (let off = 0; off < total || chunks.length === 0; off += step) {
      const end = Math.min(off + step, total);
      chunks.push({ clusterId: this.cfg.clusterId, offset: off, totalBytes: total, data: data.subarray(off, end), last: end === total });
    }
    chunks[0]!.message = m;
    if (this.chance(0.5)) {
      this.applyDefect(m, target, defects, SNAP_DEFECTS);
    } else {
      this.breakTransfer(chunks, defects);
    }
    const payloads = chunks.map((c) => (c.garbage instanceof Buffer ? c.garbage : serializeChunk(c)));
    return { method: 'InstallSnapshot', metadata: {}, payloads, messages: chunks.length, defects };
  }

  /** A message built from a template with at most one harmless edit, then one defect. */
  private defective(target: TargetView, templates: readonly Message[], defects: string[]): WireMessage {
    const template = templates.length > 0 && this.chance(0.7) ? this.pick(templates) : this.standIn(target);
    const m = toWire(template);
    m.to = target.id;
    if (this.chance(0.3)) this.nudge(m);
    this.applyDefect(m, target, defects, MESSAGE_DEFECTS);
    return m;
  }

  private applyDefect(m: WireMessage, target: TargetView, defects: string[], names: readonly DefectName[]): void {
    for (;;) {
      const name = this.pick(names);
      if (this.defect(name, m, target)) {
        defects.push(name);
        return;
      }
    }
  }

  /** Applies defect `name` to `m`; false if it does not apply to this message. */
  private defect(name: DefectName, m: WireMessage, target: TargetView): boolean {
    const type = m.type;
    const term = num(m.term);
    switch (name) {
      case 'type: unknown':
        m.type = this.pick([0, 11, 12, 99, 2 ** 31 - 1]);
        return true;
      case 'number: beyond the cap':
        m[this.pick(NUMERIC_FIELDS)] = this.pick(HUGE);
        return true;
      case 'from: not a peer':
        m.from = this.pick<U64>([0, target.id, 4 + this.rng.int(1000), 2 ** 53 - 1, '18446744073709551615']);
        return true;
      case 'to: not the receiver':
        m.to = this.pick<U64>([0, this.otherPeer(target.id), 4 + this.rng.int(1000), '18446744073709551615']);
        return true;
      case 'field: foreign to the type':
        return this.foreignField(m);
      case 'logTerm: above term':
        if (!HAS_LOG_TERM.has(String(type))) return false;
        m.logTerm = term + 1 + this.rng.int(10);
        return true;
      case 'term: zero':
        if (!NEEDS_TERM.has(String(type))) return false;
        m.term = 0;
        return true;
      case 'snap: index past commit':
        if (type !== 'MESSAGE_TYPE_SNAPSHOT') return false;
        m.index = num(m.commit) + 1 + this.rng.int(100);
        return true;
      case 'term: implausible jump':
        m.term = target.term + MAX_TERM_JUMP + 1 + this.rng.int(1_000_000);
        return true;
      case 'term: stale':
        if (target.term < 2) return false;
        m.term = 1 + this.rng.int(target.term - 1);
        if (num(m.logTerm) > num(m.term)) m.logTerm = m.term;
        for (const e of m.entries) e.term = m.term;
        return true;
      case 'snap: on the stream':
        // A snap message travels only at the head of an InstallSnapshot call, with its bytes.
        Object.assign(m, toWire(this.snapTemplate(target)));
        m.to = target.id;
        return true;
      case 'conf: on another type':
        if (type === 'MESSAGE_TYPE_SNAPSHOT') return false;
        m.conf = toWire(this.snapTemplate(target)).conf;
        return true;
      case 'conf: invalid':
        if (type !== 'MESSAGE_TYPE_SNAPSHOT') return false;
        m.conf = this.invalidConf();
        return true;
      case 'ack: past the leader log':
        Object.assign(m, toWire(this.message('appResp', this.otherPeer(target.id), target)));
        m.to = target.id;
        m.index = target.lastIndex + 1_000_000 + this.rng.int(1_000_000);
        return true;
      default:
        return this.entryDefect(name, m);
    }
  }

  /** Defects of an append's entries; other types get an append's shape first. */
  private entryDefect(name: DefectName, m: WireMessage): boolean {
    if (m.type !== 'MESSAGE_TYPE_APP') return false;
    const term = num(m.term);
    if (m.entries.length < 2) {
      const first = num(m.index) + 1;
      m.entries = [0, 1, 2].map((i) => ({ index: first + i, term, type: 'ENTRY_TYPE_NORMAL', data: Buffer.from(`forged ${i}`) }));
    }
    const es = m.entries;
    const k = this.rng.int(es.length);
    const e = es[k]!;
    switch (name) {
      case 'entries: gap':
        for (let i = Math.max(k, 1); i < es.length; i++) es[i]!.index = num(es[i]!.index) + 1 + this.rng.int(5);
        return true;
      case 'entries: first not after index':
        es.forEach((x, i) => (x.index = num(m.index) + 2 + this.rng.int(3) + i));
        return true;
      case 'entries: out of order':
        es.reverse();
        return true;
      case 'entries: term above the message term':
        e.term = term + 1 + this.rng.int(5);
        return true;
      case 'entries: term below logTerm or zero':
        e.term = num(m.logTerm) > 1 ? this.rng.int(num(m.logTerm)) : 0;
        return true;
      case 'entries: unknown type':
        e.type = 3 + this.rng.int(100);
        return true;
      case 'entries: malformed conf': {
        e.type = 'ENTRY_TYPE_CONF';
        const valid = encodeConfEntry({ conf: confOfVoters(this.cfg.peers), context: Buffer.from('forged') });
        e.data = this.pick([
          () => randomBytesFrom(this.rng, this.rng.int(64)),
          () => Buffer.from(valid.subarray(0, this.rng.int(valid.length))),
          () => Buffer.concat([valid, Buffer.from([0])]),
          () => Buffer.from(encodeConfEntry({ conf: { ...confOfVoters(this.cfg.peers), learners: [this.cfg.peers[0]!] }, context: new Uint8Array() })),
        ])();
        return true;
      }
      case 'entries: oversized':
        e.data = Buffer.alloc(this.cfg.maxMessageBytes + 1 - this.rng.int(1024) + 1024, 0x61);
        return true;
    }
    return false;
  }

  /** Sets a field that messages of this type never carry. */
  private foreignField(m: WireMessage): boolean {
    const type = String(m.type);
    const choices: (() => void)[] = [];
    const n = 1 + this.rng.int(100);
    if (type !== 'MESSAGE_TYPE_APP') {
      choices.push(() => (m.entries = [{ index: num(m.index) + 1, term: m.term, type: 'ENTRY_TYPE_NORMAL', data: Buffer.from('x') }]));
    }
    if (!['MESSAGE_TYPE_HEARTBEAT', 'MESSAGE_TYPE_HEARTBEAT_RESP', 'MESSAGE_TYPE_VOTE'].includes(type)) choices.push(() => (m.context = n));
    // A vote's context is 0 or CAMPAIGN_TRANSFER (which is no defect: a transfer's vote).
    if (type === 'MESSAGE_TYPE_VOTE') choices.push(() => (m.context = CAMPAIGN_TRANSFER + n));
    if (!['MESSAGE_TYPE_APP', 'MESSAGE_TYPE_HEARTBEAT', 'MESSAGE_TYPE_SNAPSHOT'].includes(type)) choices.push(() => (m.commit = n));
    if (type !== 'MESSAGE_TYPE_APP_RESP') choices.push(() => (m.rejectHint = n));
    if (['MESSAGE_TYPE_PRE_VOTE', 'MESSAGE_TYPE_VOTE', 'MESSAGE_TYPE_APP', 'MESSAGE_TYPE_HEARTBEAT', 'MESSAGE_TYPE_SNAPSHOT', 'MESSAGE_TYPE_TIMEOUT_NOW'].includes(type)) {
      choices.push(() => (m.reject = true));
    }
    this.pick(choices)();
    return true;
  }

  /** A harmless-looking edit, before the defect: the defect must be caught whatever else changed. */
  private nudge(m: WireMessage): void {
    const field = this.pick(['commit', 'context', 'index', 'rejectHint'] as const);
    m[field] = Math.max(0, num(m[field]) + this.rng.int(7) - 3);
  }

  /** Breaks a transfer so that it can never be delivered; its message stays plausible. */
  private breakTransfer(chunks: Record<string, unknown>[], defects: string[]): void {
    const last = chunks[chunks.length - 1]!;
    const total = Number(chunks[0]!.totalBytes);
    /** Appends `c` as the last chunk in place of the real last one, so that nothing completes before it. */
    const finalChunk = (c: Record<string, unknown>): void => {
      last.last = false;
      chunks.push({ ...c, last: true });
    };
    const choices: [string, () => void][] = [
      ['chunks: no last chunk', () => chunks.splice(chunks.length - 1, 1, { ...last, last: false })],
      ['chunks: first without message', () => delete chunks[0]!.message],
      ['chunks: first not at 0', () => (chunks[0]!.offset = 1 + this.rng.int(100))],
      ['chunks: over maxSnapshotBytes', () => chunks.forEach((c) => (c.totalBytes = this.cfg.maxSnapshotBytes + 1 + this.rng.int(1000)))],
      ['chunks: inexact total', () => chunks.forEach((c) => (c.totalBytes = this.pick(['18446744073709551615', '9007199254740993'])))],
      ['chunks: past the total', () => (last.data = Buffer.concat([last.data as Buffer, Buffer.from('overflow')]))],
      ['chunks: second message', () => finalChunk({ ...chunks[0], offset: total, data: Buffer.alloc(0) })],
      ['chunks: other cluster later', () => finalChunk({ clusterId: 'intruder', offset: total, totalBytes: total, data: Buffer.alloc(0) })],
      ['chunks: garbage', () => chunks.splice(this.rng.int(chunks.length), 0, { garbage: randomBytesFrom(this.rng, 1 + this.rng.int(64)) })],
    ];
    if (chunks.length > 1) {
      choices.push(['chunks: gap', () => (chunks[1]!.offset = Number(chunks[1]!.offset) + 1)]);
      choices.push(['chunks: overlap', () => (chunks[1]!.offset = Number(chunks[1]!.offset) - 1)]);
      choices.push(['chunks: total changes', () => (chunks[1]!.totalBytes = total + 1)]);
    }
    const [name, apply] = this.pick(choices);
    apply();
    defects.push(name);
  }

  /** A snapshot configuration the receiver must refuse. */
  private invalidConf(): WireConf {
    const voters = [...this.cfg.peers];
    const base: WireConf = { voters, votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
    return this.pick<() => WireConf>([
      () => ({ ...base, voters: [] }),
      () => ({ ...base, voters: [0, ...voters] }),
      () => ({ ...base, voters: [...voters].reverse() }),
      () => ({ ...base, voters: [voters[0]!, ...voters] }),
      () => ({ ...base, learners: [this.pick(voters)] }),
      () => ({ ...base, learnersNext: [100 + this.rng.int(100)] }),
      () => ({ ...base, autoLeave: true }),
      () => ({ ...base, learners: [this.pick<U64>([2 ** 53, '9007199254740993', '18446744073709551615'])] }), // past 2^53: inexact
      () => ({ ...base, learners: Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => 100 + i) }),
    ])();
  }

  /** Replaces the last message of a batch by its encoding plus one uint64 field with an out-of-range varint. */
  private withNanVarint(clusterId: string, msgs: WireMessage[], defects: string[]): Buffer {
    const head = serializeBatch({ clusterId, messages: msgs.slice(0, -1) });
    const last = serializeBatch({ messages: [msgs[msgs.length - 1]] }).subarray(1); // drop field 2's tag
    const lenBytes = readVarintLength(last);
    const body = last.subarray(lenBytes);
    const field = this.pick(UINT64_FIELD_NUMBERS);
    const overlong = this.chance(0.5);
    // 2^64 − 1 takes ten bytes; an eleventh makes the varint longer than any 64-bit value.
    const varint = Buffer.from([...Array<number>(overlong ? 10 : 9).fill(0xff), 0x01]);
    const extended = Buffer.concat([body, Buffer.from([field << 3]), varint]);
    defects.push(overlong ? 'bytes: varint over 64 bits' : 'bytes: varint of 2^64 - 1');
    return Buffer.concat([head, Buffer.from([0x12]), encodeVarint(extended.length), extended]);
  }

  private snapTemplate(target: TargetView): Message {
    return this.message('snap', target.leader || this.otherPeer(target.id), target);
  }

  /** A plausible message of a random type, for when no real one has been captured yet. */
  private standIn(target: TargetView): Message {
    const type = this.pick<MessageType>(['preVote', 'preVoteResp', 'vote', 'voteResp', 'app', 'appResp', 'heartbeat', 'heartbeatResp', 'snap', 'timeoutNow']);
    const from = ['app', 'heartbeat', 'snap', 'timeoutNow'].includes(type) && target.leader !== 0 ? target.leader : this.otherPeer(target.id);
    return this.message(type, from, target);
  }

  private message(type: MessageType, from: NodeId, t: TargetView): Message {
    const term = Math.max(t.term, 1);
    const base: Message = { type, from, to: t.id, term, index: 0, logTerm: 0, commit: 0, reject: false, rejectHint: 0, context: 0, entries: [] };
    switch (type) {
      case 'preVote':
        return { ...base, term: term + 1, index: t.lastIndex, logTerm: term };
      case 'vote':
        return { ...base, index: t.lastIndex, logTerm: term };
      case 'app':
        return {
          ...base,
          index: t.lastIndex,
          logTerm: term,
          commit: t.commit,
          entries: [{ index: t.lastIndex + 1, term, type: 'normal', data: Buffer.from('forged') }],
        };
      case 'appResp':
        return { ...base, index: t.lastIndex };
      case 'heartbeat':
        return { ...base, commit: t.commit };
      case 'heartbeatResp':
        return { ...base, context: this.rng.int(3) };
      case 'snap':
        return { ...base, index: t.commit, logTerm: term, commit: t.commit, conf: confOfVoters(this.cfg.peers) };
      case 'timeoutNow':
        return base;
      default:
        return { ...base, reject: this.chance(0.5) };
    }
  }

  private otherPeer(self: NodeId): NodeId {
    return this.pick(this.cfg.peers.filter((p) => p !== self));
  }

  private chance(p: number): boolean {
    return this.rng.next() < p;
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(xs.length)]!;
  }
}

const MESSAGE_DEFECTS = [
  'type: unknown',
  'number: beyond the cap',
  'from: not a peer',
  'to: not the receiver',
  'field: foreign to the type',
  'logTerm: above term',
  'term: zero',
  'snap: index past commit',
  'snap: on the stream',
  'term: implausible jump',
  'term: stale',
  'ack: past the leader log',
  'conf: on another type',
  'conf: invalid',
  'entries: gap',
  'entries: first not after index',
  'entries: out of order',
  'entries: term above the message term',
  'entries: term below logTerm or zero',
  'entries: unknown type',
  'entries: malformed conf',
  'entries: oversized',
] as const;
type DefectName = (typeof MESSAGE_DEFECTS)[number];
/** The defects of a snap message's own fields, for the head of a transfer. */
const SNAP_DEFECTS: readonly DefectName[] = MESSAGE_DEFECTS.filter(
  (d) => !d.startsWith('entries:') && d !== 'snap: on the stream' && d !== 'ack: past the leader log' && d !== 'conf: on another type',
);
const HAS_LOG_TERM = new Set(['MESSAGE_TYPE_PRE_VOTE', 'MESSAGE_TYPE_VOTE', 'MESSAGE_TYPE_APP', 'MESSAGE_TYPE_APP_RESP', 'MESSAGE_TYPE_SNAPSHOT']);
const NEEDS_TERM = new Set(['MESSAGE_TYPE_PRE_VOTE', 'MESSAGE_TYPE_VOTE', 'MESSAGE_TYPE_APP', 'MESSAGE_TYPE_HEARTBEAT', 'MESSAGE_TYPE_SNAPSHOT', 'MESSAGE_TYPE_TIMEOUT_NOW']);

function randomBytesFrom(rng: Rng, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(256);
  return b;
}

function encodeVarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

function readVarintLength(b: Buffer): number {
  let i = 0;
  while (b[i]! & 0x80) i++;
  return i + 1;
}

/** Sends one round over a raw call (bytes in, bytes out) and resolves with the call's status. */
export function sendRound(client: grpc.Client, round: Round, deadlineMs: number): Promise<grpc.ServiceError | null> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(round.metadata)) md.set(k, v);
  const identity = (b: Buffer): Buffer => b;
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(`/raftkv.raft.Raft/${round.method}`, identity, identity, md, { deadline: Date.now() + deadlineMs }, (err) =>
      resolve(err),
    );
    call.on('error', () => {}); // the status arrives through the callback
    for (const p of round.payloads) call.write(p);
    call.end();
  });
}
