/** Thesis §6.4: linearizable reads without writing to the log. */
import { describe, expect, it } from 'vitest';
import { Network, drain, newRaft } from './network.js';
import type { Raft } from '../../src/raft/core/raft.js';
import type { ReadState } from '../../src/raft/core/read-index.js';
import { message as msg } from '../../src/raft/core/types.js';

function readStates(r: Raft): ReadState[] {
  const out: ReadState[] = [];
  while (r.hasReady()) {
    const rd = r.ready();
    out.push(...rd.readStates);
    r.advance(rd);
  }
  return out;
}

describe('ReadIndex', () => {
  it('is confirmed by a majority heartbeat round, at the commit index of its arrival, without a log entry', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.propose(1, 'x');
    const leader = net.node(1);
    const last = leader.log.lastIndex();
    expect(leader.readIndex(1)).toBe(true);
    const out = drain(leader);
    expect(out.filter((m) => m.type === 'heartbeat').map((m) => m.context)).toEqual([1, 1]);
    let confirmed: ReadState[] = [];
    for (const m of out) {
      net.node(m.to).step(m);
      for (const resp of drain(net.node(m.to))) leader.step(resp);
      confirmed = confirmed.concat(readStates(leader));
    }
    expect(confirmed).toEqual([{ index: last, ctx: 1 }]);
    expect(leader.log.lastIndex()).toBe(last);
  });

  it('reads arriving together share one heartbeat round', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    const leader = net.node(1);
    for (let ctx = 1; ctx <= 10; ctx++) leader.readIndex(ctx);
    const heartbeats = drain(leader).filter((m) => m.type === 'heartbeat');
    expect(heartbeats.length).toBe(2);
    for (const m of heartbeats) {
      net.node(m.to).step(m);
      for (const resp of drain(net.node(m.to))) leader.step(resp);
    }
    expect(readStates(leader).map((r) => r.ctx)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a leader cut off from the majority never confirms a read', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    net.isolate(1);
    const leader = net.node(1);
    leader.readIndex(1);
    const seen: ReadState[] = [];
    for (let i = 0; i < 50; i++) {
      leader.tick();
      net.deliverAll();
      seen.push(...readStates(leader));
    }
    expect(seen).toEqual([]);
    expect(leader.role).not.toBe('leader');
  });

  it('a new leader answers reads only after an entry of its term commits', () => {
    const net = new Network([1, 2, 3], { checkQuorum: false });
    net.elect(1);
    net.isolate(1);
    net.drop((m) => m.type === 'appResp');
    const r2 = net.node(2);
    // Node 2 becomes leader but its no-op cannot commit while responses are dropped.
    net.elect(2);
    expect(r2.role).toBe('leader');
    r2.readIndex(7);
    expect(drain(r2).some((m) => m.type === 'heartbeat' && m.context === 7)).toBe(false);
    net.recover();
    net.isolate(1);
    r2.tick();
    net.deliverAll();
    expect(r2.log.committed).toBe(r2.log.lastIndex());
    expect(net.readStates).toEqual([{ node: 2, index: r2.log.committed, ctx: 7 }]);
  });

  it('a read arriving right after the first commit of the term does not overtake reads held for it', () => {
    // Found by the KV simulation: read 10 jumped ahead of read 5 (held for the no-op), and acks of
    // read 5's round could then never release the queue.
    const net = new Network([1, 2, 3]);
    net.drop((m) => m.type === 'appResp');
    net.elect(1);
    const r1 = net.node(1);
    expect(r1.role).toBe('leader');
    expect(r1.log.committed).toBe(0);
    expect(r1.readIndex(5)).toBe(true);
    net.recover();
    // A follower's acknowledgement of the no-op, stepped in by hand: the commit happens inside step().
    net.node(2).step(msg({ type: 'app', from: 1, to: 2, term: r1.term, entries: [r1.log.entry(1)!] }));
    r1.step(drain(net.node(2)).find((m) => m.type === 'appResp')!);
    expect(r1.log.committed).toBe(1);
    expect(r1.readIndex(10)).toBe(true); // same turn, before the next ready()
    for (let i = 0; i < 5; i++) {
      r1.tick();
      net.deliverAll();
    }
    expect(net.readStates.filter((r) => r.node === 1).map((r) => r.ctx)).toEqual([5, 10]);
  });

  it('a follower refuses', () => {
    const net = new Network([1, 2, 3]);
    net.elect(1);
    expect(net.node(2).readIndex(1)).toBe(false);
  });

  it('a single node confirms at once', () => {
    const r = newRaft(1, [1]);
    while (r.role !== 'leader') r.tick();
    readStates(r);
    expect(r.readIndex(3)).toBe(true);
    expect(readStates(r)).toEqual([{ index: 1, ctx: 3 }]);
  });
});
