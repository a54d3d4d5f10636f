// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface SnapshotResponse {
  /**
   * the last entry the snapshot covers
   */
  'index'?: (number | string | Long);
  'term'?: (number | string | Long);
}

export interface SnapshotResponse__Output {
  /**
   * the last entry the snapshot covers
   */
  'index': (number);
  'term': (number);
}
