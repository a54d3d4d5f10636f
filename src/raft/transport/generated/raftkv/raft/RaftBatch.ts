// Original file: proto/raft.proto

import type { RaftMessage as _raftkv_raft_RaftMessage, RaftMessage__Output as _raftkv_raft_RaftMessage__Output } from '../../raftkv/raft/RaftMessage.js';

/**
 * Everything one node sends one peer in one event-loop turn.
 */
export interface RaftBatch {
  /**
   * the sender's cluster; the receiver refuses a batch from another cluster
   */
  'clusterId'?: (string);
  'messages'?: (_raftkv_raft_RaftMessage)[];
}

/**
 * Everything one node sends one peer in one event-loop turn.
 */
export interface RaftBatch__Output {
  /**
   * the sender's cluster; the receiver refuses a batch from another cluster
   */
  'clusterId': (string);
  'messages': (_raftkv_raft_RaftMessage__Output)[];
}
