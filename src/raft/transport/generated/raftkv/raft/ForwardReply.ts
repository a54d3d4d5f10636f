// Original file: proto/raft.proto


/**
 * The leader's answer: the encoded kv.proto response, or the refusal (a JSON object with
 * code, details and, when there are any, reason and leader_addr, as the client API sends them).
 */
export interface ForwardReply {
  'response'?: (Buffer | Uint8Array | string);
  'refusal'?: (string);
}

/**
 * The leader's answer: the encoded kv.proto response, or the refusal (a JSON object with
 * code, details and, when there are any, reason and leader_addr, as the client API sends them).
 */
export interface ForwardReply__Output {
  'response': (Buffer);
  'refusal': (string);
}
