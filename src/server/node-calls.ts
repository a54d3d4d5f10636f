import * as grpc from '@grpc/grpc-js';
import { loadKvProto, type MemberListResponse, type StatusResponse } from '../kv-api.js';
import type { NodeId } from '../raft/core/types.js';
import { CLUSTER_MISMATCH, MD_CLUSTER } from '../raft/transport/call-metadata.js';
import { loadRaftProto } from '../raft/transport/grpc.js';

// kv-server's own calls to other nodes, outside Raft: the membership a node started with --join
// asks its cluster for, and the look at a new member's addresses before it is added.

/** Calls `method` of the client API at `addr`; rejects with the gRPC error, or after `timeoutMs`. */
export function callKv<Res>(addr: string, method: 'Status' | 'MemberList', timeoutMs: number): Promise<Res> {
  const client = new (loadKvProto().Kv)(addr, grpc.credentials.createInsecure());
  return new Promise<Res>((resolve, reject) => {
    const call = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void>)[method]!;
    call.call(client, {}, { deadline: Date.now() + timeoutMs }, (err, res) => (err || !res ? reject(err ?? new Error('empty answer')) : resolve(res)));
  }).finally(() => client.close());
}

/** The membership as the node at client address `addr` has applied it. */
export function memberList(addr: string, timeoutMs: number): Promise<MemberListResponse> {
  return callKv<MemberListResponse>(addr, 'MemberList', timeoutMs);
}

/**
 * What answers at a new member's addresses: a reason to refuse adding it (a node of another
 * cluster, or another node of this one), or undefined, also when nothing answers (the node may
 * not be started yet) or something that is no raftkv node does. Looks within `timeoutMs`.
 */
export async function probeMember(o: { clusterId: string; id: NodeId; peerAddr: string; clientAddr: string }, timeoutMs: number): Promise<string | undefined> {
  const [peerStatus, clientStatus, peerRaft] = await Promise.all([
    statusAt(o.peerAddr, timeoutMs),
    statusAt(o.clientAddr, timeoutMs),
    raftClusterCheck(o.peerAddr, o.clusterId, timeoutMs),
  ]);
  for (const [addr, st] of [
    [o.peerAddr, peerStatus],
    [o.clientAddr, clientStatus],
  ] as const) {
    if (!st) continue;
    if (st.clusterId !== o.clusterId) return `${addr} answers as node ${st.nodeId} of another cluster, ${JSON.stringify(st.clusterId)}`;
    if (st.nodeId !== o.id) return `${addr} answers as node ${st.nodeId} of this cluster`;
  }
  return peerRaft;
}

async function statusAt(addr: string, timeoutMs: number): Promise<StatusResponse | undefined> {
  return callKv<StatusResponse>(addr, 'Status', timeoutMs).catch(() => undefined);
}

/**
 * Whether the Raft port at `addr` belongs to another cluster: our transport refuses a call
 * announcing another cluster before anything else (a call of no known method, to learn only that).
 */
function raftClusterCheck(addr: string, clusterId: string, timeoutMs: number): Promise<string | undefined> {
  const client = new (loadRaftProto().raftkv.raft.Raft)(addr, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set(MD_CLUSTER, clusterId);
  return new Promise<string | undefined>((resolve) => {
    client.Forward({ clusterId, from: 0, method: '', request: Buffer.alloc(0) }, md, { deadline: Date.now() + timeoutMs }, (err) => {
      const other = err?.code === grpc.status.FAILED_PRECONDITION && err.details.startsWith(CLUSTER_MISMATCH);
      resolve(other ? `${addr} is the peer port of a node of another cluster (${err.details})` : undefined);
    });
  }).finally(() => client.close());
}
