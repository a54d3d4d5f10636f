import type { CasResponse, DeleteResponse, GetResponse, SnapshotResponse, StatusResponse } from '../kv-api.js';
import { parseEndpoints } from './address.js';
import { backupToFile, type BackupOptions, type BackupResult } from './backup.js';
import { EndpointRefresh } from './endpoint-refresh.js';
import { InvalidArgumentError } from './errors.js';
import { MemberCalls, type AddMemberOptions, type LeaderTransfer, type Membership, type MembershipChange } from './membership.js';
import { Router, type EndpointResult, type Method, type RouterTls } from './router.js';
import { Session, type Ticket } from './session.js';

/** Keys and values: strings are sent as UTF-8. */
export type Bytes = string | Uint8Array;

/** How a Get is read. */
export interface ReadOptions {
  /**
   * Answered by whichever node the client reaches, from what that node has applied, without the
   * leader (etcd's serializable reads): faster, and served without a leader, but possibly stale,
   * missing writes already acknowledged. Default false: linearizable.
   */
  serializable?: boolean;
}

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
  /**
   * How data calls (get, put, append, delete, compareAndSwap) travel: on one long-lived stream
   * per node, many at once, batched (kv.proto's Calls; the default, and cheaper per call on both
   * ends), or as one unary gRPC call each ('unary'). A node that does not serve the stream (an
   * older version) gets unary calls either way.
   */
  transport?: 'stream' | 'unary';
  /**
   * The client learns the other members' client addresses from the cluster (so that one live
   * endpoint is enough) and drops removed members': when it first hears from the cluster, when the
   * leader moves and when an endpoint fails, at most once per this many ms (default 5000). 0: never;
   * the configured endpoints are all it uses.
   */
  endpointRefreshMs?: number;
  /**
   * TLS to the nodes' client ports (default: plaintext). `ca`: the CA that signed the nodes'
   * certificates (PEM; default: the system's CAs); `cert` and `key`: this client's certificate
   * and key (PEM), for a cluster started with --client-cert-auth; `serverName`: the name to check
   * the nodes' certificates against, if not the endpoints' host.
   */
  tls?: ClientTls;
}

export interface ClientTls {
  ca?: Bytes;
  cert?: Bytes;
  key?: Bytes;
  serverName?: string;
}

/** One node's view, as its Status answer gives it (leaderId 0 and leaderAddr '' when unknown). */
export type NodeStatus = StatusResponse;

export type EndpointStatus =
  | { endpoint: string; ok: true; status: NodeStatus }
  | { endpoint: string; ok: false; error: string };

export type { EndpointResult };
export type { BackupOptions, BackupResult } from './backup.js';
export type { AddMemberOptions, LeaderTransfer, Member, Membership, MembershipChange } from './membership.js';

/** What a node's snapshot covers: every entry up to and including (index, term). */
export type SnapshotInfo = SnapshotResponse;

export { parseEndpoints };

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_MAX_INFLIGHT = 1024;
const DEFAULT_ENDPOINT_REFRESH_MS = 5000;

function toBytes(what: string, v: Bytes): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new InvalidArgumentError(`${what} must be a string or a Uint8Array, got ${typeof v}`);
}

