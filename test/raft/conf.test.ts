/**
 * Configurations as pure values (thesis ch. 4, after etcd's confchange and quorum tests): the
 * changes changeConf makes and refuses, the quorum rules of joint configurations, and the codec
 * of conf entries.
 */
import { describe, expect, it } from 'vitest';
import {
  changeConf,
  confInvalid,
  confOfVoters,
  EMPTY_CONF,
  isJoint,
  isVoter,
  leaveJoint,
  MAX_MEMBERS,
  membersOf,
  sameConf,
  votersOf,
  type ConfChange,
  type ConfChangeItem,
  type ConfState,
} from '../../src/raft/core/conf.js';
import { committedIndex, hasQuorum, voteResult } from '../../src/raft/core/quorum.js';
import { decodeConfEntry, encodeConfEntry, MAX_CONF_CONTEXT_BYTES } from '../../src/raft/core/conf-codec.js';
import { seededRng } from '../../src/raft/core/rng.js';
import type { NodeId } from '../../src/raft/core/types.js';
import { conf, learner, remove, voter } from './conf-harness.js';

function ok(c: ConfState, cc: ConfChange | ConfChangeItem[]): ConfState {
  const r = changeConf(c, Array.isArray(cc) ? { changes: cc } : cc);
  if (!r.ok) throw new Error(`refused: ${r.reason}`);
  expect(confInvalid(r.conf)).toBeUndefined();
  return r.conf;
}

function refused(c: ConfState, cc: ConfChange | ConfChangeItem[]): string {
  const r = changeConf(c, Array.isArray(cc) ? { changes: cc } : cc);
  if (r.ok) throw new Error(`accepted: ${JSON.stringify(r.conf)}`);
  return r.reason;
}

const c123 = confOfVoters([1, 2, 3]);

describe('changeConf: simple changes (at most one voter, auto)', () => {
  it('adds and removes one voter directly, C_old → C_new', () => {
    expect(ok(c123, [voter(4)])).toEqual(conf([1, 2, 3, 4]));
    expect(ok(c123, [remove(2)])).toEqual(conf([1, 3]));
    expect(ok(confOfVoters([1]), [voter(2)])).toEqual(conf([1, 2]));
  });

  it('adds learners in any number without a joint configuration: they change no quorum', () => {
    expect(ok(c123, [learner(4), learner(5), learner(6)])).toEqual(conf([1, 2, 3], { learners: [4, 5, 6] }));
    expect(ok(c123, [learner(4), voter(5)])).toEqual(conf([1, 2, 3, 5], { learners: [4] }));
  });

  it('promotes a learner to voter, and demotes a voter to learner, directly when it is the only voter change', () => {
    const withLearner = ok(c123, [learner(4)]);
    expect(ok(withLearner, [voter(4)])).toEqual(conf([1, 2, 3, 4]));
    expect(ok(c123, [learner(3)])).toEqual(conf([1, 2], { learners: [3] }));
    expect(ok(withLearner, [remove(4)])).toEqual(c123);
  });

  it('is idempotent: adding a voter or learner already there, or removing a stranger, changes nothing', () => {
    const c = conf([1, 2, 3], { learners: [4] });
    expect(ok(c, [voter(2)])).toEqual(c);
    expect(ok(c, [learner(4)])).toEqual(c);
    expect(ok(c, [remove(9)])).toEqual(c);
    expect(ok(c, [voter(5), remove(5)])).toEqual(c);
  });

  it('nets out the items of one change: add-then-remove of the same voter is no change at all', () => {
    expect(ok(c123, [voter(4), voter(4)])).toEqual(conf([1, 2, 3, 4]));
    expect(ok(c123, [remove(3), voter(3)])).toEqual(c123);
    expect(ok(c123, [learner(3), voter(3)])).toEqual(c123);
  });
});

