// Original file: proto/kv.proto


export interface PutResponse {
}

export interface PutResponse__Output {
}
