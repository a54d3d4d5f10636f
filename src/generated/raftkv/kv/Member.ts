// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

export interface Member {
  'id'?: (number | string | Long);
  'peerAddr'?: (string);
  'clientAddr'?: (string);
  'learner'?: (boolean);
  /**
   * The leader's view (0 / false in other nodes' answers): the last log index known to be
   * replicated to the member, and whether it was heard from in the last election timeout.
   */
  'matchIndex'?: (number | string | Long);
  'active'?: (boolean);
}

export interface Member__Output {
  'id': (number);
  'peerAddr': (string);
  'clientAddr': (string);
  'learner': (boolean);
  /**
   * The leader's view (0 / false in other nodes' answers): the last log index known to be
   * replicated to the member, and whether it was heard from in the last election timeout.
   */
  'matchIndex': (number);
  'active': (boolean);
}
