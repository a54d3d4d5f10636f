/**
 * Five safety rules, each guarded here by a direct test that breaks when the rule does, and where
 * it is cheap by a scenario on the test network with delayed, duplicated or reordered deliveries.
 */
import { describe, expect, it } from 'vitest';
import { Network, drain, entries, logTerms, newRaft } from './network.js';
import type { RaftConfig } from '../../src/raft/core/raft.js';
import { RaftLog } from '../../src/raft/core/log.js';
import { message as msg, type Message, type NodeId } from '../../src/raft/core/types.js';

/** Holds back the messages `filter` picks instead of delivering them, to deliver later in any order. */
function holdBack(net: Network, filter: (m: Message) => boolean): Message[] {
  const held: Message[] = [];
  net.drop((m) => filter(m) && held.push(m) > 0);
  return held;
}

/** Delivers `msgs` in the order given (repeats are duplicates), then everything that follows. */
function deliver(net: Network, ...msgs: Message[]): void {
  for (const m of msgs) net.node(m.to).step(m);
  net.deliverAll();
}

/** Ticks one node once, then delivers everything that follows. */
function tickOnce(net: Network, id: NodeId): void {
  net.node(id).tick();
  net.deliverAll();
}

/** Replaces node `id` by one restarted from the given log (one term per entry), term and vote, with entry 1 committed. */
function restart(net: Network, id: NodeId, log: number[], term: number, cfg: Partial<RaftConfig>, vote = 0): void {
  const peers = [...net.nodes.keys()];
  net.nodes.set(id, newRaft(id, peers, { ...cfg, entries: entries(...log), hardState: { term, vote, commit: 1 } }));
}

describe('§5.3 a stale or duplicated append does not truncate the log', () => {
  it('an append whose entries all match leaves the log, and what is stable, untouched', () => {
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 1, 1, 1, 1), hardState: { term: 1, vote: 1, commit: 1 } });
    r.step(msg({ type: 'app', from: 1, to: 2, term: 1, index: 1, logTerm: 1, commit: 1, entries: entries(1, 1, 1).slice(1) }));
    const rd = r.ready();
    expect(logTerms(r)).toEqual([1, 1, 1, 1, 1]);
    expect(rd.entries).toEqual([]);
    expect(rd.messages).toEqual([expect.objectContaining({ type: 'appResp', index: 3, reject: false })]);
  });

  it('truncation starts at the first conflicting entry, not at the first entry of the append', () => {
    const log = new RaftLog(entries(1, 1, 1, 1), 1);
    expect(log.maybeAppend(1, 1, 1, entries(1, 1, 2).slice(1))).toBe(3);
    expect([1, 2, 3].map((i) => log.term(i))).toEqual([1, 1, 2]);
    expect(log.lastIndex()).toBe(3);
    expect(log.unstableEntries().map((e) => e.index)).toEqual([3]);
  });

  it('an append delivered again after a newer one does not drop an entry the leader counts as replicated', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(3);
    const held = holdBack(net, (m) => m.type === 'app' && m.to === 2);
    net.propose(1, 'a');
    net.propose(1, 'b');
    const [first, second] = held;
    deliver(net, first!, second!, first!);
    // Node 2's acknowledgement of index 3 is what committed it: node 2 must still hold it.
    expect(net.node(1).log.committed).toBe(3);
    expect(logTerms(net.node(2))).toEqual(logTerms(net.node(1)));
  });
});

