// Original file: proto/kv.proto


export interface GetRequest {
  'key'?: (Buffer | Uint8Array | string);
  /**
   * Serializable (etcd's word): answered by the node called, from what it has applied, without
   * asking the leader. Any member serves it, also without a leader, but it may be stale: it need
   * not hold the latest acknowledged write. The default (false) is linearizable.
   */
  'serializable'?: (boolean);
}

export interface GetRequest__Output {
  'key': (Buffer);
  /**
   * Serializable (etcd's word): answered by the node called, from what it has applied, without
   * asking the leader. Any member serves it, also without a leader, but it may be stale: it need
   * not hold the latest acknowledged write. The default (false) is linearizable.
   */
  'serializable': (boolean);
}
