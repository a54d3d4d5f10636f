/** One test per claim of the Raft paper (and thesis) that the core must honour. */
import { describe, expect, it } from 'vitest';
import { entryBytes } from '../../src/raft/core/raft.js';
import { Network, drain, entries, logTerms, newRaft } from './network.js';
import { message as msg } from '../../src/raft/core/types.js';

describe('§5.2 leader election', () => {
  it('a follower that hears nothing campaigns within [electionTick, 2·electionTick) ticks', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = newRaft(1, [1, 2, 3], { preVote: false }, seed);
      let ticks = 0;
      while (r.role === 'follower') {
        r.tick();
        ticks++;
      }
      expect(r.role).toBe('candidate');
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThan(20);
      expect(r.term).toBe(1);
      expect(r.vote).toBe(1);
    }
  });

  it('a candidate with votes from a majority becomes leader and appends a no-op of its term', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    expect(net.node(1).role).toBe('leader');
    expect(net.node(2).leaderId).toBe(1);
    expect(net.node(1).log.entry(1)).toMatchObject({ term: 1, type: 'noop' });
    expect(net.node(1).log.committed).toBe(1);
  });

  it('heartbeats keep followers from campaigning', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    for (let i = 0; i < 200; i++) {
      for (const r of net.nodes.values()) r.tick();
      net.deliverAll();
    }
    expect(net.node(1).role).toBe('leader');
    expect(net.node(1).term).toBe(1);
  });

  it('a leader that sees a higher term in a response steps down', () => {
    const r = newRaft(1, [1, 2, 3]);
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const leader = net.node(1);
    leader.step(msg({ type: 'appResp', from: 2, to: 1, term: 5 }));
    expect(leader.role).toBe('follower');
    expect(leader.term).toBe(5);
    expect(r.role).toBe('follower');
  });

  it('each server grants at most one vote per term', () => {
    const r = newRaft(3, [1, 2, 3], { checkQuorum: false });
    r.step(msg({ type: 'vote', from: 1, to: 3, term: 1 }));
    r.step(msg({ type: 'vote', from: 2, to: 3, term: 1 }));
    const resps = drain(r).filter((m) => m.type === 'voteResp');
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [1, false],
      [2, true],
    ]);
  });
});

describe('§5.4.1 election restriction', () => {
  it('a vote is refused to a candidate whose log is less up-to-date', () => {
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 2), hardState: { term: 2, vote: 0, commit: 0 } });
    const cases = [
      { index: 2, logTerm: 1, reject: true },
      { index: 1, logTerm: 2, reject: true },
      { index: 2, logTerm: 2, reject: false },
    ];
    for (const [k, c] of cases.entries()) {
      const term = 3 + k;
      r.step(msg({ type: 'vote', from: 1, to: 2, term, index: c.index, logTerm: c.logTerm }));
      const resp = drain(r).find((m) => m.type === 'voteResp')!;
      expect(resp.reject).toBe(c.reject);
    }
  });
});

