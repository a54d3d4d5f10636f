// Original file: proto/kv.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AnswerFrame as _raftkv_kv_AnswerFrame, AnswerFrame__Output as _raftkv_kv_AnswerFrame__Output } from '../../raftkv/kv/AnswerFrame.js';
import type { AppendRequest as _raftkv_kv_AppendRequest, AppendRequest__Output as _raftkv_kv_AppendRequest__Output } from '../../raftkv/kv/AppendRequest.js';
import type { AppendResponse as _raftkv_kv_AppendResponse, AppendResponse__Output as _raftkv_kv_AppendResponse__Output } from '../../raftkv/kv/AppendResponse.js';
import type { BackupChunk as _raftkv_kv_BackupChunk, BackupChunk__Output as _raftkv_kv_BackupChunk__Output } from '../../raftkv/kv/BackupChunk.js';
import type { BackupRequest as _raftkv_kv_BackupRequest, BackupRequest__Output as _raftkv_kv_BackupRequest__Output } from '../../raftkv/kv/BackupRequest.js';
import type { CallFrame as _raftkv_kv_CallFrame, CallFrame__Output as _raftkv_kv_CallFrame__Output } from '../../raftkv/kv/CallFrame.js';
import type { CasRequest as _raftkv_kv_CasRequest, CasRequest__Output as _raftkv_kv_CasRequest__Output } from '../../raftkv/kv/CasRequest.js';
import type { CasResponse as _raftkv_kv_CasResponse, CasResponse__Output as _raftkv_kv_CasResponse__Output } from '../../raftkv/kv/CasResponse.js';
import type { DeleteRequest as _raftkv_kv_DeleteRequest, DeleteRequest__Output as _raftkv_kv_DeleteRequest__Output } from '../../raftkv/kv/DeleteRequest.js';
import type { DeleteResponse as _raftkv_kv_DeleteResponse, DeleteResponse__Output as _raftkv_kv_DeleteResponse__Output } from '../../raftkv/kv/DeleteResponse.js';
import type { GetRequest as _raftkv_kv_GetRequest, GetRequest__Output as _raftkv_kv_GetRequest__Output } from '../../raftkv/kv/GetRequest.js';
import type { GetResponse as _raftkv_kv_GetResponse, GetResponse__Output as _raftkv_kv_GetResponse__Output } from '../../raftkv/kv/GetResponse.js';
import type { LeaderTransferRequest as _raftkv_kv_LeaderTransferRequest, LeaderTransferRequest__Output as _raftkv_kv_LeaderTransferRequest__Output } from '../../raftkv/kv/LeaderTransferRequest.js';
import type { LeaderTransferResponse as _raftkv_kv_LeaderTransferResponse, LeaderTransferResponse__Output as _raftkv_kv_LeaderTransferResponse__Output } from '../../raftkv/kv/LeaderTransferResponse.js';
import type { MemberAddRequest as _raftkv_kv_MemberAddRequest, MemberAddRequest__Output as _raftkv_kv_MemberAddRequest__Output } from '../../raftkv/kv/MemberAddRequest.js';
import type { MemberChangeResponse as _raftkv_kv_MemberChangeResponse, MemberChangeResponse__Output as _raftkv_kv_MemberChangeResponse__Output } from '../../raftkv/kv/MemberChangeResponse.js';
import type { MemberListRequest as _raftkv_kv_MemberListRequest, MemberListRequest__Output as _raftkv_kv_MemberListRequest__Output } from '../../raftkv/kv/MemberListRequest.js';
import type { MemberListResponse as _raftkv_kv_MemberListResponse, MemberListResponse__Output as _raftkv_kv_MemberListResponse__Output } from '../../raftkv/kv/MemberListResponse.js';
import type { MemberPromoteRequest as _raftkv_kv_MemberPromoteRequest, MemberPromoteRequest__Output as _raftkv_kv_MemberPromoteRequest__Output } from '../../raftkv/kv/MemberPromoteRequest.js';
import type { MemberRemoveRequest as _raftkv_kv_MemberRemoveRequest, MemberRemoveRequest__Output as _raftkv_kv_MemberRemoveRequest__Output } from '../../raftkv/kv/MemberRemoveRequest.js';
import type { PutRequest as _raftkv_kv_PutRequest, PutRequest__Output as _raftkv_kv_PutRequest__Output } from '../../raftkv/kv/PutRequest.js';
import type { PutResponse as _raftkv_kv_PutResponse, PutResponse__Output as _raftkv_kv_PutResponse__Output } from '../../raftkv/kv/PutResponse.js';
import type { SnapshotRequest as _raftkv_kv_SnapshotRequest, SnapshotRequest__Output as _raftkv_kv_SnapshotRequest__Output } from '../../raftkv/kv/SnapshotRequest.js';
import type { SnapshotResponse as _raftkv_kv_SnapshotResponse, SnapshotResponse__Output as _raftkv_kv_SnapshotResponse__Output } from '../../raftkv/kv/SnapshotResponse.js';
import type { StatusRequest as _raftkv_kv_StatusRequest, StatusRequest__Output as _raftkv_kv_StatusRequest__Output } from '../../raftkv/kv/StatusRequest.js';
import type { StatusResponse as _raftkv_kv_StatusResponse, StatusResponse__Output as _raftkv_kv_StatusResponse__Output } from '../../raftkv/kv/StatusResponse.js';

