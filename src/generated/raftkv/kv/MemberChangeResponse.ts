// Original file: proto/kv.proto

import type { Member as _raftkv_kv_Member, Member__Output as _raftkv_kv_Member__Output } from '../../raftkv/kv/Member.js';
import type { Long } from '@grpc/proto-loader';

export interface MemberChangeResponse {
  /**
   * the configuration after the change
   */
  'members'?: (_raftkv_kv_Member)[];
  /**
   * the log index of the change
   */
  'index'?: (number | string | Long);
}

export interface MemberChangeResponse__Output {
  /**
   * the configuration after the change
   */
  'members': (_raftkv_kv_Member__Output)[];
  /**
   * the log index of the change
   */
  'index': (number);
}
