// Original file: proto/kv.proto

import type { Call as _raftkv_kv_Call, Call__Output as _raftkv_kv_Call__Output } from '../../raftkv/kv/Call.js';

export interface CallFrame {
  'calls'?: (_raftkv_kv_Call)[];
}

export interface CallFrame__Output {
  'calls': (_raftkv_kv_Call__Output)[];
}
