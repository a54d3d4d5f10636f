import type { Answer } from '../generated/raftkv/kv/Answer.js';
import type { Call__Output } from '../generated/raftkv/kv/Call.js';
import { DATA_METHODS, type DataField } from '../data-methods.js';
import type { GetRequestIn, WriteRequestIn } from '../kv-api.js';
import type { KvService, Reply, ServiceCode, ServiceError } from './kv-service.js';

/** Calls of one stream a node serves at once; beyond, a call is refused as overloaded (kv.proto says so). */
export const MAX_STREAM_CALLS = 4096;

/**
 * Bytes of answers (their values and messages) one frame carries, about: a frame that would grow
 * beyond leaves first. A single answer is at most a value (the limit) and a little, which a
 * message may carry (maxMessageBytes).
 */
export const FRAME_BYTES = 256 * 1024;

type StreamMethod = DataField;
const KINDS = Object.keys(DATA_METHODS) as StreamMethod[];

/** gRPC's status codes of the refusals a service answers with (the stream carries them as numbers). */
export const CODE_NUMBERS: Record<ServiceCode | 'OK', number> = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  FAILED_PRECONDITION: 9,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
};

/**
 * While calls of a stream wait, an empty frame goes out when nothing else did for this long: the
 * client then knows the node is alive and working on them (a deep queue under overload can hold
 * a call for seconds), and keeps its watchdog for nodes that went silent.
 */
export const PROGRESS_MS = 100;

export interface CallStreamOptions {
  /** The service, once the node serves; until then every call is answered `starting`. */
  service: () => KvService | undefined;
  starting: ServiceError;
  /** Sends one frame of answers to the client. */
  send: (answers: Answer[]) => void;
  /**
   * Whether the client has left too many frames unread (the transport's buffer is full): new
   * calls are refused as overloaded until it reads, so that a client that sends and never reads
   * cannot grow the node's memory.
   */
  backlogged: () => boolean;
  /** Runs `fn` after the I/O that is ready now: answers ready in the same turn leave together. */
  defer: (fn: () => void) => void;
  /** Runs `fn` once after `ms` (the empty frames while calls wait). */
  after: (ms: number, fn: () => void) => void;
  /** Milliseconds since the epoch: a call's deadline. */
  epochMs: () => number;
  /** Milliseconds on a monotonic clock: how long a call took. */
  now: () => number;
  /** Hears each call once answered: kv.proto's method name, the gRPC status code's name, seconds taken. */
  onAnswered?: (method: string, code: ServiceCode | 'OK', seconds: number) => void;
}

/**
 * The server's end of one client stream (kv.proto's Calls), apart from any transport: each call
 * goes to the KvService as its unary RPC would, and the answers ready in the same turn of the
 * event loop leave in one frame. Every call of a frame is checked on its own: a malformed one is
 * refused, the others are served.
 */
export class CallStream {
  private readonly inflight = new Set<number>();
  private out: Answer[] = [];
  private outBytes = 0;
  private closed = false;
  private onDrained: (() => void) | undefined;
  /** Whether a frame went out since the last look of the progress timer, and whether that timer runs. */
  private sentSince = false;
  private ticking = false;

  constructor(private readonly o: CallStreamOptions) {}

  /** Calls not answered yet. */
  get pending(): number {
    return this.inflight.size;
  }

  receive(calls: readonly Call__Output[]): void {
    for (const c of calls) this.serve(c);
  }

