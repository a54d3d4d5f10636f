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
  MembershipRefusedError,
  NoSpaceError,
  RaftkvError,
  UnexpectedServerError,
} from './errors.js';
import { describeFailure, details, isConnectFailure, isWrongPlace, tlsProblem } from './grpc-errors.js';
import { Turns } from './turns.js';
import { CallMux, STREAM_FIELDS, type CallsStream, type Done, type StreamMethod } from './call-mux.js';
import { staticChannelCredentials } from '../tls-credentials.js';

export type Method =
  | 'Get'
  | 'Put'
  | 'Append'
  | 'Delete'
  | 'CompareAndSwap'
  | 'Status'
  | 'Snapshot'
  | 'MemberList'
  | 'MemberAdd'
  | 'MemberPromote'
  | 'MemberRemove'
  | 'LeaderTransfer';

/** What a call needs beyond sending and resending its request. */
export interface CallHooks<Res> {
  /** Writes: the cluster forgot the session (idle beyond its TTL); called before the request is sent again. */
  renewSession?: () => void;
  /**
   * Requests that carry no session and must not take effect twice (membership changes): called
   * after an attempt whose outcome is unknown (sent, and no answer that says it was not applied),
   * before the request is sent again. Resolves to the call's result if the request took effect
   * after all, undefined to send it again; fails (ClusterUnavailableError) if it cannot tell
   * before `deadline`.
   */
  settle?: (deadline: number) => Promise<Res | undefined>;
  /** Any node answers the call (MemberList, Status): an answer does not mean that its node leads. */
  anyNode?: boolean;
  /**
   * Only the leader serves the call; other nodes refuse it, they do not forward it (membership
   * changes): a hint is followed even to a node that failed to answer lately, since no other
   * node will serve the call meanwhile.
   */
  leaderOnly?: boolean;
}

/** One endpoint's answer to a call made to every endpoint. */
export type EndpointResult<T> = { endpoint: string; ok: true; value: T } | { endpoint: string; ok: false; error: string };

export interface RouterOptions {
  endpoints: string[];
  timeoutMs: number;
  attemptTimeoutMs: number | undefined;
  maxInflight: number;
  /** Data calls on one stream per node (kv.proto's Calls), else unary RPCs; default true. */
  streams?: boolean;
  /** TLS to the endpoints; plaintext without. */
  tls?: RouterTls;
}

export interface RouterTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  serverName?: string;
}

