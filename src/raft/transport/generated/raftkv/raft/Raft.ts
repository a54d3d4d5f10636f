// Original file: proto/raft.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ForwardReply as _raftkv_raft_ForwardReply, ForwardReply__Output as _raftkv_raft_ForwardReply__Output } from '../../raftkv/raft/ForwardReply.js';
import type { ForwardRequest as _raftkv_raft_ForwardRequest, ForwardRequest__Output as _raftkv_raft_ForwardRequest__Output } from '../../raftkv/raft/ForwardRequest.js';
import type { RaftBatch as _raftkv_raft_RaftBatch, RaftBatch__Output as _raftkv_raft_RaftBatch__Output } from '../../raftkv/raft/RaftBatch.js';
import type { SnapshotAck as _raftkv_raft_SnapshotAck, SnapshotAck__Output as _raftkv_raft_SnapshotAck__Output } from '../../raftkv/raft/SnapshotAck.js';
import type { SnapshotChunk as _raftkv_raft_SnapshotChunk, SnapshotChunk__Output as _raftkv_raft_SnapshotChunk__Output } from '../../raftkv/raft/SnapshotChunk.js';
import type { StreamAck as _raftkv_raft_StreamAck, StreamAck__Output as _raftkv_raft_StreamAck__Output } from '../../raftkv/raft/StreamAck.js';

