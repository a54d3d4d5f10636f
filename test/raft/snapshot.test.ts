/** Raft §7 (log compaction) and Figure 13 (InstallSnapshot). */
import { describe, expect, it } from 'vitest';
import { Network, drain, entries, logTerms, newRaft } from './network.js';
import { message as msg } from '../../src/raft/core/types.js';
import { confOfVoters } from '../../src/raft/core/conf.js';

/** A 3-node cluster where node 1 leads, committed `n` entries, and compacted them all. */
function compactedCluster(n: number): Network {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  for (let i = 0; i < n; i++) net.propose(1, `x${i}`);
  const leader = net.node(1);
  leader.compact({ index: leader.log.applied, term: leader.term });
  return net;
}

describe('log compaction', () => {
  it('compact drops applied entries and keeps the last one’s term', () => {
    const net = compactedCluster(5);
    const r = net.node(1);
    expect(r.log.firstIndex()).toBe(7);
    expect(r.log.term(6)).toBe(1);
    expect(r.log.term(5)).toBeUndefined();
    expect(r.status().snapshotIndex).toBe(6);
  });

  it('refuses to compact past the applied index', () => {
    const r = newRaft(1, [1]);
    expect(() => r.compact({ index: 3, term: 1 })).toThrow(/past the applied index/);
  });

  it('a retained window keeps recent entries for slow followers', () => {
    const net = compactedCluster(0);
    for (let i = 0; i < 10; i++) net.propose(1, `y${i}`);
    const r = net.node(1);
    r.compact({ index: r.log.applied, term: r.term }, 4);
    expect(r.log.firstIndex()).toBe(r.log.applied - 3);
  });
});

describe('InstallSnapshot', () => {
  it('a follower that needs compacted entries gets the snapshot, then the log after it', () => {
    const net = compactedCluster(5);
    net.propose(1, 'after');
    net.recover();
    net.node(1).tick();
    net.deliverAll();
    const snaps = net.delivered.filter((m) => m.type === 'snap');
    expect(snaps.map((m) => [m.to, m.index, m.logTerm])).toEqual([[3, 6, 1]]);
    const r3 = net.node(3);
    expect(r3.status().snapshotIndex).toBe(6);
    expect(logTerms(r3).slice(6)).toEqual([1]);
    expect(r3.log.committed).toBe(net.node(1).log.committed);
  });

  it('the follower hands the snapshot to its driver, with later entries only after it', () => {
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 1), hardState: { term: 1, vote: 0, commit: 1 } });
    r.step(msg({ type: 'snap', from: 1, to: 2, term: 2, index: 10, logTerm: 2, commit: 10 }));
    const rd = r.ready();
    expect(rd.snapshot).toEqual({ index: 10, term: 2, conf: confOfVoters([1, 2, 3]) });
    expect(rd.committedEntries).toEqual([]);
    expect(rd.messages.find((m) => m.type === 'appResp')).toMatchObject({ to: 1, index: 10, reject: false });
    r.advance(rd);
    expect(r.log.applied).toBe(10);
    expect(r.log.lastIndex()).toBe(10);
  });

  it('rule 7: a follower whose log holds the snapshot’s last entry keeps the entries after it', () => {
    const r = newRaft(2, [1, 2, 3], { entries: entries(1, 1, 1, 1), hardState: { term: 1, vote: 0, commit: 1 } });
    r.step(msg({ type: 'snap', from: 1, to: 2, term: 1, index: 3, logTerm: 1, commit: 3 }));
    const rd = r.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(r.log.lastIndex()).toBe(4);
    expect(r.log.committed).toBe(3);
  });

  it('a failed transfer makes the leader send the snapshot again; a delivered one waits for the answer', () => {
    const net = compactedCluster(5);
    net.recover();
    net.drop((m) => m.type === 'snap');
    const leader = net.node(1);
    leader.tick();
    net.deliverAll();
    const sent = (): number => net.delivered.length;
    expect(net.delivered.some((m) => m.type === 'snap')).toBe(false);
    leader.reportSnapshot(3, false);
    net.recover();
    const before = sent();
    leader.tick();
    net.deliverAll();
    expect(net.delivered.slice(before).some((m) => m.type === 'snap' && m.to === 3)).toBe(true);
    expect(net.node(3).log.committed).toBe(leader.log.committed);
    drain(leader);
  });
});

describe('a follower that lost its state (a learner whose data dir was wiped)', () => {
  it('a follower that lost its log tells the leader, which probes it from scratch instead of sending a commit it cannot hold', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `x${i}`);
    const leader = net.node(1);
    expect(leader.log.committed).toBe(6);
    // Node 3 loses its data and comes back empty.
    net.nodes.set(3, newRaft(3, [1, 2, 3], {}, 42));
    for (let i = 0; i < 3; i++) {
      leader.tick();
      net.deliverAll();
    }
    expect(net.delivered.some((m) => m.type === 'heartbeatResp' && m.from === 3 && m.reject && m.index === 0)).toBe(true);
    expect(logTerms(net.node(3))).toEqual(logTerms(leader));
    expect(net.node(3).log.committed).toBe(6);
  });

  it('rejoins a cluster through a snapshot and the cluster keeps committing', () => {
    const net = compactedCluster(5);
    const fresh = newRaft(3, [1, 2, 3], {}, 99);
    net.nodes.set(3, fresh);
    net.recover();
    net.propose(1, 'after');
    for (let i = 0; i < 3; i++) {
      net.node(1).tick();
      net.deliverAll();
    }
    expect(fresh.status().snapshotIndex).toBe(6);
    expect(fresh.log.committed).toBe(net.node(1).log.committed);
  });
});
