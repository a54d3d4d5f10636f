import type { DataField } from '../data-methods.js';
import type { NodeId, SnapshotMeta } from '../raft/core/types.js';
import type { ReplicatedLog } from '../raft/replicated-log.js';
import type {
  CasResponse,
  DeleteResponse,
  GetRequestIn,
  GetResponse,
  LeaderTransferRequestIn,
  LeaderTransferResponse,
  MemberAddRequestIn,
  MemberChangeResponse,
  MemberListResponse,
  MemberPromoteRequestIn,
  MemberRemoveRequestIn,
  SnapshotResponse,
  StatusResponse,
  Load,
  WriteRequestIn,
} from '../kv-api.js';
import type { Slicer } from '../clock.js';
import type { ConfState } from '../raft/core/conf.js';
import { streamBackup, type BackupSink } from './backup.js';
import type { WriteOp } from './command.js';
import type { KvError, KvStore, WriteRequest } from './kv-store.js';
import type { AddressBook, MemberAddress } from './members.js';
import { Membership, type MembershipRaft } from './membership.js';
import type { WriteResult } from './state-machine.js';

/** gRPC status names the service answers with; the transport maps them to its codes. */
export type ServiceCode = 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'UNAVAILABLE' | 'RESOURCE_EXHAUSTED' | 'INTERNAL' | 'UNIMPLEMENTED';

/** A refusal, as the client sees it. */
export interface ServiceError {
  code: ServiceCode;
  details: string;
  /** Tells apart refusals that share a code (the `raftkv-error` trailer). */
  reason?: 'not-leader' | 'no-leader' | 'session-expired' | 'shutting-down' | 'starting' | 'overloaded' | 'no-space' | 'conf-refused' | 'outcome-unknown';
  /** On not-leader: the leader's client address, when known (the `raftkv-leader` trailer). */
  leaderAddr?: string;
}

/** The answer to a call; a follower that served it by forwarding names the leader's client address. */
export type Reply<T> = (error: ServiceError | null, response?: T, leaderAddr?: string) => void;

/** The calls a follower forwards to its leader: the data path (Status and Snapshot are about the node itself). */
export type ForwardedMethod = DataField;
export interface ForwardedCall {
  method: ForwardedMethod;
  request: GetRequestIn | WriteRequestIn;
  /** When the caller gives up, in ms since the epoch, if it said: travels with the call wherever it goes. */
  deadline?: number;
}
type WriteCall = ForwardedCall & { method: Exclude<ForwardedMethod, 'get'>; request: WriteRequestIn };

/** How a call got here: from a follower (never forwarded again); after waiting out a hand-over (never waits again). */
interface Route {
  forwarded: boolean;
  waited: boolean;
}
const DIRECT: Route = { forwarded: false, waited: false };
const FORWARDED: Route = { forwarded: true, waited: false };
export type ForwardedReply = { ok: true; response: object } | { ok: false; error: ServiceError };

export interface KvServiceOptions {
  store: KvStore;
  /** This node's Raft: writes, reads and membership changes go through it. */
  raft: ReplicatedLog &
    MembershipRaft & {
      snapshot(): Promise<SnapshotMeta>;
      /** Resolves once a leader is known and hands nothing over, or the node stops, or after `timeoutMs`. */
      awaitLeader(timeoutMs: number): Promise<void>;
    };
  /** The latest snapshot's index, for Status. */
  snapshotIndex: () => number;
  nodeId: NodeId;
  clusterId: string;
  /**
   * Where the members are: their client addresses for leader hints (a node whose address is not
   * known gets no hint: clients then try their other endpoints), and the table a change extends.
   */
  book: AddressBook;
  /** How long LeaderTransfer waits for another node to take over: about two election timeouts. */
  transferTimeoutMs: number;
  /** Checks a new member's addresses (see MembershipOptions.probe). */
  probe?: (member: MemberAddress) => Promise<string | undefined>;
  /**
   * Sends a call to the leader over the peer connection, so that a client that reaches only this
   * node is still served. Without it, a follower answers "not leader" with a hint.
   */
  forward?: (leader: NodeId, call: ForwardedCall) => Promise<ForwardedReply>;
  /** This node's client load (kv.proto's Load) for Status; without it, Status reports none. */
  load?: () => Load;
  /** What Backup needs beyond the store: the configuration as of an applied index, and time slices to encode in. Without it, Backup is UNIMPLEMENTED. */
  backup?: { confAt(index: number): ConfState; slicer(): Slicer; maxBytes?: number };
}

