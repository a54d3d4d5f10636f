/**
 * More of membership on the test network: leadership transfer (thesis §3.10), snapshots that carry
 * the configuration, and ReadIndex and check-quorum in a joint configuration.
 */
import { describe, expect, it } from 'vitest';
import { drain } from './network.js';
import { Raft } from '../../src/raft/core/raft.js';
import { seededRng } from '../../src/raft/core/rng.js';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { CAMPAIGN_TRANSFER, NONE, type SnapshotMeta } from '../../src/raft/core/types.js';
import { addNodes, changeConf, cluster, conf, everyConf, holdBack, jointCluster, leaders, learner, partition, remove, tickAll, voter, write } from './conf-harness.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('leadership transfer', () => {
  it('hands over to an up-to-date voter: elected in the next term, before any tick', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    expect(r1.transferLeadership(2)).toEqual({ ok: true });
    expect(r1.status().leadTransferee).toBe(2);
    // Until it is done, nothing is accepted: the driver should retry at the new leader.
    expect(r1.propose(bytes('x'))).toEqual({ ok: false, leaderId: NONE });
    expect(r1.proposeConfChange({ changes: [learner(4)] })).toMatchObject({ ok: false, reason: expect.stringMatching(/transferred to node 2/) });
    const last = r1.log.lastIndex();
    const from = net.delivered.length;
    net.deliverAll();
    const seen = net.delivered.slice(from);
    expect(seen.filter((m) => m.type === 'timeoutNow')).toEqual([expect.objectContaining({ from: 1, to: 2, term: 1 })]);
    // The target skips pre-vote, and node 3 grants although it heard from its leader just now.
    const votes = seen.filter((m) => m.type === 'vote');
    expect(votes.map((m) => [m.from, m.to, m.term, m.context])).toEqual([
      [2, 1, 2, CAMPAIGN_TRANSFER],
      [2, 3, 2, CAMPAIGN_TRANSFER],
    ]);
    expect(seen.filter((m) => m.type === 'voteResp').every((m) => !m.reject)).toBe(true);
    expect(seen.some((m) => m.type === 'preVote')).toBe(false);
    expect(leaders(net)).toEqual([2]);
    expect(net.node(2).term).toBe(2);
    expect(r1.status()).toMatchObject({ role: 'follower', leaderId: 2, leadTransferee: NONE });
    expect(r1.log.lastIndex()).toBe(last + 1); // the new leader's no-op, nothing of the old one's
    write(net, 2);
    expect(r1.log.committed).toBe(net.node(2).log.lastIndex());
  });

  it('refuses every proposal while the target has not taken over', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    const held = holdBack(net, (m) => m.type === 'timeoutNow');
    r1.transferLeadership(3);
    for (let i = 0; i < 9; i++) {
      tickAll(net, 1, [1]);
      expect(r1.propose(bytes(`x${i}`)).ok).toBe(false);
    }
    expect(held).toHaveLength(1);
    net.recover();
    net.node(3).step(held[0]!);
    net.deliverAll();
    expect(leaders(net)).toEqual([3]);
    expect(r1.propose(bytes('late'))).toEqual({ ok: false, leaderId: 3 });
  });

  it('to a lagging follower: brings it up to date first, then sends timeoutNow', () => {
    const net = cluster([1, 2, 3]);
    net.isolate(3);
    write(net, 1, 5);
    net.recover();
    const r1 = net.node(1);
    const last = r1.log.lastIndex();
    expect(net.node(3).log.lastIndex()).toBeLessThan(last);
    const from = net.delivered.length;
    expect(r1.transferLeadership(3).ok).toBe(true);
    tickAll(net, 3, [1, 2, 3]);
    expect(leaders(net)).toEqual([3]);
    const seen = net.delivered.slice(from);
    const t = seen.findIndex((m) => m.type === 'timeoutNow');
    expect(t).toBeGreaterThan(0);
    // Sent once node 3 acknowledged the leader's whole log, not before.
    const acks = seen.slice(0, t).filter((m) => m.from === 3 && m.type === 'appResp' && !m.reject);
    expect(acks[acks.length - 1]?.index).toBe(last);
    expect(seen.filter((m) => m.type === 'timeoutNow')).toHaveLength(1);
    expect(net.node(3).term).toBe(2);
  });

  it('is abandoned after an election timeout if the target does not take over; proposals resume', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    net.isolate(2);
    expect(r1.transferLeadership(2).ok).toBe(true);
    tickAll(net, 9, [1, 3]); // electionTick - 1
    expect(r1.status().leadTransferee).toBe(2);
    expect(r1.propose(bytes('x')).ok).toBe(false);
    tickAll(net, 1, [1, 3]);
    expect(r1.status()).toMatchObject({ role: 'leader', term: 1, leadTransferee: NONE });
    expect(r1.propose(bytes('y')).ok).toBe(true);
    net.deliverAll();
    expect(r1.log.committed).toBe(r1.log.lastIndex());
  });

  it('a target that catches up late still has an election timeout from its timeoutNow to win', () => {
    // Its vote requests wait for its disk: a leader taking proposals again meanwhile would leave it
    // behind, and its campaign would depose the leader and win nothing.
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    net.isolate(2);
    write(net, 1, 3);
    expect(r1.transferLeadership(2).ok).toBe(true);
    tickAll(net, 8, [1, 3]); // node 2 cut off for most of an election timeout
    net.recover();
    const held = holdBack(net, (m) => m.type === 'timeoutNow');
    for (let t = 0; t < 3 && held.length === 0; t++) tickAll(net, 1, [1, 3]);
    expect(held).toHaveLength(1);
    tickAll(net, 9, [1, 3]); // more than an election timeout from the request, less from timeoutNow
    expect(r1.status().leadTransferee).toBe(2);
    expect(r1.propose(bytes('x')).ok).toBe(false);
    tickAll(net, 1, [1, 3]);
    expect(r1.status()).toMatchObject({ role: 'leader', leadTransferee: NONE });
  });

  it('does not hold off check-quorum: a leader cut off from everyone steps down even while transfers keep being asked for', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    net.isolate(1);
    let ticks = 0;
    while (r1.status().role === 'leader' && ticks < 40) {
      // A new target every few ticks: each restarts the transfer, never the check-quorum round.
      if (ticks % 4 === 0) r1.transferLeadership(ticks % 8 === 0 ? 2 : 3);
      tickAll(net, 1, [1]);
      ticks++;
    }
    expect(r1.status().role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(20); // two election timeouts (electionTick 10)
  });

  it('is refused to a learner, an unknown node, itself, or by a follower', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    changeConf(net, 1, [learner(4)]);
    const r1 = net.node(1);
    expect(r1.transferLeadership(4)).toMatchObject({ ok: false, reason: expect.stringMatching(/not a voter/) });
    expect(r1.transferLeadership(9)).toMatchObject({ ok: false, reason: expect.stringMatching(/not a voter/) });
    expect(r1.transferLeadership(1)).toMatchObject({ ok: false, reason: expect.stringMatching(/leads already/) });
    expect(net.node(2).transferLeadership(3)).toEqual({ ok: false, leaderId: 1, reason: expect.stringMatching(/not the leader/) });
    expect(r1.status().leadTransferee).toBe(NONE);
    expect(r1.propose(bytes('x')).ok).toBe(true);
  });

  it('a learner told to take over does not campaign', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4);
    changeConf(net, 1, [learner(4)]);
    const r4 = net.node(4);
    r4.step({ ...net.delivered.find((m) => m.to === 4 && m.type === 'heartbeat')!, type: 'timeoutNow', term: r4.term });
    expect(drain(r4)).toEqual([]);
    expect(r4.role).toBe('follower');
  });

  it('to a node a pending change removes: leadership ends among the voters of the new configuration', () => {
    const net = cluster([1, 2, 3]);
    const r1 = net.node(1);
    const res = r1.proposeConfChange({ changes: [remove(3)] });
    expect(res.ok).toBe(true);
    const held = holdBack(net, (m) => m.type === 'app');
    net.deliverAll();
    expect(r1.transferLeadership(3).ok).toBe(true);
    net.recover();
    for (const m of held) net.node(m.to).step(m);
    net.deliverAll();
    // The leader counts node 3's acknowledgement, which commits the removal, and sends it
    // timeoutNow in the same step, before applying the removal (which would abandon the
    // transfer). Node 3, not yet knowing the removal committed, wins term 2, applies its own
    // removal, steps down and hands over again: two needless elections, but safe.
    tickAll(net, 30, [1, 2]);
    const l = leaders(net).filter((id) => id !== 3);
    expect(l).toHaveLength(1);
    expect(net.node(l[0]!).status()).toMatchObject({ leadTransferee: NONE, conf: conf([1, 2]) });
    expect(net.node(l[0]!).propose(bytes('z')).ok).toBe(true);
  });
});

