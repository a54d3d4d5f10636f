// Original file: proto/kv.proto


export interface AppendResponse {
}

export interface AppendResponse__Output {
}