/**
 * The client API of proto/kv.proto, apart from any transport: requests as decoded from the wire
 * in, responses or refusals out. kv-server serves it over gRPC (kv-grpc.ts); the simulator's
 * clients call it directly, so both run the same code down to the wire.
 */
export class KvService {
  /** Calls forwarded to the leader and not yet answered: capped like the store's own work. */
  private forwarding = 0;
  /** Backups being streamed: each holds a capture of the whole state until it is done. */
  private backups = 0;
  private readonly members: Membership;

  constructor(private readonly opts: KvServiceOptions) {
    this.members = new Membership({
      raft: opts.raft,
      book: opts.book,
      nodeId: opts.nodeId,
      clusterId: opts.clusterId,
      transferTimeoutMs: opts.transferTimeoutMs,
      probe: opts.probe,
      notLeader: (leaderId) => this.refusal({ code: 'notLeader', leaderId }),
    });
  }

  get(req: GetRequestIn, reply: Reply<GetResponse>): void {
    if (req.serializable) return this.localRead(req, reply);
    this.read({ method: 'get', request: req }, reply as Reply<object>, DIRECT);
  }

  // Writes: `deadline` is when the caller gives up (ms since the epoch), if it said (gRPC's deadline).

  put(request: WriteRequestIn, reply: Reply<object>, deadline?: number): void {
    this.write({ method: 'put', request, deadline }, reply, DIRECT);
  }

  append(request: WriteRequestIn, reply: Reply<object>, deadline?: number): void {
    this.write({ method: 'append', request, deadline }, reply, DIRECT);
  }

  delete(request: WriteRequestIn, reply: Reply<DeleteResponse>, deadline?: number): void {
    this.write({ method: 'delete', request, deadline }, reply as Reply<object>, DIRECT);
  }

  compareAndSwap(request: WriteRequestIn, reply: Reply<CasResponse>, deadline?: number): void {
    this.write({ method: 'compareAndSwap', request, deadline }, reply as Reply<object>, DIRECT);
  }

  /** A call a follower forwarded here. Served only if this node leads: a forwarded call is never forwarded again. */
  serveForwarded(call: ForwardedCall): Promise<ForwardedReply> {
    return new Promise((resolve) => {
      const reply: Reply<object> = (error, response) => resolve(error ? { ok: false, error } : { ok: true, response: response! });
      this.serve(call, reply, FORWARDED);
    });
  }

  status(_req: object, reply: Reply<StatusResponse>): void {
    reply(null, this.statusNow());
  }

  /** This node's Status, as the Status call answers it (also to peers, for the status page). */
  statusNow(): StatusResponse {
    const s = this.opts.raft.status();
    return {
      nodeId: this.opts.nodeId,
      role: s.role,
      term: s.term,
      leaderId: s.leaderId,
      leaderAddr: this.leaderAddr(s.leaderId),
      commitIndex: s.commit,
      appliedIndex: this.opts.store.appliedIndex,
      lastLogIndex: s.lastIndex,
      clusterId: this.opts.clusterId,
      snapshotIndex: this.opts.snapshotIndex(),
      load: this.opts.load?.() ?? null,
      quotaBytes: this.opts.store.quotaBytes,
      quotaUsedBytes: this.opts.store.stateBytes(),
    };
  }

  /** Snapshots this node's state now and compacts its log; answers once the snapshot is durable. */
  snapshot(_req: object, reply: Reply<SnapshotResponse>): void {
    this.opts.raft.snapshot().then(
      (meta) => reply(null, { index: meta.index, term: meta.term }),
      (e: unknown) => reply({ code: 'INTERNAL', details: `snapshot failed: ${(e as Error).message}` }),
    );
  }

