// Original file: proto/kv.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Exactly-once writes (Raft thesis §6.3): a retried request carries the same client_id and seq,
 * and is applied once; the server keeps answers only for seq >= first_incomplete.
 */
export interface Session {
  /**
   * chosen at random by the client, below 2^53
   */
  'clientId'?: (number | string | Long);
  /**
   * this request's number, from 1
   */
  'seq'?: (number | string | Long);
  /**
   * the lowest seq this client has no answer for yet
   */
  'firstIncomplete'?: (number | string | Long);
}

/**
 * Exactly-once writes (Raft thesis §6.3): a retried request carries the same client_id and seq,
 * and is applied once; the server keeps answers only for seq >= first_incomplete.
 */
export interface Session__Output {
  /**
   * chosen at random by the client, below 2^53
   */
  'clientId': (number);
  /**
   * this request's number, from 1
   */
  'seq': (number);
  /**
   * the lowest seq this client has no answer for yet
   */
  'firstIncomplete': (number);
}
