// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A node's client load and disk flushes since it started: running totals, so that a dashboard
 * (kv-server's status page) makes rates and percentiles from two answers, and a cluster's from
 * the sum over its members. Calls are counted where clients sent them, forwarded or not.
 */
export interface Load {
  /**
   * Get calls answered, whatever the outcome
   */
  'reads'?: (number | string | Long);
  /**
   * Put, Append, Delete and CompareAndSwap calls answered
   */
  'writes'?: (number | string | Long);
  /**
   * ascending upper bounds of the latency buckets
   */
  'latencyBoundsSeconds'?: (number | string)[];
  /**
   * reads and writes answered within each bound (cumulative)
   */
  'latencyCounts'?: (number | string | Long)[];
  /**
   * flushes of the log to disk
   */
  'fsyncs'?: (number | string | Long);
  /**
   * the time spent in them
   */
  'fsyncSeconds'?: (number | string);
}

/**
 * A node's client load and disk flushes since it started: running totals, so that a dashboard
 * (kv-server's status page) makes rates and percentiles from two answers, and a cluster's from
 * the sum over its members. Calls are counted where clients sent them, forwarded or not.
 */
export interface Load__Output {
  /**
   * Get calls answered, whatever the outcome
   */
  'reads': (number);
  /**
   * Put, Append, Delete and CompareAndSwap calls answered
   */
  'writes': (number);
  /**
   * ascending upper bounds of the latency buckets
   */
  'latencyBoundsSeconds': (number)[];
  /**
   * reads and writes answered within each bound (cumulative)
   */
  'latencyCounts': (number)[];
  /**
   * flushes of the log to disk
   */
  'fsyncs': (number);
  /**
   * the time spent in them
   */
  'fsyncSeconds': (number);
}
