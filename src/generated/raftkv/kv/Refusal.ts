// Original file: proto/kv.proto


export interface Refusal {
  /**
   * a gRPC status code, as the unary RPC would fail with
   */
  'code'?: (number);
  'details'?: (string);
  /**
   * the raftkv-error trailer of the unary RPC, "" if none
   */
  'reason'?: (string);
  /**
   * the raftkv-leader trailer of the unary RPC, "" if none
   */
  'leaderAddr'?: (string);
}

export interface Refusal__Output {
  /**
   * a gRPC status code, as the unary RPC would fail with
   */
  'code': (number);
  'details': (string);
  /**
   * the raftkv-error trailer of the unary RPC, "" if none
   */
  'reason': (string);
  /**
   * the raftkv-leader trailer of the unary RPC, "" if none
   */
  'leaderAddr': (string);
}
