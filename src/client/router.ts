import * as grpc from '@grpc/grpc-js';
import { checkAddress } from '../address.js';
import { loadKvProto, maxMessageBytes, MD_ERROR, MD_LEADER } from '../kv-api.js';
import { AttemptTimer } from './attempt-timer.js';
import { Endpoints } from './endpoints.js';
import {
  ClientClosedError,
  ClusterOverloadedError,
  ClusterUnavailableError,
  InvalidArgumentError,
  RaftkvError,
  UnexpectedServerError,
} from './errors.js';
import { describeFailure, details, isConnectFailure, isWrongPlace } from './grpc-errors.js';
import { Turns } from './turns.js';

export type Method = 'Get' | 'Put' | 'Append' | 'Delete' | 'CompareAndSwap' | 'Status' | 'Snapshot';

/** One endpoint's answer to a call made to every endpoint. */
export type EndpointResult<T> = { endpoint: string; ok: true; value: T } | { endpoint: string; ok: false; error: string };

export interface RouterOptions {
  endpoints: string[];
  timeoutMs: number;
  attemptTimeoutMs: number | undefined;
  maxInflight: number;
}

type UnaryFn = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, res?: unknown) => void,
) => grpc.ClientUnaryCall;

const BACKOFF_MIN_MS = 10;
const BACKOFF_MAX_MS = 200;
/** After an overload refusal: longer pauses, so that refused callers do not keep the node busy refusing. */
const OVERLOAD_BACKOFF_MIN_MS = 50;
const OVERLOAD_BACKOFF_MAX_MS = 1000;
/** Hints followed in a row without a pause; beyond that, stale hints could ping-pong. */
const MAX_HINT_HOPS = 3;
/** Session renewals per call (after the cluster forgot our session: idle beyond its TTL). */
const MAX_SESSION_RENEWALS = 2;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Where a call goes and until when it is tried: the connections to the nodes, the leader as far
 * as this client knows, the nodes that recently failed to answer, and the retry loop with its
 * attempt deadline and backoff. KvClient's operations are built on it.
 */
export class Router {
  readonly endpoints: Endpoints;
  readonly timeoutMs: number;
  readonly timer: AttemptTimer;
  private readonly turns: Turns;
  private readonly clients = new Map<string, grpc.Client>();
  private readonly channelOptions: grpc.ChannelOptions;
  /** The node believed to lead, if any. */
  private leader: string | undefined;
  /** Whether any endpoint ever answered this client (then connection failures are an outage, not a misconfiguration). */
  private answered = false;
  private readonly connectFailures = new Map<string, { count: number; why: string }>();
  /** When each endpoint last answered a call of this client (an answer or a refusal): it is alive. */
  private readonly heard = new Map<string, number>();
  private closed = false;

  constructor(options: RouterOptions) {
    this.endpoints = new Endpoints(options.endpoints);
    this.timeoutMs = options.timeoutMs;
    this.timer = new AttemptTimer(options.attemptTimeoutMs);
    this.turns = new Turns(options.maxInflight);
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

  checkOpen(): void {
    if (this.closed) throw new ClientClosedError('the KvClient is closed');
  }

  /** Closes every connection; calls in progress and later calls fail with ClientClosedError. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Calls waiting for a turn wake up to find the client closed.
    this.turns.wakeAll();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /**
   * Sends a request until an answer, a non-retryable error or the deadline. `build` is called
   * per attempt (a write's first_incomplete may have moved on); `renewSession` on a
   * session-expired refusal (writes only).
   */
  async call<Res>(method: Method, build: () => object, renewSession: (() => void) | undefined): Promise<Res> {
    this.checkOpen();
    const deadline = Date.now() + this.timeoutMs;
    await this.turns.take();
    try {
      this.checkOpen();
      if (Date.now() >= deadline) throw new ClusterOverloadedError(`waited ${this.timeoutMs} ms for a turn among this client's ${this.turns.max} calls in flight`, 0);
      return await this.send<Res>(method, build, renewSession, deadline);
    } finally {
      this.turns.release();
    }
  }

  /** One call to each configured endpoint, not retried, within the client's timeout (at least `minMs`). */
  async everyEndpoint<Res>(method: Method, minMs: number): Promise<EndpointResult<Res>[]> {
    this.checkOpen();
    const deadlineMs = Math.min(this.timeoutMs, Math.max(this.timer.fixedMs ?? AttemptTimer.DEFAULT_MS, minMs));
    return Promise.all(
      this.endpoints.configured.map(async (endpoint): Promise<EndpointResult<Res>> => {
        try {
          const value = await this.attempt<Res>(endpoint, method, {}, Date.now() + deadlineMs);
          return { endpoint, ok: true, value };
        } catch (e) {
          return { endpoint, ok: false, error: describeFailure(e as grpc.ServiceError) };
        }
      }),
    );
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
      const target = this.endpoints.pick(this.leader);
      attempts++;
      const trailer = { leader: '' };
      try {
        const sent = Date.now();
        const res = await this.attempt<Res>(target, method, build(), deadline, trailer, this.timer.ms());
        this.timer.sample(Date.now() - sent);
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
        last = `${target}: ${describeFailure(err)}`;
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
            if (hint !== '' && hint !== target && checkAddress(hint).ok && hops < MAX_HINT_HOPS && !this.endpoints.isSuspect(hint)) {
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
            if (kind === '') this.endpoints.suspect(target);
            this.forget(target);
            this.noteConnectFailure(target, err);
            break;
          default:
            throw new UnexpectedServerError(
              `${target}: ${describeFailure(err)}` +
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
      `no leader answered within ${this.timeoutMs} ms (${attempts} attempts over ${this.endpoints.list.join(',')}); last: ${last}` +
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
    const all = this.endpoints.list.map((e) => [e, this.connectFailures.get(e)] as const);
    if (all.some(([, f]) => (f?.count ?? 0) < 2)) return;
    throw new ClusterUnavailableError(
      `no endpoint is a raftkv node (${all.map(([e, f]) => `${e}: ${f!.why}`).join('; ')}): check the endpoints (the nodes' client addresses)`,
      all.length * 2,
      { cause: err },
    );
  }

  /** Whether a connection to `endpoint` is up now (one is started if there is none). */
  private reachable(endpoint: string): boolean {
    if (this.endpoints.isSuspect(endpoint)) return false;
    return this.clientFor(endpoint).getChannel().getConnectivityState(true) === grpc.connectivityState.READY;
  }

  /** After a failure at `target`: stop believing it leads, and move on to the next endpoint. */
  private forget(target: string): void {
    if (this.leader === target) this.leader = undefined;
    this.endpoints.passOver(target);
  }

  /**
   * One call to `target`, given up at `deadline`, or after `silenceMs` in which `target` answered
   * none of this client's calls. A node that answers other calls meanwhile is alive, only busy
   * (an overload queues calls): giving up on it would resend the call elsewhere, to be forwarded
   * back, and double the work of a node that has too much already. `trailer.leader` receives the
   * leader a forwarding follower names (set before the promise settles).
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
