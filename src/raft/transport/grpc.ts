import { constants as bufferConstants } from 'node:buffer';
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../../proto.js';
import type { Message, NodeId } from '../core/types.js';
import type { PeerAddress, PeerStats, Transport } from './transport.js';
import { CLUSTER_MISMATCH, MD_CLUSTER, MD_FROM, MD_TO } from './call-metadata.js';
import { batchOverheadBytes, decodeMessage, encodeMessage, MAX_MESSAGES_PER_BATCH } from './grpc-codec.js';
import { deliver, isRefusal, malformed, precondition, type InboundFinisher, type Refusal } from './inbound.js';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, FlushScheduler, PeerLink, type PeerLinkConfig } from './peer-link.js';
import { quote, quoteId, RateLimitedLog } from './rate-limited-log.js';
import { SnapshotReceiver, transferSnapshot, type SnapshotSendOptions } from './snapshot-transfer.js';
import { callDeadline, checkForwarded, forwardCall, serveForwarded, type PeerCall, type PeerCallHandler, type PeerCallReply } from './forwarding.js';
import type { ForwardReply } from './generated/raftkv/raft/ForwardReply.js';
import type { ForwardRequest__Output } from './generated/raftkv/raft/ForwardRequest.js';
import type { ProtoGrpcType } from './generated/raft.js';
import type { RaftClient } from './generated/raftkv/raft/Raft.js';
import type { RaftBatch__Output } from './generated/raftkv/raft/RaftBatch.js';
import type { RaftMessage__Output } from './generated/raftkv/raft/RaftMessage.js';
import type { SnapshotAck } from './generated/raftkv/raft/SnapshotAck.js';
import type { SnapshotChunk__Output } from './generated/raftkv/raft/SnapshotChunk.js';
import type { StreamAck } from './generated/raftkv/raft/StreamAck.js';

// The codec lives in grpc-codec.ts; its names stay importable from here, where they used to be.
export { batchOverheadBytes, decodeMessage, encodeMessage, type DecodeError, type EncodedMessage } from './grpc-codec.js';

