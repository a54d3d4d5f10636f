import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../core/types.js';
import { callMetadata } from './call-metadata.js';
import { encodeMessage, MAX_MESSAGES_PER_BATCH, type EncodedMessage } from './grpc-codec.js';
import type { RateLimitedLog } from './rate-limited-log.js';
import type { PeerStats } from './transport.js';
import type { RaftClient } from './generated/raftkv/raft/Raft.js';
import type { RaftBatch } from './generated/raftkv/raft/RaftBatch.js';
import type { RaftMessage } from './generated/raftkv/raft/RaftMessage.js';

export const BACKOFF_INITIAL_MS = 50;
/** How long after a link starts a peer that does not answer yet is taken to be starting too. */
const STARTUP_GRACE_MS = 10_000;
export const BACKOFF_MAX_MS = 2000;
/** A stream that does not get the receiver's response headers within this time is retried. */
const HANDSHAKE_TIMEOUT_MS = 5000;

/** What every link of one transport shares: its limits, its log and its flush scheduler. */
export interface PeerLinkConfig {
  readonly clusterId: string;
  readonly self: NodeId;
  readonly maxMessageBytes: number;
  /** Messages queued per peer while its stream is busy or still opening. */
  readonly queueLimit: number;
  /** Encoded bytes queued per peer. */
  readonly queueBytes: number;
  /** Bytes allowed in grpc's hands per peer before we wait for writes to complete. */
  readonly inflightLimit: number;
  /** Encoded bytes of a RaftBatch's envelope (batchOverheadBytes of the cluster id). */
  readonly overhead: number;
  readonly log: RateLimitedLog;
  readonly flushes: FlushScheduler;
}

/** Flushes the links given messages in one synchronous run, together, once that run ends. */
export class FlushScheduler {
  private readonly dirty = new Set<PeerLink>();
  private scheduled = false;
  private closed = false;

  schedule(link: PeerLink): void {
    this.dirty.add(link);
    if (this.scheduled) return;
    this.scheduled = true;
    // Once the caller's synchronous run ends: what it sends in that run (a Ready's messages)
    // shares a write per peer, and nothing waits for the next turn of the event loop.
    queueMicrotask(() => this.flushAll());
  }

  close(): void {
    this.closed = true;
    this.dirty.clear();
  }

  private flushAll(): void {
    this.scheduled = false;
    if (this.closed) return;
    for (const link of this.dirty) {
      this.dirty.delete(link);
      link.flush();
    }
  }
}

type LinkState = 'idle' | 'connecting' | 'up' | 'backoff' | 'closed';