describe('snapshots carry the configuration', () => {
  /** Node 3 cut off while node 4 is added as voter (entry a), then learner 5 (entry b); the leader compacted up to a + 2. */
  function compactedAcrossChanges() {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4, 5);
    net.isolate(3);
    const a = changeConf(net, 1, [voter(4)]).index;
    write(net, 1, 2);
    const b = changeConf(net, 1, [learner(5)]).index;
    write(net, 1, 2);
    const r1 = net.node(1);
    expect(r1.confAt(a + 2)).toEqual(conf([1, 2, 3, 4]));
    expect(r1.compact({ index: a + 2, term: r1.log.term(a + 2)! })).toBe(true);
    return { net, a, b, s: a + 2 };
  }

  it('a follower installing a snapshot takes the configuration as of it, then later changes from the log', () => {
    const { net, b, s } = compactedAcrossChanges();
    const r3 = net.node(3);
    expect(r3.status().conf).toEqual(confOfVoters([1, 2, 3]));
    net.recover();
    tickAll(net, 3, [1]);
    const snaps = net.delivered.filter((m) => m.type === 'snap' && m.to === 3);
    expect(snaps.map((m) => [m.index, m.conf])).toEqual([[s, conf([1, 2, 3, 4])]]);
    expect(r3.status()).toMatchObject({ snapshotIndex: s, conf: conf([1, 2, 3, 4], { learners: [5] }) });
    expect(r3.confAt(s)).toEqual(conf([1, 2, 3, 4]));
    expect(r3.confAt(b)).toEqual(conf([1, 2, 3, 4], { learners: [5] }));
  });

  it('a node added after the compaction starts from the snapshot’s configuration', () => {
    const { net, s } = compactedAcrossChanges();
    addNodes(net, 6);
    changeConf(net, 1, [learner(6)]);
    tickAll(net, 3, [1]);
    const r6 = net.node(6);
    expect(r6.status().snapshotIndex).toBe(s);
    expect(r6.confAt(s)).toEqual(conf([1, 2, 3, 4]));
    expect(r6.status().conf).toEqual(conf([1, 2, 3, 4], { learners: [5, 6] }));
    expect(r6.log.committed).toBe(net.node(1).log.lastIndex());
  });

  it('compaction keeps confAt right from the snapshot on', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4, 5, 6);
    changeConf(net, 1, [learner(4)]);
    changeConf(net, 1, [voter(4)]);
    changeConf(net, 1, [voter(5), voter(6)]); // joint, then left
    write(net, 1);
    const r1 = net.node(1);
    const last = r1.log.lastIndex();
    const before = Array.from({ length: last + 1 }, (_, i) => r1.confAt(i));
    const s = last - 4;
    r1.compact({ index: s, term: r1.log.term(s)! });
    for (let i = s; i <= last; i++) expect(r1.confAt(i)).toEqual(before[i]);
  });

  it('a restart from snapshot and log restores confAt, and the node waits for its committed changes to apply before campaigning', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4, 5);
    const s = changeConf(net, 1, [learner(4)]).index + 1;
    write(net, 1, 2);
    changeConf(net, 1, [voter(4), voter(5), remove(2)]); // joint, then left
    changeConf(net, 1, [learner(2)]);
    write(net, 1);
    const r1 = net.node(1);
    const last = r1.log.lastIndex();
    const snapshot: SnapshotMeta = { index: s, term: r1.log.term(s)!, conf: r1.confAt(s) };
    const restarted = new Raft({
      id: 1,
      electionTick: 10,
      heartbeatTick: 1,
      rng: seededRng(5),
      snapshot,
      entries: r1.log.slice(s + 1, last + 1),
      hardState: r1.hardState(),
    });
    expect(restarted.status().conf).toEqual(conf([1, 2, 3], { learners: [4] }));
    // Committed conf entries not yet applied: whatever its old configuration says, it does not run.
    for (let i = 0; i < 100; i++) restarted.tick();
    expect(restarted.role).toBe('follower');
    drain(restarted);
    for (let i = s; i <= last; i++) expect(restarted.confAt(i)).toEqual(r1.confAt(i));
    expect(restarted.status().conf).toEqual(conf([1, 3, 4, 5], { learners: [2] }));
    for (let i = 0; i < 30 && restarted.role === 'follower'; i++) restarted.tick();
    expect(restarted.role).toBe('preCandidate');
  });
});

