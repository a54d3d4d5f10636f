/**
 * The core's acceptance guard (src/raft/core/acceptance.ts): a message no peer could have sent is
 * refused by step() and changes nothing, whatever the transport let through (issue 11).
 */
import { describe, expect, it } from 'vitest';
import { MAX_TERM, MAX_TERM_JUMP } from '../../src/raft/core/acceptance.js';
import type { Raft } from '../../src/raft/core/raft.js';
import { message as msg, type Message } from '../../src/raft/core/types.js';
import { Network, drain, entries, newRaft } from './network.js';

/** Everything step() may change, for before/after comparisons. */
function state(r: Raft): unknown {
  return { status: r.status(), hasReady: r.hasReady(), last: r.log.lastIndex(), lastTerm: r.log.lastTerm() };
}

/** Steps `m` into `r` and expects it refused for `kind`, with nothing changed. */
function expectRefused(r: Raft, m: Message, kind: string): void {
  drain(r);
  const before = state(r);
  expect(r.step(m)).toMatchObject({ kind });
  expect(state(r)).toEqual(before);
}

/** A 3-node cluster with node 1 leading, one entry committed. */
function cluster(): Network {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, 'x');
  return net;
}

describe('a term far beyond a real election is refused', () => {
  it('a leader message with term 2^53 - 1 (issue 11) leaves the follower as it was', () => {
    const net = cluster();
    const f = net.node(2);
    for (const term of [2 ** 53 - 1, 2 ** 53, MAX_TERM + 1, Number.NaN, Infinity, -1, 1.5]) {
      expectRefused(f, msg({ type: 'heartbeat', from: 1, to: 2, term }), 'termOutOfRange');
    }
  });

  it(`a jump of more than ${MAX_TERM_JUMP} terms is refused for every type`, () => {
    const net = cluster();
    const term = net.node(2).term + MAX_TERM_JUMP + 1;
    for (const type of ['preVote', 'preVoteResp', 'vote', 'voteResp', 'app', 'appResp', 'heartbeat', 'heartbeatResp', 'snap'] as const) {
      expectRefused(net.node(2), msg({ type, from: 1, to: 2, term }), 'termJump');
      expectRefused(net.node(1), msg({ type, from: 2, to: 1, term }), 'termJump');
    }
  });

  it(`a jump of exactly ${MAX_TERM_JUMP} is taken: a node that missed many elections still rejoins`, () => {
    const net = cluster();
    const f = net.node(3);
    const term = f.term + MAX_TERM_JUMP;
    expect(f.step(msg({ type: 'heartbeat', from: 1, to: 3, term }))).toBeUndefined();
    expect(f.status()).toMatchObject({ term, role: 'follower', leaderId: 1 });
  });

  it('a node with no configuration yet (waiting to be added) takes its leader term however far ahead, but never past MAX_TERM', () => {
    const r = newRaft(4, [], { peers: undefined });
    expectRefused(newRaft(3, [1, 2, 3]), msg({ type: 'heartbeat', from: 1, to: 3, term: MAX_TERM_JUMP + 1 }), 'termJump');
    expectRefused(r, msg({ type: 'heartbeat', from: 1, to: 4, term: MAX_TERM + 1 }), 'termOutOfRange');
    expect(r.step(msg({ type: 'heartbeat', from: 1, to: 4, term: MAX_TERM }))).toBeUndefined();
    expect(r.status()).toMatchObject({ term: MAX_TERM, leaderId: 1 });
  });

  it('no forged term reaches a hard state beyond MAX_TERM, so term + 1 stays exact', () => {
    const net = cluster();
    const f = net.node(2);
    const term = f.term;
    for (const t of [2 ** 53 - 1, MAX_TERM + 1, term + MAX_TERM_JUMP + 1]) f.step(msg({ type: 'app', from: 1, to: 2, term: t }));
    while (f.hasReady()) {
      const rd = f.ready();
      expect(rd.hardState?.term ?? 0).toBeLessThanOrEqual(MAX_TERM);
      f.advance(rd);
    }
    expect(f.term).toBe(term);
  });
});

describe('messages no peer could have sent are refused', () => {
  it('an answer from a node outside the configuration, anything from itself or node 0, or addressed to another node', () => {
    const net = cluster();
    const f = net.node(2);
    expectRefused(f, msg({ type: 'heartbeatResp', from: 4, to: 2, term: 2 }), 'notPeer');
    expectRefused(f, msg({ type: 'voteResp', from: 4, to: 2, term: 2 }), 'notPeer');
    // A request from a stranger is judged like any other (its configuration may be newer than
    // ours): here it claims a term that has a leader already.
    expectRefused(f, msg({ type: 'heartbeat', from: 4, to: 2, term: f.status().term }), 'secondLeader');
    expectRefused(f, msg({ type: 'heartbeat', from: 0, to: 2, term: 2 }), 'notPeer');
    expectRefused(f, msg({ type: 'heartbeat', from: 2, to: 2, term: 2 }), 'notPeer');
    expectRefused(f, msg({ type: 'heartbeat', from: 1, to: 3, term: 2 }), 'misaddressed');
  });

  it('§5.2 at most one leader per term: a second one is refused, and cannot append', () => {
    const net = cluster();
    const f = net.node(2);
    const { term, lastIndex: last } = f.status();
    const entry = { index: last + 1, term, type: 'normal' as const, data: new Uint8Array([1]) };
    const forged = msg({ type: 'app', from: 3, to: 2, term, index: last, logTerm: term, commit: last + 1, entries: [entry] });
    expectRefused(f, forged, 'secondLeader');
    expectRefused(f, msg({ type: 'heartbeat', from: 3, to: 2, term, commit: last }), 'secondLeader');
    expectRefused(f, msg({ type: 'snap', from: 3, to: 2, term, index: last + 5, logTerm: term, commit: last + 5 }), 'secondLeader');
  });

  it('a follower may hear a leader in its term once it knows none (after a restart)', () => {
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 2), hardState: { term: 2, vote: 0, commit: 1 } });
    expect(r.step(msg({ type: 'heartbeat', from: 3, to: 2, term: 2, commit: 1 }))).toBeUndefined();
    expect(r.status().leaderId).toBe(3);
  });

  it("§5.3 an acknowledgement past the leader's log is refused (it used to crash the leader)", () => {
    const net = cluster();
    const leader = net.node(1);
    const last = leader.log.lastIndex();
    expectRefused(leader, msg({ type: 'appResp', from: 2, to: 1, term: leader.term, index: last + 1 }), 'ackPastLog');
    expectRefused(leader, msg({ type: 'appResp', from: 2, to: 1, term: leader.term, index: 2 ** 52 - 1 }), 'ackPastLog');
    // A rejection names an index the leader sent, and an acknowledgement up to its last entry is real.
    expect(leader.step(msg({ type: 'appResp', from: 2, to: 1, term: leader.term, index: last }))).toBeUndefined();
  });
});
