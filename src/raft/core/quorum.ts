import type { NodeId } from './types.js';

/** The highest index acknowledged by a majority: the value at the majority position of the sorted matches. */
export function majorityIndex(matches: number[]): number {
  const sorted = [...matches].sort((a, b) => b - a);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export type VoteResult = 'won' | 'lost' | 'pending';

/** Outcome of an election given the votes received so far among `voters`. */
export function tallyVotes(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
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