/** The outbound side towards one peer: one stream, one bounded queue. */
export class PeerLink {
  client: RaftClient | undefined = undefined;
  /** Makes a client on a connection of its own (the transport's channel factory), set by start(). */
  private makeClient: (() => RaftClient) | undefined = undefined;
  private call: grpc.ClientWritableStream<RaftBatch> | undefined = undefined;
  private state: LinkState = 'idle';
  private queue: EncodedMessage[] = [];
  private queuedBytes = 0;
  /** Bytes handed to grpc whose write has not completed yet (backpressure from HTTP/2). */
  private inflightBytes = 0;
  private needDrain = false;
  private backoffMs = BACKOFF_INITIAL_MS;
  private upSince = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  /** Set after a failure was logged, so that the next "up" is logged too. */
  private reportedDown = false;
  /** Whether the stream was ever up, and since when the link has been trying: a peer that is still starting is not news. */
  private everUp = false;
  private trying = Date.now();
  /** Running totals for metrics; receivedBytes is counted by the transport's receiving side. */
  readonly stats: PeerStats = { sentBytes: 0, receivedBytes: 0, sentFailures: 0 };
  /** Cancels the snapshot transfer in flight to this peer (at most one), failing it with `reason`. */
  snapshot: ((reason: string) => void) | undefined = undefined;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    private readonly config: PeerLinkConfig,
  ) {}

  /** Opens the stream to the peer through a client `makeClient` makes, and keeps it open until close(). */
  start(makeClient: () => RaftClient): void {
    this.makeClient = makeClient;
    this.client = makeClient();
    this.openStream();
  }

  /** Queues `m` for the stream; drops it while the stream is down, or when it is too big or the queue is full. */
  send(m: Message): void {
    // Disconnected (or not started, or closed): drop; Raft retries.
    if (this.state !== 'up' && this.state !== 'connecting') return void this.stats.sentFailures++;
    const { log, maxMessageBytes } = this.config;
    const encoded = encodeMessage(m);
    if (encoded === undefined) {
      log.log(`type:${String(m.type)}`, `dropped message to ${m.to}: unknown type ${String(m.type)}`);
      return void this.stats.sentFailures++;
    }
    if (this.config.overhead + encoded.batchBytes > maxMessageBytes) {
      log.log(
        `big:${m.to}`,
        `dropped ${m.type} to ${m.to}: ${encoded.batchBytes} bytes with ${m.entries.length} entries exceeds maxMessageBytes ${maxMessageBytes}`,
      );
      return void this.stats.sentFailures++;
    }
    if (this.queue.length >= this.config.queueLimit || this.queuedBytes + encoded.batchBytes > this.config.queueBytes) {
      log.log(
        `full:${m.to}`,
        `dropped ${m.type} to ${m.to}: queue full (${this.queue.length} messages, ${this.queuedBytes} bytes; peer slow or stream stalled)`,
      );
      return void this.stats.sentFailures++;
    }
    this.queue.push(encoded);
    this.queuedBytes += encoded.batchBytes;
    if (this.state === 'up') this.config.flushes.schedule(this);
  }

  callMetadata(): grpc.Metadata {
    return callMetadata(this.config.clusterId, this.config.self, this.id);
  }

  flush(): void {
    const call = this.call;
    if (this.state !== 'up' || call === undefined) return;
    const { clusterId, maxMessageBytes, overhead, inflightLimit, flushes } = this.config;
    while (this.queue.length > 0 && !this.needDrain && this.inflightBytes < inflightLimit) {
      // Take messages in order while the batch fits; each message fits alone (checked in send).
      // Receivers refuse a batch of more than MAX_MESSAGES_PER_BATCH messages.
      const queue = this.queue;
      let bytes = overhead;
      let count = 0;
      while (count < queue.length && count < MAX_MESSAGES_PER_BATCH) {
        const next = bytes + queue[count]!.batchBytes;
        if (next > maxMessageBytes) break;
        bytes = next;
        count++;
      }
      if (count === 0) {
        // Unreachable (send() refuses such messages); never spin on it.
        this.queuedBytes -= queue.shift()!.batchBytes;
        continue;
      }
      const taken = count === queue.length ? queue : queue.splice(0, count);
      if (taken === queue) this.queue = [];
      const messages = new Array<RaftMessage>(taken.length);
      let queued = 0;
      for (let i = 0; i < taken.length; i++) {
        const e = taken[i]!;
        messages[i] = e.msg;
        queued += e.batchBytes;
      }
      this.queuedBytes -= queued;
      this.inflightBytes += bytes;
      this.stats.sentBytes += bytes;
      const ok = call.write({ clusterId, messages }, () => {
        if (this.call !== call) return;
        this.inflightBytes -= bytes;
        if (this.queue.length > 0) flushes.schedule(this);
      });
      if (!ok) {
        this.needDrain = true;
        call.once('drain', () => {
          if (this.call !== call) return;
          this.needDrain = false;
          if (this.queue.length > 0) flushes.schedule(this);
        });
      }
    }
  }

  /**
   * The peer opened a stream to this node, so it is up: a link waiting out its backoff reconnects
   * now, on a fresh channel (grpc's own reconnect backoff grew too), instead of up to
   * BACKOFF_MAX_MS later. A restarted peer was otherwise out of this node's reach for as long as
   * the backoff that grew while it was down; should this node be made leader meanwhile (a
   * stopping leader hands over to it in a rolling restart), it could not reach a quorum and the
   * cluster waited for an election.
   */
  peerIsUp(): void {
    if (this.state !== 'backoff') return;
    clearTimeout(this.timer);
    this.backoffMs = BACKOFF_INITIAL_MS;
    this.freshClient();
    this.openStream();
  }

  /** A new connection for the next stream: the old one is closed. */
  private freshClient(): void {
    if (!this.makeClient) return;
    this.client?.close();
    this.client = this.makeClient();
  }

  /** Stops for good: drops the queue, fails the snapshot in flight, ends the stream. */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.state = 'closed';
    this.queue = [];
    this.queuedBytes = 0;
    this.snapshot?.('transport closed');
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    this.client?.close();
    this.client = undefined;
  }

  private openStream(): void {
    const client = this.client;
    if (this.state === 'closed' || client === undefined) return;
    this.timer = undefined;
    this.state = 'connecting';
    this.inflightBytes = 0;
    this.needDrain = false;
    let timedOut = false;
    const call: grpc.ClientWritableStream<RaftBatch> = client.Stream(this.callMetadata(), (err) =>
      this.streamEnded(call, timedOut ? `no answer within ${HANDSHAKE_TIMEOUT_MS} ms (peer hung?)` : err),
    );
    this.call = call;
    call.on('error', () => {}); // failures arrive through the callback above
    const handshake = setTimeout(() => {
      if (this.call !== call || this.state !== 'connecting') return;
      timedOut = true;
      call.cancel();
    }, HANDSHAKE_TIMEOUT_MS);
    handshake.unref();
    call.on('metadata', () => {
      clearTimeout(handshake);
      if (this.call !== call || this.state !== 'connecting') return;
      this.state = 'up';
      this.upSince = Date.now();
      this.everUp = true;
      if (this.reportedDown) {
        this.reportedDown = false;
        this.config.log.emit(`stream to peer ${this.id} (${this.address}) is up`);
      }
      if (this.queue.length > 0) this.config.flushes.schedule(this);
    });
    call.on('status', () => clearTimeout(handshake));
  }

  private streamEnded(call: grpc.ClientWritableStream<RaftBatch>, err: grpc.ServiceError | string | null): void {
    if (this.call !== call) return;
    const wasUp = this.state === 'up';
    this.call = undefined;
    this.stats.sentFailures += this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
    this.inflightBytes = 0;
    this.needDrain = false;
    if (this.state === 'closed') return;
    // A stream that stayed up a while earns a fresh backoff; one that keeps failing right after
    // opening (e.g. refused by the receiver) keeps backing off.
    if (wasUp && Date.now() - this.upSince >= BACKOFF_MAX_MS) this.backoffMs = BACKOFF_INITIAL_MS;
    const delay = Math.round(this.backoffMs * (0.8 + 0.4 * Math.random()));
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.state = 'backoff';
    // No answer at all to the stream's opening: the connection may be dead without knowing it
    // (packets dropped, no reset; grpc's keepalive takes 15 s to tell). The next stream gets a
    // new one, instead of waiting on the same connection again.
    if (typeof err === 'string') this.freshClient();
    this.timer = setTimeout(() => this.openStream(), delay);
    this.timer.unref();
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
    details = details.replace(/\s*Resolution note:.*$/s, '');
    // Logged on the transition down, and for persistent failures at most once per interval. At
    // start-up the others are starting too: not reachable yet is not a failure, for a while.
    const key = `down:${this.id}:${code}:${details}`;
    if (!this.everUp && Date.now() - this.trying < STARTUP_GRACE_MS) {
      this.config.log.log(key, `peer ${this.id} (${this.address}) is not reachable yet (${code}: ${details}); retrying`);
      this.reportedDown = true; // so that its coming up is logged
      return;
    }
    // A peer that says it is stopping is being restarted or shut down on purpose: worth a note, not a warning.
    const stopping = /shutting down/.test(details);
    const line = stopping
      ? `peer ${this.id} (${this.address}) went away (${details}); reconnecting when it is back`
      : `stream to peer ${this.id} (${this.address}) ${wasUp ? 'lost' : 'failed'}: ${code}: ${details}; dropping its messages and reconnecting`;
    if (wasUp) this.config.log.emit(line);
    else this.config.log.log(key, line);
    this.reportedDown = true;
  }
}