describe('changeConf: joint consensus', () => {
  it('more than one voter change under auto enters C_old,new, left automatically', () => {
    const j = ok(c123, [voter(4), voter(5)]);
    expect(j).toEqual(conf([1, 2, 3, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true }));
    expect(isJoint(j)).toBe(true);
    expect(leaveJoint(j)).toEqual(conf([1, 2, 3, 4, 5]));
    // A swap of one voter for another is two voter changes.
    expect(ok(c123, [remove(3), voter(4)])).toEqual(conf([1, 2, 4], { votersOutgoing: [1, 2, 3], autoLeave: true }));
  });

  it('transition joint / explicitJoint force a joint configuration even for one change', () => {
    expect(ok(c123, { changes: [voter(4)], transition: 'joint' })).toEqual(conf([1, 2, 3, 4], { votersOutgoing: [1, 2, 3], autoLeave: true }));
    expect(ok(c123, { changes: [voter(4)], transition: 'explicitJoint' })).toEqual(conf([1, 2, 3, 4], { votersOutgoing: [1, 2, 3] }));
  });

  it('a voter of C_old demoted in a joint change stays a voter of C_old (learnersNext) until it is left', () => {
    const j = ok(c123, [learner(3), voter(4)]);
    expect(j).toEqual(conf([1, 2, 4], { votersOutgoing: [1, 2, 3], learnersNext: [3], autoLeave: true }));
    expect(isVoter(j, 3)).toBe(true);
    expect(membersOf(j)).toEqual([1, 2, 3, 4]);
    expect(leaveJoint(j)).toEqual(conf([1, 2, 4], { learners: [3] }));
  });

  it('a learner promoted in a joint change votes in C_new at once', () => {
    const c = conf([1, 2, 3], { learners: [4, 5] });
    const j = ok(c, [voter(4), voter(5)]);
    expect(j).toEqual(conf([1, 2, 3, 4, 5], { votersOutgoing: [1, 2, 3], autoLeave: true }));
    expect(votersOf(j)).toEqual([1, 2, 3, 4, 5]);
  });

  it('replaces every voter at once (C_old and C_new disjoint) only through a joint configuration', () => {
    const j = ok(c123, [remove(1), remove(2), remove(3), voter(4), voter(5), voter(6)]);
    expect(j).toEqual(conf([4, 5, 6], { votersOutgoing: [1, 2, 3], autoLeave: true }));
  });

  it('an empty change leaves the joint configuration; it is refused anywhere else', () => {
    const j = ok(c123, { changes: [voter(4), learner(3)], transition: 'explicitJoint' });
    expect(ok(j, [])).toEqual(conf([1, 2, 4], { learners: [3] }));
    expect(refused(c123, [])).toMatch(/no joint configuration to leave/);
  });
});

describe('changeConf: refusals', () => {
  it('no change while a joint configuration is in force', () => {
    const j = ok(c123, [voter(4), voter(5)]);
    expect(refused(j, [voter(6)])).toMatch(/joint configuration is in force/);
    expect(refused(j, [learner(6)])).toMatch(/joint configuration is in force/);
  });

  it('no change that leaves no voter, simple or joint', () => {
    expect(refused(c123, [remove(1), remove(2), remove(3)])).toMatch(/no voter/);
    expect(refused(confOfVoters([1]), [remove(1)])).toMatch(/no voter/);
    expect(refused(confOfVoters([1]), [learner(1)])).toMatch(/no voter/);
    expect(refused(c123, { changes: [learner(1), learner(2), learner(3)], transition: 'joint' })).toMatch(/no voter/);
  });

  it('no id that is not a positive safe integer, and the configuration is unchanged', () => {
    for (const id of [0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE]) {
      expect(refused(c123, [voter(id)])).toMatch(/not a node id/);
      expect(refused(c123, [learner(4), remove(id)])).toMatch(/not a node id/);
    }
    expect(c123).toEqual(conf([1, 2, 3]));
  });

  it('no configuration of more than MAX_MEMBERS members', () => {
    const many = Array.from({ length: MAX_MEMBERS }, (_, i) => learner(i + 4));
    expect(refused(c123, many)).toMatch(/limit|members/);
    expect(ok(c123, many.slice(0, MAX_MEMBERS - 3)).learners).toHaveLength(MAX_MEMBERS - 3);
  });
});

