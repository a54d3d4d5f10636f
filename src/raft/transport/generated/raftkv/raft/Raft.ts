// Original file: proto/raft.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { RaftBatch as _raftkv_raft_RaftBatch, RaftBatch__Output as _raftkv_raft_RaftBatch__Output } from '../../raftkv/raft/RaftBatch.js';
import type { StreamAck as _raftkv_raft_StreamAck, StreamAck__Output as _raftkv_raft_StreamAck__Output } from '../../raftkv/raft/StreamAck.js';

export interface RaftClient extends grpc.Client {
  /**
   * One long-lived stream from a node to one peer. The receiver answers with response headers
   * as soon as it accepts the stream (the sender's "connected" signal) and ends it with a
   * status: OK on a clean close, FAILED_PRECONDITION for a batch from another cluster,
   * UNAVAILABLE when shutting down.
   */
  Stream(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  Stream(metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  Stream(options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  Stream(callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  /**
   * One long-lived stream from a node to one peer. The receiver answers with response headers
   * as soon as it accepts the stream (the sender's "connected" signal) and ends it with a
   * status: OK on a clean close, FAILED_PRECONDITION for a batch from another cluster,
   * UNAVAILABLE when shutting down.
   */
  stream(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  stream(metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  stream(options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  stream(callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  
}

export interface RaftHandlers extends grpc.UntypedServiceImplementation {
  /**
   * One long-lived stream from a node to one peer. The receiver answers with response headers
   * as soon as it accepts the stream (the sender's "connected" signal) and ends it with a
   * status: OK on a clean close, FAILED_PRECONDITION for a batch from another cluster,
   * UNAVAILABLE when shutting down.
   */
  Stream: grpc.handleClientStreamingCall<_raftkv_raft_RaftBatch__Output, _raftkv_raft_StreamAck>;
  
}

export interface RaftDefinition extends grpc.ServiceDefinition {
  Stream: MethodDefinition<_raftkv_raft_RaftBatch, _raftkv_raft_StreamAck, _raftkv_raft_RaftBatch__Output, _raftkv_raft_StreamAck__Output>
}
