// Original file: proto/raft.proto


/**
 * Sent once the receiver holds every byte and has handed the snapshot to its node.
 */
export interface SnapshotAck {
}

/**
 * Sent once the receiver holds every byte and has handed the snapshot to its node.
 */
export interface SnapshotAck__Output {
}
