// Original file: proto/kv.proto

import type { Member as _raftkv_kv_Member, Member__Output as _raftkv_kv_Member__Output } from '../../raftkv/kv/Member.js';
import type { Long } from '@grpc/proto-loader';

export interface MemberListResponse {
  /**
   * by id
   */
  'members'?: (_raftkv_kv_Member)[];
  /**
   * 0 when unknown
   */
  'leaderId'?: (number | string | Long);
  'clusterId'?: (string);
  /**
   * the answering node's
   */
  'commitIndex'?: (number | string | Long);
  /**
   * a joint configuration is in force (it is being left)
   */
  'joint'?: (boolean);
  /**
   * the answering node
   */
  'nodeId'?: (number | string | Long);
}

export interface MemberListResponse__Output {
  /**
   * by id
   */
  'members': (_raftkv_kv_Member__Output)[];
  /**
   * 0 when unknown
   */
  'leaderId': (number);
  'clusterId': (string);
  /**
   * the answering node's
   */
  'commitIndex': (number);
  /**
   * a joint configuration is in force (it is being left)
   */
  'joint': (boolean);
  /**
   * the answering node
   */
  'nodeId': (number);
}
