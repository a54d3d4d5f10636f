// Original file: proto/kv.proto

import type { Load as _raftkv_kv_Load, Load__Output as _raftkv_kv_Load__Output } from '../../raftkv/kv/Load.js';
import type { Long } from '@grpc/proto-loader';

export interface StatusResponse {
  'nodeId'?: (number | string | Long);
  /**
   * follower | preCandidate | candidate | leader
   */
  'role'?: (string);
  'term'?: (number | string | Long);
  /**
   * 0 when unknown
   */
  'leaderId'?: (number | string | Long);
  /**
   * the leader's client address, "" when unknown
   */
  'leaderAddr'?: (string);
  'commitIndex'?: (number | string | Long);
  'appliedIndex'?: (number | string | Long);
  'lastLogIndex'?: (number | string | Long);
  'clusterId'?: (string);
  /**
   * the last entry this node's latest snapshot covers; 0: none
   */
  'snapshotIndex'?: (number | string | Long);
  /**
   * unset unless the node counts (kv-server --metrics-addr)
   */
  'load'?: (_raftkv_kv_Load | null);
  /**
   * the quota on the state (kv-server --quota-bytes); 0: none
   */
  'quotaBytes'?: (number | string | Long);
  /**
   * the state as the quota counts it: keys and values, and 128 bytes per key
   */
  'quotaUsedBytes'?: (number | string | Long);
}

export interface StatusResponse__Output {
  'nodeId': (number);
  /**
   * follower | preCandidate | candidate | leader
   */
  'role': (string);
  'term': (number);
  /**
   * 0 when unknown
   */
  'leaderId': (number);
  /**
   * the leader's client address, "" when unknown
   */
  'leaderAddr': (string);
  'commitIndex': (number);
  'appliedIndex': (number);
  'lastLogIndex': (number);
  'clusterId': (string);
  /**
   * the last entry this node's latest snapshot covers; 0: none
   */
  'snapshotIndex': (number);
  /**
   * unset unless the node counts (kv-server --metrics-addr)
   */
  'load': (_raftkv_kv_Load__Output | null);
  /**
   * the quota on the state (kv-server --quota-bytes); 0: none
   */
  'quotaBytes': (number);
  /**
   * the state as the quota counts it: keys and values, and 128 bytes per key
   */
  'quotaUsedBytes': (number);
}
