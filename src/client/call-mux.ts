import * as grpc from '@grpc/grpc-js';
import type { Answer__Output } from '../generated/raftkv/kv/Answer.js';
import type { AnswerFrame__Output } from '../generated/raftkv/kv/AnswerFrame.js';
import type { Call } from '../generated/raftkv/kv/Call.js';
import type { CallFrame } from '../generated/raftkv/kv/CallFrame.js';
import { DATA_METHODS, type DataField, type DataMethod } from '../data-methods.js';
import { MD_ERROR, MD_LEADER } from '../kv-api.js';

/** The data methods the Calls stream carries, and the field of Call and Answer that carries each. */
export const STREAM_FIELDS = Object.fromEntries(Object.entries(DATA_METHODS).map(([field, method]) => [method, field])) as Record<DataMethod, DataField>;
export type StreamMethod = DataMethod;

/** A call's outcome, as a unary call's callback has it: the gRPC error, or the response and the leader a forwarding follower named. */
export type Done = (err: grpc.ServiceError | null, res?: unknown, leaderAddr?: string) => void;

/** A unary call of the same method, for a node that does not serve the stream (an older version). */
export type Unary = (method: StreamMethod, request: object, deadline: number, done: Done) => { cancel(): void };

export type CallsStream = grpc.ClientDuplexStream<CallFrame, AnswerFrame__Output>;

/** Bytes of requests one frame carries, about; a request alone is at most a value and a little. */
const FRAME_BYTES = 256 * 1024;
/** A stream with no call for this long is closed (the next call opens another): an open stream keeps the process alive and the connection busy. */
const IDLE_MS = 200;

interface Pending {
  method: StreamMethod;
  request: object;
  deadline: number;
  done: Done;
  timer: NodeJS.Timeout;
  /** The stream it went out on, once sent. */
  stream?: CallsStream;
  /** Sent as a unary call instead (the node does not serve the stream): how to cancel it. */
  unary?: { cancel(): void };
}

/**
 * The client's end of one node's Calls stream (kv.proto): many calls in flight on one gRPC
 * stream, each under an id, the calls made in the same turn of the event loop sent in one frame.
 * To the router a call looks like a unary one: the same errors (a refusal carries its status code
 * and trailers' metadata; a stream that fails fails its calls with the stream's status), the same
 * deadline, cancellation. A node that answers the stream UNIMPLEMENTED gets unary calls from then on.
 */
export class CallMux {
  private stream: CallsStream | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private out: Call[] = [];
  private outBytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleSince = 0;
  /** The node does not serve the stream: every call goes unary. */
  private unsupported = false;

  /** `heard`: told of every frame from the node, empty ones too (it is alive and working on our calls). */
  constructor(
    private readonly open: () => CallsStream,
    private readonly unary: Unary,
    private readonly heard: () => void = () => {},
  ) {}

  call(method: StreamMethod, request: object, deadline: number, done: Done): { cancel(): void } {
    if (this.unsupported) return this.unary(method, request, deadline, done);
    const id = this.nextId++;
    const ms = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => this.settle(id, failure(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded')), ms);
    this.pending.set(id, { method, request, deadline, done, timer });
    const call: Call = { id, timeoutMs: Math.ceil(ms), [STREAM_FIELDS[method]]: request };
    const bytes = requestBytes(request);
    if (this.out.length > 0 && this.outBytes + bytes > FRAME_BYTES) this.flush();
    this.out.push(call);
    this.outBytes += bytes;
    if (this.out.length === 1) setImmediate(() => this.flush());
    return { cancel: () => this.settle(id, failure(grpc.status.CANCELLED, 'Cancelled on client')) };
  }

  close(): void {
    const s = this.stream;
    this.stream = undefined;
    s?.cancel();
    for (const id of [...this.pending.keys()]) this.settle(id, failure(grpc.status.CANCELLED, 'Cancelled on client'));
    if (this.idleTimer) clearTimeout(this.idleTimer);
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const calls = this.out;
    this.out = [];
    this.outBytes = 0;
    if (this.unsupported) {
      for (const c of calls) this.goUnary(c.id as number);
      return;
    }
    const stream = this.current();
    for (const c of calls) {
      const p = this.pending.get(c.id as number);
      if (p) p.stream = stream;
    }
    stream.write({ calls });
  }

  private goUnary(id: number): void {
    const p = this.pending.get(id);
    if (p && !p.unary) p.unary = this.unary(p.method, p.request, p.deadline, (err, res, leader) => this.settle(id, err, res, leader));
  }

  private current(): CallsStream {
    if (this.stream) return this.stream;
    const s = (this.stream = this.open());
    s.on('data', (frame: AnswerFrame__Output) => {
      this.heard();
      for (const a of frame.answers) this.answered(a);
    });
    // A failed stream reports its status both ways: 'error' (which must be listened to) and 'status'.
    s.on('error', () => {});
    s.on('status', (st: grpc.StatusObject) => this.ended(s, st));
    return s;
  }

  private answered(a: Answer__Output): void {
    const p = this.pending.get(a.id);
    if (!p || p.unary) return;
    if (a.refusal) {
      const md = new grpc.Metadata();
      if (a.refusal.reason !== '') md.set(MD_ERROR, a.refusal.reason);
      if (a.refusal.leaderAddr !== '') md.set(MD_LEADER, a.refusal.leaderAddr);
      return this.settle(a.id, failure(a.refusal.code, a.refusal.details, md));
    }
    this.settle(a.id, null, a[STREAM_FIELDS[p.method]], a.leaderAddr);
  }

  /** The stream `s` ended: its calls not answered fail with its status, or go unary if the node does not serve it. */
  private ended(s: CallsStream, st: grpc.StatusObject): void {
    if (this.stream === s) this.stream = undefined;
    const on = [...this.pending].filter(([, p]) => p.stream === s && !p.unary).map(([id]) => id);
    if (st.code === grpc.status.UNIMPLEMENTED) {
      this.unsupported = true;
      for (const id of on) this.goUnary(id);
      return;
    }
    const code = st.code === grpc.status.OK ? grpc.status.UNAVAILABLE : st.code;
    const details = st.code === grpc.status.OK ? 'the node ended the stream' : st.details;
    for (const id of on) this.settle(id, failure(code, details, st.metadata));
  }

  private settle(id: number, err: grpc.ServiceError | null, res?: unknown, leaderAddr?: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.unary?.cancel(); // a no-op once it has ended
    if (this.pending.size === 0) this.idle();
    p.done(err, res, leaderAddr);
  }

  /** No call is pending: the stream is ended if none comes within IDLE_MS. */
  private idle(): void {
    this.idleSince = Date.now();
    if (this.idleTimer || !this.stream) return;
    const check = (): void => {
      this.idleTimer = undefined;
      if (this.pending.size > 0 || !this.stream) return;
      const left = this.idleSince + IDLE_MS - Date.now();
      if (left > 0) {
        this.idleTimer = setTimeout(check, left).unref();
        return;
      }
      const s = this.stream;
      this.stream = undefined;
      s.end();
    };
    this.idleTimer = setTimeout(check, IDLE_MS).unref();
  }
}

/** A failed call, shaped as grpc-js shapes a unary call's error. */
function failure(code: number, details: string, metadata = new grpc.Metadata()): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code] ?? ''}: ${details}`), { code, details, metadata });
}

/** About what a request costs on the wire. */
function requestBytes(r: object): number {
  const o = r as { key?: Uint8Array; value?: Uint8Array; expected?: Uint8Array };
  return 32 + (o.key?.length ?? 0) + (o.value?.length ?? 0) + (o.expected?.length ?? 0);
}