describe('the configuration a node starts with', () => {
  const base = { id: 1, electionTick: 10, heartbeatTick: 1, rng: seededRng(1) };
  it('is `conf` if given, else the snapshot’s, else a configuration of `peers`, else none', () => {
    const snapshot: SnapshotMeta = { index: 5, term: 2, conf: conf([1, 2], { learners: [3] }) };
    expect(new Raft({ ...base, peers: [1, 2, 3], snapshot, conf: conf([1, 4]) }).status().conf).toEqual(conf([1, 4]));
    expect(new Raft({ ...base, peers: [1, 2, 3], snapshot }).status().conf).toEqual(snapshot.conf);
    expect(new Raft({ ...base, peers: [3, 1, 2] }).status().conf).toEqual(conf([1, 2, 3]));
    expect(new Raft({ ...base }).status().conf).toEqual(conf([]));
    // peers that leave the node out are refused, unless a configuration says otherwise.
    expect(() => new Raft({ ...base, peers: [2, 3] })).toThrow(RangeError);
    expect(new Raft({ ...base, peers: [2, 3], conf: conf([2, 3], { learners: [1] }) }).status().conf.learners).toEqual([1]);
  });
});

describe('ReadIndex and check-quorum in a joint configuration', () => {
  for (const [cutOff, side] of [
    [[4, 5], 'C_new'],
    [[2, 3], 'C_old'],
  ] as const) {
    it(`a read is confirmed only by majorities of both halves (${side} cut off)`, () => {
      const net = jointCluster();
      const r1 = net.node(1);
      partition(net, [1, ...[2, 3, 4, 5].filter((id) => !cutOff.includes(id as never))], [...cutOff]);
      expect(r1.readIndex(7)).toBe(true);
      net.deliverAll();
      tickAll(net, 3, [1]);
      expect(net.readStates.filter((rs) => rs.ctx === 7)).toEqual([]);
      net.recover();
      tickAll(net, 1, [1]);
      expect(net.readStates.filter((rs) => rs.ctx === 7)).toEqual([{ node: 1, index: r1.log.committed, ctx: 7 }]);
    });

    it(`check-quorum: the leader steps down when it hears from a majority of one half only (${side} cut off)`, () => {
      const net = jointCluster();
      partition(net, [1, ...[2, 3, 4, 5].filter((id) => !cutOff.includes(id as never))], [...cutOff]);
      tickAll(net, 20, [1]);
      expect(net.node(1).role).toBe('follower');
    });
  }

  it('check-quorum: a majority of each half keeps the leader', () => {
    const net = jointCluster();
    partition(net, [1, 2, 4], [3, 5]);
    tickAll(net, 40, [1]);
    expect(net.node(1).status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('check-quorum: learners do not keep a leader', () => {
    const net = cluster([1, 2, 3]);
    addNodes(net, 4, 5);
    changeConf(net, 1, [learner(4), learner(5)]);
    partition(net, [1, 4, 5], [2, 3]);
    tickAll(net, 20, [1, 4, 5]);
    expect(net.node(1).role).toBe('follower');
    expect(everyConf(net, [4, 5]).every((c) => c.learners.length === 2)).toBe(true);
  });
});