describe('§5.3 log replication', () => {
  it('a follower replaces conflicting entries and keeps the leader log', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `x${i}`);
    expect(logTerms(net.node(2))).toEqual(logTerms(net.node(1)));
    expect(net.node(1).log.committed).toBe(6);
    // Each commit rode on the next append; the last one reaches the followers on the next tick.
    expect(net.node(2).log.committed).toBe(5);
    net.node(1).tick();
    net.deliverAll();
    expect(net.node(2).log.committed).toBe(6);
    expect(net.node(3).log.committed).toBe(6);
  });

  it('a new commit index costs no extra message while appends flow, and one per idle follower per tick', () => {
    const net = new Network([1, 2, 3], { heartbeatTick: 5 });
    net.elect(1);
    net.node(1).tick();
    net.deliverAll();
    const before = net.delivered.length;
    net.propose(1, 'a');
    // One append out and one answer back per follower; the commit that follows is not broadcast.
    expect(net.delivered.slice(before).map((m) => m.type).sort()).toEqual(['app', 'app', 'appResp', 'appResp']);
    expect(net.node(2).log.committed).toBe(1);
    net.node(1).tick();
    net.deliverAll();
    const afterTick = net.delivered.slice(before + 4).filter((m) => m.type === 'app');
    expect(afterTick.map((m) => [m.to, m.entries.length, m.commit])).toEqual([[2, 0, 2], [3, 0, 2]]);
    expect(net.node(2).log.committed).toBe(2);
    // Nothing new to tell: the next tick sends nothing.
    const quiet = net.delivered.length;
    net.node(1).tick();
    net.deliverAll();
    expect(net.delivered.length).toBe(quiet);
  });

  it('a heartbeat that carries the new commit index makes the commit-only append unneeded', () => {
    const net = new Network([1, 2, 3], { heartbeatTick: 1 });
    net.elect(1);
    net.propose(1, 'a');
    const before = net.delivered.length;
    net.node(1).tick();
    net.deliverAll();
    expect(net.delivered.slice(before).filter((m) => m.from === 1).map((m) => [m.type, m.commit])).toEqual([
      ['heartbeat', 2],
      ['heartbeat', 2],
    ]);
    expect(net.node(2).log.committed).toBe(2);
    expect(net.node(3).log.committed).toBe(2);
  });

  it('the conflict hint backs up one term per round trip, not one entry', () => {
    // Follower 2 holds 30 entries of stale terms 2..4 that the leader (terms 1,5) never had.
    const leaderLog = entries(1, 1, 1, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5);
    const followerLog = entries(1, 1, 1, ...Array(10).fill(2), ...Array(10).fill(3), ...Array(10).fill(4));
    const net = new Network([1, 2, 3]);
    net.nodes.set(1, newRaft(1, [1, 2, 3], { entries: leaderLog, hardState: { term: 5, vote: 0, commit: 3 } }));
    net.nodes.set(2, newRaft(2, [1, 2, 3], { entries: followerLog, hardState: { term: 4, vote: 0, commit: 3 } }));
    net.nodes.set(3, newRaft(3, [1, 2, 3], { entries: leaderLog, hardState: { term: 5, vote: 0, commit: 3 } }));
    net.isolate(2);
    net.elect(1);
    net.recover();
    const before = net.delivered.length;
    net.node(1).tick(); // heartbeat → response → probing starts
    net.deliverAll();
    const rejections = net.delivered.slice(before).filter((m) => m.type === 'appResp' && m.reject);
    expect(rejections.length).toBeLessThanOrEqual(2);
    expect(logTerms(net.node(2))).toEqual(logTerms(net.node(1)));
  });

  it('never sends more than maxInflight appends before acknowledgements', () => {
    const net = new Network([1, 2, 3], { maxInflight: 2, maxMsgBytes: 1 });
    net.elect(1);
    net.drop((m) => m.type === 'appResp');
    const r = net.node(1);
    for (let i = 0; i < 10; i++) r.propose(new TextEncoder().encode(`p${i}`));
    const sent = drain(r).filter((m) => m.type === 'app' && m.to === 2);
    expect(sent.length).toBe(2);
    expect(sent.every((m) => m.entries.length === 1)).toBe(true);
  });

  it('never sends more than maxInflightBytes of entries before acknowledgements, whatever the message count', () => {
    // A follower far behind must not get the whole gap queued at once (the transport's queue
    // would overflow and drop it): bytes in flight are capped as well as messages.
    const net = new Network([1, 2, 3], { maxInflight: 1000, maxMsgBytes: 1000, maxInflightBytes: 4000 });
    net.elect(1);
    net.drop((m) => m.type === 'appResp');
    const r = net.node(1);
    for (let i = 0; i < 100; i++) r.propose(new Uint8Array(500));
    const sent = drain(r).filter((m) => m.type === 'app' && m.to === 2);
    const bytes = sent.reduce((n, m) => n + entryBytes(m.entries), 0);
    expect(sent.length).toBeGreaterThan(1);
    expect(bytes).toBeLessThan(4000 + 1000 + 100);
    expect(sent.flatMap((m) => m.entries).length).toBeLessThan(100);
  });

  it('a heartbeat response does not reopen a full pipeline; an empty append checks it, and a lost one is resent', () => {
    const net = new Network([1, 2, 3], { maxInflight: 2, maxMsgBytes: 1 });
    net.elect(1);
    const r = net.node(1);
    // Replicating to 2, with two appends in flight that 2 never gets.
    for (let i = 0; i < 3; i++) r.propose(new TextEncoder().encode(`p${i}`));
    const lost = drain(r).filter((m) => m.type === 'app' && m.to === 2);
    expect(lost.length).toBe(2);
    r.step(msg({ type: 'heartbeatResp', from: 2, to: 1, term: r.term }));
    const probe = drain(r).filter((m) => m.to === 2);
    expect(probe.map((m) => [m.type, m.entries.length])).toEqual([['app', 0]]);
    // 2 lacks what came before the probe: it rejects, and the leader sends the lost entries again.
    net.node(2).step(probe[0]!);
    const reply = drain(net.node(2)).filter((m) => m.to === 1);
    expect(reply[0]).toMatchObject({ type: 'appResp', reject: true });
    r.step(reply[0]!);
    const again = drain(r).filter((m) => m.type === 'app' && m.to === 2);
    expect(again.flatMap((m) => m.entries.map((e) => e.index))).toContain(lost[0]!.entries[0]!.index);
  });

  it('a full pipeline whose appends the leader has since compacted away: a heartbeat response sends the snapshot', () => {
    // Found by the power-loss test: a follower down while its pipeline filled, back after the
    // leader compacted past it, was never sent anything again (the empty append had no term to carry).
    const net = new Network([1, 2, 3], { maxInflight: 2, maxMsgBytes: 1 });
    net.elect(1);
    net.drop((m) => m.to === 2);
    for (let i = 0; i < 4; i++) net.propose(1, `p${i}`); // commit with 3; 2 gets nothing
    const r = net.node(1);
    r.compact({ index: r.log.applied, term: r.term });
    r.step(msg({ type: 'heartbeatResp', from: 2, to: 1, term: r.term }));
    const out = drain(r).filter((m) => m.to === 2);
    expect(out.map((m) => [m.type, m.index])).toEqual([['snap', r.log.applied]]);
  });

  it('proposals between two Ready cycles travel in one message per follower', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const r = net.node(1);
    for (let i = 0; i < 20; i++) r.propose(new TextEncoder().encode(`p${i}`));
    const apps = drain(r).filter((m) => m.type === 'app');
    expect(apps.map((m) => [m.to, m.entries.length])).toEqual([
      [2, 20],
      [3, 20],
    ]);
  });
});

