// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

/**
 * What the backup holds, as the leader captured it (the file says the same, under its checksum).
 */
export interface BackupInfo {
  /**
   * the cluster it comes from
   */
  'clusterId'?: (string);
  /**
   * the leader that made it
   */
  'nodeId'?: (number | string | Long);
  /**
   * every log entry up to and including (index, term) is in it
   */
  'index'?: (number | string | Long);
  'term'?: (number | string | Long);
  'keyCount'?: (number | string | Long);
  /**
   * the configuration as of index
   */
  'voters'?: (number | string | Long)[];
  'learners'?: (number | string | Long)[];
}

/**
 * What the backup holds, as the leader captured it (the file says the same, under its checksum).
 */
export interface BackupInfo__Output {
  /**
   * the cluster it comes from
   */
  'clusterId': (string);
  /**
   * the leader that made it
   */
  'nodeId': (number);
  /**
   * every log entry up to and including (index, term) is in it
   */
  'index': (number);
  'term': (number);
  'keyCount': (number);
  /**
   * the configuration as of index
   */
  'voters': (number)[];
  'learners': (number)[];
}
