// Original file: proto/kv.proto


export interface CasResponse {
  'swapped'?: (boolean);
}

export interface CasResponse__Output {
  'swapped': (boolean);
}
