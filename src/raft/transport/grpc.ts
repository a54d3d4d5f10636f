import { constants as bufferConstants } from 'node:buffer';
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../../proto.js';
import type { Entry, EntryType, Message, MessageType, NodeId } from '../core/types.js';
import type { PeerAddress, Transport } from './transport.js';
import type { ProtoGrpcType } from './generated/raft.js';
import type { RaftClient } from './generated/raftkv/raft/Raft.js';
import type { RaftBatch, RaftBatch__Output } from './generated/raftkv/raft/RaftBatch.js';
import type { RaftMessage, RaftMessage__Output } from './generated/raftkv/raft/RaftMessage.js';
import type { Entry as ProtoEntry } from './generated/raftkv/raft/Entry.js';
import type { SnapshotAck } from './generated/raftkv/raft/SnapshotAck.js';
import type { SnapshotChunk, SnapshotChunk__Output } from './generated/raftkv/raft/SnapshotChunk.js';
import type { StreamAck } from './generated/raftkv/raft/StreamAck.js';

/** The loaded `raftkv.raft` package: service definition and client constructor. */
export function loadRaftProto(): ProtoGrpcType {
  return loadProto('raft.proto') as unknown as ProtoGrpcType;
}

export interface GrpcTransportOptions {
  /** Every batch carries it; a receiver refuses batches from another cluster. */
  clusterId: string;
  self: NodeId;
  /** host:port to listen on; port 0 picks a free port (see `port` after start()). */
  listen: string;
  /** The other members (an entry for `self` is ignored). */
  peers: PeerAddress[];
  /**
   * Largest batch on the wire, in encoded bytes (default 4 MiB). grpc's send/receive limits are
   * set a little above it. A single message that does not fit is dropped with a log line.
   * Every member of a cluster must use the same value.
   */
  maxMessageBytes?: number;
  /** Messages queued per peer while its stream is busy or still opening (default 4096). */
  peerQueueLimit?: number;
  /** Encoded bytes queued per peer (default 4 × maxMessageBytes). */
  peerQueueBytes?: number;
  /**
   * Snapshot bytes per InstallSnapshot chunk (default 1 MiB, at most maxMessageBytes). Small
   * chunks keep the ordinary stream's messages from queueing behind a snapshot on the connection.
   */
  snapshotChunkBytes?: number;
  /**
   * Largest snapshot this node accepts (default 1 GiB). A bigger one is refused on its first
   * chunk with RESOURCE_EXHAUSTED, before any memory is set aside for it.
   */
  maxSnapshotBytes?: number;
  /** sendSnapshot rejects when its transfer is not acknowledged within this time (default 60 s). */
  snapshotTimeoutMs?: number;
  /** Receives one line per notable event (refusals, drops, stream up/down). Default: console.error. */
  logger?: (line: string) => void;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const DEFAULT_PEER_QUEUE_LIMIT = 4096;
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;
const DEFAULT_SNAPSHOT_TIMEOUT_MS = 60_000;
/** Headroom between maxMessageBytes and grpc's hard limits. */
const GRPC_LIMIT_SLACK = 64 * 1024;
const BACKOFF_INITIAL_MS = 50;
const BACKOFF_MAX_MS = 2000;
/** A stream that does not get the receiver's response headers within this time is retried. */
const HANDSHAKE_TIMEOUT_MS = 5000;
const SHUTDOWN_GRACE_MS = 1000;
/** Identical log lines (same key) are emitted at most once per this interval. */
const LOG_INTERVAL_MS = 10_000;

/** Request metadata of a stream: lets the receiver refuse a misaddressed stream up front. */
const MD_CLUSTER = 'raft-cluster-id';
const MD_FROM = 'raft-from';
const MD_TO = 'raft-to';

// ---------------------------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------------------------

/** Why an inbound call, message or chunk is refused: the status that ends the call, and why. */
interface Refusal {
  readonly code: grpc.status;
  readonly details: string;
}

/** Misaddressed, or from another cluster: the sender's configuration is wrong. */
function precondition(details: string): Refusal {
  return { code: grpc.status.FAILED_PRECONDITION, details };
}

/** Not what our own transport sends: a bug or a stranger. */
function malformed(details: string): Refusal {
  return { code: grpc.status.INVALID_ARGUMENT, details };
}

function isRefusal(x: object): x is Refusal {
  return 'details' in x;
}

/**
 * Hands inbound data to the node. An exception from the handler is not the transport's to
 * swallow (e.g. a Raft invariant violation): it surfaces as an uncaught exception instead of
 * being turned into a call error by grpc. Returns whether the handler returned normally.
 */
function deliver(handle: () => void): boolean {
  try {
    handle();
    return true;
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
    return false;
  }
}

/** A snapshot being reassembled from the chunks of one InstallSnapshot call. */
interface Assembly {
  readonly m: Message;
  /** Allocated once, at the size the first chunk announced. */
  readonly bytes: Buffer;
  received: number;
  readonly startedAt: number;
}

/**
 * Copies a chunk into its snapshot, or says why the transfer is malformed. Chunks must follow
 * each other without gap or overlap, so that a snapshot that reaches its last chunk has every
 * byte exactly once.
 */
function addChunk(a: Assembly, chunk: SnapshotChunk__Output, first: boolean): Refusal | undefined {
  const total = a.bytes.length;
  if (!first && chunk.message !== null) return malformed('a chunk after the first carries a message');
  if (chunk.totalBytes !== total) return malformed(`a chunk announces ${chunk.totalBytes} bytes in all, the first announced ${total}`);
  if (chunk.offset !== a.received) return malformed(`a chunk starts at byte ${chunk.offset}, expected ${a.received} (gap or overlap)`);
  if (chunk.data.length > total - a.received) {
    return malformed(`a chunk of ${chunk.data.length} bytes at byte ${chunk.offset} runs past the total of ${total}`);
  }
  a.bytes.set(chunk.data, a.received);
  a.received += chunk.data.length;
  if (chunk.last && a.received !== total) return malformed(`the last chunk ends at byte ${a.received} of ${total}`);
  return undefined;
}

// ---------------------------------------------------------------------------------------------

/** Emits a line at most once per interval per key, reporting how many were suppressed. */
class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly sink: (line: string) => void,
    private readonly prefix: string,
  ) {}

  log(key: string, line: string): void {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    const suffix = seen !== undefined && seen.suppressed > 0 ? ` (${seen.suppressed} similar suppressed)` : '';
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > 1000) this.last.clear(); // keys are bounded in practice; never grow unbounded
    this.emit(line + suffix);
  }

  emit(line: string): void {
    try {
      this.sink(`${this.prefix}${line}`);
    } catch {
      // a failing logger must not break the transport
    }
  }
}