describe('§5.4.2 a leader commits only entries of its own term by counting replicas (Figure 8)', () => {
  it('an old-term entry held by every follower stays uncommitted until the new term’s entry reaches a majority', () => {
    const r = newRaft(1, [1, 2, 3, 4, 5], { entries: entries(1, 2), hardState: { term: 2, vote: 0, commit: 1 }, preVote: false });
    while (r.role !== 'candidate') r.tick();
    drain(r);
    for (const from of [2, 3]) r.step(msg({ type: 'voteResp', from, to: 1, term: 3 }));
    expect(r.role).toBe('leader');
    drain(r); // the no-op of term 3 at index 3, durable on the leader
    for (const from of [2, 3, 4, 5]) r.step(msg({ type: 'appResp', from, to: 1, term: 3, index: 2 }));
    drain(r);
    expect(r.log.committed).toBe(1);
    for (const from of [2, 3]) r.step(msg({ type: 'appResp', from, to: 1, term: 3, index: 3 }));
    drain(r);
    expect(r.log.committed).toBe(3);
  });

  it('Figure 8: an old-term entry copied to a majority is not committed, and a later leader may replace it', () => {
    const cfg = { preVote: false, checkQuorum: false, maxMsgBytes: 1 };
    const net = new Network([1, 2, 3, 4, 5], cfg);
    // (a)-(b): S1 led term 2 and wrote index 2 to S2 only; S5 led term 3 and wrote its own index 2.
    restart(net, 1, [1, 2], 3, cfg);
    restart(net, 2, [1, 2], 3, cfg);
    restart(net, 3, [1], 3, cfg, 5);
    restart(net, 4, [1], 3, cfg, 5);
    restart(net, 5, [1, 3], 3, cfg, 5);
    // (c): S5 is down; S1 leads term 4 and copies index 2 to S3 and S4, but its own entry reaches nobody.
    net.isolate(5);
    net.drop((m) => m.type === 'app' && m.entries.some((e) => e.term === 4) && net.node(m.to).log.lastIndex() >= m.index);
    net.elect(1);
    expect([1, 2, 3, 4].map((id) => net.node(id).log.term(2))).toEqual([2, 2, 2, 2]);
    expect(net.node(1).log.committed).toBe(1);
    // (d): S1 is down; S5 wins a later term and replaces index 2 everywhere it reaches.
    net.recover();
    net.isolate(1);
    for (let i = 0; i < 3 && net.node(5).role !== 'leader'; i++) net.elect(5);
    expect(net.node(5).role).toBe('leader');
    expect([2, 3, 4].map((id) => net.node(id).log.term(2))).toEqual([3, 3, 3]);
    // Nothing S1 counted as committed was lost.
    const s1 = net.node(1);
    for (let i = 1; i <= s1.log.committed; i++) expect(net.node(5).log.term(i)).toBe(s1.log.term(i));
  });
});

describe('§5.3 a follower commits up to min(leaderCommit, last new entry)', () => {
  it('a stale suffix beyond the append is not committed, even when the leader’s commit index covers it', () => {
    // Entries 3-4 of term 2 were never committed; the leader of term 3 holds others there.
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 1, 2, 2), hardState: { term: 2, vote: 0, commit: 1 } });
    r.step(msg({ type: 'app', from: 1, to: 2, term: 3, index: 1, logTerm: 1, commit: 4, entries: entries(1, 1).slice(1) }));
    const rd = r.ready();
    expect(r.log.committed).toBe(2);
    expect(rd.committedEntries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 1],
    ]);
  });
});

describe('thesis §9.6 pre-vote changes no term and no vote', () => {
  it('a pre-vote request with a higher term leaves the receiver’s term and vote as they were', () => {
    const r = newRaft(2, [1, 2, 3], { hardState: { term: 2, vote: 3, commit: 0 } });
    r.step(msg({ type: 'preVote', from: 1, to: 2, term: 5 }));
    const rd = r.ready();
    expect(r.status()).toMatchObject({ term: 2, vote: 3 });
    expect(rd.hardState).toBeUndefined();
    expect(rd.messages).toEqual([expect.objectContaining({ type: 'preVoteResp', to: 1, term: 5, reject: false })]);
  });

  it('a late pre-vote grant with a higher term leaves a follower’s term and leader as they were', () => {
    const r = newRaft(1, [1, 2, 3], { hardState: { term: 1, vote: 0, commit: 0 } });
    while (r.role !== 'preCandidate') r.tick();
    drain(r); // pre-votes for term 2
    r.step(msg({ type: 'heartbeat', from: 2, to: 1, term: 1 }));
    drain(r);
    r.step(msg({ type: 'preVoteResp', from: 3, to: 1, term: 2 }));
    expect(r.status()).toMatchObject({ role: 'follower', term: 1, leaderId: 2 });
    expect(drain(r)).toEqual([]);
  });

  it('a cut-off node’s pre-votes, delayed and duplicated, neither raise a term nor depose the leader', () => {
    // Without check-quorum nothing but the pre-vote rule keeps these requests harmless.
    const net = new Network([1, 2, 3], { checkQuorum: false });
    net.elect(1);
    const held = holdBack(net, (m) => m.to === 3 || (m.from === 3 && m.type === 'preVote'));
    net.propose(1, 'x'); // node 3 falls behind, so its pre-votes are refused
    const r3 = net.node(3);
    for (let i = 0; i < 60; i++) {
      r3.tick();
      tickOnce(net, 1);
    }
    const preVotes = held.filter((m) => m.type === 'preVote');
    expect(preVotes.length).toBeGreaterThanOrEqual(4);
    net.recover();
    deliver(net, ...[...preVotes].reverse(), ...preVotes);
    expect(net.node(1).status()).toMatchObject({ role: 'leader', term: 1 });
    expect(net.node(2).status()).toMatchObject({ term: 1, vote: 1, leaderId: 1 });
    tickOnce(net, 1);
    expect(r3.status()).toMatchObject({ role: 'follower', term: 1, leaderId: 1 });
    expect(logTerms(r3)).toEqual(logTerms(net.node(1)));
  });
});