describe('§5.4.2 committing entries from previous terms (Figure 8)', () => {
  it('a leader does not commit an old-term entry by counting replicas, only under an entry of its term', () => {
    // Leader of term 3 holds an uncommitted entry of term 2, replicated to a majority.
    const log = entries(1, 2);
    const r = newRaft(1, [1, 2, 3], { entries: log, hardState: { term: 2, vote: 0, commit: 1 }, preVote: false });
    while (r.role !== 'candidate') r.tick();
    drain(r);
    r.step(msg({ type: 'voteResp', from: 2, to: 1, term: r.term }));
    expect(r.role).toBe('leader');
    drain(r); // the no-op of term 3 is index 3
    r.step(msg({ type: 'appResp', from: 2, to: 1, term: r.term, index: 2 }));
    drain(r);
    expect(r.log.committed).toBe(1);
    r.step(msg({ type: 'appResp', from: 2, to: 1, term: r.term, index: 3 }));
    drain(r);
    expect(r.log.committed).toBe(3);
  });

  it('the leader counts its own copy only once it is durable', () => {
    const r = newRaft(1, [1], { preVote: false });
    while (r.role !== 'leader') r.tick();
    const rd = r.ready();
    expect(rd.entries.length).toBe(1);
    expect(r.log.committed).toBe(0); // not yet persisted
    r.advance(rd);
    expect(r.log.committed).toBe(1);
  });
});

describe('thesis §9.6 pre-vote and check-quorum', () => {
  it('a pre-candidate does not raise its term, and does not start an election it cannot win', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    const r3 = net.node(3);
    for (let i = 0; i < 500; i++) {
      r3.tick();
      net.deliverAll();
    }
    expect(r3.term).toBe(1);
    expect(r3.role).toBe('preCandidate');
  });

  it('followers that hear from a live leader ignore vote requests (leader stickiness)', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const r2 = net.node(2);
    r2.step(msg({ type: 'vote', from: 3, to: 2, term: 9, index: 99, logTerm: 9 }));
    expect(r2.term).toBe(1);
    expect(drain(r2).filter((m) => m.type === 'voteResp')).toEqual([]);
  });

  it('a leader that hears from no majority within an election timeout steps down', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(1);
    const r1 = net.node(1);
    let ticks = 0;
    while (r1.role === 'leader' && ticks < 100) {
      r1.tick();
      net.deliverAll();
      ticks++;
    }
    expect(r1.role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(20);
  });

  it('a pre-vote from a lower term is rejected with our term so the sender catches up', () => {
    const r = newRaft(1, [1, 2, 3], { hardState: { term: 7, vote: 0, commit: 0 } });
    r.step(msg({ type: 'preVote', from: 2, to: 1, term: 3 }));
    const resp = drain(r).find((m) => m.type === 'preVoteResp')!;
    expect(resp).toMatchObject({ reject: true, term: 7 });
  });

  it('a vote granted for this term still counts after the candidate fell back to pre-vote', () => {
    const r = newRaft(1, [1, 2, 3]);
    const role = (): string => r.role;
    while (role() !== 'preCandidate') r.tick();
    r.step(msg({ type: 'preVoteResp', from: 2, to: 1, term: 1 }));
    expect(role()).toBe('candidate');
    while (role() === 'candidate') r.tick(); // timed out: back to pre-vote, still term 1
    expect(role()).toBe('preCandidate');
    r.step(msg({ type: 'voteResp', from: 3, to: 1, term: 1 }));
    expect(r.role).toBe('leader');
    expect(r.term).toBe(1);
  });
});
