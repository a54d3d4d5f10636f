// Original file: proto/kv.proto


export interface DeleteResponse {
  'existed'?: (boolean);
}

export interface DeleteResponse__Output {
  'existed': (boolean);
}
