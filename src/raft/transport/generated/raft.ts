import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ConfState as _raftkv_raft_ConfState, ConfState__Output as _raftkv_raft_ConfState__Output } from './raftkv/raft/ConfState.js';
import type { Entry as _raftkv_raft_Entry, Entry__Output as _raftkv_raft_Entry__Output } from './raftkv/raft/Entry.js';
import type { ForwardReply as _raftkv_raft_ForwardReply, ForwardReply__Output as _raftkv_raft_ForwardReply__Output } from './raftkv/raft/ForwardReply.js';
import type { ForwardRequest as _raftkv_raft_ForwardRequest, ForwardRequest__Output as _raftkv_raft_ForwardRequest__Output } from './raftkv/raft/ForwardRequest.js';
import type { RaftClient as _raftkv_raft_RaftClient, RaftDefinition as _raftkv_raft_RaftDefinition } from './raftkv/raft/Raft.js';
import type { RaftBatch as _raftkv_raft_RaftBatch, RaftBatch__Output as _raftkv_raft_RaftBatch__Output } from './raftkv/raft/RaftBatch.js';
import type { RaftMessage as _raftkv_raft_RaftMessage, RaftMessage__Output as _raftkv_raft_RaftMessage__Output } from './raftkv/raft/RaftMessage.js';
import type { SnapshotAck as _raftkv_raft_SnapshotAck, SnapshotAck__Output as _raftkv_raft_SnapshotAck__Output } from './raftkv/raft/SnapshotAck.js';
import type { SnapshotChunk as _raftkv_raft_SnapshotChunk, SnapshotChunk__Output as _raftkv_raft_SnapshotChunk__Output } from './raftkv/raft/SnapshotChunk.js';
import type { StreamAck as _raftkv_raft_StreamAck, StreamAck__Output as _raftkv_raft_StreamAck__Output } from './raftkv/raft/StreamAck.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  raftkv: {
    raft: {
      ConfState: MessageTypeDefinition<_raftkv_raft_ConfState, _raftkv_raft_ConfState__Output>
      Entry: MessageTypeDefinition<_raftkv_raft_Entry, _raftkv_raft_Entry__Output>
      EntryType: EnumTypeDefinition
      ForwardReply: MessageTypeDefinition<_raftkv_raft_ForwardReply, _raftkv_raft_ForwardReply__Output>
      ForwardRequest: MessageTypeDefinition<_raftkv_raft_ForwardRequest, _raftkv_raft_ForwardRequest__Output>
      MessageType: EnumTypeDefinition
      Raft: SubtypeConstructor<typeof grpc.Client, _raftkv_raft_RaftClient> & { service: _raftkv_raft_RaftDefinition }
      RaftBatch: MessageTypeDefinition<_raftkv_raft_RaftBatch, _raftkv_raft_RaftBatch__Output>
      RaftMessage: MessageTypeDefinition<_raftkv_raft_RaftMessage, _raftkv_raft_RaftMessage__Output>
      SnapshotAck: MessageTypeDefinition<_raftkv_raft_SnapshotAck, _raftkv_raft_SnapshotAck__Output>
      SnapshotChunk: MessageTypeDefinition<_raftkv_raft_SnapshotChunk, _raftkv_raft_SnapshotChunk__Output>
      StreamAck: MessageTypeDefinition<_raftkv_raft_StreamAck, _raftkv_raft_StreamAck__Output>
    }
  }
}

