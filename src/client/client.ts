import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { checkAddress } from '../address.js';
import { parseEndpoints } from './address.js';
import {
  loadKvProto,
  maxMessageBytes,
  MD_ERROR,
  MD_LEADER,
  type CasResponse,
  type DeleteResponse,
  type GetResponse,
  type SnapshotResponse,
  type StatusResponse,
} from '../kv-api.js';
import {
  ClientClosedError,
  ClusterOverloadedError,
  ClusterUnavailableError,
  InvalidArgumentError,
  RaftkvError,
  UnexpectedServerError,
} from './errors.js';

/** Keys and values: strings are sent as UTF-8. */
export type Bytes = string | Uint8Array;

export interface KvClientOptions {
  /** Client addresses of the cluster's nodes: `['127.0.0.1:9001', ...]` or `'127.0.0.1:9001,127.0.0.1:9002'`. */
  endpoints: string[] | string;
  /** Overall deadline of each call, retries included, in ms (default 5000). */
  timeoutMs?: number;
  /**
   * Deadline of a single attempt, so that a dead, hung or unreachable node does not eat the whole
   * budget. By default it adapts to the latencies seen (as TCP's retransmission timeout does: the
   * smoothed latency plus four deviations, between 250 ms and 2 s; 1 s before the first answer),
   * so that a node that went silent costs a fraction of a second, not seconds.
   */
  attemptTimeoutMs?: number;
  /**
   * Calls this client has on the wire at once (default 1024); more wait their turn here, within
   * their deadline. Keeps a burst of calls from swamping the client's own process and the cluster.
   */
  maxInflight?: number;
}

/** One node's view, as its Status answer gives it (leaderId 0 and leaderAddr '' when unknown). */
export type NodeStatus = StatusResponse;

export type EndpointStatus =
  | { endpoint: string; ok: true; status: NodeStatus }
  | { endpoint: string; ok: false; error: string };

/** One endpoint's answer to a call made to every endpoint. */
export type EndpointResult<T> = { endpoint: string; ok: true; value: T } | { endpoint: string; ok: false; error: string };

/** What a node's snapshot covers: every entry up to and including (index, term). */
export type SnapshotInfo = SnapshotResponse;

export { parseEndpoints };

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_ATTEMPT_TIMEOUT_MS = 1000;
const MIN_ATTEMPT_TIMEOUT_MS = 250;
const MAX_ATTEMPT_TIMEOUT_MS = 2000;
const BACKOFF_MIN_MS = 10;
const BACKOFF_MAX_MS = 200;
/**
 * How long an endpoint that failed to answer (unreachable, timed out) is avoided: hints naming it
 * are not followed meanwhile, so that a client cut off from the leader keeps being served by the
 * followers it can reach (which forward to the leader) instead of going back to the leader.
 */
const SUSPECT_MS = 10_000;
/** After an overload refusal: longer pauses, so that refused callers do not keep the node busy refusing. */
const OVERLOAD_BACKOFF_MIN_MS = 50;
const OVERLOAD_BACKOFF_MAX_MS = 1000;
/** Hints followed in a row without a pause; beyond that, stale hints could ping-pong. */
const MAX_HINT_HOPS = 3;
const DEFAULT_MAX_INFLIGHT = 1024;
/** Calls waiting for a turn, at most: beyond, a call is refused at once as overloaded. */
const MAX_WAITING = 100_000;
/** Session renewals per call (after the cluster forgot our session: idle beyond its TTL). */
const MAX_SESSION_RENEWALS = 2;

/** Per-client exactly-once session (Raft thesis §6.3): a random id and a sequence of writes. */
class Session {
  readonly clientId = randomClientId();
  private nextSeq = 1;
  /** Seqs without an answer yet, in increasing order (Set keeps insertion order). */
  private readonly outstanding = new Set<number>();
  /**
   * Whether the cluster knows this session: after the first answered write. Until then every
   * request says first_incomplete = 1, because a session starts only with such a request (a
   * first write that never made it into the log must not leave the session unstartable).
   */
  established = false;

  begin(): number {
    const seq = this.nextSeq++;
    this.outstanding.add(seq);
    return seq;
  }