describe('confInvalid', () => {
  it('accepts what changes produce and the empty configuration of a node waiting to be added', () => {
    expect(confInvalid(EMPTY_CONF)).toBeUndefined();
    expect(confInvalid(conf([1], { learners: [2] }))).toBeUndefined();
    expect(confInvalid(conf([1, 2], { votersOutgoing: [2, 3], learnersNext: [3], autoLeave: true }))).toBeUndefined();
  });

  it.each<[string, ConfState, RegExp]>([
    ['a repeated id', { ...EMPTY_CONF, voters: [1, 1] }, /repeats/],
    ['id 0', conf([0, 1]), /not a node id/],
    ['a fractional id', conf([1, 2.5]), /not a node id/],
    ['members but no voters', conf([], { learners: [1] }), /no voters/],
    ['an outgoing half but no incoming voters', conf([], { votersOutgoing: [1] }), /no voters/],
    ['a voter that is a learner', conf([1, 2], { learners: [2] }), /both a voter and a learner/],
    ['an outgoing voter that is a learner', conf([1], { votersOutgoing: [1, 2], learners: [2] }), /both a voter and a learner/],
    ['learnersNext not an outgoing voter', conf([1], { votersOutgoing: [1], learnersNext: [2] }), /learnersNext|to become a learner/],
    ['learnersNext also incoming voter', conf([1, 2], { votersOutgoing: [1, 2], learnersNext: [2] }), /to become a learner/],
    ['learnersNext outside a joint configuration', conf([1], { learnersNext: [2] }), /learner/],
    ['autoLeave outside a joint configuration', conf([1], { autoLeave: true }), /not joint/],
  ])('refuses %s', (_, c, reason) => {
    expect(confInvalid(c)).toMatch(reason);
  });
});

/** A model of what a sequence of items makes of the members, ignoring how it is reached. */
function model(c: ConfState, items: readonly ConfChangeItem[]): { voters: NodeId[]; learners: NodeId[] } {
  const v = new Set(c.voters);
  const l = new Set(c.learners);
  for (const it of items) {
    v.delete(it.id);
    l.delete(it.id);
    if (it.type === 'addVoter') v.add(it.id);
    if (it.type === 'addLearner') l.add(it.id);
  }
  const s = (x: Set<NodeId>) => [...x].sort((a, b) => a - b);
  return { voters: s(v), learners: s(l) };
}

function voterChanges(a: readonly NodeId[], b: readonly NodeId[]): number {
  return a.filter((id) => !b.includes(id)).length + b.filter((id) => !a.includes(id)).length;
}

describe('changeConf: randomized (seeded) equivalence of the simple and joint paths', () => {
  it('auto, joint-then-leave and explicitJoint-then-leave agree, and every configuration is valid and encodable', () => {
    const rng = seededRng(20240611);
    const types: ConfChangeItem['type'][] = ['addVoter', 'addLearner', 'remove'];
    let c: ConfState = confOfVoters([1]);
    let accepted = 0;
    let joints = 0;
    for (let step = 0; step < 3000; step++) {
      const n = 1 + rng.int(4);
      const items: ConfChangeItem[] = Array.from({ length: n }, () => ({ type: types[rng.int(3)]!, id: 1 + rng.int(7) }));
      const auto = changeConf(c, { changes: items });
      const joint = changeConf(c, { changes: items, transition: 'joint' });
      const explicit = changeConf(c, { changes: items, transition: 'explicitJoint' });
      expect([joint.ok, explicit.ok]).toEqual([auto.ok, auto.ok]);
      const want = model(c, items);
      if (!auto.ok || !joint.ok || !explicit.ok) {
        expect(want.voters).toEqual([]);
        continue;
      }
      accepted++;
      for (const r of [auto.conf, joint.conf, explicit.conf]) {
        expect(confInvalid(r)).toBeUndefined();
        expect(confInvalid(leaveJoint(r))).toBeUndefined();
        const d = decodeConfEntry(encodeConfEntry({ conf: r, context: new Uint8Array(0) }));
        expect(d.ok && sameConf(d.entry.conf, r)).toBe(true);
      }
      // The joint forms: C_old is exactly the voters before, C_new the voters after.
      for (const j of [joint.conf, explicit.conf]) {
        expect(j.votersOutgoing).toEqual(c.voters);
        expect(j.voters).toEqual(want.voters);
        // Leaving drops exactly the C_old voters that are not members of C_new.
        expect(membersOf(j)).toEqual([...new Set([...membersOf(leaveJoint(j)), ...c.voters])].sort((a, b) => a - b));
      }
      expect(joint.conf.autoLeave).toBe(true);
      expect(explicit.conf.autoLeave).toBe(false);
      // auto is simple exactly when at most one voter changes.
      const changed = voterChanges(c.voters, want.voters);
      expect(isJoint(auto.conf)).toBe(changed > 1);
      if (changed > 1) joints++;
      const ends = [auto.conf, joint.conf, explicit.conf].map((r) => (isJoint(r) ? leaveJoint(r) : r));
      for (const e of ends) expect({ voters: e.voters, learners: e.learners }).toEqual(want);
      expect(sameConf(ends[0]!, ends[1]!) && sameConf(ends[1]!, ends[2]!)).toBe(true);
      // No change is taken while joint; leaving is.
      if (isJoint(auto.conf)) {
        expect(changeConf(auto.conf, { changes: items }).ok).toBe(false);
        const left = changeConf(auto.conf, { changes: [] });
        expect(left.ok && sameConf(left.conf, ends[0]!)).toBe(true);
      }
      c = ends[rng.int(3)]!;
    }
    // The walk exercised both paths plenty.
    expect(accepted).toBeGreaterThan(2000);
    expect(joints).toBeGreaterThan(300);
  });
});

