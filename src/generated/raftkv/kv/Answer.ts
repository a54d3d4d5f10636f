// Original file: proto/kv.proto

import type { GetResponse as _raftkv_kv_GetResponse, GetResponse__Output as _raftkv_kv_GetResponse__Output } from '../../raftkv/kv/GetResponse.js';
import type { PutResponse as _raftkv_kv_PutResponse, PutResponse__Output as _raftkv_kv_PutResponse__Output } from '../../raftkv/kv/PutResponse.js';
import type { AppendResponse as _raftkv_kv_AppendResponse, AppendResponse__Output as _raftkv_kv_AppendResponse__Output } from '../../raftkv/kv/AppendResponse.js';
import type { DeleteResponse as _raftkv_kv_DeleteResponse, DeleteResponse__Output as _raftkv_kv_DeleteResponse__Output } from '../../raftkv/kv/DeleteResponse.js';
import type { CasResponse as _raftkv_kv_CasResponse, CasResponse__Output as _raftkv_kv_CasResponse__Output } from '../../raftkv/kv/CasResponse.js';
import type { Refusal as _raftkv_kv_Refusal, Refusal__Output as _raftkv_kv_Refusal__Output } from '../../raftkv/kv/Refusal.js';
import type { Long } from '@grpc/proto-loader';

export interface Answer {
  'id'?: (number | string | Long);
  'get'?: (_raftkv_kv_GetResponse | null);
  'put'?: (_raftkv_kv_PutResponse | null);
  'append'?: (_raftkv_kv_AppendResponse | null);
  'delete'?: (_raftkv_kv_DeleteResponse | null);
  'compareAndSwap'?: (_raftkv_kv_CasResponse | null);
  'refusal'?: (_raftkv_kv_Refusal | null);
  /**
   * served by forwarding to the leader: its client address (the unary trailer raftkv-leader)
   */
  'leaderAddr'?: (string);
  'response'?: "get"|"put"|"append"|"delete"|"compareAndSwap"|"refusal";
}

export interface Answer__Output {
  'id': (number);
  'get'?: (_raftkv_kv_GetResponse__Output | null);
  'put'?: (_raftkv_kv_PutResponse__Output | null);
  'append'?: (_raftkv_kv_AppendResponse__Output | null);
  'delete'?: (_raftkv_kv_DeleteResponse__Output | null);
  'compareAndSwap'?: (_raftkv_kv_CasResponse__Output | null);
  'refusal'?: (_raftkv_kv_Refusal__Output | null);
  /**
   * served by forwarding to the leader: its client address (the unary trailer raftkv-leader)
   */
  'leaderAddr': (string);
}
