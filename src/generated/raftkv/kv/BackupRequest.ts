// Original file: proto/kv.proto


export interface BackupRequest {
}

export interface BackupRequest__Output {
}
