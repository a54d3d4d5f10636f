// Original file: proto/raft.proto

export const MessageType = {
  /**
   * never sent; a receiver refuses it
   */
  MESSAGE_TYPE_UNSPECIFIED: 'MESSAGE_TYPE_UNSPECIFIED',
  MESSAGE_TYPE_PRE_VOTE: 'MESSAGE_TYPE_PRE_VOTE',
  MESSAGE_TYPE_PRE_VOTE_RESP: 'MESSAGE_TYPE_PRE_VOTE_RESP',
  /**
   * context: 1 (CAMPAIGN_TRANSFER) when the leader asked for this election (timeoutNow), else 0.
   */
  MESSAGE_TYPE_VOTE: 'MESSAGE_TYPE_VOTE',
  MESSAGE_TYPE_VOTE_RESP: 'MESSAGE_TYPE_VOTE_RESP',
  MESSAGE_TYPE_APP: 'MESSAGE_TYPE_APP',
  MESSAGE_TYPE_APP_RESP: 'MESSAGE_TYPE_APP_RESP',
  MESSAGE_TYPE_HEARTBEAT: 'MESSAGE_TYPE_HEARTBEAT',
  MESSAGE_TYPE_HEARTBEAT_RESP: 'MESSAGE_TYPE_HEARTBEAT_RESP',
  /**
   * index/log_term: the last entry the snapshot covers, conf: the configuration as of it; its
   * bytes travel beside it.
   */
  MESSAGE_TYPE_SNAPSHOT: 'MESSAGE_TYPE_SNAPSHOT',
  /**
   * Leadership transfer: the leader tells a caught-up voter to campaign at once. No fields but
   * type, from, to and term.
   */
  MESSAGE_TYPE_TIMEOUT_NOW: 'MESSAGE_TYPE_TIMEOUT_NOW',
} as const;

export type MessageType =
  /**
   * never sent; a receiver refuses it
   */
  | 'MESSAGE_TYPE_UNSPECIFIED'
  | 0
  | 'MESSAGE_TYPE_PRE_VOTE'
  | 1
  | 'MESSAGE_TYPE_PRE_VOTE_RESP'
  | 2
  /**
   * context: 1 (CAMPAIGN_TRANSFER) when the leader asked for this election (timeoutNow), else 0.
   */
  | 'MESSAGE_TYPE_VOTE'
  | 3
  | 'MESSAGE_TYPE_VOTE_RESP'
  | 4
  | 'MESSAGE_TYPE_APP'
  | 5
  | 'MESSAGE_TYPE_APP_RESP'
  | 6
  | 'MESSAGE_TYPE_HEARTBEAT'
  | 7
  | 'MESSAGE_TYPE_HEARTBEAT_RESP'
  | 8
  /**
   * index/log_term: the last entry the snapshot covers, conf: the configuration as of it; its
   * bytes travel beside it.
   */
  | 'MESSAGE_TYPE_SNAPSHOT'
  | 9
  /**
   * Leadership transfer: the leader tells a caught-up voter to campaign at once. No fields but
   * type, from, to and term.
   */
  | 'MESSAGE_TYPE_TIMEOUT_NOW'
  | 10

export type MessageType__Output = typeof MessageType[keyof typeof MessageType]