  /** Calls `fn` once every call received so far is answered and sent (at once if none is pending). */
  drained(fn: () => void): void {
    this.onDrained = fn;
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.onDrained && this.inflight.size === 0 && this.out.length === 0) {
      const fn = this.onDrained;
      this.onDrained = undefined;
      fn();
    }
  }

  /** The client is gone: answers still to come are dropped. */
  close(): void {
    this.closed = true;
    this.out = [];
    this.outBytes = 0;
  }

  private serve(c: Call__Output): void {
    const arrived = this.o.now();
    const id = c.id;
    if (!Number.isSafeInteger(id) || id < 0) return; // no id to answer under: a client bug; nothing to do
    // The request field set, counted without an array per call (this is the hot path).
    let kind: StreamMethod | undefined;
    let set = 0;
    for (const k of KINDS) {
      if (c[k] === null || c[k] === undefined) continue;
      kind = k;
      set++;
    }
    if (set !== 1 || kind === undefined) {
      return this.answer({ id, refusal: refusal({ code: 'INVALID_ARGUMENT', details: `a call must carry exactly one request; call ${id} carries ${set}` }) });
    }
    if (this.inflight.has(id)) {
      return this.answer({ id, refusal: refusal({ code: 'INVALID_ARGUMENT', details: `call id ${id} is already in flight on this stream` }) });
    }
    const service = this.o.service();
    if (!service) return this.finish(kind, arrived, { id, refusal: refusal(this.o.starting) }, this.o.starting.code);
    if (this.inflight.size >= MAX_STREAM_CALLS || this.o.backlogged()) {
      const why = this.inflight.size >= MAX_STREAM_CALLS ? `${this.inflight.size} calls of this stream are in flight (the limit is ${MAX_STREAM_CALLS})` : 'the answers to this stream\'s calls are not being read';
      const e: ServiceError = { code: 'RESOURCE_EXHAUSTED', reason: 'overloaded', details: `${why}; retry after a pause` };
      return this.finish(kind, arrived, { id, refusal: refusal(e) }, e.code);
    }
    this.inflight.add(id);
    this.tick();
    const reply: Reply<object> = (err, res, leaderAddr) => {
      this.inflight.delete(id);
      if (err) return this.finish(kind, arrived, { id, refusal: refusal(err) }, err.code);
      this.finish(kind, arrived, { id, [kind]: res, leaderAddr: leaderAddr ?? '' }, 'OK');
    };
    const deadline = c.timeoutMs > 0 ? this.o.epochMs() + c.timeoutMs : undefined;
    if (kind === 'get') service.get(c.get as GetRequestIn, reply);
    else service[kind](c[kind] as WriteRequestIn, reply, deadline);
  }

  /** Keeps an empty frame going out every PROGRESS_MS in which nothing else did, while calls wait. */
  private tick(): void {
    if (this.ticking) return;
    this.ticking = true;
    this.sentSince = false;
    this.o.after(PROGRESS_MS, () => {
      this.ticking = false;
      if (this.closed || this.inflight.size === 0) return;
      if (!this.sentSince) this.o.send([]);
      this.tick();
    });
  }

  private finish(kind: StreamMethod, arrived: number, a: Answer, code: ServiceCode | 'OK'): void {
    this.o.onAnswered?.(DATA_METHODS[kind], code, (this.o.now() - arrived) / 1000);
    this.answer(a);
  }

  private answer(a: Answer): void {
    if (this.closed) return;
    const bytes = answerBytes(a);
    if (this.out.length > 0 && this.outBytes + bytes > FRAME_BYTES) this.flush();
    this.out.push(a);
    this.outBytes += bytes;
    if (this.out.length === 1) this.o.defer(() => this.flush());
  }

  private flush(): void {
    if (this.closed || this.out.length === 0) return;
    const answers = this.out;
    this.out = [];
    this.outBytes = 0;
    this.sentSince = true;
    this.o.send(answers);
    this.checkDrained();
  }
}

/** About what an answer costs on the wire: its value or its message, and a few bytes of framing. */
function answerBytes(a: Answer): number {
  return 16 + (a.get?.value?.length ?? 0) + (a.refusal?.details?.length ?? 0);
}

function refusal(e: ServiceError): Answer['refusal'] {
  return { code: CODE_NUMBERS[e.code], details: e.details, reason: e.reason ?? '', leaderAddr: e.leaderAddr ?? '' };
}
