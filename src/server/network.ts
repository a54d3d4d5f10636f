import type { MemberListResponse, StatusResponse } from '../kv-api.js';
import type { NodeId } from '../raft/core/types.js';
import type { PeerStats, Transport } from '../raft/transport/transport.js';
import type { Health } from './health.js';
import type { ForwardedCall, ForwardedReply, KvService } from './kv-service.js';

/**
 * How a node talks to the world, injected: gRPC in kv-server (grpc-network.ts), a simulated
 * network that drops, delays, duplicates, reorders and partitions in the simulator.
 */
export interface Network {
  /** The Raft transport between this node and its peers; nothing is bound until start(). */
  peerTransport(opts: PeerTransportOptions): PeerTransport;
  /**
   * Binds the client address. Until serve() the listener answers every call "starting"
   * (retryable), so that a node that cannot start never held its port and its data dir at once.
   */
  listenClients(addr: string): Promise<ClientListener>;
  /**
   * Looks at what answers at a new member's addresses before it is added: a reason to refuse
   * (a node of another cluster, or another node of this one), or undefined, also when nothing
   * answers there (the node may not be started yet).
   */
  probeMember(member: { clusterId: string; id: NodeId; peerAddr: string; clientAddr: string }): Promise<string | undefined>;
  /** The membership as the node at client address `addr` has applied it (kv-server --join asks its cluster). */
  memberList(addr: string, timeoutMs: number): Promise<MemberListResponse>;
}

export interface PeerTransportOptions {
  clusterId: string;
  self: NodeId;
  /** This node's peer address (host:port). */
  listen: string;
  /** Every member, this node included. */
  peers: { id: NodeId; address: string }[];
  /** Receives one line per notable transport event. */
  log: (line: string) => void;
}

export interface PeerTransport extends Transport {
  /** Binds the peer address; rejects with a clear message if it cannot. */
  start(): Promise<void>;
  /**
   * Sends a client's call to peer `to` (the leader) over the peer connection and resolves with
   * its answer; rejects if none comes within `timeoutMs` (or the peer cannot be reached).
   */
  forward(to: NodeId, call: ForwardedCall, timeoutMs: number): Promise<ForwardedReply>;
  /** Serves the calls peers forward here. */
  onForward(handler: (call: ForwardedCall, from: NodeId) => Promise<ForwardedReply>): void;
  /** Asks peer `to` for its own Status (the status page's view of the cluster); rejects if no answer comes within `timeoutMs`. */
  peerStatus?(to: NodeId, timeoutMs: number): Promise<StatusResponse>;
  /** Answers peers' peerStatus. */
  onPeerStatus?(handler: () => StatusResponse): void;
  /** Each peer's bytes sent and received and messages dropped, as running totals (metrics); optional. */
  stats?(): ReadonlyMap<NodeId, PeerStats>;
}

export interface ClientListener {
  /** `health`: whether a leader exists and can commit, for grpc.health.v1 (kv-server's listener serves it). */
  serve(service: KvService, health?: () => Promise<Health>): void;
  /** Stops taking calls; calls in flight get a moment to finish. */
  close(): Promise<void>;
}
