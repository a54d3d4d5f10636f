// Original file: proto/raft.proto

import type { RaftMessage as _raftkv_raft_RaftMessage, RaftMessage__Output as _raftkv_raft_RaftMessage__Output } from '../../raftkv/raft/RaftMessage.js';
import type { Long } from '@grpc/proto-loader';

/**
 * One piece of a snapshot transfer. The chunks of one call cover the snapshot's bytes in order,
 * without gaps or overlap: chunk k starts where chunk k-1 ended. Each is well under the message
 * limit (the sender's snapshotChunkBytes, 1 MiB by default).
 */
export interface SnapshotChunk {
  /**
   * in every chunk; the receiver refuses a chunk from another cluster
   */
  'clusterId'?: (string);
  /**
   * first chunk only: the MESSAGE_TYPE_SNAPSHOT message (no entries)
   */
  'message'?: (_raftkv_raft_RaftMessage | null);
  /**
   * where `data` starts in the snapshot; 0 in the first chunk
   */
  'offset'?: (number | string | Long);
  /**
   * the snapshot's size, the same in every chunk
   */
  'totalBytes'?: (number | string | Long);
  'data'?: (Buffer | Uint8Array | string);
  /**
   * set on the final chunk only, which must end at total_bytes
   */
  'last'?: (boolean);
}

/**
 * One piece of a snapshot transfer. The chunks of one call cover the snapshot's bytes in order,
 * without gaps or overlap: chunk k starts where chunk k-1 ended. Each is well under the message
 * limit (the sender's snapshotChunkBytes, 1 MiB by default).
 */
export interface SnapshotChunk__Output {
  /**
   * in every chunk; the receiver refuses a chunk from another cluster
   */
  'clusterId': (string);
  /**
   * first chunk only: the MESSAGE_TYPE_SNAPSHOT message (no entries)
   */
  'message': (_raftkv_raft_RaftMessage__Output | null);
  /**
   * where `data` starts in the snapshot; 0 in the first chunk
   */
  'offset': (number);
  /**
   * the snapshot's size, the same in every chunk
   */
  'totalBytes': (number);
  'data': (Buffer);
  /**
   * set on the final chunk only, which must end at total_bytes
   */
  'last': (boolean);
}