type LinkState = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

/** The outbound side towards one peer: one stream, one bounded queue. */
interface PeerLink {
  readonly id: NodeId;
  readonly address: string;
  client: RaftClient | undefined;
  call: grpc.ClientWritableStream<RaftBatch> | undefined;
  state: LinkState;
  queue: EncodedMessage[];
  queuedBytes: number;
  /** Bytes handed to grpc whose write has not completed yet (backpressure from HTTP/2). */
  inflightBytes: number;
  needDrain: boolean;
  backoffMs: number;
  upSince: number;
  timer: NodeJS.Timeout | undefined;
  /** Set after a failure was logged, so that the next "up" is logged too. */
  reportedDown: boolean;
  /** Cancels the snapshot transfer in flight to this peer (at most one), failing it with `reason`. */
  snapshot: ((reason: string) => void) | undefined;
}

/** Ends an inbound call: OK (null), or the refusal's status. Only the first call counts. */
type InboundFinisher = (status: Refusal | null) => void;

/**
 * Transport over gRPC: one long-lived client-streaming call per peer (RaftBatch messages, no
 * per-message round trip). Outbound messages queue per peer (bounded; when full, new messages
 * are dropped) and everything queued in one event-loop turn leaves as one RaftBatch. A snapshot
 * travels in an InstallSnapshot call of its own on the same connection, in chunks, so that it
 * neither counts against the message queue nor holds up the messages behind it.
 */