export interface KvClient extends grpc.Client {
  Append(argument: _raftkv_kv_AppendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  Append(argument: _raftkv_kv_AppendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  Append(argument: _raftkv_kv_AppendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  Append(argument: _raftkv_kv_AppendRequest, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  append(argument: _raftkv_kv_AppendRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  append(argument: _raftkv_kv_AppendRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  append(argument: _raftkv_kv_AppendRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  append(argument: _raftkv_kv_AppendRequest, callback: grpc.requestCallback<_raftkv_kv_AppendResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Admin: a consistent backup of the whole state, for kv-server --restore. Served by the leader
   * only; other nodes refuse it like writes (with the leader hint). The state is the leader's as
   * of an applied index at least the commit index a ReadIndex round confirmed after the call
   * arrived, so it holds every write acknowledged before the call. The file is a snapshot file
   * (proto/snapshot.proto behind a 24-byte header): the stream is one `info`, then the file's
   * bytes after the header as `data`, in order, then the `header`, last (it holds the body's
   * length and checksum, known only at the end). A backup over the server's limit (1 GiB) fails
   * with RESOURCE_EXHAUSTED.
   */
  Backup(argument: _raftkv_kv_BackupRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_raftkv_kv_BackupChunk__Output>;
  Backup(argument: _raftkv_kv_BackupRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_raftkv_kv_BackupChunk__Output>;
  /**
   * Admin: a consistent backup of the whole state, for kv-server --restore. Served by the leader
   * only; other nodes refuse it like writes (with the leader hint). The state is the leader's as
   * of an applied index at least the commit index a ReadIndex round confirmed after the call
   * arrived, so it holds every write acknowledged before the call. The file is a snapshot file
   * (proto/snapshot.proto behind a 24-byte header): the stream is one `info`, then the file's
   * bytes after the header as `data`, in order, then the `header`, last (it holds the body's
   * length and checksum, known only at the end). A backup over the server's limit (1 GiB) fails
   * with RESOURCE_EXHAUSTED.
   */
  backup(argument: _raftkv_kv_BackupRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_raftkv_kv_BackupChunk__Output>;
  backup(argument: _raftkv_kv_BackupRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_raftkv_kv_BackupChunk__Output>;
  
  /**
   * The data calls (Get, Put, Append, Delete, CompareAndSwap) on one long-lived stream: each Call
   * carries an id the client chose, each Answer the id it answers, in any order; calls and
   * answers that are ready together travel in one frame. Each call is served exactly as its unary
   * RPC is, with the same refusals (as a Refusal: the gRPC status code, details and the reason
   * and leader address the unary RPC sends as trailers), so a client can mix both. The SDK uses
   * this stream, and the unary RPCs with a server that answers it UNIMPLEMENTED. A node answers
   * at most 4096 calls of one stream at once; beyond, a call is refused as overloaded.
   */
  Calls(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_raftkv_kv_CallFrame, _raftkv_kv_AnswerFrame__Output>;
  Calls(options?: grpc.CallOptions): grpc.ClientDuplexStream<_raftkv_kv_CallFrame, _raftkv_kv_AnswerFrame__Output>;
  /**
   * The data calls (Get, Put, Append, Delete, CompareAndSwap) on one long-lived stream: each Call
   * carries an id the client chose, each Answer the id it answers, in any order; calls and
   * answers that are ready together travel in one frame. Each call is served exactly as its unary
   * RPC is, with the same refusals (as a Refusal: the gRPC status code, details and the reason
   * and leader address the unary RPC sends as trailers), so a client can mix both. The SDK uses
   * this stream, and the unary RPCs with a server that answers it UNIMPLEMENTED. A node answers
   * at most 4096 calls of one stream at once; beyond, a call is refused as overloaded.
   */
  calls(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_raftkv_kv_CallFrame, _raftkv_kv_AnswerFrame__Output>;
  calls(options?: grpc.CallOptions): grpc.ClientDuplexStream<_raftkv_kv_CallFrame, _raftkv_kv_AnswerFrame__Output>;
  
  /**
   * Sets `value` only if the current value equals `expected` (an absent key equals nothing).
   */
  CompareAndSwap(argument: _raftkv_kv_CasRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  CompareAndSwap(argument: _raftkv_kv_CasRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  CompareAndSwap(argument: _raftkv_kv_CasRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  CompareAndSwap(argument: _raftkv_kv_CasRequest, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Sets `value` only if the current value equals `expected` (an absent key equals nothing).
   */
  compareAndSwap(argument: _raftkv_kv_CasRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  compareAndSwap(argument: _raftkv_kv_CasRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  compareAndSwap(argument: _raftkv_kv_CasRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  compareAndSwap(argument: _raftkv_kv_CasRequest, callback: grpc.requestCallback<_raftkv_kv_CasResponse__Output>): grpc.ClientUnaryCall;
  
  Delete(argument: _raftkv_kv_DeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _raftkv_kv_DeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _raftkv_kv_DeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  Delete(argument: _raftkv_kv_DeleteRequest, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _raftkv_kv_DeleteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _raftkv_kv_DeleteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _raftkv_kv_DeleteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  delete(argument: _raftkv_kv_DeleteRequest, callback: grpc.requestCallback<_raftkv_kv_DeleteResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Linearizable read (ReadIndex: confirmed by a heartbeat round, nothing written to the log).
   */
  Get(argument: _raftkv_kv_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _raftkv_kv_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _raftkv_kv_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  Get(argument: _raftkv_kv_GetRequest, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Linearizable read (ReadIndex: confirmed by a heartbeat round, nothing written to the log).
   */
  get(argument: _raftkv_kv_GetRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _raftkv_kv_GetRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _raftkv_kv_GetRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  get(argument: _raftkv_kv_GetRequest, callback: grpc.requestCallback<_raftkv_kv_GetResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Hands leadership to a voter (id 0: the most up-to-date one); answers once it leads.
   */
  LeaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  LeaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  LeaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  LeaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Hands leadership to a voter (id 0: the most up-to-date one); answers once it leads.
   */
  leaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  leaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  leaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  leaderTransfer(argument: _raftkv_kv_LeaderTransferRequest, callback: grpc.requestCallback<_raftkv_kv_LeaderTransferResponse__Output>): grpc.ClientUnaryCall;
  
  MemberAdd(argument: _raftkv_kv_MemberAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberAdd(argument: _raftkv_kv_MemberAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberAdd(argument: _raftkv_kv_MemberAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberAdd(argument: _raftkv_kv_MemberAddRequest, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberAdd(argument: _raftkv_kv_MemberAddRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberAdd(argument: _raftkv_kv_MemberAddRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberAdd(argument: _raftkv_kv_MemberAddRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberAdd(argument: _raftkv_kv_MemberAddRequest, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Membership (Raft thesis ch. 4). MemberList is answered by any node from the configuration it
   * has applied (the leader's answer adds each member's match index and activity). The changes and
   * LeaderTransfer are served by the leader only; other nodes refuse them like writes (with the
   * leader hint). A change answers once it is applied on the leader; a refused change (one pending
   * already, unknown node, would lose quorum, ...) fails with FAILED_PRECONDITION, `raftkv-error:
   * conf-refused`, and says why, having changed nothing. A change the leader proposed and stopped
   * leading before it applied fails with UNAVAILABLE, `raftkv-error: outcome-unknown`: it may
   * still take effect (MemberList tells).
   */
  MemberList(argument: _raftkv_kv_MemberListRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  MemberList(argument: _raftkv_kv_MemberListRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  MemberList(argument: _raftkv_kv_MemberListRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  MemberList(argument: _raftkv_kv_MemberListRequest, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Membership (Raft thesis ch. 4). MemberList is answered by any node from the configuration it
   * has applied (the leader's answer adds each member's match index and activity). The changes and
   * LeaderTransfer are served by the leader only; other nodes refuse them like writes (with the
   * leader hint). A change answers once it is applied on the leader; a refused change (one pending
   * already, unknown node, would lose quorum, ...) fails with FAILED_PRECONDITION, `raftkv-error:
   * conf-refused`, and says why, having changed nothing. A change the leader proposed and stopped
   * leading before it applied fails with UNAVAILABLE, `raftkv-error: outcome-unknown`: it may
   * still take effect (MemberList tells).
   */
  memberList(argument: _raftkv_kv_MemberListRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  memberList(argument: _raftkv_kv_MemberListRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  memberList(argument: _raftkv_kv_MemberListRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  memberList(argument: _raftkv_kv_MemberListRequest, callback: grpc.requestCallback<_raftkv_kv_MemberListResponse__Output>): grpc.ClientUnaryCall;
  
  MemberPromote(argument: _raftkv_kv_MemberPromoteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberPromote(argument: _raftkv_kv_MemberPromoteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberPromote(argument: _raftkv_kv_MemberPromoteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberPromote(argument: _raftkv_kv_MemberPromoteRequest, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberPromote(argument: _raftkv_kv_MemberPromoteRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberPromote(argument: _raftkv_kv_MemberPromoteRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberPromote(argument: _raftkv_kv_MemberPromoteRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberPromote(argument: _raftkv_kv_MemberPromoteRequest, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  
  MemberRemove(argument: _raftkv_kv_MemberRemoveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberRemove(argument: _raftkv_kv_MemberRemoveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberRemove(argument: _raftkv_kv_MemberRemoveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  MemberRemove(argument: _raftkv_kv_MemberRemoveRequest, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberRemove(argument: _raftkv_kv_MemberRemoveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberRemove(argument: _raftkv_kv_MemberRemoveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberRemove(argument: _raftkv_kv_MemberRemoveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  memberRemove(argument: _raftkv_kv_MemberRemoveRequest, callback: grpc.requestCallback<_raftkv_kv_MemberChangeResponse__Output>): grpc.ClientUnaryCall;
  
  Put(argument: _raftkv_kv_PutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  Put(argument: _raftkv_kv_PutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  Put(argument: _raftkv_kv_PutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  Put(argument: _raftkv_kv_PutRequest, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _raftkv_kv_PutRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _raftkv_kv_PutRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _raftkv_kv_PutRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  put(argument: _raftkv_kv_PutRequest, callback: grpc.requestCallback<_raftkv_kv_PutResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Admin: this node takes a snapshot of its state now and compacts its log (any node, leader
   * or not). Answers once the snapshot is durable.
   */
  Snapshot(argument: _raftkv_kv_SnapshotRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  Snapshot(argument: _raftkv_kv_SnapshotRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  Snapshot(argument: _raftkv_kv_SnapshotRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  Snapshot(argument: _raftkv_kv_SnapshotRequest, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Admin: this node takes a snapshot of its state now and compacts its log (any node, leader
   * or not). Answers once the snapshot is durable.
   */
  snapshot(argument: _raftkv_kv_SnapshotRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  snapshot(argument: _raftkv_kv_SnapshotRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  snapshot(argument: _raftkv_kv_SnapshotRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  snapshot(argument: _raftkv_kv_SnapshotRequest, callback: grpc.requestCallback<_raftkv_kv_SnapshotResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * This node's view; answered by any node, leader or not.
   */
  Status(argument: _raftkv_kv_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _raftkv_kv_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _raftkv_kv_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  Status(argument: _raftkv_kv_StatusRequest, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  /**
   * This node's view; answered by any node, leader or not.
   */
  status(argument: _raftkv_kv_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _raftkv_kv_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _raftkv_kv_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  status(argument: _raftkv_kv_StatusRequest, callback: grpc.requestCallback<_raftkv_kv_StatusResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface KvHandlers extends grpc.UntypedServiceImplementation {
  Append: grpc.handleUnaryCall<_raftkv_kv_AppendRequest__Output, _raftkv_kv_AppendResponse>;
  
  /**
   * Admin: a consistent backup of the whole state, for kv-server --restore. Served by the leader
   * only; other nodes refuse it like writes (with the leader hint). The state is the leader's as
   * of an applied index at least the commit index a ReadIndex round confirmed after the call
   * arrived, so it holds every write acknowledged before the call. The file is a snapshot file
   * (proto/snapshot.proto behind a 24-byte header): the stream is one `info`, then the file's
   * bytes after the header as `data`, in order, then the `header`, last (it holds the body's
   * length and checksum, known only at the end). A backup over the server's limit (1 GiB) fails
   * with RESOURCE_EXHAUSTED.
   */
  Backup: grpc.handleServerStreamingCall<_raftkv_kv_BackupRequest__Output, _raftkv_kv_BackupChunk>;
  
  /**
   * The data calls (Get, Put, Append, Delete, CompareAndSwap) on one long-lived stream: each Call
   * carries an id the client chose, each Answer the id it answers, in any order; calls and
   * answers that are ready together travel in one frame. Each call is served exactly as its unary
   * RPC is, with the same refusals (as a Refusal: the gRPC status code, details and the reason
   * and leader address the unary RPC sends as trailers), so a client can mix both. The SDK uses
   * this stream, and the unary RPCs with a server that answers it UNIMPLEMENTED. A node answers
   * at most 4096 calls of one stream at once; beyond, a call is refused as overloaded.
   */
  Calls: grpc.handleBidiStreamingCall<_raftkv_kv_CallFrame__Output, _raftkv_kv_AnswerFrame>;
  
  /**
   * Sets `value` only if the current value equals `expected` (an absent key equals nothing).
   */
  CompareAndSwap: grpc.handleUnaryCall<_raftkv_kv_CasRequest__Output, _raftkv_kv_CasResponse>;
  
  Delete: grpc.handleUnaryCall<_raftkv_kv_DeleteRequest__Output, _raftkv_kv_DeleteResponse>;
  
  /**
   * Linearizable read (ReadIndex: confirmed by a heartbeat round, nothing written to the log).
   */
  Get: grpc.handleUnaryCall<_raftkv_kv_GetRequest__Output, _raftkv_kv_GetResponse>;
  
  /**
   * Hands leadership to a voter (id 0: the most up-to-date one); answers once it leads.
   */
  LeaderTransfer: grpc.handleUnaryCall<_raftkv_kv_LeaderTransferRequest__Output, _raftkv_kv_LeaderTransferResponse>;
  
  MemberAdd: grpc.handleUnaryCall<_raftkv_kv_MemberAddRequest__Output, _raftkv_kv_MemberChangeResponse>;
  
  /**
   * Membership (Raft thesis ch. 4). MemberList is answered by any node from the configuration it
   * has applied (the leader's answer adds each member's match index and activity). The changes and
   * LeaderTransfer are served by the leader only; other nodes refuse them like writes (with the
   * leader hint). A change answers once it is applied on the leader; a refused change (one pending
   * already, unknown node, would lose quorum, ...) fails with FAILED_PRECONDITION, `raftkv-error:
   * conf-refused`, and says why, having changed nothing. A change the leader proposed and stopped
   * leading before it applied fails with UNAVAILABLE, `raftkv-error: outcome-unknown`: it may
   * still take effect (MemberList tells).
   */
  MemberList: grpc.handleUnaryCall<_raftkv_kv_MemberListRequest__Output, _raftkv_kv_MemberListResponse>;
  
  MemberPromote: grpc.handleUnaryCall<_raftkv_kv_MemberPromoteRequest__Output, _raftkv_kv_MemberChangeResponse>;
  
  MemberRemove: grpc.handleUnaryCall<_raftkv_kv_MemberRemoveRequest__Output, _raftkv_kv_MemberChangeResponse>;
  
  Put: grpc.handleUnaryCall<_raftkv_kv_PutRequest__Output, _raftkv_kv_PutResponse>;
  
  /**
   * Admin: this node takes a snapshot of its state now and compacts its log (any node, leader
   * or not). Answers once the snapshot is durable.
   */
  Snapshot: grpc.handleUnaryCall<_raftkv_kv_SnapshotRequest__Output, _raftkv_kv_SnapshotResponse>;
  
  /**
   * This node's view; answered by any node, leader or not.
   */
  Status: grpc.handleUnaryCall<_raftkv_kv_StatusRequest__Output, _raftkv_kv_StatusResponse>;
  
}

export interface KvDefinition extends grpc.ServiceDefinition {
  Append: MethodDefinition<_raftkv_kv_AppendRequest, _raftkv_kv_AppendResponse, _raftkv_kv_AppendRequest__Output, _raftkv_kv_AppendResponse__Output>
  Backup: MethodDefinition<_raftkv_kv_BackupRequest, _raftkv_kv_BackupChunk, _raftkv_kv_BackupRequest__Output, _raftkv_kv_BackupChunk__Output>
  Calls: MethodDefinition<_raftkv_kv_CallFrame, _raftkv_kv_AnswerFrame, _raftkv_kv_CallFrame__Output, _raftkv_kv_AnswerFrame__Output>
  CompareAndSwap: MethodDefinition<_raftkv_kv_CasRequest, _raftkv_kv_CasResponse, _raftkv_kv_CasRequest__Output, _raftkv_kv_CasResponse__Output>
  Delete: MethodDefinition<_raftkv_kv_DeleteRequest, _raftkv_kv_DeleteResponse, _raftkv_kv_DeleteRequest__Output, _raftkv_kv_DeleteResponse__Output>
  Get: MethodDefinition<_raftkv_kv_GetRequest, _raftkv_kv_GetResponse, _raftkv_kv_GetRequest__Output, _raftkv_kv_GetResponse__Output>
  LeaderTransfer: MethodDefinition<_raftkv_kv_LeaderTransferRequest, _raftkv_kv_LeaderTransferResponse, _raftkv_kv_LeaderTransferRequest__Output, _raftkv_kv_LeaderTransferResponse__Output>
  MemberAdd: MethodDefinition<_raftkv_kv_MemberAddRequest, _raftkv_kv_MemberChangeResponse, _raftkv_kv_MemberAddRequest__Output, _raftkv_kv_MemberChangeResponse__Output>
  MemberList: MethodDefinition<_raftkv_kv_MemberListRequest, _raftkv_kv_MemberListResponse, _raftkv_kv_MemberListRequest__Output, _raftkv_kv_MemberListResponse__Output>
  MemberPromote: MethodDefinition<_raftkv_kv_MemberPromoteRequest, _raftkv_kv_MemberChangeResponse, _raftkv_kv_MemberPromoteRequest__Output, _raftkv_kv_MemberChangeResponse__Output>
  MemberRemove: MethodDefinition<_raftkv_kv_MemberRemoveRequest, _raftkv_kv_MemberChangeResponse, _raftkv_kv_MemberRemoveRequest__Output, _raftkv_kv_MemberChangeResponse__Output>
  Put: MethodDefinition<_raftkv_kv_PutRequest, _raftkv_kv_PutResponse, _raftkv_kv_PutRequest__Output, _raftkv_kv_PutResponse__Output>
  Snapshot: MethodDefinition<_raftkv_kv_SnapshotRequest, _raftkv_kv_SnapshotResponse, _raftkv_kv_SnapshotRequest__Output, _raftkv_kv_SnapshotResponse__Output>
  Status: MethodDefinition<_raftkv_kv_StatusRequest, _raftkv_kv_StatusResponse, _raftkv_kv_StatusRequest__Output, _raftkv_kv_StatusResponse__Output>
}