/** A match function from a table of indexes by node id (absent: 0). */
const matchOf =
  (t: Record<number, number>) =>
  (id: NodeId): number =>
    t[id] ?? 0;

describe('quorum: committedIndex', () => {
  it.each<[string, ConfState, Record<number, number>, number]>([
    ['no voters', EMPTY_CONF, { 1: 5 }, 0],
    ['one voter', conf([1]), { 1: 5 }, 5],
    ['two voters need both', conf([1, 2]), { 1: 5, 2: 3 }, 3],
    ['three voters', conf([1, 2, 3]), { 1: 5, 2: 3, 3: 1 }, 3],
    ['four voters need three', conf([1, 2, 3, 4]), { 1: 9, 2: 9, 3: 2, 4: 2 }, 2],
    ['five voters', conf([1, 2, 3, 4, 5]), { 1: 7, 2: 1, 3: 5, 4: 6, 5: 2 }, 5],
    ['unknown voters count as 0', conf([1, 2, 3]), { 1: 5 }, 0],
    ['joint, same halves', conf([1, 2, 3], { votersOutgoing: [1, 2, 3] }), { 1: 5, 2: 3, 3: 1 }, 3],
    ['joint, C_new ahead, C_old behind', conf([1, 2, 3], { votersOutgoing: [3, 4, 5] }), { 1: 7, 2: 7, 3: 5, 4: 2, 5: 2 }, 2],
    ['joint, C_old ahead, C_new behind', conf([3, 4, 5], { votersOutgoing: [1, 2, 3] }), { 1: 7, 2: 7, 3: 5, 4: 2, 5: 2 }, 2],
    ['joint, disjoint halves', conf([4, 5, 6], { votersOutgoing: [1, 2, 3] }), { 1: 10, 2: 10, 3: 10, 4: 1, 5: 1, 6: 1 }, 1],
    ['joint, both halves hold it', conf([1, 4, 5], { votersOutgoing: [1, 2, 3] }), { 1: 9, 2: 8, 3: 1, 4: 8, 5: 1 }, 8],
    ['joint 1 && 3', conf([1], { votersOutgoing: [1, 2, 3] }), { 1: 9, 2: 4, 3: 6 }, 6],
    ['learners never count', conf([1, 2, 3], { learners: [4, 5] }), { 1: 9, 2: 1, 3: 1, 4: 9, 5: 9 }, 1],
    ['a voter to become a learner counts in C_old only', conf([1, 2], { votersOutgoing: [1, 2, 3], learnersNext: [3] }), { 1: 9, 2: 1, 3: 9 }, 1],
  ])('%s', (_, c, match, want) => {
    expect(committedIndex(c, matchOf(match))).toBe(want);
  });

  it('is the highest index the nodes holding it form a quorum for (randomized, cross-checked with hasQuorum)', () => {
    const rng = seededRng(7);
    for (let trial = 0; trial < 2000; trial++) {
      const pick = (): NodeId[] => [1, 2, 3, 4, 5, 6, 7].filter(() => rng.int(2) === 1);
      const voters = pick();
      if (voters.length === 0) continue;
      const outgoing = rng.int(2) === 1 ? pick() : [];
      const learners = [8, 9].filter(() => rng.int(2) === 1);
      const c = conf(voters, { votersOutgoing: outgoing, learners });
      const table: Record<number, number> = {};
      for (let id = 1; id <= 9; id++) table[id] = rng.int(10);
      const got = committedIndex(c, matchOf(table));
      let want = 0;
      for (let i = 1; i < 10; i++) if (hasQuorum(c, (id) => table[id]! >= i)) want = i;
      expect(got).toBe(want);
      // Learners' progress never moves it.
      expect(committedIndex(c, (id) => (learners.includes(id) ? 100 : table[id]!))).toBe(got);
      // The joint value is the smaller of the halves'.
      if (outgoing.length > 0) {
        expect(got).toBe(Math.min(committedIndex(conf(voters), matchOf(table)), committedIndex(conf(outgoing), matchOf(table))));
      }
    }
  });
});

