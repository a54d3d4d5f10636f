// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface MemberAddRequest {
  /**
   * never used before in this cluster
   */
  'id'?: (number | string | Long);
  /**
   * host:port of its peer port
   */
  'peerAddr'?: (string);
  /**
   * host:port of its client port
   */
  'clientAddr'?: (string);
  /**
   * added as a learner (promote it once caught up)
   */
  'learner'?: (boolean);
}

export interface MemberAddRequest__Output {
  /**
   * never used before in this cluster
   */
  'id': (number);
  /**
   * host:port of its peer port
   */
  'peerAddr': (string);
  /**
   * host:port of its client port
   */
  'clientAddr': (string);
  /**
   * added as a learner (promote it once caught up)
   */
  'learner': (boolean);
}
