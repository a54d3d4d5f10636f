// Original file: proto/raft.proto


/**
 * Sent once, when the stream ends normally.
 */
export interface StreamAck {
}

/**
 * Sent once, when the stream ends normally.
 */
export interface StreamAck__Output {
}