describe('quorum: voteResult and hasQuorum', () => {
  const votes = (granted: NodeId[], rejected: NodeId[] = []) =>
    new Map<NodeId, boolean>([...granted.map((id) => [id, true] as const), ...rejected.map((id) => [id, false] as const)]);

  it.each<[string, ConfState, NodeId[], NodeId[], 'won' | 'lost' | 'pending']>([
    ['no voters: won', EMPTY_CONF, [], [], 'won'],
    ['single voter', conf([1]), [1], [], 'won'],
    ['three, one yes', conf([1, 2, 3]), [1], [], 'pending'],
    ['three, two yes', conf([1, 2, 3]), [1, 2], [], 'won'],
    ['three, two no', conf([1, 2, 3]), [1], [2, 3], 'lost'],
    ['four, two yes two no: lost', conf([1, 2, 3, 4]), [1, 2], [3, 4], 'lost'],
    ['four, two yes one no', conf([1, 2, 3, 4]), [1, 2], [3], 'pending'],
    ['learner grants do not count', conf([1, 2, 3], { learners: [4, 5] }), [1, 4, 5], [], 'pending'],
    ['joint: C_new won, C_old pending', conf([1, 4, 5], { votersOutgoing: [1, 2, 3] }), [1, 4, 5], [], 'pending'],
    ['joint: C_old won, C_new pending', conf([1, 4, 5], { votersOutgoing: [1, 2, 3] }), [1, 2, 3], [], 'pending'],
    ['joint: both won', conf([1, 4, 5], { votersOutgoing: [1, 2, 3] }), [1, 2, 4], [], 'won'],
    ['joint: C_new won, C_old lost', conf([1, 4, 5], { votersOutgoing: [1, 2, 3] }), [1, 4, 5], [2, 3], 'lost'],
    ['joint: C_old won, C_new lost', conf([1, 4, 5], { votersOutgoing: [1, 2, 3] }), [1, 2, 3], [4, 5], 'lost'],
    ['joint, disjoint: one half each', conf([4, 5, 6], { votersOutgoing: [1, 2, 3] }), [1, 2, 3], [], 'pending'],
    ['joint, disjoint: both', conf([4, 5, 6], { votersOutgoing: [1, 2, 3] }), [1, 2, 4, 5], [], 'won'],
    ['joint: learnersNext vote in C_old only', conf([1, 2], { votersOutgoing: [1, 2, 3], learnersNext: [3] }), [1, 3], [], 'pending'],
  ])('%s', (_, c, yes, no, want) => {
    expect(voteResult(c, votes(yes, no))).toBe(want);
  });

  it('hasQuorum needs a majority of each half and ignores learners', () => {
    const j = conf([1, 4, 5], { votersOutgoing: [1, 2, 3], learners: [6, 7, 8] });
    const q = (...ids: NodeId[]) => hasQuorum(j, (id) => ids.includes(id));
    expect(q(1, 2, 4)).toBe(true);
    expect(q(2, 3, 4, 5)).toBe(true);
    expect(q(1, 2, 3, 6, 7, 8)).toBe(false);
    expect(q(1, 4, 5, 6, 7, 8)).toBe(false);
    expect(q(6, 7, 8)).toBe(false);
  });

  it('any two quorums of one configuration intersect in a voter; of C_old and C_new, only through the joint one (randomized)', () => {
    // Exhaustively over subsets of 6 nodes: a quorum of C_old,new meets every quorum of C_old and of C_new.
    const old = [1, 2, 3];
    const neu = [3, 4, 5, 6];
    const j = conf(neu, { votersOutgoing: old });
    const subsets = Array.from({ length: 64 }, (_, m) => [1, 2, 3, 4, 5, 6].filter((_, i) => (m >> i) & 1));
    const quorums = (c: ConfState) => subsets.filter((s) => hasQuorum(c, (id) => s.includes(id)));
    const meets = (a: NodeId[], b: NodeId[]) => a.some((id) => b.includes(id));
    for (const qj of quorums(j)) {
      for (const q of [...quorums(conf(old)), ...quorums(conf(neu))]) expect(meets(qj, q)).toBe(true);
    }
    // Whereas C_old and C_new alone have disjoint quorums: {1,2} and {4,5,6}.
    expect(quorums(conf(old)).some((a) => quorums(conf(neu)).some((b) => !meets(a, b)))).toBe(true);
  });
});