  /** Called once per seq, whatever the outcome: the client will not ask about it again. */
  end(seq: number): void {
    this.outstanding.delete(seq);
  }

  firstIncomplete(): number {
    if (!this.established) return 1;
    const lowest = this.outstanding.values().next();
    return lowest.done ? this.nextSeq : lowest.value;
  }
}

function randomClientId(): number {
  for (;;) {
    // 53 random bits: 7 bytes, top 3 bits dropped.
    const b = randomBytes(7);
    const id = (b[0]! & 0x1f) * 2 ** 48 + b.readUIntBE(1, 6);
    if (id > 0) return id;
  }
}

function toBytes(what: string, v: Bytes): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new InvalidArgumentError(`${what} must be a string or a Uint8Array, got ${typeof v}`);
}

function keyBytes(key: Bytes): Buffer {
  const k = toBytes('key', key);
  if (k.length === 0) throw new InvalidArgumentError('key must not be empty');
  return k;
}

type Method = 'Get' | 'Put' | 'Append' | 'Delete' | 'CompareAndSwap' | 'Status' | 'Snapshot';
type UnaryFn = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

interface Ticket {
  session: Session;
  seq: number;
}

/** A failure to connect at all (refused, no such host, not a gRPC server), as opposed to a node that answered or timed out. */
function isConnectFailure(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && /No connection established|Name resolution failed/.test(err.details ?? '');
}

/** A name that does not resolve, or a server that does not speak gRPC: not a node that is down. */
function isWrongPlace(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && /Name resolution failed|Protocol error/.test(err.details ?? '');
}

