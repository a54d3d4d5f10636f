// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface MemberRemoveRequest {
  'id'?: (number | string | Long);
  /**
   * even if the remaining voters would have no live quorum
   */
  'force'?: (boolean);
}

export interface MemberRemoveRequest__Output {
  'id': (number);
  /**
   * even if the remaining voters would have no live quorum
   */
  'force': (boolean);
}
