// Original file: proto/kv.proto


export interface GetRequest {
  'key'?: (Buffer | Uint8Array | string);
}

export interface GetRequest__Output {
  'key': (Buffer);
}
