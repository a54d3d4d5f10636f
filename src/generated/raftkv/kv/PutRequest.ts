// Original file: proto/kv.proto

import type { Session as _raftkv_kv_Session, Session__Output as _raftkv_kv_Session__Output } from '../../raftkv/kv/Session.js';

export interface PutRequest {
  'session'?: (_raftkv_kv_Session | null);
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (Buffer | Uint8Array | string);
}

export interface PutRequest__Output {
  'session': (_raftkv_kv_Session__Output | null);
  'key': (Buffer);
  'value': (Buffer);
}