export class GrpcTransport implements Transport {
  private readonly clusterId: string;
  private readonly self: NodeId;
  private readonly listen: string;
  private readonly maxMessageBytes: number;
  private readonly grpcLimit: number;
  private readonly queueLimit: number;
  private readonly queueBytes: number;
  /** Bytes allowed in grpc's hands per peer before we wait for writes to complete. */
  private readonly inflightLimit: number;
  private readonly overhead: number;
  private readonly log: RateLimitedLog;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly peerList: string;
  private readonly snapshotChunkBytes: number;
  private readonly maxSnapshotBytes: number;
  private readonly snapshotTimeoutMs: number;
  private handler: ((m: Message) => void) | undefined;
  private snapshotHandler: ((m: Message, data: Uint8Array) => void) | undefined;
  private server: grpc.Server | undefined;
  private boundPort = 0;
  private started = false;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private readonly dirty = new Set<PeerLink>();
  private flushScheduled = false;
  private readonly inbound = new Set<InboundFinisher>();
  /** The unfinished inbound snapshot transfer of each sender: a newer one supersedes it. */
  private readonly snapshotsIn = new Map<NodeId, InboundFinisher>();

  constructor(options: GrpcTransportOptions) {
    if (options.clusterId === '') throw new Error('raft transport: clusterId must not be empty');
    if (!Number.isSafeInteger(options.self) || options.self <= 0) {
      throw new Error(`raft transport: self must be a positive integer, got ${options.self}`);
    }
    this.clusterId = options.clusterId;
    this.self = options.self;
    this.listen = options.listen;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!(this.maxMessageBytes >= 1024)) throw new Error('raft transport: maxMessageBytes must be ≥ 1024');
    this.grpcLimit = this.maxMessageBytes + GRPC_LIMIT_SLACK;
    this.queueLimit = options.peerQueueLimit ?? DEFAULT_PEER_QUEUE_LIMIT;
    this.queueBytes = options.peerQueueBytes ?? 4 * this.maxMessageBytes;
    this.inflightLimit = 2 * this.maxMessageBytes;
    this.overhead = batchOverheadBytes(this.clusterId);
    // A chunk's envelope (cluster id, snap message, offsets) fits in GRPC_LIMIT_SLACK.
    this.snapshotChunkBytes = options.snapshotChunkBytes ?? Math.min(DEFAULT_SNAPSHOT_CHUNK_BYTES, this.maxMessageBytes);
    if (!(Number.isSafeInteger(this.snapshotChunkBytes) && this.snapshotChunkBytes >= 1 && this.snapshotChunkBytes <= this.maxMessageBytes)) {
      throw new Error(`raft transport: snapshotChunkBytes must be an integer from 1 to maxMessageBytes (${this.maxMessageBytes})`);
    }
    this.maxSnapshotBytes = options.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES;
    if (!(Number.isSafeInteger(this.maxSnapshotBytes) && this.maxSnapshotBytes >= 0 && this.maxSnapshotBytes <= bufferConstants.MAX_LENGTH)) {
      throw new Error(`raft transport: maxSnapshotBytes must be an integer from 0 to ${bufferConstants.MAX_LENGTH} (the largest Buffer)`);
    }
    this.snapshotTimeoutMs = options.snapshotTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS;
    if (!(this.snapshotTimeoutMs > 0)) throw new Error('raft transport: snapshotTimeoutMs must be > 0');
    this.log = new RateLimitedLog(options.logger ?? ((line) => console.error(line)), `raft transport ${this.self}: `);
    for (const p of options.peers) {
      if (p.id === this.self) continue;
      if (!Number.isSafeInteger(p.id) || p.id <= 0) throw new Error(`raft transport: bad peer id ${p.id}`);
      if (this.links.has(p.id)) throw new Error(`raft transport: peer ${p.id} listed twice`);
      this.links.set(p.id, {
        id: p.id,
        address: p.address,
        client: undefined,
        call: undefined,
        state: 'idle',
        queue: [],
        queuedBytes: 0,
        inflightBytes: 0,
        needDrain: false,
        backoffMs: BACKOFF_INITIAL_MS,
        upSince: 0,
        timer: undefined,
        reportedDown: false,
        snapshot: undefined,
      });
    }
    this.peerList = [...this.links.keys()].join(', ');
  }

  /** The port the server is bound to (useful with `listen: 'host:0'`); 0 before start(). */
  get port(): number {
    return this.boundPort;
  }

  /**
   * Binds the server and opens a stream to every peer. Rejects with a clear error when the
   * address cannot be bound (e.g. the port is taken). Messages sent before start() are dropped.
   */
  async start(): Promise<void> {
    if (this.closing) throw new Error('raft transport: start() after close()');
    if (this.started) throw new Error('raft transport: start() called twice');
    this.started = true;
    const proto = loadRaftProto();
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.grpcLimit,
      'grpc.max_send_message_length': this.grpcLimit,
      // Notice peers that vanished without closing their connection.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
    server.addService(proto.raftkv.raft.Raft.service, {
      Stream: (call: grpc.ServerReadableStream<RaftBatch__Output, StreamAck>, callback: grpc.sendUnaryData<StreamAck>) =>
        this.acceptStream(call, callback),
      InstallSnapshot: (call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>, callback: grpc.sendUnaryData<SnapshotAck>) =>
        this.acceptSnapshot(call, callback),
    });
    this.server = server;
    try {
      this.boundPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(this.listen, grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve(port),
        );
      });
    } catch (err) {
      server.forceShutdown();
      this.server = undefined;
      this.started = false;
      const reason = err instanceof Error ? err.message : String(err);
      throw new Error(`raft transport ${this.self}: cannot listen on ${this.listen} (port taken?): ${reason}`, {
        cause: err,
      });
    }
    if (this.closing) return; // close() raced with start()
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': this.grpcLimit,
      'grpc.max_send_message_length': this.grpcLimit,
      // grpc's own reconnect backoff defaults to 1 s → 120 s; keep it in line with ours.
      'grpc.initial_reconnect_backoff_ms': BACKOFF_INITIAL_MS,
      'grpc.max_reconnect_backoff_ms': BACKOFF_MAX_MS,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      // We reconnect ourselves; grpc's retry layer would only add buffering.
      'grpc.enable_retries': 0,
      // One connection per (transport, peer), never shared with other transports in the process.
      'grpc.use_local_subchannel_pool': 1,
    };
    for (const link of this.links.values()) {
      link.client = new proto.raftkv.raft.Raft(link.address, grpc.credentials.createInsecure(), channelOptions);
      this.openStream(link);
    }
  }

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  send(m: Message): void {
    const link = this.links.get(m.to);
    if (link === undefined) {
      if (!this.closing) this.log.log(`unknown:${m.to}`, `dropped ${m.type} to ${m.to}: not a known peer (known: ${this.peerList})`);
      return;
    }
    // Disconnected (or not started, or closed): drop; Raft retries.
    if (link.state !== 'up' && link.state !== 'connecting') return;
    const encoded = encodeMessage(m);
    if (encoded === undefined) {
      this.log.log(`type:${String(m.type)}`, `dropped message to ${m.to}: unknown type ${String(m.type)}`);
      return;
    }
    if (this.overhead + encoded.batchBytes > this.maxMessageBytes) {
      this.log.log(
        `big:${m.to}`,
        `dropped ${m.type} to ${m.to}: ${encoded.batchBytes} bytes with ${m.entries.length} entries exceeds maxMessageBytes ${this.maxMessageBytes}`,
      );
      return;
    }
    if (link.queue.length >= this.queueLimit || link.queuedBytes + encoded.batchBytes > this.queueBytes) {
      this.log.log(
        `full:${m.to}`,
        `dropped ${m.type} to ${m.to}: queue full (${link.queue.length} messages, ${link.queuedBytes} bytes; peer slow or stream stalled)`,
      );
      return;
    }
    link.queue.push(encoded);
    link.queuedBytes += encoded.batchBytes;
    if (link.state === 'up') this.scheduleFlush(link);
  }

  onSnapshot(handler: (m: Message, data: Uint8Array) => void): void {
    this.snapshotHandler = handler;
  }

  /**
   * Streams a snapshot to m.to in chunks of snapshotChunkBytes; `data` must not change until
   * the promise settles. Rejects at once when another transfer to the same peer is in flight
   * (Raft sends one snapshot per follower at a time), else when the peer refuses it or cannot
   * be reached, after snapshotTimeoutMs, or on close(). A 0-byte snapshot is one empty chunk.
   */
  sendSnapshot(m: Message, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`raft transport ${this.self}: snapshot to peer ${m.to} failed: ${why}`));
      const link = this.links.get(m.to);
      const client = link?.client;
      if (link === undefined) return fail(`not a known peer (known: ${this.peerList})`);
      if (client === undefined || this.closing) return fail(this.closing ? 'transport closed' : 'transport not started');
      if (m.type !== 'snap' || m.entries.length > 0) return fail(`expected a snap message without entries, got ${m.type} with ${m.entries.length} entries`);
      if (link.snapshot !== undefined) return fail('another snapshot transfer to this peer is in flight (one at a time)');
      const encoded = encodeMessage(m)!; // a known type
      this.transferSnapshot(link, client, encoded.msg, data, (err) => (err === undefined ? resolve() : fail(err)));
    });
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  // -------------------------------------------------------------------------------------------
  // Outbound

  private scheduleFlush(link: PeerLink): void {
    this.dirty.add(link);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Once the caller's synchronous run ends: what it sends in that run (a Ready's messages)
    // shares a write per peer, and nothing waits for the next turn of the event loop.
    queueMicrotask(() => this.flushAll());
  }

  private flushAll(): void {
    this.flushScheduled = false;
    if (this.closing) return;
    for (const link of this.dirty) {
      this.dirty.delete(link);
      this.flush(link);
    }
  }

  private flush(link: PeerLink): void {
    const call = link.call;
    if (link.state !== 'up' || call === undefined) return;
    while (link.queue.length > 0 && !link.needDrain && link.inflightBytes < this.inflightLimit) {
      // Take messages in order while the batch fits; each message fits alone (checked in send).
      const queue = link.queue;
      let bytes = this.overhead;
      let count = 0;
      while (count < queue.length) {
        const next = bytes + queue[count]!.batchBytes;
        if (next > this.maxMessageBytes) break;
        bytes = next;
        count++;
      }
      if (count === 0) {
        // Unreachable (send() refuses such messages); never spin on it.
        link.queuedBytes -= queue.shift()!.batchBytes;
        continue;
      }
      const taken = count === queue.length ? queue : queue.splice(0, count);
      if (taken === queue) link.queue = [];
      const messages = new Array<RaftMessage>(taken.length);
      let queued = 0;
      for (let i = 0; i < taken.length; i++) {
        const e = taken[i]!;
        messages[i] = e.msg;
        queued += e.batchBytes;
      }
      link.queuedBytes -= queued;
      link.inflightBytes += bytes;
      const ok = call.write({ clusterId: this.clusterId, messages }, () => {
        if (link.call !== call) return;
        link.inflightBytes -= bytes;
        if (link.queue.length > 0) this.scheduleFlush(link);
      });
      if (!ok) {
        link.needDrain = true;
        call.once('drain', () => {
          if (link.call !== call) return;
          link.needDrain = false;
          if (link.queue.length > 0) this.scheduleFlush(link);
        });
      }
    }
  }

  /** Request metadata of our calls to `peer`: lets it refuse a misaddressed call up front. */
  private callMetadata(peer: NodeId): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set(MD_CLUSTER, this.clusterId);
    md.set(MD_FROM, String(this.self));
    md.set(MD_TO, String(peer));
    return md;
  }

  /**
   * Writes a snapshot's chunks in order, the next only while grpc has room: when write() says
   * the stream is full we wait for 'drain', so a large snapshot is never queued whole in memory.
   */
  private transferSnapshot(link: PeerLink, client: RaftClient, msg: RaftMessage, data: Uint8Array, done: (err?: string) => void): void {
    const total = data.length;
    let offset = 0;
    let settled = false;
    const settle = (err?: string) => {
      if (settled) return;
      settled = true;
      if (link.snapshot === abort) link.snapshot = undefined;
      done(err);
    };
    const abort = (reason: string) => {
      settle(reason);
      call.cancel();
    };
    link.snapshot = abort;
    const deadline = Date.now() + this.snapshotTimeoutMs;
    const call = client.InstallSnapshot(this.callMetadata(link.id), { deadline }, (err) => {
      if (err === null) settle();
      else if (err.code === grpc.status.DEADLINE_EXCEEDED) settle(`not acknowledged within snapshotTimeoutMs (${this.snapshotTimeoutMs} ms); peer slow or hung?`);
      else settle(`${grpc.status[err.code] ?? err.code}: ${err.details}`);
    });
    call.on('error', () => {}); // failures arrive through the callback above
    const pump = (): void => {
      while (!settled) {
        const end = Math.min(offset + this.snapshotChunkBytes, total);
        const chunk: SnapshotChunk = { clusterId: this.clusterId, offset, totalBytes: total, data: data.subarray(offset, end) };
        if (offset === 0) chunk.message = msg;
        const last = end === total;
        if (last) chunk.last = true;
        offset = end;
        const room = call.write(chunk);
        if (last) {
          call.end();
          return;
        }
        if (!room) {
          call.once('drain', pump);
          return;
        }
      }
    };
    pump();
  }

  private openStream(link: PeerLink): void {
    const client = link.client;
    if (this.closing || client === undefined) return;
    link.timer = undefined;
    link.state = 'connecting';
    link.inflightBytes = 0;
    link.needDrain = false;
    let timedOut = false;
    const call: grpc.ClientWritableStream<RaftBatch> = client.Stream(this.callMetadata(link.id), (err) =>
      this.streamEnded(link, call, timedOut ? `no answer within ${HANDSHAKE_TIMEOUT_MS} ms (peer hung?)` : err),
    );
    link.call = call;
    call.on('error', () => {}); // failures arrive through the callback above
    const handshake = setTimeout(() => {
      if (link.call !== call || link.state !== 'connecting') return;
      timedOut = true;
      call.cancel();
    }, HANDSHAKE_TIMEOUT_MS);
    handshake.unref();
    call.on('metadata', () => {
      clearTimeout(handshake);
      if (link.call !== call || link.state !== 'connecting') return;
      link.state = 'up';
      link.upSince = Date.now();
      if (link.reportedDown) {
        link.reportedDown = false;
        this.log.emit(`stream to peer ${link.id} (${link.address}) is up`);
      }
      if (link.queue.length > 0) this.scheduleFlush(link);
    });
    call.on('status', () => clearTimeout(handshake));
  }

  private streamEnded(link: PeerLink, call: grpc.ClientWritableStream<RaftBatch>, err: grpc.ServiceError | string | null): void {
    if (link.call !== call) return;
    const wasUp = link.state === 'up';
    link.call = undefined;
    link.queue = [];
    link.queuedBytes = 0;
    link.inflightBytes = 0;
    link.needDrain = false;
    if (this.closing) {
      link.state = 'closed';
      return;
    }
    // A stream that stayed up a while earns a fresh backoff; one that keeps failing right after
    // opening (e.g. refused by the receiver) keeps backing off.
    if (wasUp && Date.now() - link.upSince >= BACKOFF_MAX_MS) link.backoffMs = BACKOFF_INITIAL_MS;
    const delay = Math.round(link.backoffMs * (0.8 + 0.4 * Math.random()));
    link.backoffMs = Math.min(link.backoffMs * 2, BACKOFF_MAX_MS);
    link.state = 'backoff';
    link.timer = setTimeout(() => this.openStream(link), delay);
    link.timer.unref();
    let code: string;
    let details: string;
    if (err === null) {
      code = 'OK';
      details = 'ended by the receiver';
    } else if (typeof err === 'string') {
      code = 'TIMEOUT';
      details = err;
    } else {
      code = grpc.status[err.code] ?? String(err.code);
      details = err.details;
    }
    // Logged on the transition down, and for persistent failures at most once per interval.
    const key = `down:${link.id}:${code}:${details}`;
    const line = `stream to peer ${link.id} (${link.address}) ${wasUp ? 'lost' : 'failed'}: ${code}: ${details}; dropping its messages and reconnecting`;
    if (wasUp) this.log.emit(line);
    else this.log.log(key, line);
    link.reportedDown = true;
  }

  // -------------------------------------------------------------------------------------------
  // Inbound

  /**
   * The common start of an inbound call: refused while shutting down or when its metadata shows
   * it is misaddressed; otherwise registered, so that shutdown can end it. Returns the call's
   * finisher, which runs `onEnd` once, however the call ends.
   */
  private admitCall(
    call: Pick<grpc.ServerReadableStream<unknown, unknown>, 'metadata' | 'getPeer'>,
    callback: grpc.sendUnaryData<object>,
    what: string,
    onEnd: InboundFinisher,
  ): InboundFinisher | undefined {
    const refusal = this.closing ? { code: grpc.status.UNAVAILABLE, details: `node ${this.self} is shutting down` } : this.checkCallMetadata(call.metadata);
    if (refusal !== undefined) {
      if (!this.closing) this.log.log(`refuse-${what}:${refusal.details}`, `refused ${what} from ${call.getPeer()}: ${refusal.details}`);
      callback(refusal);
      return undefined;
    }
    let done = false;
    const finish: InboundFinisher = (status) => {
      if (done) return;
      done = true;
      this.inbound.delete(finish);
      onEnd(status);
      if (status === null) callback(null, {});
      else callback(status);
    };
    this.inbound.add(finish);
    return finish;
  }

  private acceptStream(call: grpc.ServerReadableStream<RaftBatch__Output, StreamAck>, callback: grpc.sendUnaryData<StreamAck>): void {
    let done = false;
    const finish = this.admitCall(call, callback, 'stream', () => {
      done = true;
    });
    if (finish === undefined) return;
    // Response headers now: the sender's signal that the stream is accepted.
    call.sendMetadata(new grpc.Metadata());
    call.on('data', (batch: RaftBatch__Output) => {
      if (!done) this.receiveBatch(batch, finish);
    });
    call.on('end', () => finish(null));
    call.on('cancelled', () => finish(null)); // the sender went away; nothing to report
    call.on('error', () => finish(null));
  }

  /** Calls from our own transports announce cluster and addressing; others may not. */
  private checkCallMetadata(md: grpc.Metadata): Refusal | undefined {
    const cluster = md.get(MD_CLUSTER)[0];
    if (cluster !== undefined && String(cluster) !== this.clusterId) {
      return precondition(`cluster id mismatch: sender is in "${String(cluster)}", this node is in "${this.clusterId}"`);
    }
    const to = md.get(MD_TO)[0];
    if (to !== undefined && Number(String(to)) !== this.self) {
      return precondition(`addressed to node ${String(to)}, but this is node ${this.self} (wrong peer address?)`);
    }
    const from = md.get(MD_FROM)[0];
    if (from !== undefined && !this.links.has(Number(String(from)))) {
      return precondition(`sender ${String(from)} is not a known peer (known: ${this.peerList})`);
    }
    return undefined;
  }

  /** Every batch and snapshot chunk names its cluster: refuse another cluster's. */
  private checkCluster(what: string, clusterId: string): Refusal | undefined {
    if (clusterId === this.clusterId) return undefined;
    return precondition(`cluster id mismatch: ${what} from cluster "${clusterId}", this node is in "${this.clusterId}"`);
  }

  /** The core message in `pm` if it is well-formed and sent to this node by a known peer. */
  private admit(pm: RaftMessage__Output): Message | Refusal {
    if (pm.to !== this.self) return precondition(`addressed to node ${pm.to}, but this is node ${this.self}`);
    if (!this.links.has(pm.from)) return precondition(`not a known peer (known: ${this.peerList})`);
    const m = decodeMessage(pm);
    return typeof m === 'string' ? malformed(m) : m;
  }

  private receiveBatch(batch: RaftBatch__Output, finish: InboundFinisher): void {
    const wrongCluster = this.checkCluster('batch', batch.clusterId);
    if (wrongCluster !== undefined) {
      this.log.log(`cluster:${batch.clusterId}`, `refused batch of ${batch.messages.length} messages: ${wrongCluster.details}`);
      finish(wrongCluster);
      return;
    }
    for (const pm of batch.messages) {
      // A bad message is dropped alone: the rest of the batch is still good.
      const m = this.admit(pm);
      if (isRefusal(m)) {
        this.log.log(`refuse:${m.details}`, `refused ${pm.type} from ${pm.from}: ${m.details}`);
        continue;
      }
      const handler = this.handler;
      if (handler !== undefined && !deliver(() => handler(m))) return;
    }
  }

  /**
   * One snapshot transfer: reassembles the chunks and hands the snapshot to the node once the
   * last one brings the final byte. Any other end (refusal, gap, cut-off, supersession,
   * shutdown) discards what arrived.
   */
  private acceptSnapshot(call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>, callback: grpc.sendUnaryData<SnapshotAck>): void {
    let a: Assembly | undefined;
    let over = false;
    const finish = this.admitCall(call, callback, 'snapshot', (status) => {
      over = true;
      if (a !== undefined && this.snapshotsIn.get(a.m.from) === finish) this.snapshotsIn.delete(a.m.from);
      if (status !== null) {
        const what = a === undefined ? `from ${call.getPeer()} not taken` : `from node ${a.m.from} discarded after ${a.received} of ${a.bytes.length} bytes`;
        this.log.log(`snap:${status.details}`, `snapshot ${what}: ${status.details}`);
      }
      a = undefined; // frees the buffer even while grpc holds on to the call
    });
    if (finish === undefined) return;
    call.on('data', (chunk: SnapshotChunk__Output) => {
      if (over) return;
      const wrongCluster = this.checkCluster('snapshot chunk', chunk.clusterId);
      if (wrongCluster !== undefined) return finish(wrongCluster);
      const first = a === undefined;
      if (a === undefined) {
        const begun = this.beginSnapshot(chunk);
        if (isRefusal(begun)) return finish(begun);
        a = begun;
        const from = a.m.from;
        this.snapshotsIn.get(from)?.({ code: grpc.status.ABORTED, details: `superseded by a newer transfer from node ${from}` });
        this.snapshotsIn.set(from, finish);
        this.log.emit(`receiving snapshot from node ${from}: index ${a.m.index}, term ${a.m.logTerm}, ${a.bytes.length} bytes`);
      }
      const bad = addChunk(a, chunk, first);
      if (bad !== undefined) return finish(bad);
      if (!chunk.last) return;
      const { m, bytes, startedAt } = a;
      this.log.emit(`received snapshot from node ${m.from} (index ${m.index}, ${bytes.length} bytes) in ${Date.now() - startedAt} ms`);
      const handler = this.snapshotHandler!; // checked by beginSnapshot
      if (deliver(() => handler(m, bytes))) finish(null);
      else finish({ code: grpc.status.INTERNAL, details: `node ${this.self} failed to take the snapshot` });
    });
    call.on('end', () =>
      finish(malformed(a === undefined ? 'the transfer ended before its first chunk' : 'the transfer ended without its last chunk')),
    );
    // grpc ended the call without us: the sender went away, or sent bytes that do not decode.
    call.on('cancelled', () => finish({ code: grpc.status.CANCELLED, details: 'call cancelled (sender gone, or an undecodable chunk)' }));
    call.on('error', (err) => finish({ code: grpc.status.CANCELLED, details: `call failed: ${err.message}` }));
  }

  /** Checks a transfer's first chunk (message, announced size) and sets its buffer aside. */
  private beginSnapshot(chunk: SnapshotChunk__Output): Assembly | Refusal {
    const pm = chunk.message;
    if (pm === null) return malformed('the first chunk carries no message');
    const m = this.admit(pm);
    if (isRefusal(m)) return { code: m.code, details: `message from ${pm.from}: ${m.details}` };
    if (m.type !== 'snap' || m.entries.length > 0) {
      return malformed(`expected a snap message without entries, got ${m.type} with ${m.entries.length} entries`);
    }
    const total = chunk.totalBytes;
    // uint64 arrives as a JS number: beyond 2^53 it is no longer exact.
    if (!Number.isSafeInteger(total)) return malformed(`announced size ${total} is not an exact byte count`);
    if (total > this.maxSnapshotBytes) {
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `a snapshot of ${total} bytes exceeds this node's maxSnapshotBytes (${this.maxSnapshotBytes})` };
    }
    if (this.snapshotHandler === undefined) return precondition(`node ${this.self} takes no snapshots (no onSnapshot handler)`);
    try {
      // Unsafe: addChunk writes every byte before the snapshot is delivered. Slow: a buffer of
      // its own, never a slice of Node's shared pool, which the node may keep for a long time.
      return { m, bytes: Buffer.allocUnsafeSlow(total), received: 0, startedAt: Date.now() };
    } catch (err) {
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `cannot set aside ${total} bytes: ${String(err)}` };
    }
  }

  // -------------------------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.dirty.clear();
    for (const link of this.links.values()) {
      if (link.timer !== undefined) clearTimeout(link.timer);
      link.timer = undefined;
      link.state = 'closed';
      link.queue = [];
      link.queuedBytes = 0;
      link.snapshot?.('transport closed');
      const call = link.call;
      link.call = undefined;
      call?.cancel();
      link.client?.close();
      link.client = undefined;
    }
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      const fallback = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(fallback);
        resolve();
      });
      // Stop listening first (tryShutdown closed the listeners), then end the peers' streams so
      // that their sessions can close.
      const status = { code: grpc.status.UNAVAILABLE, details: `node ${this.self} is shutting down` };
      for (const finish of [...this.inbound]) finish(status);
    });
  }
}
