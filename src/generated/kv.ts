import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Answer as _raftkv_kv_Answer, Answer__Output as _raftkv_kv_Answer__Output } from './raftkv/kv/Answer.js';
import type { AnswerFrame as _raftkv_kv_AnswerFrame, AnswerFrame__Output as _raftkv_kv_AnswerFrame__Output } from './raftkv/kv/AnswerFrame.js';
import type { AppendRequest as _raftkv_kv_AppendRequest, AppendRequest__Output as _raftkv_kv_AppendRequest__Output } from './raftkv/kv/AppendRequest.js';
import type { AppendResponse as _raftkv_kv_AppendResponse, AppendResponse__Output as _raftkv_kv_AppendResponse__Output } from './raftkv/kv/AppendResponse.js';
import type { BackupChunk as _raftkv_kv_BackupChunk, BackupChunk__Output as _raftkv_kv_BackupChunk__Output } from './raftkv/kv/BackupChunk.js';
import type { BackupInfo as _raftkv_kv_BackupInfo, BackupInfo__Output as _raftkv_kv_BackupInfo__Output } from './raftkv/kv/BackupInfo.js';
import type { BackupRequest as _raftkv_kv_BackupRequest, BackupRequest__Output as _raftkv_kv_BackupRequest__Output } from './raftkv/kv/BackupRequest.js';
import type { Call as _raftkv_kv_Call, Call__Output as _raftkv_kv_Call__Output } from './raftkv/kv/Call.js';
import type { CallFrame as _raftkv_kv_CallFrame, CallFrame__Output as _raftkv_kv_CallFrame__Output } from './raftkv/kv/CallFrame.js';
import type { CasRequest as _raftkv_kv_CasRequest, CasRequest__Output as _raftkv_kv_CasRequest__Output } from './raftkv/kv/CasRequest.js';
import type { CasResponse as _raftkv_kv_CasResponse, CasResponse__Output as _raftkv_kv_CasResponse__Output } from './raftkv/kv/CasResponse.js';
import type { DeleteRequest as _raftkv_kv_DeleteRequest, DeleteRequest__Output as _raftkv_kv_DeleteRequest__Output } from './raftkv/kv/DeleteRequest.js';
import type { DeleteResponse as _raftkv_kv_DeleteResponse, DeleteResponse__Output as _raftkv_kv_DeleteResponse__Output } from './raftkv/kv/DeleteResponse.js';
import type { GetRequest as _raftkv_kv_GetRequest, GetRequest__Output as _raftkv_kv_GetRequest__Output } from './raftkv/kv/GetRequest.js';
import type { GetResponse as _raftkv_kv_GetResponse, GetResponse__Output as _raftkv_kv_GetResponse__Output } from './raftkv/kv/GetResponse.js';
import type { KvClient as _raftkv_kv_KvClient, KvDefinition as _raftkv_kv_KvDefinition } from './raftkv/kv/Kv.js';
import type { LeaderTransferRequest as _raftkv_kv_LeaderTransferRequest, LeaderTransferRequest__Output as _raftkv_kv_LeaderTransferRequest__Output } from './raftkv/kv/LeaderTransferRequest.js';
import type { LeaderTransferResponse as _raftkv_kv_LeaderTransferResponse, LeaderTransferResponse__Output as _raftkv_kv_LeaderTransferResponse__Output } from './raftkv/kv/LeaderTransferResponse.js';
import type { Load as _raftkv_kv_Load, Load__Output as _raftkv_kv_Load__Output } from './raftkv/kv/Load.js';
import type { Member as _raftkv_kv_Member, Member__Output as _raftkv_kv_Member__Output } from './raftkv/kv/Member.js';
import type { MemberAddRequest as _raftkv_kv_MemberAddRequest, MemberAddRequest__Output as _raftkv_kv_MemberAddRequest__Output } from './raftkv/kv/MemberAddRequest.js';
import type { MemberChangeResponse as _raftkv_kv_MemberChangeResponse, MemberChangeResponse__Output as _raftkv_kv_MemberChangeResponse__Output } from './raftkv/kv/MemberChangeResponse.js';
import type { MemberListRequest as _raftkv_kv_MemberListRequest, MemberListRequest__Output as _raftkv_kv_MemberListRequest__Output } from './raftkv/kv/MemberListRequest.js';
import type { MemberListResponse as _raftkv_kv_MemberListResponse, MemberListResponse__Output as _raftkv_kv_MemberListResponse__Output } from './raftkv/kv/MemberListResponse.js';
import type { MemberPromoteRequest as _raftkv_kv_MemberPromoteRequest, MemberPromoteRequest__Output as _raftkv_kv_MemberPromoteRequest__Output } from './raftkv/kv/MemberPromoteRequest.js';
import type { MemberRemoveRequest as _raftkv_kv_MemberRemoveRequest, MemberRemoveRequest__Output as _raftkv_kv_MemberRemoveRequest__Output } from './raftkv/kv/MemberRemoveRequest.js';
import type { PutRequest as _raftkv_kv_PutRequest, PutRequest__Output as _raftkv_kv_PutRequest__Output } from './raftkv/kv/PutRequest.js';
import type { PutResponse as _raftkv_kv_PutResponse, PutResponse__Output as _raftkv_kv_PutResponse__Output } from './raftkv/kv/PutResponse.js';
import type { Refusal as _raftkv_kv_Refusal, Refusal__Output as _raftkv_kv_Refusal__Output } from './raftkv/kv/Refusal.js';
import type { Session as _raftkv_kv_Session, Session__Output as _raftkv_kv_Session__Output } from './raftkv/kv/Session.js';
import type { SnapshotRequest as _raftkv_kv_SnapshotRequest, SnapshotRequest__Output as _raftkv_kv_SnapshotRequest__Output } from './raftkv/kv/SnapshotRequest.js';
import type { SnapshotResponse as _raftkv_kv_SnapshotResponse, SnapshotResponse__Output as _raftkv_kv_SnapshotResponse__Output } from './raftkv/kv/SnapshotResponse.js';
import type { StatusRequest as _raftkv_kv_StatusRequest, StatusRequest__Output as _raftkv_kv_StatusRequest__Output } from './raftkv/kv/StatusRequest.js';
import type { StatusResponse as _raftkv_kv_StatusResponse, StatusResponse__Output as _raftkv_kv_StatusResponse__Output } from './raftkv/kv/StatusResponse.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  raftkv: {
    kv: {
      Answer: MessageTypeDefinition<_raftkv_kv_Answer, _raftkv_kv_Answer__Output>
      AnswerFrame: MessageTypeDefinition<_raftkv_kv_AnswerFrame, _raftkv_kv_AnswerFrame__Output>
      AppendRequest: MessageTypeDefinition<_raftkv_kv_AppendRequest, _raftkv_kv_AppendRequest__Output>
      AppendResponse: MessageTypeDefinition<_raftkv_kv_AppendResponse, _raftkv_kv_AppendResponse__Output>
      BackupChunk: MessageTypeDefinition<_raftkv_kv_BackupChunk, _raftkv_kv_BackupChunk__Output>
      BackupInfo: MessageTypeDefinition<_raftkv_kv_BackupInfo, _raftkv_kv_BackupInfo__Output>
      BackupRequest: MessageTypeDefinition<_raftkv_kv_BackupRequest, _raftkv_kv_BackupRequest__Output>
      Call: MessageTypeDefinition<_raftkv_kv_Call, _raftkv_kv_Call__Output>
      CallFrame: MessageTypeDefinition<_raftkv_kv_CallFrame, _raftkv_kv_CallFrame__Output>
      CasRequest: MessageTypeDefinition<_raftkv_kv_CasRequest, _raftkv_kv_CasRequest__Output>
      CasResponse: MessageTypeDefinition<_raftkv_kv_CasResponse, _raftkv_kv_CasResponse__Output>
      DeleteRequest: MessageTypeDefinition<_raftkv_kv_DeleteRequest, _raftkv_kv_DeleteRequest__Output>
      DeleteResponse: MessageTypeDefinition<_raftkv_kv_DeleteResponse, _raftkv_kv_DeleteResponse__Output>
      GetRequest: MessageTypeDefinition<_raftkv_kv_GetRequest, _raftkv_kv_GetRequest__Output>
      GetResponse: MessageTypeDefinition<_raftkv_kv_GetResponse, _raftkv_kv_GetResponse__Output>
      Kv: SubtypeConstructor<typeof grpc.Client, _raftkv_kv_KvClient> & { service: _raftkv_kv_KvDefinition }
      LeaderTransferRequest: MessageTypeDefinition<_raftkv_kv_LeaderTransferRequest, _raftkv_kv_LeaderTransferRequest__Output>
      LeaderTransferResponse: MessageTypeDefinition<_raftkv_kv_LeaderTransferResponse, _raftkv_kv_LeaderTransferResponse__Output>
      Load: MessageTypeDefinition<_raftkv_kv_Load, _raftkv_kv_Load__Output>
      Member: MessageTypeDefinition<_raftkv_kv_Member, _raftkv_kv_Member__Output>
      MemberAddRequest: MessageTypeDefinition<_raftkv_kv_MemberAddRequest, _raftkv_kv_MemberAddRequest__Output>
      MemberChangeResponse: MessageTypeDefinition<_raftkv_kv_MemberChangeResponse, _raftkv_kv_MemberChangeResponse__Output>
      MemberListRequest: MessageTypeDefinition<_raftkv_kv_MemberListRequest, _raftkv_kv_MemberListRequest__Output>
      MemberListResponse: MessageTypeDefinition<_raftkv_kv_MemberListResponse, _raftkv_kv_MemberListResponse__Output>
      MemberPromoteRequest: MessageTypeDefinition<_raftkv_kv_MemberPromoteRequest, _raftkv_kv_MemberPromoteRequest__Output>
      MemberRemoveRequest: MessageTypeDefinition<_raftkv_kv_MemberRemoveRequest, _raftkv_kv_MemberRemoveRequest__Output>
      PutRequest: MessageTypeDefinition<_raftkv_kv_PutRequest, _raftkv_kv_PutRequest__Output>
      PutResponse: MessageTypeDefinition<_raftkv_kv_PutResponse, _raftkv_kv_PutResponse__Output>
      Refusal: MessageTypeDefinition<_raftkv_kv_Refusal, _raftkv_kv_Refusal__Output>
      Session: MessageTypeDefinition<_raftkv_kv_Session, _raftkv_kv_Session__Output>
      SnapshotRequest: MessageTypeDefinition<_raftkv_kv_SnapshotRequest, _raftkv_kv_SnapshotRequest__Output>
      SnapshotResponse: MessageTypeDefinition<_raftkv_kv_SnapshotResponse, _raftkv_kv_SnapshotResponse__Output>
      StatusRequest: MessageTypeDefinition<_raftkv_kv_StatusRequest, _raftkv_kv_StatusRequest__Output>
      StatusResponse: MessageTypeDefinition<_raftkv_kv_StatusResponse, _raftkv_kv_StatusResponse__Output>
    }
  }
}