  /**
   * Streams a consistent backup of the whole state to `sink` (backup.ts), then `done(null)`; or
   * `done(refusal)`. The leader's only: other nodes refuse it with the leader hint (a stream does
   * not go through the peer connection's forwarding), and the client follows the hint.
   */
  backup(_req: object, sink: BackupSink, done: (error: ServiceError | null) => void): void {
    const b = this.opts.backup;
    if (!b) return done({ code: 'UNIMPLEMENTED', details: `node ${this.opts.nodeId} does not serve backups` });
    if (this.backups >= MAX_BACKUPS) {
      return done(this.refusal({ code: 'overloaded', message: `${this.backups} backups are being streamed (the limit is ${MAX_BACKUPS})` }));
    }
    this.backups++;
    const { store, raft, nodeId, clusterId, book } = this.opts;
    streamBackup({ store, log: raft, ids: { clusterId, nodeId }, confAt: (i) => b.confAt(i), table: () => book.table, slicer: () => b.slicer(), maxBytes: b.maxBytes }, sink)
      .finally(() => this.backups--)
      .then(
        (r) => {
          if (r.ok) done(null);
          else if ('error' in r) done(this.refusal(r.error));
          else done({ code: 'RESOURCE_EXHAUSTED', details: `backup refused: ${r.tooLarge}` });
        },
        (e: unknown) => done({ code: 'INTERNAL', details: `backup failed: ${(e as Error).message}` }),
      );
  }

  // Membership (membership.ts): the list from any node, the changes and transfers on the leader only.

  memberList(req: object, reply: Reply<MemberListResponse>): void {
    this.members.list(req, reply);
  }

  memberAdd(req: MemberAddRequestIn, reply: Reply<MemberChangeResponse>): void {
    this.members.add(req, reply);
  }

  memberPromote(req: MemberPromoteRequestIn, reply: Reply<MemberChangeResponse>): void {
    this.members.promote(req, reply);
  }

  memberRemove(req: MemberRemoveRequestIn, reply: Reply<MemberChangeResponse>): void {
    this.members.remove(req, reply);
  }

  leaderTransfer(req: LeaderTransferRequestIn, reply: Reply<LeaderTransferResponse>): void {
    this.members.transfer(req, reply);
  }

  /** A serializable Get: this node's applied state, never forwarded. */
  private localRead(req: GetRequestIn, reply: Reply<GetResponse>): void {
    this.opts.store.localRead(req.key, (outcome) => {
      if (!outcome.ok) return reply(this.refusal(outcome.error));
      reply(null, found(outcome.value));
    });
  }

  private serve(call: ForwardedCall, reply: Reply<object>, route: Route): void {
    if (call.method === 'get') this.read(call, reply, route);
    else this.write(call as WriteCall, reply, route);
  }

  private read(call: ForwardedCall, reply: Reply<object>, route: Route): void {
    this.opts.store.read(this.opts.raft, (call.request as GetRequestIn).key, (outcome) => {
      if (!outcome.ok) return this.refuse(call, outcome.error, reply, route);
      reply(null, found(outcome.value));
    });
  }

  private write(call: WriteCall, reply: Reply<object>, route: Route): void {
    const req = call.request;
    const s = req.session;
    if (s === null || s === undefined) {
      return reply({ code: 'INVALID_ARGUMENT', details: 'session is required on writes (client_id, seq, first_incomplete)' });
    }
    const op = OPS[call.method];
    const w: WriteRequest = { op, clientId: s.clientId, seq: s.seq, firstIncomplete: s.firstIncomplete, key: req.key };
    if (op !== 'delete') w.value = req.value;
    if (op === 'cas') w.expected = req.expected;
    if (call.deadline !== undefined) w.deadline = call.deadline;
    this.opts.store.write(this.opts.raft, w, (outcome) => {
      if (outcome.ok) reply(null, answer(outcome.value));
      else this.refuse(call, outcome.error, reply, route);
    });
  }

