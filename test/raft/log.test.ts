import { describe, expect, it } from 'vitest';
import { RaftInvariantError, RaftLog } from '../../src/raft/core/log.js';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { committedIndex, voteResult } from '../../src/raft/core/quorum.js';
import { entries } from './network.js';

describe('RaftLog', () => {
  it('appends after a matching prefix and truncates at the first conflict', () => {
    const log = new RaftLog(entries(1, 1, 2, 2), 1);
    const incoming = entries(1, 1, 3, 3, 3).slice(2);
    expect(log.maybeAppend(2, 1, 4, incoming)).toBe(5);
    expect([1, 2, 3, 4, 5].map((i) => log.term(i))).toEqual([1, 1, 3, 3, 3]);
    expect(log.stabled).toBe(2);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([3, 4, 5]);
    expect(log.committed).toBe(4);
  });

  it('refuses entries whose predecessor does not match', () => {
    const log = new RaftLog(entries(1, 1), 0);
    expect(log.maybeAppend(2, 5, 0, [])).toBeUndefined();
    expect(log.maybeAppend(3, 1, 0, [])).toBeUndefined();
  });

  it('commits only up to the last entry known to match the leader', () => {
    const log = new RaftLog(entries(1, 1, 1), 0);
    expect(log.maybeAppend(1, 1, 10, [])).toBe(1);
    expect(log.committed).toBe(1);
  });

  it('throws rather than overwrite a committed entry', () => {
    const log = new RaftLog(entries(1, 1, 1), 3);
    expect(() => log.maybeAppend(1, 1, 3, entries(1, 2, 2).slice(1))).toThrow(RaftInvariantError);
  });

  it('findConflictByTerm returns the last index whose term is not above the given term', () => {
    const log = new RaftLog(entries(1, 1, 2, 2, 4, 4), 0);
    expect(log.findConflictByTerm(6, 3)).toEqual({ index: 4, term: 2 });
    expect(log.findConflictByTerm(6, 4)).toEqual({ index: 6, term: 4 });
    expect(log.findConflictByTerm(9, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(6, 0)).toEqual({ index: 0, term: 0 });
  });

  it('isUpToDate compares last term first, then length (§5.4.1)', () => {
    const log = new RaftLog(entries(1, 2, 2), 0);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });
});

describe('quorum', () => {
  it('committedIndex is the highest index held by a majority', () => {
    const majorityIndex = (matches: number[]) => committedIndex(confOfVoters(matches.map((_, i) => i + 1)), (id) => matches[id - 1]!);
    expect(majorityIndex([5])).toBe(5);
    expect(majorityIndex([5, 3, 1])).toBe(3);
    expect(majorityIndex([9, 9, 2, 2])).toBe(2);
    expect(majorityIndex([7, 1, 5, 6, 2])).toBe(5);
  });

  it('voteResult decides as soon as the outcome is certain', () => {
    const tallyVotes = (v: number[], votes: Map<number, boolean>) => voteResult(confOfVoters(v), votes);
    const voters = [1, 2, 3, 4, 5];
    expect(tallyVotes(voters, new Map([[1, true], [2, true]]))).toBe('pending');
    expect(tallyVotes(voters, new Map([[1, true], [2, true], [3, true]]))).toBe('won');
    expect(tallyVotes(voters, new Map([[1, true], [2, false], [3, false], [4, false]]))).toBe('lost');
  });
});