describe('conf-codec', () => {
  const ctx = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31) & 0xff);
  const samples: ConfState[] = [
    conf([1]),
    conf([1, 2, 3], { learners: [4, 5] }),
    conf([1, 2, 4], { votersOutgoing: [1, 2, 3], learnersNext: [3], learners: [7], autoLeave: true }),
    conf([4, 5, 6], { votersOutgoing: [1, 2, 3] }),
    conf([2 ** 53 - 1, 1e12]),
  ];

  it('round-trips configurations and contexts, and the encoding is canonical', () => {
    for (const c of samples) {
      for (const context of [ctx(0), ctx(1), ctx(300)]) {
        const bytes = encodeConfEntry({ conf: c, context });
        const d = decodeConfEntry(bytes);
        expect(d.ok).toBe(true);
        if (!d.ok) continue;
        expect(d.entry.conf).toEqual(c);
        expect(d.entry.context).toEqual(context);
        expect(encodeConfEntry(d.entry)).toEqual(bytes);
      }
    }
  });

  it('decodes from a view into a larger buffer (byteOffset > 0), and the context is a copy', () => {
    const bytes = encodeConfEntry({ conf: samples[2]!, context: ctx(5) });
    const big = new Uint8Array(bytes.length + 20);
    big.set(bytes, 7);
    const d = decodeConfEntry(big.subarray(7, 7 + bytes.length));
    expect(d.ok && d.entry.conf).toEqual(samples[2]);
    if (d.ok) {
      big[big.length - 14] = 0xee;
      expect(d.entry.context).toEqual(ctx(5));
    }
  });

  it('takes a context of exactly MAX_CONF_CONTEXT_BYTES and refuses a longer one', () => {
    expect(decodeConfEntry(encodeConfEntry({ conf: samples[0]!, context: new Uint8Array(MAX_CONF_CONTEXT_BYTES) })).ok).toBe(true);
    const d = decodeConfEntry(encodeConfEntry({ conf: samples[0]!, context: new Uint8Array(MAX_CONF_CONTEXT_BYTES + 1) }));
    expect(d.ok ? 'ok' : d.reason).toMatch(/context/);
  });

  it('refuses every truncation and any trailing byte', () => {
    for (const c of samples) {
      const bytes = encodeConfEntry({ conf: c, context: ctx(3) });
      for (let n = 0; n < bytes.length; n++) expect(decodeConfEntry(bytes.subarray(0, n)).ok).toBe(false);
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      expect(decodeConfEntry(longer).ok).toBe(false);
    }
  });

  /** Encodes raw lists, bypassing any check, to build malformed entries. */
  function raw(lists: number[][], flags = 0, version = 1, contextLen = 0, count?: number): Uint8Array {
    const size = 2 + lists.reduce((n, l) => n + 2 + 8 * l.length, 0) + 4 + contextLen;
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    let at = 0;
    v.setUint8(at++, version);
    v.setUint8(at++, flags);
    for (const l of lists) {
      v.setUint16(at, count ?? l.length, true);
      at += 2;
      for (const id of l) v.setFloat64((at += 8) - 8, id, true);
    }
    v.setUint32(at, contextLen, true);
    return out;
  }

  it.each<[string, Uint8Array, RegExp]>([
    ['a valid control', raw([[1, 2], [], [3], []]), /^ok$/],
    ['unknown version 0', raw([[1], [], [], []], 0, 0), /version/],
    ['unknown version 2', raw([[1], [], [], []], 0, 2), /version/],
    ['unknown flags', raw([[1], [], [], []], 2), /flags/],
    ['no voters', raw([[], [], [], []]), /voters/],
    ['unsorted voters', raw([[2, 1], [], [], []]), /ascending/],
    ['repeated voter', raw([[1, 1], [], [], []]), /ascending|repeats/],
    ['unsorted learners', raw([[1], [], [5, 4], []]), /ascending/],
    ['id 0', raw([[0, 1], [], [], []]), /not a node id/],
    ['negative id', raw([[-3, 1], [], [], []]), /not a node id/],
    ['fractional id', raw([[1.5], [], [], []]), /not a node id/],
    ['NaN id', raw([[NaN], [], [], []]), /not a node id/],
    ['NaN among ids', raw([[1, NaN], [], [], []]), /ascending|not a node id/],
    ['infinite id', raw([[Infinity], [], [], []]), /not a node id/],
    ['id 2^53', raw([[2 ** 53], [], [], []]), /not a node id/],
    ['a voter that is a learner', raw([[1, 2], [], [2], []]), /voter and a learner/],
    ['autoLeave without joint', raw([[1], [], [], []], 1), /not joint/],
    ['learnersNext without joint', raw([[1], [], [], [2]]), /learner/],
    ['only outgoing voters', raw([[], [1], [], []]), /voters/],
    ['a count beyond MAX_MEMBERS', raw([Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => i + 1), [], [], []]), /does not fit/],
    ['a count beyond the data', raw([[1], [], [], []], 0, 1, 0, 3), /does not fit|truncated/],
    ['too many members in all', raw([Array.from({ length: 600 }, (_, i) => i + 1), [], Array.from({ length: 600 }, (_, i) => i + 1001), []]), /more than/],
  ])('refuses %s', (_, bytes, reason) => {
    const d = decodeConfEntry(bytes);
    expect(d.ok ? 'ok' : d.reason).toMatch(reason);
  });

  it('refuses a context length that claims more than the data or more than the limit', () => {
    const bytes = encodeConfEntry({ conf: samples[1]!, context: ctx(4) });
    for (const len of [0, 3, 5, MAX_CONF_CONTEXT_BYTES + 1, 0xffffffff]) {
      const b = bytes.slice();
      new DataView(b.buffer).setUint32(bytes.length - 4 - 4, len, true);
      expect(decodeConfEntry(b).ok).toBe(len === 4);
    }
  });

  it('never throws on mutated encodings; whatever it accepts is a valid configuration, encoded canonically (fuzz, seeded)', () => {
    const rng = seededRng(99);
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const base = encodeConfEntry({ conf: samples[rng.int(samples.length)]!, context: ctx(rng.int(6)) });
      let b: Uint8Array = base.slice();
      const mutations = 1 + rng.int(3);
      for (let k = 0; k < mutations; k++) {
        const op = rng.int(6);
        if (op === 0 && b.length > 0) {
          const at = rng.int(b.length);
          b[at] = b[at]! ^ (1 << rng.int(8));
        }
        else if (op === 1 && b.length > 0) b[rng.int(b.length)] = rng.int(256);
        else if (op === 2) b = b.slice(0, rng.int(b.length + 1));
        else if (op === 3) b = Uint8Array.from([...b, ...Array.from({ length: 1 + rng.int(9) }, () => rng.int(256))]);
        else if (op === 4 && b.length > 2) {
          // Overwrite a list count or the context length with an extreme value.
          const at = rng.int(b.length - 1);
          b[at] = 0xff;
          b[at + 1] = rng.int(2) ? 0xff : 0x00;
        } else if (b.length > 8) {
          // Overwrite an id-sized window with an interesting double.
          const vals = [0, -0, -1, 0.5, NaN, Infinity, 2 ** 53, 2 ** 53 - 1, 3, 1e300];
          const at = rng.int(b.length - 7);
          new DataView(b.buffer, b.byteOffset).setFloat64(at, vals[rng.int(vals.length)]!, true);
        }
      }
      let d: ReturnType<typeof decodeConfEntry> | undefined;
      expect(() => (d = decodeConfEntry(b))).not.toThrow();
      if (d?.ok) {
        accepted++;
        expect(confInvalid(d.entry.conf)).toBeUndefined();
        expect(d.entry.conf.voters.length).toBeGreaterThan(0);
        expect(encodeConfEntry(d.entry)).toEqual(b);
      }
    }
    // Some mutations (context bytes, harmless id changes) keep the entry valid.
    expect(accepted).toBeGreaterThan(50);
  });
});