  /**
   * A call this node cannot serve. Not leading, with a leader known: forwarded to it (once), so
   * that a client that cannot reach the leader is still served. Otherwise refused.
   */
  private refuse(call: ForwardedCall, err: KvError, reply: Reply<object>, route: Route): void {
    const leader = err.code === 'notLeader' ? err.leaderId : 0;
    if (leader === this.opts.nodeId && !route.waited) {
      // This node leads but takes nothing new: it is handing leadership over (thesis §3.10), which
      // takes a few milliseconds. The call waits for the new leader and goes to it, rather than
      // sending the client off to look for one (its retries back off, and a rolling restart would
      // cost clients more than the transfer). Served here if the transfer is abandoned.
      // The call keeps its deadline: admission still refuses it if its turn would come too late.
      const waited = { ...route, waited: true };
      void this.opts.raft.awaitLeader(HAND_OVER_WAIT_MS).then(() => {
        const now = this.opts.raft.leaderId();
        if (now !== this.opts.nodeId) return this.refuse(call, { code: 'notLeader', leaderId: now }, reply, waited);
        this.serve(call, reply, waited);
      });
      return;
    }
    const forward = this.opts.forward;
    if (!forward || route.forwarded || leader === 0 || leader === this.opts.nodeId) return reply(this.refusal(err));
    if (this.forwarding >= MAX_FORWARDING) {
      // Named, so that the client goes to the leader itself rather than wait here.
      const refusal = this.refusal({ code: 'overloaded', message: `${this.forwarding} calls are being forwarded to the leader (the limit is ${MAX_FORWARDING})` });
      const addr = this.leaderAddr(leader);
      return reply(addr === '' ? refusal : { ...refusal, leaderAddr: addr });
    }
    this.forwarding++;
    forward(leader, call)
      .finally(() => this.forwarding--)
      .then(
        (r) => (r.ok ? reply(null, r.response, this.leaderAddr(leader)) : reply(r.error)),
        (e: unknown) => {
          const refusal = this.refusal(err);
          reply({ ...refusal, details: `${refusal.details} (forwarding to it failed: ${(e as Error).message})` });
        },
      );
  }

  private leaderAddr(leaderId: NodeId): string {
    return leaderId === 0 ? '' : this.opts.book.clientAddr(leaderId);
  }

  private refusal(err: KvError): ServiceError {
    const self = this.opts.nodeId;
    switch (err.code) {
      case 'notLeader': {
        if (err.leaderId === 0) {
          return {
            code: 'UNAVAILABLE',
            reason: 'no-leader',
            details: `node ${self} is not the leader and knows of no leader (election in progress?)`,
          };
        }
        const addr = this.leaderAddr(err.leaderId);
        return {
          code: 'FAILED_PRECONDITION',
          reason: 'not-leader',
          leaderAddr: addr === '' ? undefined : addr,
          details: `node ${self} is not the leader; the leader is node ${err.leaderId}${addr ? ` at ${addr}` : ''}`,
        };
      }
      case 'invalidArgument':
        return { code: 'INVALID_ARGUMENT', details: err.message };
      case 'sessionExpired':
        return {
          code: 'FAILED_PRECONDITION',
          reason: 'session-expired',
          details:
            'client session expired or unknown: the cluster no longer remembers this client id, so the ' +
            'request was not applied. Start a new session (new client id, seq from 1) and retry.',
        };
      case 'shuttingDown':
        return { code: 'UNAVAILABLE', reason: 'shutting-down', details: `node ${self} is shutting down` };
      case 'overloaded':
        return { code: 'RESOURCE_EXHAUSTED', reason: 'overloaded', details: `node ${self} is overloaded: ${err.message}; retry after a pause` };
      case 'noSpace':
        return { code: 'RESOURCE_EXHAUSTED', reason: 'no-space', details: `node ${self}: no space: ${err.message}` };
    }
  }
}

const EMPTY = new Uint8Array(0);
/** How long a call to a leader that is handing leadership over waits for the new one. */
const HAND_OVER_WAIT_MS = 1000;
/** Backups one node streams at once: each holds its own capture of the state (O(keys) memory) until done. */
const MAX_BACKUPS = 2;
/** Calls a follower forwards to the leader at once, at most (as many as the leader takes on). */
const MAX_FORWARDING = 1024;

/** A Get's answer for the value read (undefined: no such key). */
function found(v: Uint8Array | undefined): GetResponse {
  return v === undefined ? { found: false, value: EMPTY } : { found: true, value: v };
}

const OPS: Record<Exclude<ForwardedMethod, 'get'>, WriteOp> = { put: 'put', append: 'append', delete: 'delete', compareAndSwap: 'cas' };

/** A write's response, from what the state machine returned (a retry below the session's window gets an 'ok': false flags). */
function answer(r: WriteResult): object {
  if (r.kind === 'deleted') return { existed: r.existed };
  if (r.kind === 'cas') return { swapped: r.swapped };
  return { existed: false, swapped: false };
}
