import type { Message, NodeId } from '../core/types.js';

/**
 * Carries core messages between peers. send() never blocks and never throws for a peer that
 * is down: Raft retries, so an undeliverable message is dropped.
 */
export interface Transport {
  send(m: Message): void;
  /** Registers the receiver of inbound messages that passed the cluster and node id checks. */
  onMessage(handler: (m: Message) => void): void;
  close(): Promise<void>;
}

export interface PeerAddress {
  id: NodeId;
  /** host:port */
  address: string;
}
