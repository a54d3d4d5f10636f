import * as grpc from '@grpc/grpc-js';
import type { RaftStatus } from '../raft/core/raft.js';
import type { NodeId, SnapshotMeta } from '../raft/core/types.js';
import type { WriteOp } from './command.js';
import type { KvError, KvStore, WriteRequest } from './kv-store.js';
import {
  DEFAULT_LIMITS,
  loadKvProto,
  maxMessageBytes,
  MD_ERROR,
  MD_LEADER,
  type CasResponse,
  type DeleteResponse,
  type GetRequestIn,
  type GetResponse,
  type KvLimits,
  type SnapshotResponse,
  type StatusResponse,
  type WriteRequestIn,
} from '../kv-api.js';
import type { WriteResult } from './state-machine.js';

// ---------------------------------------------------------------------------------------------
// The service.

export interface KvServiceOptions {
  store: KvStore;
  /** This node's Raft view, for Status (RaftNode). */
  raft: { status(): RaftStatus };
  /** Takes snapshots on demand (the Snapshot call); without it, Snapshot is UNIMPLEMENTED. */
  snapshotter?: { take(): Promise<SnapshotMeta>; readonly index: number };
  nodeId: NodeId;
  clusterId: string;
  /**
   * Client addresses (`host:port`) of the nodes, this one included if known, for leader hints.
   * A node missing here gets no hint: clients then try their other endpoints.
   */
  clientAddrs: ReadonlyMap<NodeId, string>;
  limits?: KvLimits;
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;

export interface KvHandlers extends grpc.UntypedServiceImplementation {
  Get: Unary<GetRequestIn, GetResponse>;
  Put: Unary<WriteRequestIn, object>;
  Append: Unary<WriteRequestIn, object>;
  Delete: Unary<WriteRequestIn, DeleteResponse>;
  CompareAndSwap: Unary<WriteRequestIn, CasResponse>;
  Status: Unary<object, StatusResponse>;
  Snapshot: Unary<object, SnapshotResponse>;
}

/** The gRPC Kv service over a KvStore; add it to a grpc.Server with `loadKvProto().Kv.service`. */
export function kvServiceHandlers(opts: KvServiceOptions): KvHandlers {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const store = opts.store;

  const leaderAddr = (leaderId: NodeId): string => (leaderId === 0 ? '' : opts.clientAddrs.get(leaderId) ?? '');

  const toStatus = (err: KvError): Partial<grpc.StatusObject> => {
    const metadata = new grpc.Metadata();
    switch (err.code) {
      case 'notLeader': {
        if (err.leaderId === 0) {
          metadata.set(MD_ERROR, 'no-leader');
          return {
            code: grpc.status.UNAVAILABLE,
            details: `node ${opts.nodeId} is not the leader and knows of no leader (election in progress?)`,
            metadata,
          };
        }
        metadata.set(MD_ERROR, 'not-leader');
        const addr = leaderAddr(err.leaderId);
        if (addr !== '') metadata.set(MD_LEADER, addr);
        return {
          code: grpc.status.FAILED_PRECONDITION,
          details: `node ${opts.nodeId} is not the leader; the leader is node ${err.leaderId}${addr ? ` at ${addr}` : ''}`,
          metadata,
        };
      }
      case 'invalidArgument':
        return { code: grpc.status.INVALID_ARGUMENT, details: err.message, metadata };
      case 'sessionExpired':
        metadata.set(MD_ERROR, 'session-expired');
        return {
          code: grpc.status.FAILED_PRECONDITION,
          details:
            'client session expired or unknown: the cluster no longer remembers this client id, so the ' +
            'request was not applied. Start a new session (new client id, seq from 1) and retry.',
          metadata,
        };
      case 'shuttingDown':
        metadata.set(MD_ERROR, 'shutting-down');
        return { code: grpc.status.UNAVAILABLE, details: `node ${opts.nodeId} is shutting down`, metadata };
    }
  };

  const invalid = (details: string): Partial<grpc.StatusObject> => ({
    code: grpc.status.INVALID_ARGUMENT,
    details,
    metadata: new grpc.Metadata(),
  });

  /** Checks the session of a write and turns the request into a KvStore WriteRequest. */
  const writeRequest = (op: WriteOp, req: WriteRequestIn): WriteRequest | string => {
    const s = req.session;
    if (s === null || s === undefined) return 'session is required on writes (client_id, seq, first_incomplete)';
    const w: WriteRequest = { op, clientId: s.clientId, seq: s.seq, firstIncomplete: s.firstIncomplete, key: req.key };
    if (op !== 'delete') w.value = req.value;
    if (op === 'cas') w.expected = req.expected;
    return w;
  };

  const write = <Res>(op: WriteOp, answer: (r: WriteResult) => Res): Unary<WriteRequestIn, Res> => {
    return (call, callback) => {
      const w = writeRequest(op, call.request);
      if (typeof w === 'string') return callback(invalid(w));
      store.write(w, (outcome) => {
        if (outcome.ok) callback(null, answer(outcome.value));
        else callback(toStatus(outcome.error));
      });
    };
  };

  return {
    Get: (call, callback) => {
      store.read(call.request.key, (outcome) => {
        if (!outcome.ok) return callback(toStatus(outcome.error));
        const v = outcome.value;
        callback(null, v === undefined ? { found: false, value: Buffer.alloc(0) } : { found: true, value: asBuffer(v) });
      });
    },
    Put: write('put', () => ({})),
    Append: write('append', () => ({})),
    Delete: write('delete', (r) => ({ existed: r.kind === 'deleted' && r.existed })),
    CompareAndSwap: write('cas', (r) => ({ swapped: r.kind === 'cas' && r.swapped })),
    Status: (_call, callback) => {
      const s = opts.raft.status();
      callback(null, {
        nodeId: opts.nodeId,
        role: s.role,
        term: s.term,
        leaderId: s.leaderId,
        leaderAddr: leaderAddr(s.leaderId),
        commitIndex: s.commit,
        appliedIndex: store.appliedIndex,
        lastLogIndex: s.lastIndex,
        clusterId: opts.clusterId,
        snapshotIndex: opts.snapshotter?.index ?? 0,
      });
    },
    Snapshot: (_call, callback) => {
      const snapshotter = opts.snapshotter;
      if (!snapshotter) return callback({ code: grpc.status.UNIMPLEMENTED, details: 'this server takes no snapshots' });
      snapshotter.take().then(
        (meta) => callback(null, { index: meta.index, term: meta.term }),
        (e: unknown) => callback({ code: grpc.status.INTERNAL, details: `snapshot failed: ${(e as Error).message}` }),
      );
    },
  };
}

/** grpc.Server options for the client API: explicit message limits (value limit plus headroom). */
export function kvServerOptions(limits: KvLimits = DEFAULT_LIMITS): grpc.ServerOptions {
  const max = maxMessageBytes(limits);
  return {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // Tolerate clients that ping idle channels rather than answering with GOAWAY.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  };
}

function asBuffer(v: Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}