/** What went wrong, without gRPC's plumbing (resolution notes, per-phase timings). */
function details(err: grpc.ServiceError): string {
  const d = err.details || err.message;
  return d.replace(/\s*Resolution note:[\s\S]*$/, '').replace(/,(name resolution|metadata filters|time to current attempt start|Waiting for LB pick)[^,]*/g, '');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A client of a raftkv cluster. Finds the leader (following the servers' hints), retries on
 * leader changes and unreachable nodes with the same session and sequence number (so a write is
 * applied once however often it is sent), and gives up after the call's deadline with
 * ClusterUnavailableError. Safe for concurrent calls. Close it when done.
 */
export class KvClient {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  /** A fixed attempt deadline, if one was given. */
  private readonly fixedAttemptMs: number | undefined;
  /** Smoothed latency of answered attempts and its mean deviation (RFC 6298), for the adaptive attempt deadline. */
  private srtt: number | undefined;
  private rttvar = 0;
  private readonly clients = new Map<string, grpc.Client>();
  private readonly channelOptions: grpc.ChannelOptions;
  private session = new Session();
  /** The node believed to lead, if any. */
  private leader: string | undefined;
  /** Whether any endpoint ever answered this client (then connection failures are an outage, not a misconfiguration). */
  private answered = false;
  private readonly connectFailures = new Map<string, { count: number; why: string }>();
  /** Endpoints that recently failed to answer, and until when they are avoided. */
  private readonly suspect = new Map<string, number>();
  /** When each endpoint last answered a call of this client (an answer or a refusal): it is alive. */
  private readonly heard = new Map<string, number>();
  private rr = 0;
  private closed = false;
  readonly maxInflight: number;
  private inflight = 0;
  /** Calls waiting for a turn (a FIFO: `waitHead` is its first). */
  private waiting: (() => void)[] = [];
  private waitHead = 0;

  constructor(options: KvClientOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('KvClient needs options: { endpoints }');
    this.endpoints = parseEndpoints(options.endpoints);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(Number.isFinite(this.timeoutMs) && this.timeoutMs > 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a positive number, got ${String(options.timeoutMs)}`);
    }
    this.fixedAttemptMs = options.attemptTimeoutMs;
    if (this.fixedAttemptMs !== undefined && !(Number.isFinite(this.fixedAttemptMs) && this.fixedAttemptMs > 0)) {
      throw new InvalidArgumentError(`attemptTimeoutMs must be a positive number, got ${String(options.attemptTimeoutMs)}`);
    }
    this.maxInflight = options.maxInflight ?? DEFAULT_MAX_INFLIGHT;
    if (!(Number.isSafeInteger(this.maxInflight) && this.maxInflight > 0)) {
      throw new InvalidArgumentError(`maxInflight must be a positive integer, got ${String(options.maxInflight)}`);
    }
    this.rr = Math.floor(Math.random() * this.endpoints.length);
    this.channelOptions = {
      'grpc.max_receive_message_length': maxMessageBytes(),
      // Reconnect quickly to a node that comes back; the default backoff starts at 1 s.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.min_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // A connection that went silent (a cut link) is noticed within seconds, not at the next TCP timeout.
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 2000,
      'grpc.keepalive_permit_without_calls': 1,
      // We retry ourselves, with the same session and seq.
      'grpc.enable_retries': 0,
      // Connections belong to this client: close() really closes them.
      'grpc.use_local_subchannel_pool': 1,
    };
  }

  /** The value of `key` as UTF-8 text, or undefined if there is none. */
  async get(key: Bytes): Promise<string | undefined> {
    const v = await this.getBytes(key);
    return v?.toString('utf8');
  }

  /** The value of `key` as bytes, or undefined if there is none. */
  async getBytes(key: Bytes): Promise<Buffer | undefined> {
    const k = keyBytes(key);
    const res = await this.call<GetResponse>('Get', () => ({ key: k }), undefined);
    return res.found ? Buffer.from(res.value.buffer, res.value.byteOffset, res.value.byteLength) : undefined;
  }

  async put(key: Bytes, value: Bytes): Promise<void> {
    const k = keyBytes(key);
    const v = toBytes('value', value);
    await this.write('Put', (session) => ({ session, key: k, value: v }));
  }

  async append(key: Bytes, value: Bytes): Promise<void> {
    const k = keyBytes(key);
    const v = toBytes('value', value);
    await this.write('Append', (session) => ({ session, key: k, value: v }));
  }

  /** Deletes `key`; true if it existed. */
  async delete(key: Bytes): Promise<boolean> {
    const k = keyBytes(key);
    const res = await this.write<DeleteResponse>('Delete', (session) => ({ session, key: k }));
    return res.existed;
  }

  /** Sets `key` to `value` if its current value equals `expected` (an absent key equals nothing); true if it did. */
  async cas(key: Bytes, expected: Bytes, value: Bytes): Promise<boolean> {
    const k = keyBytes(key);
    const e = toBytes('expected', expected);
    const v = toBytes('value', value);
    const res = await this.write<CasResponse>('CompareAndSwap', (session) => ({ session, key: k, expected: e, value: v }));
    return res.swapped;
  }

  /** Every configured endpoint's own view (not retried; unreachable nodes are reported as such). */
  async status(): Promise<EndpointStatus[]> {
    const rows = await this.everyEndpoint<StatusResponse>('Status', 2000);
    return rows.map((r) => (r.ok ? { endpoint: r.endpoint, ok: true, status: { ...r.value } } : r));
  }

  /**
   * Asks every configured endpoint (usually one) to snapshot its state and compact its log now;
   * each answers once its snapshot is durable.
   */
  async snapshot(): Promise<EndpointResult<SnapshotResponse>[]> {
    return this.everyEndpoint<SnapshotResponse>('Snapshot', 30_000);
  }

  /** Closes every connection; calls in progress and later calls fail with ClientClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Calls waiting for a turn wake up to find the client closed.
    for (const wake of this.waiting.slice(this.waitHead)) wake();
    this.waiting = [];
    this.waitHead = 0;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  // -------------------------------------------------------------------------------------------

  /** One call to each endpoint, not retried, within the client's timeout (at least `minMs`). */
  private async everyEndpoint<Res>(method: Method, minMs: number): Promise<EndpointResult<Res>[]> {
    this.checkOpen();
    const deadlineMs = Math.min(this.timeoutMs, Math.max(this.fixedAttemptMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS, minMs));
    return Promise.all(
      this.endpoints.map(async (endpoint): Promise<EndpointResult<Res>> => {
        try {
          const value = await this.attempt<Res>(endpoint, method, {}, Date.now() + deadlineMs);
          return { endpoint, ok: true, value };
        } catch (e) {
          const err = e as grpc.ServiceError;
          const code = grpc.status[err.code] ?? String(err.code);
          return { endpoint, ok: false, error: `${code}: ${details(err)}` };
        }
      }),
    );
  }

  // -------------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new ClientClosedError('the KvClient is closed');
  }

  private async write<Res>(method: Method, build: (session: object) => object): Promise<Res> {
    this.checkOpen();
    let ticket: Ticket = { session: this.session, seq: this.session.begin() };
    const session = (): object => ({
      clientId: ticket.session.clientId,
      seq: ticket.seq,
      firstIncomplete: ticket.session.firstIncomplete(),
    });
    try {
      const res = await this.call<Res>(method, () => build(session()), () => {
        // The cluster forgot our session (idle beyond its TTL): this request was not applied, so
        // it is safe to send it again under a new session.
        if (this.session === ticket.session) this.session = new Session();
        ticket.session.end(ticket.seq);
        ticket = { session: this.session, seq: this.session.begin() };
      });
      ticket.session.established = true;
      return res;
    } finally {
      ticket.session.end(ticket.seq);
    }
  }

  /**
   * Sends a request until an answer, a non-retryable error or the deadline. `build` is called
   * per attempt (a write's first_incomplete may have moved on); `renewSession` on a
   * session-expired refusal (writes only).
   */
  private async call<Res>(method: Method, build: () => object, renewSession: (() => void) | undefined): Promise<Res> {
    this.checkOpen();
    const deadline = Date.now() + this.timeoutMs;
    await this.turn();
    try {
      this.checkOpen();
      if (Date.now() >= deadline) throw new ClusterOverloadedError(`waited ${this.timeoutMs} ms for a turn among this client's ${this.maxInflight} calls in flight`, 0);
      return await this.send<Res>(method, build, renewSession, deadline);
    } finally {
      this.release();
    }
  }

  /** Resolves when one of the client's `maxInflight` turns is free. */
  private turn(): Promise<void> {
    if (this.inflight < this.maxInflight) {
      this.inflight++;
      return Promise.resolve();
    }
    if (this.waiting.length - this.waitHead >= MAX_WAITING) {
      return Promise.reject(new ClusterOverloadedError(`${MAX_WAITING} calls are already waiting in this client for a turn`, 0));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the turn to the next waiting call, if any. */
  private release(): void {
    if (this.waitHead < this.waiting.length) {
      const next = this.waiting[this.waitHead]!;
      this.waiting[this.waitHead++] = undefined as unknown as () => void;
      if (this.waitHead > 1024 && this.waitHead * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.waitHead);
        this.waitHead = 0;
      }
      next();
    } else this.inflight--;
  }

  private async send<Res>(method: Method, build: () => object, renewSession: (() => void) | undefined, deadline: number): Promise<Res> {
    let attempts = 0;
    let backoff = BACKOFF_MIN_MS;
    let hops = 0;
    let renewals = 0;
    let overloaded = false;
    let last = 'no attempt finished';
    let lastErr: unknown;
    for (;;) {
      const target = this.pick();
      attempts++;
      const trailer = { leader: '' };
      try {
        const sent = Date.now();
        const res = await this.attempt<Res>(target, method, build(), deadline, trailer, this.attemptMs());
        this.sampleLatency(Date.now() - sent);
        this.answered = true;
        // A follower that served the call by forwarding it names the leader: go there next time,
        // if it is known to answer us.
        this.leader = trailer.leader !== '' && trailer.leader !== target && this.reachable(trailer.leader) ? trailer.leader : target;
        return res;
      } catch (e) {
        if (this.closed) throw new ClientClosedError('the KvClient was closed during the call');
        if (e instanceof RaftkvError) throw e;
        const err = e as grpc.ServiceError;
        lastErr = err;
        if (!isConnectFailure(err)) this.answered = true;
        const kind = String(err.metadata?.get(MD_ERROR)[0] ?? '');
        const hint = String(err.metadata?.get(MD_LEADER)[0] ?? '');
        last = `${target}: ${grpc.status[err.code] ?? err.code}: ${details(err)}`;
        let pause = true;
        overloaded = false;
        switch (err.code) {
          case grpc.status.INVALID_ARGUMENT:
            throw new InvalidArgumentError(details(err));
          case grpc.status.RESOURCE_EXHAUSTED:
            if (kind !== 'overloaded') {
              throw new InvalidArgumentError(`request too large for the server (values are limited to 1 MiB): ${details(err)}`);
            }
            // The right node, too busy: stay with it, and wait longer than for an election.
            overloaded = true;
            backoff = Math.max(backoff, OVERLOAD_BACKOFF_MIN_MS);
            break;
          case grpc.status.FAILED_PRECONDITION:
            if (kind === 'session-expired') {
              if (!renewSession || renewals >= MAX_SESSION_RENEWALS) {
                throw new UnexpectedServerError(`${target}: ${err.details}`, err.code);
              }
              renewals++;
              renewSession();
              pause = false;
              break;
            }
            if (hint !== '' && hint !== target && checkAddress(hint).ok && hops < MAX_HINT_HOPS && !this.isSuspect(hint)) {
              this.leader = hint;
              hops++;
              pause = false;
            } else {
              this.forget(target);
            }
            break;
          case grpc.status.UNAVAILABLE:
          case grpc.status.DEADLINE_EXCEEDED:
          case grpc.status.CANCELLED:
          case grpc.status.ABORTED:
          case grpc.status.INTERNAL:
            // No refusal from a node that answered (those carry a reason): it did not answer.
            if (kind === '') this.suspect.set(target, Date.now() + SUSPECT_MS);
            this.forget(target);
            this.noteConnectFailure(target, err);
            break;
          default:
            throw new UnexpectedServerError(
              `${target}: ${grpc.status[err.code] ?? err.code}: ${details(err)}` +
                (err.code === grpc.status.UNIMPLEMENTED ? ` (is ${target} a node's client address? Its peer port answers client calls this way)` : ''),
              err.code,
            );
        }
        if (pause) {
          hops = 0;
          const delay = backoff / 2 + (Math.random() * backoff) / 2;
          backoff = Math.min(backoff * 2, overloaded ? OVERLOAD_BACKOFF_MAX_MS : BACKOFF_MAX_MS);
          if (Date.now() + delay >= deadline) break;
          await sleep(delay);
          this.checkOpen();
        }
        if (Date.now() >= deadline) break;
      }
    }
    if (overloaded) {
      throw new ClusterOverloadedError(`the cluster was too busy to take the call within ${this.timeoutMs} ms (${attempts} attempts); last: ${last}`, attempts, {
        cause: lastErr,
      });
    }
    const nothing = !this.answered && lastErr !== undefined && isConnectFailure(lastErr as grpc.ServiceError);
    throw new ClusterUnavailableError(
      `no leader answered within ${this.timeoutMs} ms (${attempts} attempts over ${this.endpoints.join(',')}); last: ${last}` +
        (nothing ? ' (no endpoint ever answered: is the cluster up, and are these its client addresses?)' : ''),
      attempts,
      { cause: lastErr },
    );
  }

  /**
   * `target` is not a raftkv node at all: its name does not resolve, or what answers is not gRPC.
   * A client that never got an answer from any endpoint and found each of them so, twice, is
   * pointed at the wrong place (a typo, another service): it says so at once instead of retrying
   * until its deadline. (A refused connection is not enough: the cluster may still be starting.)
   */
  private noteConnectFailure(target: string, err: grpc.ServiceError): void {
    if (this.answered || !isWrongPlace(err)) return;
    const seen = this.connectFailures.get(target);
    this.connectFailures.set(target, { count: (seen?.count ?? 0) + 1, why: details(err) });
    const all = this.endpoints.map((e) => [e, this.connectFailures.get(e)] as const);
    if (all.some(([, f]) => (f?.count ?? 0) < 2)) return;
    throw new ClusterUnavailableError(
      `no endpoint is a raftkv node (${all.map(([e, f]) => `${e}: ${f!.why}`).join('; ')}): check the endpoints (the nodes' client addresses)`,
      this.endpoints.length * 2,
      { cause: err },
    );
  }

  /** This attempt's deadline: fixed if given, else adapted to the latencies seen. */
  private attemptMs(): number {
    if (this.fixedAttemptMs !== undefined) return this.fixedAttemptMs;
    if (this.srtt === undefined) return DEFAULT_ATTEMPT_TIMEOUT_MS;
    return Math.min(MAX_ATTEMPT_TIMEOUT_MS, Math.max(MIN_ATTEMPT_TIMEOUT_MS, this.srtt + 4 * this.rttvar));
  }

  private sampleLatency(ms: number): void {
    if (this.srtt === undefined) {
      this.srtt = ms;
      this.rttvar = ms / 2;
      return;
    }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
    this.srtt = 0.875 * this.srtt + 0.125 * ms;
  }

  /** Where to send next: the leader if it is not suspect, else the next endpoint that is not (or, all suspect, the next). */
  private pick(): string {
    if (this.leader !== undefined && !this.isSuspect(this.leader)) return this.leader;
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.rr + i) % n]!;
      if (!this.isSuspect(e)) {
        this.rr = (this.rr + i) % n;
        return e;
      }
    }
    return this.endpoints[this.rr % n]!;
  }

  private isSuspect(endpoint: string): boolean {
    const until = this.suspect.get(endpoint);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.suspect.delete(endpoint);
    return false;
  }

  /** Whether a connection to `endpoint` is up now (one is started if there is none). */
  private reachable(endpoint: string): boolean {
    if (this.isSuspect(endpoint)) return false;
    return this.clientFor(endpoint).getChannel().getConnectivityState(true) === grpc.connectivityState.READY;
  }

  /** After a failure at `target`: stop believing it leads, and move on to the next endpoint. */
  private forget(target: string): void {
    if (this.leader === target) this.leader = undefined;
    if (this.endpoints[this.rr % this.endpoints.length] === target) this.rr = (this.rr + 1) % this.endpoints.length;
  }

  /** One call; `trailer.leader` receives the leader a forwarding follower names (set before the promise settles). */
  /**
   * One call to `target`, given up at `deadline`, or after `silenceMs` in which `target` answered
   * none of this client's calls. A node that answers other calls meanwhile is alive, only busy
   * (an overload queues calls): giving up on it would resend the call elsewhere, to be forwarded
   * back, and double the work of a node that has too much already.
   */
  private attempt<Res>(target: string, method: Method, request: object, deadline: number, trailer?: { leader: string }, silenceMs?: number): Promise<Res> {
    const client = this.clientFor(target);
    const fn = (client as unknown as Record<Method, UnaryFn>)[method];
    return new Promise<Res>((resolve, reject) => {
      let watchdog: NodeJS.Timeout | undefined;
      let since = Date.now();
      let silent = false;
      const call = fn.call(client, request, new grpc.Metadata(), { deadline }, (err, res) => {
        if (watchdog) clearTimeout(watchdog);
        if (!err || err.metadata?.get(MD_ERROR).length) this.heard.set(target, Date.now());
        if (silent && err?.code === grpc.status.CANCELLED) {
          reject(Object.assign(new Error('silent'), { code: grpc.status.DEADLINE_EXCEEDED, details: `no answer from ${target} for ${silenceMs} ms`, metadata: new grpc.Metadata() }));
        } else if (err) reject(err);
        else resolve(res as Res);
      });
      // Emitted right after the callback, before anything awaiting the promise resumes.
      if (trailer) call.on('status', (st: grpc.StatusObject) => (trailer.leader = String(st.metadata.get(MD_LEADER)[0] ?? '')));
      if (silenceMs === undefined || Date.now() + silenceMs >= deadline) return;
      const check = (): void => {
        if ((this.heard.get(target) ?? 0) <= since) {
          silent = true;
          call.cancel();
        } else if (Date.now() + silenceMs < deadline) {
          since = Date.now();
          watchdog = setTimeout(check, silenceMs);
        } // else the deadline ends the call
      };
      watchdog = setTimeout(check, silenceMs);
    });
  }

  private clientFor(address: string): grpc.Client {
    this.checkOpen();
    let c = this.clients.get(address);
    if (c === undefined) {
      const Kv = loadKvProto().Kv;
      c = new Kv(address, grpc.credentials.createInsecure(), this.channelOptions);
      this.clients.set(address, c);
    }
    return c;
  }
}
