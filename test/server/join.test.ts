/**
 * kv-server --join on an empty data dir: what the node takes from its cluster's answer, what it
 * refuses to join as, and the error that names every endpoint when none answers.
 */
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { MemberListResponse, MemberWire } from '../../src/kv-api.js';
import { askToJoin, type Joiner } from '../../src/server/join.js';
import type { Network } from '../../src/server/network.js';

const member = (id: number, over: Partial<MemberWire> = {}): MemberWire => ({
  id,
  peerAddr: `10.0.0.${id}:7000`,
  clientAddr: `10.0.0.${id}:9000`,
  learner: false,
  matchIndex: 0,
  active: false,
  ...over,
});
const answer = (members: MemberWire[]): MemberListResponse => ({ members, leaderId: 1, clusterId: 'raftkv-abc', commitIndex: 9, joint: false, nodeId: 1 });
const me: Joiner = { id: 4, peerAddr: '10.0.0.4:7000', clientAddr: '10.0.0.4:9000', fresh: true };

/** A network whose memberList answers from `answers` by endpoint (a string: fails with it). */
function network(answers: Record<string, MemberListResponse | string>): Network & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    memberList: (addr: string) => {
      asked.push(addr);
      const a = answers[addr];
      return typeof a === 'object' ? Promise.resolve(a) : Promise.reject(new Error(a ?? 'connect ECONNREFUSED'));
    },
  } as unknown as Network & { asked: string[] };
}

const join = (net: Network, endpoints: string[], self = me, deadlineMs = 300) => askToJoin(net, systemClock, endpoints, self, () => false, deadlineMs);

describe('askToJoin', () => {
  it('takes the cluster id and the member table from the first endpoint that answers', async () => {
    const net = network({ b: answer([member(1), member(2), member(3)]) });
    const joined = await join(net, ['a', 'b']);
    expect(joined).toEqual({ clusterId: 'raftkv-abc', from: 'b', table: { members: [1, 2, 3].map((id) => member(id)).map(({ id, peerAddr, clientAddr }) => ({ id, peerAddr, clientAddr })), removed: [] } });
    expect(net.asked).toEqual(['a', 'b']);
  });

  it('joins as a member already added (a learner, or a voter that never held the log)', async () => {
    for (const m4 of [member(4, { learner: true, matchIndex: 7 }), member(4)]) {
      expect((await join(network({ a: answer([member(1), m4]) }), ['a'])).clusterId).toBe('raftkv-abc');
    }
  });

  it('refuses to join as a voter that held the log (its data was lost), or with an address another member uses', async () => {
    await expect(join(network({ a: answer([member(1), member(4, { matchIndex: 12 })]) }), ['a'])).rejects.toThrow(
      /node 4 is a voter of cluster raftkv-abc that has held its log .*kv-cli member remove 4/,
    );
    await expect(join(network({ a: answer([member(1), member(2, { clientAddr: me.peerAddr })]) }), ['a'])).rejects.toThrow(
      /address 10\.0\.0\.4:7000 is used by node 2/,
    );
    // A restart of a node that joined before is no new member: its own entry is fine.
    expect((await join(network({ a: answer([member(1), member(4, { matchIndex: 12 })]) }), ['a'], { ...me, fresh: false })).from).toBe('a');
  });

  it('retries until the deadline, then names every endpoint and what it said last', async () => {
    const net = network({ a: 'UNAVAILABLE: no connection', b: answer([]) });
    const err = await join(net, ['a', 'b'], me, 400).then(
      () => new Error('joined'),
      (e: unknown) => e as Error,
    );
    expect(err.message).toMatch(/no member of a cluster answered usefully within 400 ms \(a: UNAVAILABLE: no connection; b: answered with an unusable member list/);
    expect(net.asked.length).toBeGreaterThan(2);
  });
});
