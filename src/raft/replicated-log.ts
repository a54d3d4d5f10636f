import type { ReadState } from './core/read-index.js';
import type { Entry, NodeId } from './core/types.js';

/** What a state machine service needs from Raft: implemented by RaftNode and by the simulator. */
export interface ReplicatedLog {
  /** Appends a command if this node leads; undefined otherwise. */
  propose(data: Uint8Array): { index: number; term: number } | undefined;
  /** Starts a ReadIndex round for `ctx` (positive, increasing); false if not leader. */
  readIndex(ctx: number): boolean;
  /** The leader this node knows of, 0 if none. */
  leaderId(): NodeId;
}

/** Receives, synchronously and in order, what each Ready hands to the state machine side. */
export interface ReadyHandler {
  /** A committed entry, in log order, each once per process lifetime (no-ops included). */
  applied(entry: Entry): void;
  /** ReadIndex request `ctx` may be answered once `index` is applied. */
  readConfirmed(rs: ReadState): void;
  /** This node stopped leading: its unconfirmed reads and unapplied proposals may never complete here. */
  leadershipLost(leaderId: NodeId): void;
}