/** A refused peer message; `rule` names the check that refused it (a stable key for rate-limited logs). */
type MessageRefusal = Refusal & { readonly rule: string };

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
  /**
   * TLS for the peer port and the connections to peers (default: plaintext). With mutual TLS a
   * peer whose certificate the CA did not sign is refused in the handshake, before any message.
   */
  credentials?: { server: grpc.ServerCredentials; channel: grpc.ChannelCredentials };
}

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const DEFAULT_PEER_QUEUE_LIMIT = 4096;
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;
const DEFAULT_SNAPSHOT_TIMEOUT_MS = 60_000;
/** Headroom between maxMessageBytes and grpc's hard limits. */
const GRPC_LIMIT_SLACK = 64 * 1024;
const SHUTDOWN_GRACE_MS = 1000;

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
  private readonly grpcLimit: number;
  private readonly credentials: { server: grpc.ServerCredentials; channel: grpc.ChannelCredentials };
  private readonly maxMessageBytes: number;
  private readonly log: RateLimitedLog;
  private readonly flushes = new FlushScheduler();
  /** Per peer, the stream for everything but appends: votes, heartbeats, answers, timeoutNow. */
  private readonly links = new Map<NodeId, PeerLink>();
  /**
   * Per peer, a second stream on a connection of its own for appends, which also carries the
   * calls forwarded to that peer and the snapshots sent to it. Behind megabytes of appends that a
   * busy follower reads slowly (HTTP/2 flow control), a heartbeat waited for hundreds of ms and
   * check-quorum deposed a healthy leader; on their own connection heartbeats and votes wait for
   * nothing. Raft does not need the two kinds in order: the network may reorder any messages.
   */
  private readonly appendLinks = new Map<NodeId, PeerLink>();
  private peerList = '';
  private readonly linkConfig: PeerLinkConfig;
  /** Set by start(): makes the client of a link (one connection per link, never shared). */
  private newClient: ((address: string) => RaftClient) | undefined;
  private readonly snapshotOptions: SnapshotSendOptions;
  private readonly snapshots: SnapshotReceiver;
  private handler: ((m: Message) => void) | undefined;
  private forwardHandler: PeerCallHandler | undefined;
  private server: grpc.Server | undefined;
  private boundPort = 0;
  private started = false;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private readonly inbound = new Set<InboundFinisher>();

  constructor(options: GrpcTransportOptions) {
    if (options.clusterId === '') throw new Error('raft transport: clusterId must not be empty');
    if (!Number.isSafeInteger(options.self) || options.self <= 0) {
      throw new Error(`raft transport: self must be a positive integer, got ${options.self}`);
    }
    this.clusterId = options.clusterId;
    this.self = options.self;
    this.listen = options.listen;
    const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!(maxMessageBytes >= 1024)) throw new Error('raft transport: maxMessageBytes must be ≥ 1024');
    this.grpcLimit = maxMessageBytes + GRPC_LIMIT_SLACK;
    this.credentials = options.credentials ?? { server: grpc.ServerCredentials.createInsecure(), channel: grpc.credentials.createInsecure() };
    this.maxMessageBytes = maxMessageBytes;
    // A chunk's envelope (cluster id, snap message, offsets) fits in GRPC_LIMIT_SLACK.
    const snapshotChunkBytes = options.snapshotChunkBytes ?? Math.min(DEFAULT_SNAPSHOT_CHUNK_BYTES, maxMessageBytes);
    if (!(Number.isSafeInteger(snapshotChunkBytes) && snapshotChunkBytes >= 1 && snapshotChunkBytes <= maxMessageBytes)) {
      throw new Error(`raft transport: snapshotChunkBytes must be an integer from 1 to maxMessageBytes (${maxMessageBytes})`);
    }
    const maxSnapshotBytes = options.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES;
    if (!(Number.isSafeInteger(maxSnapshotBytes) && maxSnapshotBytes >= 0 && maxSnapshotBytes <= bufferConstants.MAX_LENGTH)) {
      throw new Error(`raft transport: maxSnapshotBytes must be an integer from 0 to ${bufferConstants.MAX_LENGTH} (the largest Buffer)`);
    }
    const snapshotTimeoutMs = options.snapshotTimeoutMs ?? DEFAULT_SNAPSHOT_TIMEOUT_MS;
    if (!(snapshotTimeoutMs > 0)) throw new Error('raft transport: snapshotTimeoutMs must be > 0');
    this.snapshotOptions = { clusterId: this.clusterId, snapshotChunkBytes, snapshotTimeoutMs };
    this.log = new RateLimitedLog(options.logger ?? ((line) => console.error(line)), `raft transport ${this.self}: `);
    this.linkConfig = {
      clusterId: this.clusterId,
      self: this.self,
      maxMessageBytes,
      queueLimit: options.peerQueueLimit ?? DEFAULT_PEER_QUEUE_LIMIT,
      queueBytes: options.peerQueueBytes ?? 4 * maxMessageBytes,
      inflightLimit: 2 * maxMessageBytes,
      overhead: batchOverheadBytes(this.clusterId),
      log: this.log,
      flushes: this.flushes,
    };
    this.setPeers(options.peers);
    this.snapshots = new SnapshotReceiver(this.self, maxSnapshotBytes, this.log, {
      admitCall: (call, callback, what, onEnd) => this.admitCall(call, callback, what, onEnd),
      checkCluster: (what, clusterId) => this.checkCluster(what, clusterId),
      admit: (pm) => this.admit(pm),
    });
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
    server.addService(countingBatchBytes(proto.raftkv.raft.Raft.service), {
      Stream: (call: grpc.ServerReadableStream<RaftBatch__Output, StreamAck>, callback: grpc.sendUnaryData<StreamAck>) =>
        this.acceptStream(call, callback),
      InstallSnapshot: (call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>, callback: grpc.sendUnaryData<SnapshotAck>) =>
        this.snapshots.accept(call, callback),
      Forward: (call: grpc.ServerUnaryCall<ForwardRequest__Output, ForwardReply>, callback: grpc.sendUnaryData<ForwardReply>) =>
        serveForwarded(call.request, callDeadline(call), callback, (req) => this.checkForwardCall(call.metadata, req), this.forwardHandler),
    });
    this.server = server;
    try {
      this.boundPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(this.listen, this.credentials.server, (err, port) =>
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
    this.newClient = (address) => new proto.raftkv.raft.Raft(address, this.credentials.channel, channelOptions);
    const newClient = this.newClient;
    for (const link of [...this.links.values(), ...this.appendLinks.values()]) link.start(() => newClient(link.address));
  }

  setPeers(peers: readonly PeerAddress[]): void {
    if (this.closing) return;
    const wanted = new Map<NodeId, string>();
    for (const p of peers) {
      if (p.id === this.self) continue;
      if (!Number.isSafeInteger(p.id) || p.id <= 0) throw new Error(`raft transport: bad peer id ${p.id}`);
      if (wanted.has(p.id)) throw new Error(`raft transport: peer ${p.id} listed twice`);
      wanted.set(p.id, p.address);
    }
    for (const links of [this.links, this.appendLinks]) {
      for (const [id, link] of links) {
        if (wanted.get(id) === link.address) continue;
        link.close();
        links.delete(id);
      }
      for (const [id, address] of wanted) {
        if (links.has(id)) continue;
        const link = new PeerLink(id, address, this.linkConfig);
        links.set(id, link);
        const newClient = this.newClient;
        if (newClient) link.start(() => newClient(address));
      }
    }
    this.peerList = [...this.links.keys()].join(', ');
  }

  /** Each peer's running totals of bytes sent and received and messages dropped (for metrics). */
  stats(): ReadonlyMap<NodeId, PeerStats> {
    const sum = (a: PeerStats, b: PeerStats | undefined): PeerStats =>
      b ? { sentBytes: a.sentBytes + b.sentBytes, receivedBytes: a.receivedBytes + b.receivedBytes, sentFailures: a.sentFailures + b.sentFailures } : a;
    return new Map([...this.links].map(([id, link]) => [id, sum(link.stats, this.appendLinks.get(id)?.stats)]));
  }

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  send(m: Message): void {
    const link = (m.type === 'app' ? this.appendLinks : this.links).get(m.to);
    if (link === undefined) {
      if (!this.closing) this.log.log(`unknown:${m.to}`, `dropped ${m.type} to ${m.to}: not a known peer (known: ${this.peerList})`);
      return;
    }
    link.send(m);
  }

  onSnapshot(handler: (m: Message, data: Uint8Array) => void): void {
    this.snapshots.handler = handler;
  }

  /** Serves the client calls that peers forward here (forwarding.ts). */
  onForward(handler: PeerCallHandler): void {
    this.forwardHandler = handler;
  }

  /** Forwards a client call to peer `to` (the leader); rejects without an answer within `timeoutMs`. */
  forward(to: NodeId, call: PeerCall, timeoutMs: number): Promise<PeerCallReply> {
    const link = this.appendLinks.get(to);
    if (link?.client === undefined || this.closing) {
      return Promise.reject(new Error(link === undefined ? `node ${to} is not a known peer` : 'the transport is not running'));
    }
    return forwardCall(link.client, link.callMetadata(), { clusterId: this.clusterId, self: this.self }, call, Date.now() + timeoutMs);
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
      const client = this.appendLinks.get(m.to)?.client;
      if (link === undefined) return fail(`not a known peer (known: ${this.peerList})`);
      if (client === undefined || this.closing) return fail(this.closing ? 'transport closed' : 'transport not started');
      if (m.type !== 'snap' || m.entries.length > 0) return fail(`expected a snap message without entries, got ${m.type} with ${m.entries.length} entries`);
      if (link.snapshot !== undefined) return fail('another snapshot transfer to this peer is in flight (one at a time)');
      const encoded = encodeMessage(m)!; // a known type
      transferSnapshot(link, client, encoded.msg, data, this.snapshotOptions, (err) => (err === undefined ? resolve() : fail(err)));
    });
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
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
      if (!this.closing) this.log.log(`refuse-${what}:${refusal.code}`, `refused ${what} from ${call.getPeer()}: ${refusal.details}`);
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
    const from = Number(String(call.metadata.get(MD_FROM)[0]));
    const link = this.links.get(from);
    for (const l of [link, this.appendLinks.get(from)]) l?.peerIsUp();
    const peer = call.getPeer();
    call.on('data', (batch: RaftBatch__Output) => {
      if (link) link.stats.receivedBytes += (batch as WithWireBytes)[WIRE_BYTES] ?? 0;
      if (!done) this.receiveBatch(batch, finish, peer);
    });
    call.on('end', () => finish(null));
    call.on('cancelled', () => finish(null)); // the sender went away; nothing to report
    call.on('error', () => finish(null));
  }

  /** Calls from our own transports announce cluster and addressing; others may not. */
  private checkCallMetadata(md: grpc.Metadata): Refusal | undefined {
    const cluster = md.get(MD_CLUSTER)[0];
    if (cluster !== undefined && String(cluster) !== this.clusterId) {
      return precondition(`${CLUSTER_MISMATCH}: sender is in ${quote(String(cluster))}, this node is in ${quote(this.clusterId)}`);
    }
    const to = md.get(MD_TO)[0];
    if (to !== undefined && Number(String(to)) !== this.self) {
      return precondition(`addressed to node ${quoteId(String(to))}, but this is node ${this.self} (wrong peer address?)`);
    }
    const from = md.get(MD_FROM)[0];
    if (from !== undefined && !this.links.has(Number(String(from)))) {
      return precondition(`sender ${quoteId(String(from))} is not a known peer (known: ${this.peerList})`);
    }
    return undefined;
  }

  private checkForwardCall(md: grpc.Metadata, req: ForwardRequest__Output): Refusal | undefined {
    if (this.closing) return { code: grpc.status.UNAVAILABLE, details: `node ${this.self} is shutting down` };
    return this.checkCallMetadata(md) ?? checkForwarded(req, this.clusterId, (id) => this.links.has(id));
  }

  /** Every batch and snapshot chunk names its cluster: refuse another cluster's. */
  private checkCluster(what: string, clusterId: string): Refusal | undefined {
    if (clusterId === this.clusterId) return undefined;
    return precondition(`${CLUSTER_MISMATCH}: ${what} from cluster ${quote(clusterId)}, this node is in ${quote(this.clusterId)}`);
  }

  /**
   * The core message in `pm` if it is well-formed (grpc-codec.ts checks every field) and sent to
   * this node by a known peer. A refusal's `rule` names the check, for rate-limited logging.
   */
  private admit(pm: RaftMessage__Output): Message | MessageRefusal {
    const m = decodeMessage(pm, this.maxMessageBytes);
    if ('rule' in m) return { ...malformed(m.detail), rule: m.rule };
    if (m.to !== this.self) return { ...precondition(`addressed to node ${m.to}, but this is node ${this.self}`), rule: 'to' };
    if (!this.links.has(m.from)) return { ...precondition(`not a known peer (known: ${this.peerList})`), rule: 'from' };
    return m;
  }

  /**
   * Delivers a batch's messages, each checked on its own: a bad one is dropped with a log line and
   * the rest still go through. A batch from another cluster ends the stream (its sender is no
   * peer of ours); anything else keeps it up.
   */
  private receiveBatch(batch: RaftBatch__Output, finish: InboundFinisher, peer: string): void {
    const count = Array.isArray(batch.messages) ? batch.messages.length : 0;
    const wrongCluster = this.checkCluster('batch', batch.clusterId);
    if (wrongCluster !== undefined) {
      this.log.log('refuse-batch:cluster', `refused batch of ${count} messages from ${peer}: ${wrongCluster.details}`);
      finish(wrongCluster);
      return;
    }
    if (count > MAX_MESSAGES_PER_BATCH) {
      this.log.log('refuse-batch:size', `refused batch of ${count} messages from ${peer}: more than ${MAX_MESSAGES_PER_BATCH} in one batch`);
      return;
    }
    for (const pm of batch.messages) {
      let m = this.admit(pm);
      if (!isRefusal(m) && m.type === 'snap') {
        m = { ...malformed('a snap message travels only at the head of an InstallSnapshot call, with its bytes'), rule: 'snap' };
      }
      if (isRefusal(m)) {
        this.refused(pm, m, peer);
        continue;
      }
      const handler = this.handler;
      if (handler !== undefined && !deliver(() => handler(m))) return;
    }
  }

  /**
   * One line per (claimed sender, rule) per interval. The key holds the sender only when it is a
   * known peer, so that a stranger cycling through made-up ids cannot flood the log.
   */
  private refused(pm: RaftMessage__Output, r: MessageRefusal, peer: string): void {
    const who = this.links.has(pm.from) ? pm.from : 'other';
    this.log.log(`refuse:${who}:${r.rule}`, `refused ${String(pm.type)} from ${String(pm.from)} (${peer}): ${r.details}`);
  }

  // -------------------------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    this.closing = true;
    this.flushes.close();
    for (const link of [...this.links.values(), ...this.appendLinks.values()]) link.close();
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

/** Where a decoded RaftBatch carries the size it had on the wire (countingBatchBytes). */
const WIRE_BYTES = Symbol('wireBytes');
type WithWireBytes = { [WIRE_BYTES]?: number };

/**
 * The Raft service with Stream's decoder noting each batch's encoded size on what it decodes: the
 * bytes received from a peer, exactly, without encoding anything again.
 */
function countingBatchBytes(service: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const stream = service['Stream']!;
  const decode = stream.requestDeserialize;
  return {
    ...service,
    Stream: {
      ...stream,
      requestDeserialize: (buf: Buffer) => {
        const batch = decode(buf) as WithWireBytes;
        batch[WIRE_BYTES] = buf.length;
        return batch;
      },
    },
  };
}
