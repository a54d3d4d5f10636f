// Original file: proto/raft.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A client's call that a follower forwards to its leader, for a client that cannot reach the
 * leader itself (or a Status call, see `method`). `method` names a call of proto/kv.proto's Kv service and `request` is its
 * request message, encoded; the leader serves it as if the client had called it directly.
 */
export interface ForwardRequest {
  /**
   * the receiver refuses a call from another cluster
   */
  'clusterId'?: (string);
  /**
   * the forwarding node
   */
  'from'?: (number | string | Long);
  /**
   * Get, Put, Append, Delete or CompareAndSwap; or Status, which the
   */
  'method'?: (string);
  /**
   * receiver answers about itself, leader or not (the status page)
   */
  'request'?: (Buffer | Uint8Array | string);
}

/**
 * A client's call that a follower forwards to its leader, for a client that cannot reach the
 * leader itself (or a Status call, see `method`). `method` names a call of proto/kv.proto's Kv service and `request` is its
 * request message, encoded; the leader serves it as if the client had called it directly.
 */
export interface ForwardRequest__Output {
  /**
   * the receiver refuses a call from another cluster
   */
  'clusterId': (string);
  /**
   * the forwarding node
   */
  'from': (number);
  /**
   * Get, Put, Append, Delete or CompareAndSwap; or Status, which the
   */
  'method': (string);
  /**
   * receiver answers about itself, leader or not (the status page)
   */
  'request': (Buffer);
}
