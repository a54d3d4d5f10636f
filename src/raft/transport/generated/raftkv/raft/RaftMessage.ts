// Original file: proto/raft.proto

import type { MessageType as _raftkv_raft_MessageType, MessageType__Output as _raftkv_raft_MessageType__Output } from '../../raftkv/raft/MessageType.js';
import type { Entry as _raftkv_raft_Entry, Entry__Output as _raftkv_raft_Entry__Output } from '../../raftkv/raft/Entry.js';
import type { ConfState as _raftkv_raft_ConfState, ConfState__Output as _raftkv_raft_ConfState__Output } from '../../raftkv/raft/ConfState.js';
import type { Long } from '@grpc/proto-loader';

export interface RaftMessage {
  'type'?: (_raftkv_raft_MessageType);
  /**
   * sender's node id
   */
  'from'?: (number | string | Long);
  /**
   * receiver's node id; the receiver refuses a message not addressed to it
   */
  'to'?: (number | string | Long);
  'term'?: (number | string | Long);
  'index'?: (number | string | Long);
  'logTerm'?: (number | string | Long);
  'commit'?: (number | string | Long);
  'reject'?: (boolean);
  'rejectHint'?: (number | string | Long);
  'context'?: (number | string | Long);
  'entries'?: (_raftkv_raft_Entry)[];
  /**
   * MESSAGE_TYPE_SNAPSHOT only: the configuration as of the snapshot (a receiver refuses it on
   * any other type). Absent from an older sender's snapshot: the receiver keeps its own.
   */
  'conf'?: (_raftkv_raft_ConfState | null);
}

export interface RaftMessage__Output {
  'type': (_raftkv_raft_MessageType__Output);
  /**
   * sender's node id
   */
  'from': (number);
  /**
   * receiver's node id; the receiver refuses a message not addressed to it
   */
  'to': (number);
  'term': (number);
  'index': (number);
  'logTerm': (number);
  'commit': (number);
  'reject': (boolean);
  'rejectHint': (number);
  'context': (number);
  'entries': (_raftkv_raft_Entry__Output)[];
  /**
   * MESSAGE_TYPE_SNAPSHOT only: the configuration as of the snapshot (a receiver refuses it on
   * any other type). Absent from an older sender's snapshot: the receiver keeps its own.
   */
  'conf': (_raftkv_raft_ConfState__Output | null);
}
