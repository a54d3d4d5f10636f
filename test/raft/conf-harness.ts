/** Helpers for the configuration tests (conf.test.ts, membership*.test.ts). */
import { Raft, type ConfChangeResult, type RaftConfig } from '../../src/raft/core/raft.js';
import { seededRng } from '../../src/raft/core/rng.js';
import type { ConfChange, ConfChangeItem, ConfState } from '../../src/raft/core/conf.js';
import { decodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { Message, NodeId } from '../../src/raft/core/types.js';
import { Network } from './network.js';

export const voter = (id: NodeId): ConfChangeItem => ({ type: 'addVoter', id });
export const learner = (id: NodeId): ConfChangeItem => ({ type: 'addLearner', id });
export const remove = (id: NodeId): ConfChangeItem => ({ type: 'remove', id });

/** A configuration literal, lists sorted as the core keeps them. */
export function conf(voters: NodeId[], opts: Partial<Omit<ConfState, 'voters'>> = {}): ConfState {
  const s = (ids: readonly NodeId[] = []) => [...ids].sort((a, b) => a - b);
  return {
    voters: s(voters),
    votersOutgoing: s(opts.votersOutgoing),
    learners: s(opts.learners),
    learnersNext: s(opts.learnersNext),
    autoLeave: opts.autoLeave ?? false,
  };
}

/** A node that belongs to no configuration yet: it learns one from the leader that adds it. */
export function joiner(id: NodeId, cfg: Partial<RaftConfig> = {}, seed = id): Raft {
  return new Raft({ id, electionTick: 10, heartbeatTick: 1, rng: seededRng(seed), ...cfg });
}

/** Adds fresh, configuration-less nodes to the network (they hear nothing until a leader adds them). */
export function addNodes(net: Network, ...ids: NodeId[]): void {
  for (const id of ids) net.nodes.set(id, joiner(id, {}, 100 + id));
}

/** Proposes a change at `leader` and delivers until quiet; throws if refused. */
export function changeConf(net: Network, leader: NodeId, cc: ConfChange | ConfChangeItem[]): Extract<ConfChangeResult, { ok: true }> {
  const res = net.node(leader).proposeConfChange(Array.isArray(cc) ? { changes: cc } : cc);
  if (!res.ok) throw new Error(`change refused at node ${leader}: ${res.reason}`);
  net.deliverAll();
  return res;
}

/** Ticks every node `n` times (those in `only`, if given), delivering after each tick. */
export function tickAll(net: Network, n: number, only?: NodeId[]): void {
  for (let i = 0; i < n; i++) {
    for (const [id, r] of net.nodes) if (!only || only.includes(id)) r.tick();
    net.deliverAll();
  }
}

/** The leaders of the highest term any node believes it leads. */
export function leaders(net: Network): NodeId[] {
  return [...net.nodes].filter(([, r]) => r.role === 'leader').map(([id]) => id);
}

/** Cuts every link between nodes of different groups (links within a group stay as they are). */
export function partition(net: Network, ...groups: NodeId[][]): void {
  for (let i = 0; i < groups.length; i++) {
    for (let j = i + 1; j < groups.length; j++) for (const a of groups[i]!) for (const b of groups[j]!) net.cutLink(a, b);
  }
}

/** Holds back the messages `filter` picks instead of delivering them. */
export function holdBack(net: Network, filter: (m: Message) => boolean): Message[] {
  const held: Message[] = [];
  net.drop((m) => filter(m) && held.push(m) > 0);
  return held;
}

/** The configurations of the conf entries in a node's log, in order, as [index, conf]. */
export function confEntries(r: Raft): [number, ConfState][] {
  const out: [number, ConfState][] = [];
  for (let i = r.log.firstIndex(); i <= r.log.lastIndex(); i++) {
    const e = r.log.entry(i)!;
    if (e.type !== 'conf') continue;
    const d = decodeConfEntry(e.data);
    if (!d.ok) throw new Error(`entry ${i}: ${d.reason}`);
    out.push([i, d.entry.conf]);
  }
  return out;
}

/** Every node's configuration in force, by id. */
export function confs(net: Network): Record<NodeId, ConfState> {
  return Object.fromEntries([...net.nodes].map(([id, r]) => [id, r.status().conf]));
}

/** Messages of `type` sent by `from` in what the network delivered. */
export function sent(net: Network, from: NodeId, ...types: Message['type'][]): Message[] {
  return net.delivered.filter((m) => m.from === from && types.includes(m.type));
}

/** A cluster of `ids` led by node 1 (term 1), with one command committed and known to all. */
export function cluster(ids: NodeId[], cfg: Partial<RaftConfig> = {}): Network {
  const net = new Network(ids, cfg);
  net.elect(1);
  net.propose(1, 'first');
  tickAll(net, 1);
  return net;
}

/** Commits `n` commands at `leader` and lets every reachable follower learn the commit index. */
export function write(net: Network, leader: NodeId, n = 1): void {
  for (let i = 0; i < n; i++) net.propose(leader, `w${i}`);
  tickAll(net, 1, [leader]);
}

export function everyConf(net: Network, ids: NodeId[]): ConfState[] {
  return ids.map((id) => net.node(id).status().conf);
}

/** Leader 1 in the joint configuration C_new = {1,4,5} && C_old = {1,2,3}, held (explicitJoint) and known to every node. */
export function jointCluster(cfg: Partial<RaftConfig> = {}): Network {
  const net = cluster([1, 2, 3], cfg);
  addNodes(net, 4, 5);
  changeConf(net, 1, { changes: [voter(4), voter(5), remove(2), remove(3)], transition: 'explicitJoint' });
  tickAll(net, 2, [1]);
  for (const c of everyConf(net, [1, 2, 3, 4, 5])) {
    if (c.voters.join() !== '1,4,5' || c.votersOutgoing.join() !== '1,2,3') throw new Error(`not joint: ${JSON.stringify(c)}`);
  }
  return net;
}
