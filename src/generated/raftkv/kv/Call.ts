// Original file: proto/kv.proto

import type { GetRequest as _raftkv_kv_GetRequest, GetRequest__Output as _raftkv_kv_GetRequest__Output } from '../../raftkv/kv/GetRequest.js';
import type { PutRequest as _raftkv_kv_PutRequest, PutRequest__Output as _raftkv_kv_PutRequest__Output } from '../../raftkv/kv/PutRequest.js';
import type { AppendRequest as _raftkv_kv_AppendRequest, AppendRequest__Output as _raftkv_kv_AppendRequest__Output } from '../../raftkv/kv/AppendRequest.js';
import type { DeleteRequest as _raftkv_kv_DeleteRequest, DeleteRequest__Output as _raftkv_kv_DeleteRequest__Output } from '../../raftkv/kv/DeleteRequest.js';
import type { CasRequest as _raftkv_kv_CasRequest, CasRequest__Output as _raftkv_kv_CasRequest__Output } from '../../raftkv/kv/CasRequest.js';
import type { Long } from '@grpc/proto-loader';

export interface Call {
  /**
   * the client's; unique among its calls on this stream that are not answered yet
   */
  'id'?: (number | string | Long);
  /**
   * how long the client waits for the answer (its deadline); 0: no deadline
   */
  'timeoutMs'?: (number);
  'get'?: (_raftkv_kv_GetRequest | null);
  'put'?: (_raftkv_kv_PutRequest | null);
  'append'?: (_raftkv_kv_AppendRequest | null);
  'delete'?: (_raftkv_kv_DeleteRequest | null);
  'compareAndSwap'?: (_raftkv_kv_CasRequest | null);
  'request'?: "get"|"put"|"append"|"delete"|"compareAndSwap";
}

export interface Call__Output {
  /**
   * the client's; unique among its calls on this stream that are not answered yet
   */
  'id': (number);
  /**
   * how long the client waits for the answer (its deadline); 0: no deadline
   */
  'timeoutMs': (number);
  'get'?: (_raftkv_kv_GetRequest__Output | null);
  'put'?: (_raftkv_kv_PutRequest__Output | null);
  'append'?: (_raftkv_kv_AppendRequest__Output | null);
  'delete'?: (_raftkv_kv_DeleteRequest__Output | null);
  'compareAndSwap'?: (_raftkv_kv_CasRequest__Output | null);
}
