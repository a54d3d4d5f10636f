import * as grpc from '@grpc/grpc-js';
import type { NodeId } from '../core/types.js';
import type { ForwardReply } from './generated/raftkv/raft/ForwardReply.js';
import type { ForwardRequest__Output } from './generated/raftkv/raft/ForwardRequest.js';
import type { RaftClient } from './generated/raftkv/raft/Raft.js';
import { precondition, type Refusal } from './inbound.js';

/**
 * Client calls that a follower forwards to its leader over the peer connection (rpc Forward),
 * for a client that cannot reach the leader itself. The transport carries them as opaque bytes:
 * what a call means is the server's business (src/server/grpc-network.ts).
 */
export interface PeerCall {
  /** The name of a call of the client API: Get, Put, Append, Delete, CompareAndSwap, or Status. */
  method: string;
  /** Its request, encoded. */
  request: Uint8Array;
  /** When the caller gives up, in ms since the epoch (the forwarding call's gRPC deadline), if known. */
  deadline?: number;
}

/** The answer: the encoded response, or a refusal (JSON) when the leader refused the call. */
export interface PeerCallReply {
  response: Uint8Array;
  refusal: string;
}

export type PeerCallHandler = (call: PeerCall, from: NodeId) => Promise<PeerCallReply>;

/** The calls that may be forwarded: the data path, and Status (a peer asking the receiver about itself, for the status page). */
const METHODS = new Set(['Get', 'Put', 'Append', 'Delete', 'CompareAndSwap', 'Status']);

/** When the caller of a unary gRPC call gives up, in ms since the epoch; undefined if it set no deadline. */
export function callDeadline(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

/** Sends `call` to a peer's Forward; rejects if no answer comes by `deadline` or the call fails. */
export function forwardCall(
  client: RaftClient,
  metadata: grpc.Metadata,
  from: { clusterId: string; self: NodeId },
  call: PeerCall,
  deadline: number,
): Promise<PeerCallReply> {
  return new Promise((resolve, reject) => {
    client.Forward(
      { clusterId: from.clusterId, from: from.self, method: call.method, request: call.request },
      metadata,
      { deadline },
      (err, reply) => {
        if (err || !reply) return reject(new Error(err ? `${grpc.status[err.code] ?? err.code}: ${err.details}` : 'empty answer'));
        resolve({ response: reply.response, refusal: reply.refusal });
      },
    );
  });
}

/**
 * Checks a forwarded call before its handler sees it: from a known peer, of this cluster, for a
 * method that may be forwarded. Returns the refusal, if any.
 */
export function checkForwarded(req: ForwardRequest__Output, clusterId: string, isPeer: (id: NodeId) => boolean): Refusal | undefined {
  if (req.clusterId !== clusterId) return precondition(`forwarded call from cluster ${JSON.stringify(req.clusterId)}, this node is in ${JSON.stringify(clusterId)}`);
  if (!Number.isSafeInteger(req.from) || !isPeer(req.from)) return precondition(`forwarded call from ${String(req.from)}, which is not a peer`);
  if (!METHODS.has(req.method)) return { code: grpc.status.INVALID_ARGUMENT, details: `forwarded call of unknown method ${JSON.stringify(req.method).slice(0, 64)}` };
  return undefined;
}

/** The server side of rpc Forward: checks, then the handler, then the answer. */
export function serveForwarded(
  req: ForwardRequest__Output,
  deadline: number | undefined,
  callback: grpc.sendUnaryData<ForwardReply>,
  check: (req: ForwardRequest__Output) => Refusal | undefined,
  handler: PeerCallHandler | undefined,
): void {
  const refusal = check(req);
  if (refusal) return callback(refusal);
  if (!handler) return callback({ code: grpc.status.UNAVAILABLE, details: 'the node is starting' });
  handler({ method: req.method, request: req.request, ...(deadline !== undefined && { deadline }) }, req.from).then(
    (reply) => callback(null, reply),
    (e: unknown) => callback({ code: grpc.status.INTERNAL, details: `serving a forwarded call failed: ${(e as Error).message}` }),
  );
}