export interface RaftClient extends grpc.Client {
  /**
   * A client's call forwarded by a follower to the leader (see ForwardRequest). The status is OK
   * whenever the call reached the leader's service, refused or not; FAILED_PRECONDITION for a
   * call from another cluster or a node that is not a peer, INVALID_ARGUMENT for a malformed
   * one, UNAVAILABLE while the receiver starts or stops.
   */
  Forward(argument: _raftkv_raft_ForwardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  Forward(argument: _raftkv_raft_ForwardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  Forward(argument: _raftkv_raft_ForwardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  Forward(argument: _raftkv_raft_ForwardRequest, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  /**
   * A client's call forwarded by a follower to the leader (see ForwardRequest). The status is OK
   * whenever the call reached the leader's service, refused or not; FAILED_PRECONDITION for a
   * call from another cluster or a node that is not a peer, INVALID_ARGUMENT for a malformed
   * one, UNAVAILABLE while the receiver starts or stops.
   */
  forward(argument: _raftkv_raft_ForwardRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  forward(argument: _raftkv_raft_ForwardRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  forward(argument: _raftkv_raft_ForwardRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  forward(argument: _raftkv_raft_ForwardRequest, callback: grpc.requestCallback<_raftkv_raft_ForwardReply__Output>): grpc.ClientUnaryCall;
  
  /**
   * One snapshot from a leader to one follower (one call per snapshot; a new call from the same
   * sender supersedes an unfinished one). The receiver reassembles the chunks and, once the last
   * one arrives with every byte, hands the snapshot to its node and answers SnapshotAck. Any
   * other outcome delivers nothing and ends the call with a status: FAILED_PRECONDITION for
   * another cluster, a misaddressed message or a receiver without a snapshot handler;
   * INVALID_ARGUMENT for a malformed transfer (bad message, gap, overlap, size mismatch, missing
   * last chunk); RESOURCE_EXHAUSTED for a snapshot over the receiver's maxSnapshotBytes;
   * ABORTED when superseded; INTERNAL when the receiving node's handler failed; UNAVAILABLE when
   * shutting down.
   */
  InstallSnapshot(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  InstallSnapshot(metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  InstallSnapshot(options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  InstallSnapshot(callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  /**
   * One snapshot from a leader to one follower (one call per snapshot; a new call from the same
   * sender supersedes an unfinished one). The receiver reassembles the chunks and, once the last
   * one arrives with every byte, hands the snapshot to its node and answers SnapshotAck. Any
   * other outcome delivers nothing and ends the call with a status: FAILED_PRECONDITION for
   * another cluster, a misaddressed message or a receiver without a snapshot handler;
   * INVALID_ARGUMENT for a malformed transfer (bad message, gap, overlap, size mismatch, missing
   * last chunk); RESOURCE_EXHAUSTED for a snapshot over the receiver's maxSnapshotBytes;
   * ABORTED when superseded; INTERNAL when the receiving node's handler failed; UNAVAILABLE when
   * shutting down.
   */
  installSnapshot(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  installSnapshot(metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  installSnapshot(options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  installSnapshot(callback: grpc.requestCallback<_raftkv_raft_SnapshotAck__Output>): grpc.ClientWritableStream<_raftkv_raft_SnapshotChunk>;
  
  /**
   * A long-lived stream from a node to one peer; a node keeps two per peer, each on a connection
   * of its own: one for appends, one for the other messages. The receiver answers with response headers
   * as soon as it accepts the stream (the sender's "connected" signal) and ends it with a
   * status: OK on a clean close, FAILED_PRECONDITION for a batch from another cluster,
   * UNAVAILABLE when shutting down.
   */
  Stream(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  Stream(metadata: grpc.Metadata, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  Stream(options: grpc.CallOptions, callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  Stream(callback: grpc.requestCallback<_raftkv_raft_StreamAck__Output>): grpc.ClientWritableStream<_raftkv_raft_RaftBatch>;
  /**
   * A long-lived stream from a node to one peer; a node keeps two per peer, each on a connection
   * of its own: one for appends, one for the other messages. The receiver answers with response headers
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
   * A client's call forwarded by a follower to the leader (see ForwardRequest). The status is OK
   * whenever the call reached the leader's service, refused or not; FAILED_PRECONDITION for a
   * call from another cluster or a node that is not a peer, INVALID_ARGUMENT for a malformed
   * one, UNAVAILABLE while the receiver starts or stops.
   */
  Forward: grpc.handleUnaryCall<_raftkv_raft_ForwardRequest__Output, _raftkv_raft_ForwardReply>;
  
  /**
   * One snapshot from a leader to one follower (one call per snapshot; a new call from the same
   * sender supersedes an unfinished one). The receiver reassembles the chunks and, once the last
   * one arrives with every byte, hands the snapshot to its node and answers SnapshotAck. Any
   * other outcome delivers nothing and ends the call with a status: FAILED_PRECONDITION for
   * another cluster, a misaddressed message or a receiver without a snapshot handler;
   * INVALID_ARGUMENT for a malformed transfer (bad message, gap, overlap, size mismatch, missing
   * last chunk); RESOURCE_EXHAUSTED for a snapshot over the receiver's maxSnapshotBytes;
   * ABORTED when superseded; INTERNAL when the receiving node's handler failed; UNAVAILABLE when
   * shutting down.
   */
  InstallSnapshot: grpc.handleClientStreamingCall<_raftkv_raft_SnapshotChunk__Output, _raftkv_raft_SnapshotAck>;
  
  /**
   * A long-lived stream from a node to one peer; a node keeps two per peer, each on a connection
   * of its own: one for appends, one for the other messages. The receiver answers with response headers
   * as soon as it accepts the stream (the sender's "connected" signal) and ends it with a
   * status: OK on a clean close, FAILED_PRECONDITION for a batch from another cluster,
   * UNAVAILABLE when shutting down.
   */
  Stream: grpc.handleClientStreamingCall<_raftkv_raft_RaftBatch__Output, _raftkv_raft_StreamAck>;
  
}

export interface RaftDefinition extends grpc.ServiceDefinition {
  Forward: MethodDefinition<_raftkv_raft_ForwardRequest, _raftkv_raft_ForwardReply, _raftkv_raft_ForwardRequest__Output, _raftkv_raft_ForwardReply__Output>
  InstallSnapshot: MethodDefinition<_raftkv_raft_SnapshotChunk, _raftkv_raft_SnapshotAck, _raftkv_raft_SnapshotChunk__Output, _raftkv_raft_SnapshotAck__Output>
  Stream: MethodDefinition<_raftkv_raft_RaftBatch, _raftkv_raft_StreamAck, _raftkv_raft_RaftBatch__Output, _raftkv_raft_StreamAck__Output>
}