describe('§7 InstallSnapshot rule 7: keep the log only if it holds the snapshot’s last entry', () => {
  it('a follower whose entry at the snapshot index has another term discards its whole log', () => {
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 1, 2, 2, 2), hardState: { term: 2, vote: 0, commit: 2 } });
    r.step(msg({ type: 'snap', from: 1, to: 2, term: 3, index: 4, logTerm: 3, commit: 4 }));
    const rd = r.ready();
    expect(rd.snapshot).toMatchObject({ index: 4, term: 3 });
    expect(rd.committedEntries).toEqual([]);
    r.advance(rd);
    expect(r.log.lastIndex()).toBe(4);
    expect(r.log.term(4)).toBe(3);
    expect(r.log.entry(5)).toBeUndefined();
  });

  it('a follower with a long stale suffix catches up from a snapshot, ignoring a duplicate of it', () => {
    const net = new Network([1, 2, 3]);
    // Node 3 holds entries 3-12 of term 2 that the other two never had.
    restart(net, 1, [1, 1], 2, {});
    restart(net, 2, [1, 1], 2, {});
    restart(net, 3, [1, 1, ...Array<number>(10).fill(2)], 2, {});
    net.isolate(3);
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `x${i}`);
    const leader = net.node(1);
    leader.compact({ index: leader.log.applied, term: leader.term }); // a snapshot at 8, term 3
    net.recover();
    const snaps = holdBack(net, (m) => m.type === 'snap');
    tickOnce(net, 1);
    expect(snaps.map((m) => [m.index, m.logTerm])).toEqual([[8, 3]]);
    deliver(net, snaps[0]!);
    net.propose(1, 'after');
    deliver(net, snaps[0]!);
    const r3 = net.node(3);
    expect(r3.status().snapshotIndex).toBe(8);
    expect([8, 9].map((i) => r3.log.term(i))).toEqual([3, 3]);
    expect(r3.log.lastIndex()).toBe(leader.log.lastIndex());
  });
});

describe('a node never speaks for a term it has left', () => {
  it('an acknowledgement not yet sent when a later leader replaces the entries it acknowledges is dropped', () => {
    // Node 1 follows the leader of term 2 and takes entries 2..3 from it; before its Ready is
    // taken, the leader of term 3 overwrites them. The term-2 acknowledgement of entries it no
    // longer holds must not leave (the old leader could count it).
    const r = newRaft(1, [1, 2, 3], {}, 1);
    r.step(msg({ type: 'app', from: 2, to: 1, term: 2, index: 0, logTerm: 0, commit: 0, entries: entries(2, 2, 2) }));
    r.step(msg({ type: 'app', from: 3, to: 1, term: 3, index: 1, logTerm: 2, commit: 0, entries: [{ index: 2, term: 3, type: 'normal', data: new Uint8Array(0) }] }));
    const rd = r.ready();
    expect(rd.messages.filter((m) => m.term < 3)).toEqual([]);
    expect(rd.messages.filter((m) => m.type === 'appResp' && m.to === 3)).toHaveLength(1);
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 2],
      [2, 3],
    ]);
  });

  it('a vote granted in a term the node leaves before its Ready is taken is dropped', () => {
    const r = newRaft(1, [1, 2, 3], { preVote: false, checkQuorum: false }, 1);
    r.step(msg({ type: 'vote', from: 2, to: 1, term: 1, index: 0, logTerm: 0 }));
    r.step(msg({ type: 'heartbeat', from: 3, to: 1, term: 2 }));
    const rd = r.ready();
    expect(rd.messages.filter((m) => m.type === 'voteResp')).toEqual([]);
    expect(rd.hardState).toMatchObject({ term: 2, vote: 0 });
  });
});
