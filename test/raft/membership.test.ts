/**
 * Membership changes on the test network with real Raft instances (thesis ch. 4): learners,
 * simple changes, joint consensus, the rules that keep changes safe, and removed nodes.
 * Leadership transfer, snapshots and reads under changing configurations: membership-transfer.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Network, drain, newRaft } from './network.js';
import { confOfVoters, isJoint } from '../../src/raft/core/conf.js';
import { MAX_CONF_CONTEXT_BYTES } from '../../src/raft/core/conf-codec.js';
import { committedIndex } from '../../src/raft/core/quorum.js';
import { message as msg } from '../../src/raft/core/types.js';
import { addNodes, changeConf, cluster, conf, confEntries, everyConf, holdBack, joiner, jointCluster, leaders, learner, partition, remove, tickAll, voter, write } from './conf-harness.js';

describe('learners', () => {
  it('a learner added to a cluster receives the whole log and the configuration that adds it', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    changeConf(net, 1, [learner(4)]);
    write(net, 1, 3);
    const r4 = net.node(4);
    expect(r4.log.lastIndex()).toBe(net.node(1).log.lastIndex());
    expect(r4.log.committed).toBe(net.node(1).log.committed);
    expect(r4.status().conf).toEqual(conf([1, 2, 3], { learners: [4] }));
    expect(net.node(1).members().find((m) => m.id === 4)).toMatchObject({ voter: false, match: r4.log.lastIndex() });
  });

  it('is not counted for commit: with the other voters cut off, the leader and the learner commit nothing', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    changeConf(net, 1, [learner(4)]);
    const before = net.node(1).log.committed;
    partition(net, [1, 4], [2, 3]);
    net.propose(1, 'x');
    expect(net.node(4).log.lastIndex()).toBe(before + 1);
    expect(net.node(1).log.committed).toBe(before);
    net.recover();
    tickAll(net, 1, [1]);
    expect(net.node(1).log.committed).toBe(before + 1);
  });

  it('is never asked for a vote and never campaigns, even after a long silence', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    changeConf(net, 1, [learner(4)]);
    tickAll(net, 1, [1]);
    expect(everyConf(net, [2, 3, 4])).toEqual(Array(3).fill(conf([1, 2, 3], { learners: [4] })));
    net.isolate(1);
    const term = net.node(4).term;
    // The voters elect a new leader; the learner's silence meanwhile is far beyond any timeout.
    tickAll(net, 100, [2, 3, 4]);
    expect(leaders(net).filter((id) => id !== 1)).toHaveLength(1);
    const voteTraffic = net.delivered.filter((m) => ['vote', 'preVote', 'voteResp', 'preVoteResp'].includes(m.type));
    expect(voteTraffic.length).toBeGreaterThan(0);
    expect(voteTraffic.filter((m) => m.from === 4 || m.to === 4)).toEqual([]);
    net.isolate(4);
    tickAll(net, 500, [4]);
    expect(net.node(4).role).toBe('follower');
    expect(net.node(4).term).toBeGreaterThan(term); // it followed the new leader's term, nothing more
    expect(net.node(4).term).toBe(net.node(2).term);
  });

  it('whose leader has gone silent answers pre-votes from an election timeout on, at every tick', () => {
    // A node that may not campaign must not renew its lease each timeout: a voter that does not
    // know yet it was promoted would otherwise ignore the candidates that need its vote.
    const r = newRaft(4, [1, 2, 3], { conf: conf([1, 2, 3], { learners: [4] }), checkQuorum: true, preVote: true });
    r.step(msg({ type: 'heartbeat', from: 1, to: 4, term: 1 }));
    drain(r);
    const unanswered: number[] = [];
    for (let tick = 1; tick <= 60; tick++) {
      r.tick();
      drain(r);
      if (tick <= 10) continue;
      r.step(msg({ type: 'preVote', from: 2, to: 4, term: 2, index: r.log.lastIndex(), logTerm: r.log.lastTerm() }));
      if (!drain(r).some((m) => m.type === 'preVoteResp' && m.to === 2 && !m.reject)) unanswered.push(tick);
    }
    expect(unanswered).toEqual([]);
    expect(r.role).toBe('follower');
  });

  it('a grant from a learner does not count toward an election', () => {
    const r = newRaft(1, [1, 2, 3], { conf: conf([1, 2, 3], { learners: [4] }), preVote: false });
    while (r.role !== 'candidate') r.tick();
    drain(r);
    r.step(msg({ type: 'voteResp', from: 4, to: 1, term: r.term }));
    expect(r.role).toBe('candidate');
    r.step(msg({ type: 'voteResp', from: 2, to: 1, term: r.term }));
    expect(r.role).toBe('leader');
  });

  it('is promoted to voter by a simple change, and then counts for commit and votes', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    changeConf(net, 1, [learner(4)]);
    const res = changeConf(net, 1, [voter(4)]);
    expect(isJoint(res.conf)).toBe(false);
    tickAll(net, 1, [1]);
    expect(everyConf(net, [1, 2, 3, 4])).toEqual(Array(4).fill(conf([1, 2, 3, 4])));
    // Four voters: 1 and 4 alone are no majority, 1, 4 and 2 are.
    partition(net, [1, 4], [2], [3]);
    const before = net.node(1).log.committed;
    net.propose(1, 'y');
    expect(net.node(1).log.committed).toBe(before);
    net.recover();
    partition(net, [1, 2, 4], [3]);
    tickAll(net, 1, [1]);
    expect(net.node(1).log.committed).toBe(before + 1);
  });

  it('a voter demoted to learner by a simple change stops counting at once', () => {
    const net = cluster([1, 2, 3]);
    changeConf(net, 1, [learner(3)]);
    tickAll(net, 1, [1]);
    expect(everyConf(net, [1, 2, 3])).toEqual(Array(3).fill(conf([1, 2], { learners: [3] })));
    partition(net, [1, 3], [2]);
    const before = net.node(1).log.committed;
    net.propose(1, 'z');
    expect(net.node(1).log.committed).toBe(before);
    expect(net.node(3).log.lastIndex()).toBe(before + 1);
  });
});

describe('a node outside every configuration', () => {
  it('never campaigns, however long it waits', () => {
    const r = joiner(9);
    for (let i = 0; i < 1000; i++) r.tick();
    expect(r.status()).toMatchObject({ role: 'follower', term: 0 });
    expect(drain(r)).toEqual([]);
  });
});

describe('simple changes of one voter', () => {
  it('adds a voter that catches up, and from then on needs three of four', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    const res = changeConf(net, 1, [voter(4)]);
    expect(res.conf).toEqual(conf([1, 2, 3, 4]));
    tickAll(net, 2, [1]);
    expect(net.node(4).log.lastIndex()).toBe(net.node(1).log.lastIndex());
    expect(everyConf(net, [1, 2, 3, 4])).toEqual(Array(4).fill(conf([1, 2, 3, 4])));
    partition(net, [1, 4], [2, 3]);
    const before = net.node(1).log.committed;
    net.propose(1, 'x');
    expect(net.node(1).log.committed).toBe(before);
  });

  it('removes a voter: the leader stops replicating to it and commits with the rest', () => {
    const net = cluster([1, 2, 3]);
    const res = changeConf(net, 1, [remove(3)]);
    tickAll(net, 1, [1]);
    expect(everyConf(net, [1, 2])).toEqual(Array(2).fill(conf([1, 2])));
    expect(net.node(1).members().map((m) => m.id)).toEqual([1, 2]);
    // The leader applied the removal as soon as it committed, and sends the removed node nothing
    // more: it holds the entry but never learns it committed (thesis §4.2.3), so it still
    // believes itself a voter. 'a removed node' below shows what that leads to.
    const r3 = net.node(3);
    expect(r3.log.lastIndex()).toBe(res.index);
    expect(r3.log.committed).toBe(res.index - 1);
    expect(r3.status().conf).toEqual(confOfVoters([1, 2, 3]));
    const last = net.node(1).log.lastIndex();
    net.propose(1, 'after');
    expect(net.node(1).log.committed).toBe(last + 1);
    expect(r3.log.lastIndex()).toBe(res.index);
  });

  it('a configuration takes effect when applied: entry committed under C_old, in force after', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    const res = r1.proposeConfChange({ changes: [remove(3)] });
    expect(res.ok).toBe(true);
    const out = drain(r1); // appended and durable on the leader, not yet sent
    expect(r1.status().conf).toEqual(confOfVoters([1, 2, 3]));
    for (const m of out) net.node(m.to).step(m);
    net.deliverAll();
    expect(r1.status().conf).toEqual(conf([1, 2]));
    expect(r1.confAt(res.ok ? res.index - 1 : 0)).toEqual(confOfVoters([1, 2, 3]));
    expect(r1.confAt(res.ok ? res.index : 0)).toEqual(conf([1, 2]));
  });
});

describe('joint consensus', () => {
  it('3 → 5 goes through C_old,new and leaves it by itself', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4, 5);
    const res = changeConf(net, 1, [voter(4), voter(5)]);
    expect(res.conf).toEqual(conf([1, 2, 3, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true }));
    tickAll(net, 3, [1]);
    const entries = confEntries(net.node(1));
    expect(entries.map(([i, c]) => [i, c])).toEqual([
      [res.index, res.conf],
      [res.index + 1, conf([1, 2, 3, 4, 5])],
    ]);
    for (const id of [1, 2, 3, 4, 5]) {
      const r = net.node(id);
      expect(r.status().conf).toEqual(conf([1, 2, 3, 4, 5]));
      expect(r.confAt(res.index)).toEqual(res.conf);
      expect(confEntries(r)).toEqual(entries);
    }
    // Once the joint configuration is left, the next change is taken.
    expect(changeConf(net, 1, [remove(5)]).conf).toEqual(conf([1, 2, 3, 4]));
  });

  it('explicitJoint stays joint until an empty change leaves it', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    const res = changeConf(net, 1, { changes: [voter(4), remove(3)], transition: 'explicitJoint' });
    tickAll(net, 30, [1]);
    expect(net.node(1).status().conf).toEqual(res.conf);
    expect(net.node(1).proposeConfChange({ changes: [voter(3)] })).toMatchObject({ ok: false, reason: expect.stringMatching(/joint/) });
    changeConf(net, 1, []);
    expect(net.node(1).status().conf).toEqual(conf([1, 2, 4]));
  });

  it('commitment needs a majority of C_old and of C_new', () => {
    for (const [cutOff, other] of [
      [
        [4, 5],
        [2, 3],
      ],
      [
        [2, 3],
        [4, 5],
      ],
    ] as const) {
      const net = jointCluster();
      const before = net.node(1).log.committed;
      partition(net, [1, ...other], [...cutOff]);
      net.propose(1, 'x');
      tickAll(net, 3, [1]);
      // A majority of one half holds it (with the leader, both of the other half): not committed.
      expect(other.map((id) => net.node(id).log.lastIndex())).toEqual([before + 1, before + 1]);
      expect(net.node(1).log.committed).toBe(before);
      net.recover();
      partition(net, [1, ...other, cutOff[0]], [cutOff[1]]);
      tickAll(net, 2, [1]);
      expect(net.node(1).log.committed).toBe(before + 1);
    }
  });

  it('an election needs a majority of C_old and of C_new', () => {
    const net = jointCluster();
    // The leader is gone; {2,3} hold a majority of C_old only, {4,5} of C_new only.
    net.isolate(1);
    partition(net, [2, 3], [4, 5]);
    const terms = [2, 3, 4, 5].map((id) => net.node(id).term);
    tickAll(net, 200, [2, 3, 4, 5]);
    expect(leaders(net).filter((id) => id !== 1)).toEqual([]);
    // Pre-vote held every term, as no pre-vote could be won.
    expect([2, 3, 4, 5].map((id) => net.node(id).term)).toEqual(terms);
    // Joined, they have a majority of both: one is elected.
    net.recover();
    net.isolate(1);
    tickAll(net, 50, [2, 3, 4, 5]);
    const l = leaders(net).filter((id) => id !== 1);
    expect(l).toHaveLength(1);
    const term = net.node(l[0]!).term;
    expect([2, 3, 4, 5].map((id) => net.node(id).status()).every((st) => st.term === term && st.leaderId === l[0])).toBe(true);
  });

  it('a leader that is in C_old only leads through the joint configuration, then hands over', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    const res = changeConf(net, 1, [remove(1), voter(4)]);
    expect(res.conf).toEqual(conf([2, 3, 4], { votersOutgoing: [1, 2, 3], autoLeave: true }));
    // Applied, left, and the leave applied at the leader: it stepped down and asked another to run.
    const l = leaders(net);
    expect(l).toHaveLength(1);
    expect([2, 3, 4]).toContain(l[0]);
    expect(net.node(l[0]!).term).toBe(2);
    tickAll(net, 2, l);
    expect(everyConf(net, [1, 2, 3, 4])).toEqual(Array(4).fill(conf([2, 3, 4])));
  });
});

describe('at most one change at a time', () => {
  it('a second change is refused, with the reason, until the first is applied', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    const first = r1.proposeConfChange({ changes: [learner(4)] });
    expect(first.ok).toBe(true);
    const second = r1.proposeConfChange({ changes: [learner(5)] });
    expect(second).toEqual({ ok: false, leaderId: 1, reason: expect.stringMatching(/pending/) });
    // Commands are not held up by it.
    expect(r1.propose(new Uint8Array([1])).ok).toBe(true);
    net.deliverAll();
    expect(r1.proposeConfChange({ changes: [learner(5)] }).ok).toBe(true);
  });

  it('the automatic leave of a joint configuration is the pending change meanwhile', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4, 5);
    const r1 = net.node(1);
    // Hold the appends, so the joint entry applies at the leader but its leave is not yet committed.
    const joint = r1.proposeConfChange({ changes: [voter(4), voter(5)] });
    const held = holdBack(net, (m) => m.type === 'app' && m.entries.some((e) => joint.ok && e.index > joint.index));
    net.deliverAll();
    expect(isJoint(r1.status().conf)).toBe(true);
    expect(confEntries(r1)).toHaveLength(2);
    expect(r1.proposeConfChange({ changes: [] })).toMatchObject({ ok: false, reason: expect.stringMatching(/pending/) });
    expect(held.length).toBeGreaterThan(0);
    net.recover();
    tickAll(net, 2, [1]);
    expect(r1.status().conf).toEqual(conf([1, 2, 3, 4, 5]));
  });

  it('a follower refuses, naming the leader it knows', () => {
    const net = cluster([1, 2, 3]);
    expect(net.node(2).proposeConfChange({ changes: [learner(4)] })).toEqual({ ok: false, leaderId: 1, reason: expect.stringMatching(/not the leader/) });
  });

  it('a change changeConf refuses is refused, and nothing is appended', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    const last = r1.log.lastIndex();
    expect(r1.proposeConfChange({ changes: [remove(1), remove(2), remove(3)] })).toMatchObject({ ok: false, reason: expect.stringMatching(/no voter/) });
    expect(r1.proposeConfChange({ changes: [] })).toMatchObject({ ok: false, reason: expect.stringMatching(/no joint/) });
    expect(r1.proposeConfChange({ changes: [voter(0)] })).toMatchObject({ ok: false, reason: expect.stringMatching(/not a node id/) });
    expect(r1.log.lastIndex()).toBe(last);
  });
});

describe('a new leader proposes no change before an entry of its own term commits (the 2015 single-server bug)', () => {
  it('a leader that has applied every earlier entry still waits for its own no-op to commit', () => {
    const net = cluster([1, 2, 3]);
    write(net, 1);
    const r2 = net.node(2);
    expect(r2.log.applied).toBe(r2.log.lastIndex());
    // Node 2 takes over; the acknowledgements of its no-op are held back.
    const held = holdBack(net, (m) => m.type === 'appResp' && m.to === 2);
    expect(net.node(1).transferLeadership(2).ok).toBe(true);
    net.deliverAll();
    expect(r2.status()).toMatchObject({ role: 'leader', term: 2 });
    expect(r2.log.applied).toBe(r2.log.lastIndex() - 1);
    const res = r2.proposeConfChange({ changes: [learner(4)] });
    expect(res).toEqual({ ok: false, leaderId: 2, reason: expect.stringMatching(/not yet committed an entry of its term/) });
    expect(r2.log.lastIndex()).toBe(r2.log.applied + 1);
    net.recover();
    for (const m of held) r2.step(m);
    net.deliverAll();
    expect(r2.log.committed).toBe(r2.log.lastIndex());
    expect(r2.proposeConfChange({ changes: [learner(4)] }).ok).toBe(true);
  });

  it('a change of an earlier term still in the log is applied before the next is computed: C_old → C1 → C2, never C1 → C2′', () => {
    // C0 = {1,2,3,4}. Leader 1 proposes C1 = C0 + 5; the entry reaches node 2 only, then
    // leadership passes to node 2 before it commits.
    const net = cluster([1, 2, 3, 4]);
    addNodes(net, 5, 6);
    const r1 = net.node(1);
    const c1 = r1.proposeConfChange({ changes: [voter(5)] });
    if (!c1.ok) throw new Error(c1.reason);
    const heldC1 = holdBack(net, (m) => m.type === 'app' && m.to !== 2 && m.entries.some((e) => e.index === c1.index));
    net.deliverAll();
    expect(heldC1.length).toBeGreaterThan(0);
    expect(r1.log.committed).toBe(c1.index - 1);
    const heldNoop = holdBack(net, (m) => m.type === 'appResp' && m.to === 2);
    expect(r1.transferLeadership(2).ok).toBe(true);
    net.deliverAll();
    const r2 = net.node(2);
    expect(r2.status()).toMatchObject({ role: 'leader', term: 2, conf: confOfVoters([1, 2, 3, 4]) });
    // Node 2 has applied C0 only; computed from it, C2′ = C0 + 6 would follow C1 in the log. When
    // both apply, C1 → C2′ changes two voters at once: {1,2,5} commit under C1, {3,4,6} under C2′.
    const c2wrong = confOfVoters([1, 2, 3, 4, 6]);
    const disjoint = (quorum: number[]) => (id: number) => (quorum.includes(id) ? 10 : 0);
    expect(committedIndex(c1.conf, disjoint([1, 2, 5]))).toBe(10);
    expect(committedIndex(c2wrong, disjoint([3, 4, 6]))).toBe(10);
    expect(r2.proposeConfChange({ changes: [voter(6)] })).toMatchObject({ ok: false, reason: expect.stringMatching(/pending/) });
    // Once its no-op commits, C1 commits and applies under it, and the next change builds on C1.
    net.recover();
    for (const m of heldNoop) r2.step(m);
    net.deliverAll();
    expect(r2.status().conf).toEqual(c1.conf);
    const c2 = changeConf(net, 2, [voter(6)]);
    expect(c2.conf).toEqual(conf([1, 2, 3, 4, 5, 6]));
  });
});

describe('a removed node', () => {
  /** Node 3 is removed and never learns it: it campaigns on its own old configuration. */
  function removed(cfg: { preVote: boolean; checkQuorum: boolean }): Network {
    const net = cluster([1, 2, 3], cfg);
    changeConf(net, 1, [remove(3)]);
    expect(net.node(3).status().conf).toEqual(confOfVoters([1, 2, 3]));
    return net;
  }

  for (const cfg of [
    { preVote: true, checkQuorum: true },
    { preVote: false, checkQuorum: true },
  ]) {
    it(`that keeps campaigning does not disrupt the cluster: check-quorum (preVote ${cfg.preVote})`, () => {
      const net = removed(cfg);
      tickAll(net, 300);
      // Its requests reach voters that hear from their leader: they ignore them.
      expect(net.delivered.filter((m) => m.from === 3 && (m.type === 'preVote' || m.type === 'vote')).length).toBeGreaterThan(10);
      expect(net.delivered.filter((m) => m.to === 3 && (m.type === 'preVoteResp' || m.type === 'voteResp'))).toEqual([]);
      expect(leaders(net)).toEqual([1]);
      expect([1, 2].map((id) => net.node(id).term)).toEqual([1, 1]);
      write(net, 1);
      expect(net.node(2).log.committed).toBe(net.node(1).log.lastIndex());
    });
  }

  it('that keeps campaigning does not disrupt the cluster: pre-vote, once its log is behind', () => {
    const net = removed({ preVote: true, checkQuorum: false });
    write(net, 1); // the removed node misses this
    tickAll(net, 300);
    const answers = net.delivered.filter((m) => m.to === 3 && m.type === 'preVoteResp');
    expect(answers.length).toBeGreaterThan(10);
    expect(answers.every((m) => m.reject)).toBe(true);
    expect(leaders(net)).toEqual([1]);
    expect([1, 2, 3].map((id) => net.node(id).term)).toEqual([1, 1, 1]);
  });

  it('with pre-vote alone, a removed node whose log is up to date wins one election, applies its removal and hands back', () => {
    // Safe, and bounded: as its leader it commits the entry that removed it (thesis §4.2.3).
    const net = removed({ preVote: true, checkQuorum: false });
    tickAll(net, 300);
    const r3 = net.node(3);
    expect(net.delivered.filter((m) => m.from === 3 && m.type === 'app').length).toBeGreaterThan(0);
    expect(r3.status()).toMatchObject({ role: 'follower', conf: conf([1, 2]) });
    const l = leaders(net);
    expect(l).toHaveLength(1);
    expect([1, 2]).toContain(l[0]);
    expect(net.node(l[0]!).term).toBe(3);
  });

  it('without pre-vote and check-quorum it does disrupt: the reason both exist', () => {
    const net = removed({ preVote: false, checkQuorum: false });
    tickAll(net, 300);
    expect(net.node(1).term).toBeGreaterThan(1);
  });
});

