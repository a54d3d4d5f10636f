// Original file: proto/kv.proto

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
}
