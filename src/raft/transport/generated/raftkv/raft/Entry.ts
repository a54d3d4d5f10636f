// Original file: proto/raft.proto

import type { EntryType as _raftkv_raft_EntryType, EntryType__Output as _raftkv_raft_EntryType__Output } from '../../raftkv/raft/EntryType.js';
import type { Long } from '@grpc/proto-loader';

export interface Entry {
  'index'?: (number | string | Long);
  'term'?: (number | string | Long);
  'type'?: (_raftkv_raft_EntryType);
  'data'?: (Buffer | Uint8Array | string);
}

export interface Entry__Output {
  'index': (number);
  'term': (number);
  'type': (_raftkv_raft_EntryType__Output);
  'data': (Buffer);
}