/** What the router tells its owner: something answered for the first time, the leader moved, an endpoint failed. */
export type RouterEvent = 'answered' | 'leader-changed' | 'endpoint-failed';

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
  private readonly muxes = new Map<string, CallMux>();
  private readonly streams: boolean;
  private readonly channelOptions: grpc.ChannelOptions;
  private readonly credentials: grpc.ChannelCredentials;
  private readonly tlsOn: boolean;
  /** The last TLS problem a connection showed, said in the user's terms, for the error at the deadline. */
  private tlsHint: string | undefined;
  /** The node believed to lead, if any. */
  private leader: string | undefined;
  /** The last node named as the leader, kept when a failure makes the client doubt it: to see the leader move. */
  private lastLeader: string | undefined;
  /** Whether any endpoint ever answered this client (then connection failures are an outage, not a misconfiguration). */
  private answered = false;
  private readonly connectFailures = new Map<string, { count: number; why: string }>();
  /** When each endpoint last answered a call of this client (an answer or a refusal): it is alive. */
  private readonly heard = new Map<string, number>();
  /** Calls on the wire, cancelled by close(): grpc-js lets a started call run on after its channel closes. */
  private readonly active = new Set<{ cancel(): void }>();
  private closed = false;
  /** Told of the events that may change where calls should go (the endpoint refresh listens). */
  onEvent: (event: RouterEvent) => void = () => {};

  constructor(options: RouterOptions) {
    this.endpoints = new Endpoints(options.endpoints);
    this.timeoutMs = options.timeoutMs;
    this.timer = new AttemptTimer(options.attemptTimeoutMs);
    this.turns = new Turns(options.maxInflight);
    this.streams = options.streams ?? true;
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
      ...(options.tls?.serverName ? { 'grpc.ssl_target_name_override': options.tls.serverName } : {}),
    };
    this.credentials = options.tls ? staticChannelCredentials(options.tls) : grpc.credentials.createInsecure();
    this.tlsOn = options.tls !== undefined;
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
    for (const call of this.active) call.cancel();
    for (const m of this.muxes.values()) m.close();
    this.muxes.clear();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /**
   * Sends a request until an answer, a non-retryable error or the deadline. `build` is called
   * per attempt (a write's first_incomplete may have moved on).
   */
  call<Res>(method: Method, build: () => object, hooks: CallHooks<Res> = {}): Promise<Res> {
    return this.withTurn((deadline) => this.send<Res>(method, build, hooks, deadline));
  }

  /** Runs `work` in one of the client's turns on the wire, with the deadline of a call. */
  async withTurn<T>(work: (deadline: number) => Promise<T>): Promise<T> {
    this.checkOpen();
    const deadline = Date.now() + this.timeoutMs;
    await this.turns.take();
    try {
      this.checkOpen();
      if (Date.now() >= deadline) throw new ClusterOverloadedError(`waited ${this.timeoutMs} ms for a turn among this client's ${this.turns.max} calls in flight`, 0);
      return await work(deadline);
    } finally {
      this.turns.release();
    }
  }

  /** One attempt at `target`, not retried, within the adaptive attempt deadline; the gRPC error if it fails. */
  async once<Res>(target: string, method: Method, request: object, deadline: number): Promise<Res> {
    const res = await this.attempt<Res>(target, method, request, Math.min(deadline, Date.now() + this.timer.ms()));
    this.noteAnswered();
    return res;
  }

  /** `endpoint` leads, as the cluster's answer says: calls go there first (unless it failed to answer lately). */
  noteLeader(endpoint: string): void {
    if (!this.endpoints.isSuspect(endpoint)) this.setLeader(endpoint);
  }

  /** Where a call only the leader serves goes next: the leader as far as this client knows, else the next endpoint. */
  nextTarget(): string {
    this.checkOpen();
    return this.endpoints.pick(this.leader);
  }

  /** `target` did not answer (or answered that it cannot serve and named no leader): the next call goes elsewhere. */
  noteFailure(target: string, answered: boolean): void {
    if (!answered) {
      this.endpoints.suspect(target);
      this.onEvent('endpoint-failed');
    } else this.noteAnswered();
    this.forget(target);
  }

  /**
   * A server-streaming call to `target` (Backup), without a deadline: its caller watches it.
   * close() cancels it, as it does the unary calls.
   */
  stream<Res>(target: string, method: 'Backup', request: object): grpc.ClientReadableStream<Res> {
    const client = this.clientFor(target);
    const fn = (client as unknown as Record<string, (req: object, md: grpc.Metadata) => grpc.ClientReadableStream<Res>>)[method]!;
    const call = fn.call(client, request, new grpc.Metadata());
    this.active.add(call);
    call.on('status', () => this.active.delete(call));
    return call;
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
          const tls = tlsProblem(e as grpc.ServiceError, this.tlsOn);
          return { endpoint, ok: false, error: describeFailure(e as grpc.ServiceError) + (tls ? ` (${tls.hint})` : '') };
        }
      }),
    );
  }

  /**
   * The retry loop of a call, within `deadline`: what call() runs in a turn; also for a call made
   * within another one's turn (to settle a membership change's outcome).
   */
  async send<Res>(method: Method, build: () => object, hooks: CallHooks<Res>, deadline: number): Promise<Res> {
    let attempts = 0;
    let backoff = BACKOFF_MIN_MS;
    let hops = 0;
    let renewals = 0;
    let overloaded = false;
    let last = 'no attempt finished';
    let lastErr: unknown;
    /** With `settle`: the last attempt's outcome is unknown, and so, once one was, the call's. */
    let unsure = false;
    let everUnsure = false;
    /** An earlier attempt may have been applied (or may yet be): it went unanswered, was cut off, or its leader stepped down. */
    let mayHaveApplied = false;
    for (;;) {
      if (unsure && hooks.settle) {
        const done = await this.settle(hooks.settle, deadline);
        if (done === 'unknown') break;
        if (done !== undefined) return done.result;
        unsure = false;
      }
      const target = hooks.leaderOnly && this.leader !== undefined ? this.leader : this.endpoints.pick(this.leader);
      attempts++;
      const trailer = { leader: '' };
      const sent = Date.now();
      try {
        const res = await this.attempt<Res>(target, method, build(), deadline, trailer, this.timer.ms());
        this.timer.sample(Date.now() - sent);
        this.noteAnswered();
        // A follower that served the call by forwarding it names the leader: go there next time,
        // if it is known to answer us.
        if (!hooks.anyNode) {
          const named = trailer.leader !== '' ? trailer.leader : target;
          this.setLeader(named !== target && this.reachable(named) ? named : target, named);
        }
        return res;
      } catch (e) {
        if (this.closed) throw new ClientClosedError('the KvClient was closed during the call');
        if (e instanceof RaftkvError) throw e;
        const err = e as grpc.ServiceError;
        lastErr = err;
        if (!isConnectFailure(err)) this.noteAnswered();
        const kind = String(err.metadata?.get(MD_ERROR)[0] ?? '');
        const hint = String(err.metadata?.get(MD_LEADER)[0] ?? '');
        last = `${target}: ${describeFailure(err)}`;
        if (err.code === grpc.status.FAILED_PRECONDITION && kind === 'conf-refused') {
          // After an attempt whose outcome is unknown, the refusal may be of our own change, in the
          // log but not yet applied when it was looked for ("one pending"): look once more.
          const done = everUnsure && hooks.settle ? await this.settle(hooks.settle, deadline, BACKOFF_MAX_MS) : undefined;
          if (done !== undefined && done !== 'unknown') return done.result;
          throw new MembershipRefusedError(details(err), everUnsure);
        }
        // Sent, and no answer that says it was not applied: a leader that lost its leadership with
        // the change in its log answers outcome-unknown (and a refusal as not leader is not taken
        // to say more).
        if (hooks.settle && !isConnectFailure(err) && !(err.code === grpc.status.RESOURCE_EXHAUSTED && kind === 'overloaded')) {
          unsure = everUnsure = true;
        }
        // Refusals before a proposal (invalid, overloaded, no space) are definite; a node that lost
        // its leadership answers not-leader for a write it had proposed, which the next leader may commit.
        if (!isConnectFailure(err) && err.code !== grpc.status.INVALID_ARGUMENT && err.code !== grpc.status.RESOURCE_EXHAUSTED) mayHaveApplied = true;
        let pause = true;
        overloaded = false;
        switch (err.code) {
          case grpc.status.INVALID_ARGUMENT:
            throw new InvalidArgumentError(details(err));
          case grpc.status.RESOURCE_EXHAUSTED:
            if (kind === 'no-space') throw new NoSpaceError(`${target}: ${details(err)}`, mayHaveApplied);
            if (kind !== 'overloaded') {
              throw new InvalidArgumentError(`request too large for the server (values are limited to 1 MiB): ${details(err)}`);
            }
            // A follower too busy forwarding names the leader: go there, at once.
            if (hint !== '' && hint !== target && checkAddress(hint).ok && hops < MAX_HINT_HOPS && !this.endpoints.isSuspect(hint)) {
              this.setLeader(hint);
              hops++;
              pause = false;
              break;
            }
            // The right node, too busy: stay with it, and wait longer than for an election.
            overloaded = true;
            backoff = Math.max(backoff, OVERLOAD_BACKOFF_MIN_MS);
            break;
          case grpc.status.FAILED_PRECONDITION:
            if (kind === 'session-expired') {
              if (!hooks.renewSession || renewals >= MAX_SESSION_RENEWALS) {
                throw new UnexpectedServerError(`${target}: ${err.details}`, err.code);
              }
              renewals++;
              hooks.renewSession();
              pause = false;
              break;
            }
            if (hint !== '' && hint !== target && checkAddress(hint).ok && hops < MAX_HINT_HOPS && (hooks.leaderOnly || !this.endpoints.isSuspect(hint))) {
              this.setLeader(hint);
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
            // No refusal from a node that answered (those carry a reason: no-leader, shutting-down, starting,
            // outcome-unknown): it did not answer, and is avoided for a while, unless it answered other
            // calls of ours meanwhile: then it is busy, not gone (an overload queues calls past their
            // deadline), and avoiding it would send every call of this client through a follower,
            // adding a hop and the follower's work to each, for SUSPECT_MS.
            const answeredMeanwhile = (this.heard.get(target) ?? 0) > sent;
            if (kind === '' && answeredMeanwhile && err.code === grpc.status.DEADLINE_EXCEEDED && !(err as { silent?: boolean }).silent) {
              // Out of time: too busy, not gone. Stay with it.
              overloaded = true;
              break;
            }
            if (kind === '' && !answeredMeanwhile) {
              this.endpoints.suspect(target);
              this.onEvent('endpoint-failed');
            }
            this.forget(target);
            this.noteConnectFailure(target, err);
            break;
          default:
            throw new UnexpectedServerError(
              `${target}: ${describeFailure(err)}` +
                (err.code === grpc.status.UNIMPLEMENTED
                  ? ` (is ${target} a node's client address, of a raftkv version that has ${method}? A peer port answers client calls this way)`
                  : ''),
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
        (nothing
          ? this.tlsHint !== undefined
            ? ` (no endpoint ever answered: ${this.tlsHint})`
            : ' (no endpoint ever answered: is the cluster up, and are these its client addresses?)'
          : '') +
        (everUnsure ? '. The outcome is unknown: the change may yet take effect (see the members)' : ''),
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
    const tls = tlsProblem(err, this.tlsOn);
    if (tls) this.tlsHint = tls.hint;
    // A failed TLS handshake is a misconfiguration, like a wrong address: said at once, not retried until the deadline.
    if (this.answered || !(isWrongPlace(err) || tls?.definite)) return;
    const seen = this.connectFailures.get(target);
    this.connectFailures.set(target, { count: (seen?.count ?? 0) + 1, why: details(err) + (tls ? ` (${tls.hint})` : '') });
    const all = this.endpoints.list.map((e) => [e, this.connectFailures.get(e)] as const);
    if (all.some(([, f]) => (f?.count ?? 0) < 2)) return;
    throw new ClusterUnavailableError(
      tls
        ? `cannot connect over TLS: ${all.map(([e, f]) => `${e}: ${f!.why}`).join('; ')}`
        : `no endpoint is a raftkv node (${all.map(([e, f]) => `${e}: ${f!.why}`).join('; ')}): check the endpoints (the nodes' client addresses)`,
      all.length * 2,
      { cause: err },
    );
  }

  /**
   * Whether an earlier attempt took effect, by `settle`: `{ result }` if it did, undefined if it
   * did not, 'unknown' if the deadline passed before the cluster said. `pauseMs` first lets a
   * change in the log be applied.
   */
  private async settle<Res>(
    settle: (deadline: number) => Promise<Res | undefined>,
    deadline: number,
    pauseMs = 0,
  ): Promise<{ result: Res } | undefined | 'unknown'> {
    if (pauseMs > 0 && Date.now() + pauseMs < deadline) await sleep(pauseMs);
    try {
      const result = await settle(deadline);
      return result === undefined ? undefined : { result };
    } catch (e) {
      if (e instanceof ClusterUnavailableError) return 'unknown';
      throw e;
    }
  }

  private noteAnswered(): void {
    if (this.answered) return;
    this.answered = true;
    this.onEvent('answered');
  }

  /**
   * Calls go to `endpoint` next; `named` is the leader as the cluster names it: the same, or the
   * leader a forwarding follower named (a client served through a follower sees the leader move
   * only so).
   */
  private setLeader(endpoint: string, named = endpoint): void {
    this.leader = endpoint;
    if (this.lastLeader !== undefined && this.lastLeader !== named) this.onEvent('leader-changed');
    this.lastLeader = named;
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
    return new Promise<Res>((resolve, reject) => {
      let watchdog: NodeJS.Timeout | undefined;
      let since = Date.now();
      let silent = false;
      let settled = false;
      const done: Done = (err, res, leaderAddr) => {
        settled = true;
        this.active.delete(call);
        if (watchdog) clearTimeout(watchdog);
        if (!err || err.metadata?.get(MD_ERROR).length) this.heard.set(target, Date.now());
        if (trailer) trailer.leader = leaderAddr ?? '';
        if (silent && err?.code === grpc.status.CANCELLED) {
          reject(Object.assign(new Error('silent'), { code: grpc.status.DEADLINE_EXCEEDED, details: `no answer from ${target} for ${silenceMs} ms`, metadata: new grpc.Metadata(), silent: true }));
        } else if (err) reject(err);
        else resolve(res as Res);
      };
      const mux = this.streams && method in STREAM_FIELDS ? this.muxFor(target) : undefined;
      const call = mux ? mux.call(method as StreamMethod, request, deadline, done) : this.unary(target, method, request, deadline, done);
      if (!settled) this.active.add(call);
      if (silenceMs === undefined || Date.now() + silenceMs >= deadline) return;
      const check = (): void => {
        if (settled) return;
        if ((this.heard.get(target) ?? 0) <= since) {
          silent = true;
          call.cancel();
        } else if (Date.now() + silenceMs < deadline) {
          since = Date.now();
          watchdog = setTimeout(() => setImmediate(check), silenceMs);
        } // else the deadline ends the call
      };
      // Looked at after the I/O that is ready (setImmediate): a timer that fires after this
      // process was busy runs before the answers that arrived meanwhile are read, and would take
      // a node that answered for a silent one.
      watchdog = setTimeout(() => setImmediate(check), silenceMs);
    });
  }

  /** A unary call; `done` hears its outcome and the leader a forwarding follower named (its trailer). */
  private unary(target: string, method: Method, request: object, deadline: number, done: Done): { cancel(): void } {
    const client = this.clientFor(target);
    const fn = (client as unknown as Record<Method, UnaryFn>)[method];
    let outcome: { err: grpc.ServiceError | null; res?: unknown } = { err: null };
    const call = fn.call(client, request, new grpc.Metadata(), { deadline }, (err, res) => (outcome = { err, res }));
    // 'status' follows the callback at once, with the trailers.
    call.on('status', (st: grpc.StatusObject) => done(outcome.err, outcome.res, String(st.metadata.get(MD_LEADER)[0] ?? '')));
    return call;
  }

  /** The Calls stream to `address`, made on first use. */
  private muxFor(address: string): CallMux {
    let m = this.muxes.get(address);
    if (m === undefined) {
      const client = this.clientFor(address) as unknown as { Calls(md: grpc.Metadata): CallsStream };
      m = new CallMux(
        () => client.Calls(new grpc.Metadata()),
        (method, request, deadline, done) => this.unary(address, method, request, deadline, done),
        // A frame says the node is alive, even one that answers nothing yet (a deep queue).
        () => this.heard.set(address, Date.now()),
      );
      this.muxes.set(address, m);
    }
    return m;
  }

  private clientFor(address: string): grpc.Client {
    this.checkOpen();
    let c = this.clients.get(address);
    if (c === undefined) {
      const Kv = loadKvProto().Kv;
      c = new Kv(address, this.credentials, this.channelOptions);
      this.clients.set(address, c);
    }
    return c;
  }
}
