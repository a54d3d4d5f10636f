// Original file: proto/kv.proto


export interface GetResponse {
  'found'?: (boolean);
  'value'?: (Buffer | Uint8Array | string);
}

export interface GetResponse__Output {
  'found': (boolean);
  'value': (Buffer);
}