/** The `tls` option, checked: PEM as bytes, a certificate with its key. */
function checkTls(tls: ClientTls | undefined): RouterTls | undefined {
  if (tls === undefined) return undefined;
  if (tls === null || typeof tls !== 'object') throw new InvalidArgumentError('tls must be an object: { ca?, cert?, key?, serverName? }');
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new InvalidArgumentError('tls: give cert and key together');
  if (tls.serverName !== undefined && (typeof tls.serverName !== 'string' || tls.serverName === '')) {
    throw new InvalidArgumentError('tls.serverName must be a non-empty string');
  }
  return {
    ...(tls.ca !== undefined ? { ca: toBytes('tls.ca', tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: toBytes('tls.cert', tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: toBytes('tls.key', tls.key) } : {}),
    ...(tls.serverName !== undefined ? { serverName: tls.serverName } : {}),
  };
}

function keyBytes(key: Bytes): Buffer {
  const k = toBytes('key', key);
  if (k.length === 0) throw new InvalidArgumentError('key must not be empty');
  return k;
}

/**
 * A client of a raftkv cluster. Finds the leader (following the servers' hints), retries on
 * leader changes and unreachable nodes with the same session and sequence number (so a write is
 * applied once however often it is sent), and gives up after the call's deadline with
 * ClusterUnavailableError. Safe for concurrent calls. Close it when done.
 */
export class KvClient {
  readonly timeoutMs: number;
  readonly maxInflight: number;
  private readonly router: Router;
  private readonly memberCalls: MemberCalls;
  private session = new Session();

  constructor(options: KvClientOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('KvClient needs options: { endpoints }');
    const endpoints = parseEndpoints(options.endpoints);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(Number.isFinite(this.timeoutMs) && this.timeoutMs > 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a positive number, got ${String(options.timeoutMs)}`);
    }
    const attemptTimeoutMs = options.attemptTimeoutMs;
    if (attemptTimeoutMs !== undefined && !(Number.isFinite(attemptTimeoutMs) && attemptTimeoutMs > 0)) {
      throw new InvalidArgumentError(`attemptTimeoutMs must be a positive number, got ${String(options.attemptTimeoutMs)}`);
    }
    this.maxInflight = options.maxInflight ?? DEFAULT_MAX_INFLIGHT;
    if (!(Number.isSafeInteger(this.maxInflight) && this.maxInflight > 0)) {
      throw new InvalidArgumentError(`maxInflight must be a positive integer, got ${String(options.maxInflight)}`);
    }
    const refreshMs = options.endpointRefreshMs ?? DEFAULT_ENDPOINT_REFRESH_MS;
    if (!(Number.isFinite(refreshMs) && refreshMs >= 0)) {
      throw new InvalidArgumentError(`endpointRefreshMs must be a number from 0, got ${String(options.endpointRefreshMs)}`);
    }
    const tls = checkTls(options.tls);
    if (options.transport !== undefined && options.transport !== 'stream' && options.transport !== 'unary') {
      throw new InvalidArgumentError(`transport must be 'stream' or 'unary', got ${String(options.transport)}`);
    }
    const streams = options.transport !== 'unary';
    this.router = new Router({ endpoints, timeoutMs: this.timeoutMs, attemptTimeoutMs, maxInflight: this.maxInflight, streams, ...(tls ? { tls } : {}) });
    const refresh = new EndpointRefresh(this.router, refreshMs);
    this.memberCalls = new MemberCalls(this.router, (members) => refresh.learned(members));
  }

  /** The client addresses this client sends to: the configured ones, and those learned from the membership (endpointRefreshMs). */
  get endpoints(): readonly string[] {
    return this.router.endpoints.list;
  }

  /** The value of `key` as UTF-8 text, or undefined if there is none. */
  async get(key: Bytes, options: ReadOptions = {}): Promise<string | undefined> {
    const v = await this.getBytes(key, options);
    return v?.toString('utf8');
  }

  /** The value of `key` as bytes, or undefined if there is none. */
  async getBytes(key: Bytes, options: ReadOptions = {}): Promise<Buffer | undefined> {
    const k = keyBytes(key);
    const serializable = options.serializable === true;
    const res = await this.router.call<GetResponse>('Get', () => ({ key: k, serializable }), serializable ? { anyNode: true } : undefined);
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
    const rows = await this.router.everyEndpoint<StatusResponse>('Status', 2000);
    return rows.map((r) => (r.ok ? { endpoint: r.endpoint, ok: true, status: { ...r.value } } : r));
  }

  /**
   * Asks every configured endpoint (usually one) to snapshot its state and compact its log now;
   * each answers once its snapshot is durable.
   */
  async snapshot(): Promise<EndpointResult<SnapshotResponse>[]> {
    return this.router.everyEndpoint<SnapshotResponse>('Snapshot', 30_000);
  }

  /**
   * Writes a backup of the cluster's whole state to `path`: a snapshot file the leader streams,
   * consistent (it holds every write acknowledged before the call) and checksummed, for
   * `kv-server --restore`. Written to `path`.tmp, checked as it arrives, fsynced and only then
   * renamed to `path`; refuses to replace an existing file unless `overwrite`. Resolves with what
   * the file holds (index, term, keys, configuration, the cluster it came from) and its size.
   * Fails with BackupError (a local file problem; a stream that is not sound after every attempt;
   * a state over the 1 GiB backup limit), or ClusterUnavailableError when no leader streamed one
   * and nothing progressed for `timeoutMs` (default: the client's).
   */
  async backup(path: string, options: BackupOptions = {}): Promise<BackupResult> {
    return this.router.withTurn(() => backupToFile(this.router, path, options));
  }

  /**
   * The cluster's members, from the leader if it answers (then each member's matchIndex and
   * active are the leader's view), else from any node (they are 0 and false).
   */
  async members(): Promise<Membership> {
    return this.memberCalls.members();
  }

  /**
   * Adds node `id` (never used before in this cluster) with its peer and client addresses, as a
   * voter, or as a learner (`learner: true`) to be promoted once it has caught up. Resolves once
   * the leader has applied the change; start the node with `kv-server --join` (kv-cli member add
   * prints the command).
   *
   * The membership changes, unlike writes, carry no session: the cluster cannot tell a change sent
   * again from a new one. So after an attempt whose outcome is unknown (no answer within the
   * attempt's deadline, a dropped connection, a leader that lost its leadership: it answers
   * UNAVAILABLE with `raftkv-error: outcome-unknown`, and is not taken for unreachable), the client
   * looks at the configuration before it sends the change again, and compares it with the one it
   * read when the call started: an add is done if `id` is now a member with these addresses and
   * this role, a promotion if `id` is now a voter, a removal if `id` is no longer a member. A change
   * so found in force resolves with index 0 (its log index is not known). A change in force before
   * the call started is sent all the same, and refused: the call means the same whichever node it
   * first reaches.
   *
   * A change the leader refuses (one pending already, an unknown node, a removal that would leave
   * no live quorum, a learner far behind, ...) fails with MembershipRefusedError and the server's
   * reason, and is not retried. If no leader answers before the deadline: ClusterUnavailableError,
   * and after an unknown outcome the change may still take effect (members() tells).
   */
  async addMember(id: number, peerAddr: string, options: AddMemberOptions): Promise<MembershipChange> {
    return this.memberCalls.add(id, peerAddr, options);
  }

  /** Makes learner `id` a voter; refused (MembershipRefusedError) while it is far behind. Retries as addMember. */
  async promoteMember(id: number): Promise<MembershipChange> {
    return this.memberCalls.promote(id);
  }

  /**
   * Removes member `id` (its id is never used again). Refused (MembershipRefusedError) when the
   * voters left would have no live quorum, unless `force`. A leader that removes itself hands over
   * leadership once the change commits. Retries as addMember.
   */
  async removeMember(id: number, options: { force?: boolean } = {}): Promise<MembershipChange> {
    return this.memberCalls.remove(id, options?.force === true);
  }

  /**
   * Hands leadership to voter `id`, or, without one, to the voter the leader finds most up to
   * date; resolves once it leads. After an attempt whose outcome is unknown it is not asked again
   * if `id` now leads (without `id`: any other node than the one that led when the call started).
   * Refused (MembershipRefusedError) for a node that is not a voter.
   */
  async transferLeader(id = 0): Promise<LeaderTransfer> {
    return this.memberCalls.transfer(id);
  }

  /** Closes every connection; calls in progress and later calls fail with ClientClosedError. */
  close(): void {
    this.router.close();
  }

  // -------------------------------------------------------------------------------------------

  private async write<Res>(method: Method, build: (session: object) => object): Promise<Res> {
    this.router.checkOpen();
    let ticket: Ticket = { session: this.session, seq: this.session.begin() };
    const session = (): object => ({
      clientId: ticket.session.clientId,
      seq: ticket.seq,
      firstIncomplete: ticket.session.firstIncomplete(),
    });
    try {
      const res = await this.router.call<Res>(method, () => build(session()), {
        renewSession: () => {
          // The cluster forgot our session (idle beyond its TTL): this request was not applied, so
          // it is safe to send it again under a new session.
          if (this.session === ticket.session) this.session = new Session();
          ticket.session.end(ticket.seq);
          ticket = { session: this.session, seq: this.session.begin() };
        },
      });
      ticket.session.established = true;
      return res;
    } finally {
      ticket.session.end(ticket.seq);
    }
  }
}
