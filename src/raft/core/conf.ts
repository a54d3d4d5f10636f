import type { NodeId } from './types.js';

// Cluster configurations (Raft thesis ch. 4, as etcd's raft tracks them): who votes, who only
// learns, and the joint configuration C_old,new that lets several voters change at once safely.

/**
 * A configuration. Outside a joint configuration `votersOutgoing` and `learnersNext` are empty.
 * In one (C_old,new), decisions need a majority of `voters` (C_new) *and* of `votersOutgoing`
 * (C_old); `learnersNext` are voters of C_old that become learners when the joint configuration
 * is left (a learner may not be a voter of C_new, and a voter of C_old votes until then).
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  /** Joint only: the leader leaves it by itself once it is applied (etcd's AutoLeave). */
  readonly autoLeave: boolean;
}

/** A change to one node. `addVoter` also promotes a learner; `addLearner` also demotes a voter. */
export interface ConfChangeItem {
  readonly type: 'addVoter' | 'addLearner' | 'remove';
  readonly id: NodeId;
}

/**
 * A request to change the configuration. No changes: leave the joint configuration in force.
 * transition `auto` changes at most one voter directly (C_old → C_new) and goes through a joint
 * configuration otherwise, left automatically; `joint` always goes through one, left
 * automatically; `explicitJoint` goes through one that stays until an empty change leaves it.
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeItem[];
  readonly transition?: 'auto' | 'joint' | 'explicitJoint';
}

/** The most members (voters and learners) a configuration may have: a bound on every decoded list. */
export const MAX_MEMBERS = 1024;

export const EMPTY_CONF: ConfState = { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };

export function confOfVoters(voters: readonly NodeId[]): ConfState {
  return { ...EMPTY_CONF, voters: sorted(voters) };
}

export function isJoint(c: ConfState): boolean {
  return c.votersOutgoing.length > 0;
}

/** Everyone whose vote counts in some half of the configuration. */
export function votersOf(c: ConfState): NodeId[] {
  return sorted(new Set([...c.voters, ...c.votersOutgoing]));
}

/** Everyone the leader replicates to: voters of either half and learners. */
export function membersOf(c: ConfState): NodeId[] {
  return sorted(new Set([...c.voters, ...c.votersOutgoing, ...c.learners, ...c.learnersNext]));
}

export function isVoter(c: ConfState, id: NodeId): boolean {
  return c.voters.includes(id) || c.votersOutgoing.includes(id);
}

export function isMember(c: ConfState, id: NodeId): boolean {
  return isVoter(c, id) || c.learners.includes(id);
}

export function sameConf(a: ConfState, b: ConfState): boolean {
  return (
    a.autoLeave === b.autoLeave &&
    sameIds(a.voters, b.voters) &&
    sameIds(a.votersOutgoing, b.votersOutgoing) &&
    sameIds(a.learners, b.learners) &&
    sameIds(a.learnersNext, b.learnersNext)
  );
}

/** Why `c` is not a configuration any sequence of changes could produce, or undefined. */
export function confInvalid(c: ConfState): string | undefined {
  const lists = { voters: c.voters, votersOutgoing: c.votersOutgoing, learners: c.learners, learnersNext: c.learnersNext };
  for (const [name, ids] of Object.entries(lists)) {
    if (ids.length > MAX_MEMBERS) return `${name} has ${ids.length} ids (the limit is ${MAX_MEMBERS})`;
    for (const id of ids) if (!(Number.isSafeInteger(id) && id > 0)) return `${name} holds ${id}, not a node id`;
    if (new Set(ids).size !== ids.length) return `${name} repeats an id`;
  }
  if (c.voters.length === 0 && (c.votersOutgoing.length > 0 || c.learners.length > 0)) return 'a configuration with members has no voters';
  for (const id of c.learners) if (isVoter(c, id)) return `node ${id} is both a voter and a learner`;
  for (const id of c.learnersNext) {
    if (!c.votersOutgoing.includes(id) || c.voters.includes(id) || c.learners.includes(id)) {
      return `node ${id} is to become a learner but is not only an outgoing voter`;
    }
  }
  if (!isJoint(c) && (c.learnersNext.length > 0 || c.autoLeave)) return 'a configuration that is not joint has learnersNext or autoLeave';
  if (membersOf(c).length > MAX_MEMBERS) return `more than ${MAX_MEMBERS} members`;
  return undefined;
}

export type ConfResult = { ok: true; conf: ConfState } | { ok: false; reason: string };

/**
 * The configuration that `cc` makes of `c` (etcd's confchange.Changer, in one function).
 * Refused, with a reason, if it is not a change Raft can make safely in one step.
 */
export function changeConf(c: ConfState, cc: ConfChange): ConfResult {
  if (cc.changes.length === 0) {
    if (!isJoint(c)) return { ok: false, reason: 'no joint configuration to leave' };
    return { ok: true, conf: leaveJoint(c) };
  }
  if (isJoint(c)) return { ok: false, reason: 'a joint configuration is in force: it must be left first' };
  const voters = new Set(c.voters);
  const learners = new Set(c.learners);
  const learnersNext = new Set<NodeId>();
  for (const ch of cc.changes) {
    if (!(Number.isSafeInteger(ch.id) && ch.id > 0)) return { ok: false, reason: `${ch.id} is not a node id` };
    if (ch.type === 'addVoter') {
      learners.delete(ch.id);
      voters.add(ch.id);
    } else if (ch.type === 'addLearner') {
      voters.delete(ch.id);
      learners.add(ch.id);
    } else {
      voters.delete(ch.id);
      learners.delete(ch.id);
    }
  }
  if (voters.size === 0) return { ok: false, reason: 'the change would leave no voter' };
  const changedVoters = symmetricDifference(c.voters, voters);
  const joint = cc.transition === 'joint' || cc.transition === 'explicitJoint' || changedVoters > 1;
  let next: ConfState;
  if (!joint) {
    next = { ...EMPTY_CONF, voters: sorted(voters), learners: sorted(learners) };
  } else {
    // A voter of C_old demoted to learner keeps voting in C_old until the joint config is left.
    for (const id of learners) {
      if (c.voters.includes(id)) {
        learners.delete(id);
        learnersNext.add(id);
      }
    }
    next = {
      voters: sorted(voters),
      votersOutgoing: sorted(c.voters),
      learners: sorted(learners),
      learnersNext: sorted(learnersNext),
      autoLeave: cc.transition !== 'explicitJoint',
    };
  }
  const invalid = confInvalid(next);
  if (invalid) return { ok: false, reason: invalid };
  return { ok: true, conf: next };
}

/** C_new alone: the joint configuration's incoming half, with the demoted voters as learners. */
export function leaveJoint(c: ConfState): ConfState {
  return { ...EMPTY_CONF, voters: [...c.voters], learners: sorted([...c.learners, ...c.learnersNext]) };
}

export function describeConf(c: ConfState): string {
  const list = (ids: readonly NodeId[]) => ids.join(',');
  let s = isJoint(c) ? `voters (${list(c.voters)})&&(${list(c.votersOutgoing)})` : `voters (${list(c.voters)})`;
  if (c.learners.length > 0) s += ` learners (${list(c.learners)})`;
  if (c.learnersNext.length > 0) s += ` learnersNext (${list(c.learnersNext)})`;
  if (c.autoLeave) s += ' autoleave';
  return s;
}

function sorted(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

function symmetricDifference(a: readonly NodeId[], b: ReadonlySet<NodeId>): number {
  let n = 0;
  for (const id of a) if (!b.has(id)) n++;
  const as = new Set(a);
  for (const id of b) if (!as.has(id)) n++;
  return n;
}
