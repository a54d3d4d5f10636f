// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface LeaderTransferRequest {
  /**
   * 0: the most up-to-date voter
   */
  'id'?: (number | string | Long);
}

export interface LeaderTransferRequest__Output {
  /**
   * 0: the most up-to-date voter
   */
  'id': (number);
}
