import type { ConfState } from './conf.js';
import type { NodeId } from './types.js';

// Quorum decisions under a configuration, joint ones included (thesis §4.3): in C_old,new a
// decision needs a majority of each half. Learners never count.

/** The highest index acknowledged by a majority of `voters`; an empty set of voters does not constrain. */
function majorityIndex(voters: readonly NodeId[], match: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const sorted = voters.map(match).sort((a, b) => b - a);
  return sorted[Math.floor(voters.length / 2)]!;
}

/** The highest index acknowledged by a quorum of `conf`. */
export function committedIndex(conf: ConfState, match: (id: NodeId) => number): number {
  const index = Math.min(majorityIndex(conf.voters, match), majorityIndex(conf.votersOutgoing, match));
  return index === Infinity ? 0 : index;
}

export type VoteResult = 'won' | 'lost' | 'pending';

function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  const majority = Math.floor(voters.length / 2) + 1;
  let granted = 0;
  let rejected = 0;
  for (const v of voters) {
    const g = votes.get(v);
    if (g === true) granted++;
    else if (g === false) rejected++;
  }
  if (granted >= majority) return 'won';
  if (rejected > voters.length - majority) return 'lost';
  return 'pending';
}

/** Outcome of an election given the votes received so far: won in both halves, or lost in either. */
export function voteResult(conf: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(conf.voters, votes);
  const b = majorityVote(conf.votersOutgoing, votes);
  if (a === 'won' && b === 'won') return 'won';
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}

/** Whether the nodes `yes` holds for form a quorum of `conf` (check-quorum, ReadIndex). */
export function hasQuorum(conf: ConfState, yes: (id: NodeId) => boolean): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of conf.voters) if (yes(id)) votes.set(id, true);
  for (const id of conf.votersOutgoing) if (yes(id)) votes.set(id, true);
  return voteResult(conf, votes) === 'won';
}
