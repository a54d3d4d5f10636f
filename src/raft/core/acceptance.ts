import { isResponse, type Message, type NodeId, type Role } from './types.js';

// Which messages the core takes at all: the guard at the top of Raft.step(). The transport has
// range-checked every field already (src/raft/transport/grpc-codec.ts); this guard judges a
// message against the node's own state, which only the core knows.

/**
 * The largest term and index a message may carry (2^52 − 1). Below 2^52, term + 1 and index + 1
 * stay exact doubles for 2^52 more elections or entries, so no term or index a node derives can
 * become a number its storage refuses (as 2^53 was: issue 11). Nothing real comes near it: at a
 * million entries a second, 2^52 entries take 142 years.
 */
export const MAX_TERM = 2 ** 52 - 1;
export const MAX_INDEX = 2 ** 52 - 1;

/**
 * The most a message may raise our term by. Terms rise by one per election, and with pre-vote a
 * term rises only when a majority agrees that an election could be won, i.e. after an election
 * timeout (≥ 300 ms by default) without a leader: a node that was away while the others held a
 * million elections missed at least 3.5 days of nothing but failed elections. A forged term, on
 * the other hand, is any number: refusing jumps beyond this bound means a forged message can no
 * longer push a cluster's term to the end of the range in one step (issue 11), only by up to this
 * much, and it would take 2^52 / 10^6 ≈ 4.5 · 10^9 accepted forgeries to exhaust the range.
 * A node that really fell this far behind stays out until it is replaced (removed, and a new
 * member added): a node with no configuration yet (waiting to be added, on an empty data dir)
 * has no term to compare with and takes its leader's, whatever it is (below MAX_TERM).
 */
export const MAX_TERM_JUMP = 1_000_000;

/** Why step() refused a message; it changed nothing. */
export interface Refusal {
  readonly kind: 'misaddressed' | 'notPeer' | 'termOutOfRange' | 'termJump' | 'secondLeader' | 'ackPastLog';
  readonly detail: string;
}

/** What the guard needs to know of the node. */
export interface AcceptanceView {
  readonly id: NodeId;
  /** Whether the node keeps track of `id`: a voter of its configuration, or (leading) a member it replicates to. */
  readonly tracked: (id: NodeId) => boolean;
  readonly term: number;
  readonly role: Role;
  readonly leaderId: NodeId;
  /** The node has no configuration yet: a new member waiting for the leader that adds it. */
  readonly unconfigured: boolean;
  readonly lastIndex: number;
}

/**
 * Refuses a message no peer of ours could have sent: misaddressed, from ourselves, an answer
 * from a node we did not ask (requests from nodes outside our configuration are taken: ours
 * may be older than theirs, and a node being added hears from a leader it does not know yet),
 * a term out of range or implausibly far ahead, a second leader in our term (§5.2: at most one
 * per term), or a follower acknowledging entries our log does not hold (§5.3: a leader's log in
 * its term only grows, and a follower only holds what it sent).
 */
export function refusal(v: AcceptanceView, m: Message): Refusal | undefined {
  if (m.to !== v.id) return { kind: 'misaddressed', detail: `addressed to node ${m.to}, this is node ${v.id}` };
  if (m.from === v.id || !(Number.isSafeInteger(m.from) && m.from > 0)) return { kind: 'notPeer', detail: `node ${m.from} cannot send to node ${v.id}` };
  if (isResponse(m.type) && !v.tracked(m.from)) return { kind: 'notPeer', detail: `node ${m.from} is not a member node ${v.id} tracks` };
  // Written so that NaN fails too.
  if (!(Number.isSafeInteger(m.term) && m.term >= 0 && m.term <= MAX_TERM)) {
    return { kind: 'termOutOfRange', detail: `term ${m.term} is outside 0..${MAX_TERM}` };
  }
  if (!v.unconfigured && m.term - v.term > MAX_TERM_JUMP) {
    return { kind: 'termJump', detail: `term ${m.term} is more than ${MAX_TERM_JUMP} above ours (${v.term})` };
  }
  const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
  if (fromLeader && m.term === v.term && v.leaderId !== 0 && v.leaderId !== m.from) {
    return { kind: 'secondLeader', detail: `node ${m.from} acts as leader of term ${m.term}, whose leader is node ${v.leaderId}` };
  }
  if (m.type === 'appResp' && !m.reject && v.role === 'leader' && m.term === v.term && m.index > v.lastIndex) {
    return { kind: 'ackPastLog', detail: `node ${m.from} acknowledges index ${m.index}, our log ends at ${v.lastIndex}` };
  }
  return undefined;
}
