// Original file: proto/kv.proto


export interface SnapshotRequest {
}

export interface SnapshotRequest__Output {
}