describe('removing the leader', () => {
  it('it steps down once the change applies and hands over with timeoutNow, without an election timeout', () => {
    const net = cluster([1, 2, 3]);
    const res = changeConf(net, 1, [remove(1)]);
    // Not a tick since the proposal.
    const r1 = net.node(1);
    expect(r1.status()).toMatchObject({ role: 'follower', conf: conf([2, 3]) });
    const timeoutNow = net.delivered.filter((m) => m.type === 'timeoutNow');
    expect(timeoutNow).toEqual([expect.objectContaining({ from: 1, term: 1 })]);
    const l = leaders(net);
    expect(l).toEqual([timeoutNow[0]!.to]);
    expect(net.node(l[0]!).term).toBe(2);
    tickAll(net, 2, l);
    expect(everyConf(net, [2, 3])).toEqual([conf([2, 3]), conf([2, 3])]);
    expect(net.node(l[0]!).confAt(res.index)).toEqual(conf([2, 3]));
    // The old leader, no voter any more, never campaigns.
    net.isolate(1);
    tickAll(net, 300, [1]);
    expect(r1.role).toBe('follower');
    expect(r1.term).toBe(2);
  });

  it('it tells the followers the removal committed before it steps down, so the new configuration elects the next leader', () => {
    // Without that, followers stay in the old configuration, whose every quorum needs this
    // node's vote or all of the others: losing one more node would stall the election.
    const net = cluster([1, 2, 3, 4]);
    holdBack(net, (m) => m.type === 'timeoutNow');
    const res = changeConf(net, 1, [remove(1)]);
    expect(net.node(1).status()).toMatchObject({ role: 'follower', conf: conf([2, 3, 4]) });
    for (const id of [2, 3, 4]) expect(net.node(id).log.committed, `node ${id}`).toBeGreaterThanOrEqual(res.index);
    tickAll(net, 1, [2, 3, 4]);
    expect(everyConf(net, [2, 3, 4])).toEqual(Array(3).fill(conf([2, 3, 4])));
    net.isolate(1);
    net.isolate(4);
    tickAll(net, 60, [2, 3]);
    expect(leaders(net)).toHaveLength(1);
  });

  it('demoted to learner, it steps down, hands over and goes on receiving the log', () => {
    const net = cluster([1, 2, 3]);
    changeConf(net, 1, [learner(1)]);
    const l = leaders(net);
    expect(l).toHaveLength(1);
    expect(l[0]).not.toBe(1);
    write(net, l[0]!, 2);
    expect(net.node(1).status()).toMatchObject({ role: 'follower', leaderId: l[0], conf: conf([2, 3], { learners: [1] }) });
    expect(net.node(1).log.committed).toBe(net.node(l[0]!).log.lastIndex());
  });

  it('when no voter holds its whole log it sends no timeoutNow; the others elect a leader after a timeout', () => {
    const net = cluster([1, 2, 3], { maxMsgBytes: 1 });
    const r1 = net.node(1);
    const res = r1.proposeConfChange({ changes: [remove(1)] });
    if (!res.ok) throw new Error(res.reason);
    r1.propose(new Uint8Array([7]));
    holdBack(net, (m) => m.type === 'app' && m.entries.some((e) => e.index > res.index));
    net.deliverAll();
    expect(r1.status()).toMatchObject({ role: 'follower', conf: conf([2, 3]) });
    expect(net.delivered.filter((m) => m.type === 'timeoutNow')).toEqual([]);
    expect(leaders(net)).toEqual([]);
    net.recover();
    tickAll(net, 40, [2, 3]);
    expect(leaders(net)).toHaveLength(1);
  });
});

describe('a change whose entry no node could apply', () => {
  it('is refused: a context beyond MAX_CONF_CONTEXT_BYTES', () => {
    const net = new Network([1]);
    net.elect(1);
    const r = net.node(1);
    const last = r.log.lastIndex();
    const res = r.proposeConfChange({ changes: [learner(2)] }, new Uint8Array(MAX_CONF_CONTEXT_BYTES + 1));
    expect(res).toMatchObject({ ok: false, reason: expect.stringMatching(/context/) });
    expect(r.log.lastIndex()).toBe(last);
    expect(() => drain(r)).not.toThrow();
    expect(r.proposeConfChange({ changes: [learner(2)] }, new Uint8Array(MAX_CONF_CONTEXT_BYTES)).ok).toBe(true);
    drain(r);
    expect(r.status().conf).toEqual(conf([1], { learners: [2] }));
  });
});
