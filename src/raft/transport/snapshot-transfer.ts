import * as grpc from '@grpc/grpc-js';
import type { Message, NodeId } from '../core/types.js';
import { deliver, isRefusal, malformed, precondition, type InboundFinisher, type Refusal } from './inbound.js';
import type { PeerLink } from './peer-link.js';
import type { RateLimitedLog } from './rate-limited-log.js';
import type { RaftClient } from './generated/raftkv/raft/Raft.js';
import type { RaftMessage, RaftMessage__Output } from './generated/raftkv/raft/RaftMessage.js';
import type { SnapshotAck } from './generated/raftkv/raft/SnapshotAck.js';
import type { SnapshotChunk, SnapshotChunk__Output } from './generated/raftkv/raft/SnapshotChunk.js';

// InstallSnapshot: a snapshot sent in chunks with flow control, and reassembled on arrival.

/** What sending a snapshot takes from the transport's options. */
export interface SnapshotSendOptions {
  readonly clusterId: string;
  readonly snapshotChunkBytes: number;
  readonly snapshotTimeoutMs: number;
}

/**
 * Writes a snapshot's chunks in order, the next only while grpc has room: when write() says
 * the stream is full we wait for 'drain', so a large snapshot is never queued whole in memory.
 */
export function transferSnapshot(
  link: PeerLink,
  client: RaftClient,
  msg: RaftMessage,
  data: Uint8Array,
  options: SnapshotSendOptions,
  done: (err?: string) => void,
): void {
  const { clusterId, snapshotChunkBytes, snapshotTimeoutMs } = options;
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
  const deadline = Date.now() + snapshotTimeoutMs;
  const call = client.InstallSnapshot(link.callMetadata(), { deadline }, (err) => {
    if (err === null) settle();
    else if (err.code === grpc.status.DEADLINE_EXCEEDED) settle(`not acknowledged within snapshotTimeoutMs (${snapshotTimeoutMs} ms); peer slow or hung?`);
    else settle(`${grpc.status[err.code] ?? err.code}: ${err.details}`);
  });
  call.on('error', () => {}); // failures arrive through the callback above
  const pump = (): void => {
    while (!settled) {
      const end = Math.min(offset + snapshotChunkBytes, total);
      const chunk: SnapshotChunk = { clusterId, offset, totalBytes: total, data: data.subarray(offset, end) };
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

/** The transport's server-side checks, which an InstallSnapshot call passes like any other call. */
export interface SnapshotAdmission {
  /** Refuses the call, or registers it and returns its finisher, which runs `onEnd` once. */
  admitCall(
    call: Pick<grpc.ServerReadableStream<unknown, unknown>, 'metadata' | 'getPeer'>,
    callback: grpc.sendUnaryData<object>,
    what: string,
    onEnd: InboundFinisher,
  ): InboundFinisher | undefined;
  /** Refuses a chunk from another cluster. */
  checkCluster(what: string, clusterId: string): Refusal | undefined;
  /** The core message in `pm` if it is well-formed and sent to this node by a known peer. */
  admit(pm: RaftMessage__Output): Message | Refusal;
}

/** The receiving side of InstallSnapshot: one reassembly per call, at most one per sender. */
/** An inbound transfer with no chunk for this long is given up (its buffer freed). */
const INBOUND_IDLE_MS = 30_000;

export class SnapshotReceiver {
  /** The unfinished inbound snapshot transfer of each sender: a newer one supersedes it. */
  private readonly transfers = new Map<NodeId, InboundFinisher>();
  handler: ((m: Message, data: Uint8Array) => void) | undefined = undefined;

  constructor(
    private readonly self: NodeId,
    private readonly maxSnapshotBytes: number,
    private readonly log: RateLimitedLog,
    private readonly checks: SnapshotAdmission,
  ) {}

  /**
   * One snapshot transfer: reassembles the chunks and hands the snapshot to the node once the
   * last one brings the final byte. Any other end (refusal, gap, cut-off, supersession,
   * shutdown) discards what arrived.
   */
  accept(call: grpc.ServerReadableStream<SnapshotChunk__Output, SnapshotAck>, callback: grpc.sendUnaryData<SnapshotAck>): void {
    let a: Assembly | undefined;
    let over = false;
    const finish = this.checks.admitCall(call, callback, 'snapshot', (status) => {
      over = true;
      if (a !== undefined && this.transfers.get(a.m.from) === finish) this.transfers.delete(a.m.from);
      if (status !== null) {
        const what = a === undefined ? `from ${call.getPeer()} not taken` : `from node ${a.m.from} discarded after ${a.received} of ${a.bytes.length} bytes`;
        this.log.log(`snap:${status.code}`, `snapshot ${what}: ${status.details}`);
      }
      a = undefined; // frees the buffer even while grpc holds on to the call
    });
    if (finish === undefined) return;
    // A transfer that stops sending holds its buffer: give up on it after a while.
    const idle = setTimeout(() => finish({ code: grpc.status.DEADLINE_EXCEEDED, details: `no chunk for ${INBOUND_IDLE_MS} ms` }), INBOUND_IDLE_MS);
    idle.unref();
    const stopIdle = (): void => clearTimeout(idle);
    call.on('close', stopIdle);
    call.on('data', (chunk: SnapshotChunk__Output) => {
      if (over) return stopIdle();
      idle.refresh();
      const wrongCluster = this.checks.checkCluster('snapshot chunk', chunk.clusterId);
      if (wrongCluster !== undefined) return finish(wrongCluster);
      const first = a === undefined;
      if (a === undefined) {
        const begun = this.begin(chunk);
        if (isRefusal(begun)) return finish(begun);
        a = begun;
        const from = a.m.from;
        this.transfers.get(from)?.({ code: grpc.status.ABORTED, details: `superseded by a newer transfer from node ${from}` });
        this.transfers.set(from, finish);
        // Rate-limited: a transfer may yet turn out malformed, and a stranger can start many.
        this.log.log(`snap-begin:${from}`, `receiving snapshot from node ${from}: index ${a.m.index}, term ${a.m.logTerm}, ${a.bytes.length} bytes`);
      }
      const bad = addChunk(a, chunk, first);
      if (bad !== undefined) return finish(bad);
      if (!chunk.last) return;
      const { m, bytes, startedAt } = a;
      this.log.emit(`received snapshot from node ${m.from} (index ${m.index}, ${bytes.length} bytes) in ${Date.now() - startedAt} ms`);
      const handler = this.handler!; // checked by begin
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
  private begin(chunk: SnapshotChunk__Output): Assembly | Refusal {
    const pm = chunk.message;
    if (pm === null) return malformed('the first chunk carries no message');
    const m = this.checks.admit(pm);
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
    if (this.handler === undefined) return precondition(`node ${this.self} takes no snapshots (no onSnapshot handler)`);
    try {
      // Unsafe: addChunk writes every byte before the snapshot is delivered. Slow: a buffer of
      // its own, never a slice of Node's shared pool, which the node may keep for a long time.
      return { m, bytes: Buffer.allocUnsafeSlow(total), received: 0, startedAt: Date.now() };
    } catch (err) {
      return { code: grpc.status.RESOURCE_EXHAUSTED, details: `cannot set aside ${total} bytes: ${String(err)}` };
    }
  }
}
