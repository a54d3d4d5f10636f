/**
 * The client-facing wire contract of proto/kv.proto, shared by the service and the client SDK:
 * loading, metadata keys, wire shapes and size limits.
 */
import type * as grpc from '@grpc/grpc-js';
import { loadProto } from './proto.js';

export { DEFAULT_LIMITS, maxMessageBytes, type KvLimits } from './limits.js';

/** Trailer metadata naming the leader's client address (`host:port`) on a not-leader refusal. */
export const MD_LEADER = 'raftkv-leader';
/**
 * Trailer metadata telling apart the refusals that share a status code:
 * `not-leader`, `no-leader`, `session-expired`, `shutting-down`, `overloaded` (on
 * RESOURCE_EXHAUSTED: too much work in flight, retry after a pause; without it, RESOURCE_EXHAUSTED
 * is gRPC's own refusal of a message over its size limit), and `conf-refused` (on
 * FAILED_PRECONDITION: a membership change or leadership transfer the leader refused, having
 * changed nothing; the details say why; not worth retrying as it is), and `outcome-unknown` (on
 * UNAVAILABLE: the node proposed the membership change and stopped leading, or stopped, before it
 * applied it; it may still take effect: the member list tells). UNAVAILABLE without a reason: the
 * node did not answer (gRPC's own status), or is still starting; either way it cannot serve yet.
 */
export const MD_ERROR = 'raftkv-error';


export interface KvProto {
  /** The client constructor; `.service` is the service definition. */
  Kv: grpc.ServiceClientConstructor;
}

/** The loaded `raftkv.kv` package, with the same loader options as raft.proto. */
export function loadKvProto(): KvProto {
  return (loadProto('kv.proto') as unknown as { raftkv: { kv: KvProto } }).raftkv.kv;
}

/** Session as sent (any byte-ish value is accepted by the encoder) and as received. */
export interface WireSession {
  clientId: number;
  seq: number;
  firstIncomplete: number;
}
export interface GetRequestIn {
  key: Buffer;
  /** Answered from this node's applied state, without the leader: possibly stale. */
  serializable?: boolean;
}
export interface GetResponse {
  found: boolean;
  value: Uint8Array;
}
export interface WriteRequestIn {
  session: WireSession | null;
  key: Buffer;
  value: Buffer;
  expected: Buffer;
}
export interface DeleteResponse {
  existed: boolean;
}
export interface CasResponse {
  swapped: boolean;
}
export interface StatusResponse {
  nodeId: number;
  role: string;
  term: number;
  leaderId: number;
  leaderAddr: string;
  commitIndex: number;
  appliedIndex: number;
  lastLogIndex: number;
  clusterId: string;
  snapshotIndex: number;
  /** Unset unless the node counts (kv-server --metrics-addr). */
  load?: Load | null;
  /** The quota on the state (kv-server --quota-bytes), and the state as it counts it; 0 from a node that predates quotas. */
  quotaBytes: number;
  quotaUsedBytes: number;
}

/** kv.proto's Load: a node's client calls and disk flushes since it started, as running totals. */
export interface Load {
  reads: number;
  writes: number;
  latencyBoundsSeconds: number[];
  /** Calls within each bound, cumulative. */
  latencyCounts: number[];
  fsyncs: number;
  fsyncSeconds: number;
}

export interface SnapshotResponse {
  index: number;
  term: number;
}

/** A member as MemberList and the changes answer it; matchIndex and active are the leader's view (0, false elsewhere). */
export interface MemberWire {
  id: number;
  peerAddr: string;
  clientAddr: string;
  learner: boolean;
  matchIndex: number;
  active: boolean;
}
export interface MemberListResponse {
  members: MemberWire[];
  leaderId: number;
  clusterId: string;
  commitIndex: number;
  joint: boolean;
  nodeId: number;
}
export interface MemberAddRequestIn {
  id: number;
  peerAddr: string;
  clientAddr: string;
  learner: boolean;
}
export interface MemberPromoteRequestIn {
  id: number;
}
export interface MemberRemoveRequestIn {
  id: number;
  force: boolean;
}
export interface MemberChangeResponse {
  members: MemberWire[];
  index: number;
}
export interface LeaderTransferRequestIn {
  id: number;
}
export interface LeaderTransferResponse {
  leaderId: number;
  term: number;
}

