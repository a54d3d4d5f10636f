import type { ConfState } from './conf.js';
import type { ReadState } from './read-index.js';

/** Node ids are positive integers; 0 means "nobody" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

/**
 * A `noop` entry is appended by every new leader (Raft §5.4.2); state machines skip it. A `conf`
 * entry puts a configuration in force once it is applied (core/conf-codec.ts has its data).
 */
export type EntryType = 'normal' | 'noop' | 'conf';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** The state that must be durable before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export type MessageType =
  | 'preVote'
  | 'preVoteResp'
  | 'vote'
  | 'voteResp'
  | 'app'
  | 'appResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap'
  | 'timeoutNow';

/**
 * One flat shape for every message (as etcd's raftpb.Message), so the wire form is one
 * protobuf message. Field meaning by type:
 * - preVote/vote: index/logTerm = the candidate's last log position.
 * - app: index/logTerm = the entry preceding `entries`; commit = leader's commit index.
 * - appResp: accepted → index = last index known to match; rejected → index = the rejected
 *   `app.index`, rejectHint/logTerm = a position the follower may match (conflict hint).
 * - heartbeat: commit = what the follower may commit; context = read-index round (0 = none).
 * - snap: index/logTerm = the last entry the snapshot covers, conf = the configuration as of it.
 *   The snapshot's bytes travel beside the message (the driver's business); the follower answers
 *   with an appResp.
 * - vote: context = CAMPAIGN_TRANSFER when the leader asked for this election (leadership
 *   transfer): voters grant it even while they hear from that leader.
 * - timeoutNow: the leader hands over leadership; the receiver campaigns at once.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  index: number;
  logTerm: number;
  commit: number;
  reject: boolean;
  rejectHint: number;
  context: number;
  entries: Entry[];
  conf?: ConfState;
}

/** A vote's context when the election was asked for by the leader (leadership transfer). */
export const CAMPAIGN_TRANSFER = 1;

/** A message with every field not given set to its zero value. */
export function message(m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message {
  return {
    type: m.type,
    from: m.from,
    to: m.to,
    term: m.term,
    index: m.index ?? 0,
    logTerm: m.logTerm ?? 0,
    commit: m.commit ?? 0,
    reject: m.reject ?? false,
    rejectHint: m.rejectHint ?? 0,
    context: m.context ?? 0,
    entries: m.entries ?? [],
    ...(m.conf ? { conf: m.conf } : {}),
  };
}

/** Replies never carry new information for the receiver's log; the simulator drops them separately. */
export function isResponse(type: MessageType): boolean {
  return type.endsWith('Resp');
}

/** The position a snapshot covers: every entry up to and including (index, term). */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  /** The configuration in force as of `index` (Raft.confAt gives it). */
  readonly conf?: ConfState;
}

/** Volatile state the driver may want to observe (logging, leader hints). */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId;
}

/**
 * What the driver must do next, in this order: persist `snapshot` (if any: it replaces the whole
 * log), then `hardState` and `entries` in one durable write (entries[0].index ≤ the stored last
 * index means "truncate from there"), then send `messages`, then restore the state machine from
 * `snapshot` and apply `committedEntries`, then call `advance(ready)`.
 */
export interface Ready {
  /** A snapshot from the leader to install: the data received with its snap message. */
  readonly snapshot?: SnapshotMeta;
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: Entry[];
  readonly messages: Message[];
  readonly committedEntries: Entry[];
  /** ReadIndex requests confirmed by a majority: answer each once `index` is applied. */
  readonly readStates: ReadState[];
}

/** An injected source of randomness, so that a seed decides every election timeout. */
export interface Rng {
  /** A uniformly distributed integer in [0, n). */
  int(n: number): number;
}
