import type { Message, NodeId } from '../core/types.js';

/**
 * Carries core messages between peers. send() never blocks and never throws for a peer that
 * is down: Raft retries, so an undeliverable message is dropped. Messages sent in one synchronous
 * run go out together once it yields (by the next microtask), so a caller can batch and then flush.
 */
export interface Transport {
  send(m: Message): void;
  /** Registers the receiver of inbound messages that passed the cluster and node id checks. */
  onMessage(handler: (m: Message) => void): void;
  /**
   * Streams snapshot message `m` (type 'snap') and the snapshot's bytes to m.to, in chunks well
   * under the message limit and with flow control. Resolves once the peer holds every byte and
   * has handed them to its onSnapshot handler; rejects if the transfer fails for any reason.
   */
  sendSnapshot(m: Message, data: Uint8Array): Promise<void>;
  /** Registers the receiver of complete snapshots: the snap message and its reassembled bytes. */
  onSnapshot(handler: (m: Message, data: Uint8Array) => void): void;
  /**
   * The peers from now on (as the configuration changes): a link opens to each new one, and the
   * link to each one no longer listed closes (messages from it are refused from then on). An
   * entry for this node itself is ignored.
   */
  setPeers(peers: readonly PeerAddress[]): void;
  close(): Promise<void>;
}

/** What a transport has sent to and received from one peer, as running totals (for metrics). */
export interface PeerStats {
  /** Encoded bytes of Raft messages handed to the connection. */
  sentBytes: number;
  /** Encoded bytes of Raft message batches received. */
  receivedBytes: number;
  /** Messages dropped instead of sent: the peer unreachable, its queue full, or its stream lost with them. */
  sentFailures: number;
}

export interface PeerAddress {
  id: NodeId;
  /** host:port */
  address: string;
}
