import { isDeepStrictEqual } from 'node:util';
import { confOfVoters, describeConf, isJoint, isMember, leaveJoint, sameConf, type ConfState } from '../../src/raft/core/conf.js';
import { decodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { Raft } from '../../src/raft/core/raft.js';
import { isResponse, type Entry, type Message, type NodeId, type Ready, type SnapshotMeta } from '../../src/raft/core/types.js';
import type { RaftObserver } from '../../src/raft/node.js';
import { decodeCommand } from '../../src/server/command.js';
import type { CapturedState } from '../../src/server/state-machine.js';
import type { SimNode } from './cluster.js';

/** A broken promise of the protocol or of a scenario; the run that raised it is a replayable bug report. */
export class SimFailure extends Error {
  override name = 'SimFailure';
}

/** The lab's placeholder for a no-op entry in an applied list. */
export const NOOP = '<noop>';
/** The session client id under which the lab's raw commands are proposed (as KV puts of key LAB_KEY). */
export const LAB_CLIENT_ID = 1;
export const LAB_KEY = 'l';
/** Service states kept, by index, for comparing snapshots and restores across nodes. */
const STATES_KEPT = 64;

const decoder = new TextDecoder();

/** What the checker needs of the cluster. */
export interface Checked {
  readonly now: number;
  readonly nodes: readonly SimNode[];
  /** Records the first failure of the run and throws it. */
  fail(message: string): never;
  log(line: string): void;
  elected(n: SimNode, term: number): void;
  leaderLost(n: SimNode, term: number): void;
}

/**
 * The safety invariants, checked as the run goes, on every node's every step: Election Safety,
 * Log Matching, Leader Completeness, State Machine Safety (entries and restored snapshots), and
 * the durability rules: no message leaves a node before the state it depends on is durable, and
 * no client hears "ok" for a write that is not durable on a majority.
 */
export class Checker {
  maxTerm = 0;
  /** The first entry applied at each index: what every state machine must apply there. */
  private readonly committed: (Entry | undefined)[] = [];
  /** The term in which each index was first committed (by that term's leader), and how far that is known. */
  private readonly commitTerm: number[] = [];
  private commitTermKnown = 0;
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (index, term) → the entry and its predecessor's term, for the Log Matching check. */
  private readonly seenEntries = new Map<number, Map<number, { entry: Entry; prevTerm: number }>>();
  /** Where each client write (client id/seq) was first applied. */
  private readonly writes = new Map<string, { index: number; term: number }>();
  /** The first state machine state seen at recent indices (from snapshot files and restores). */
  private readonly states = new Map<number, CapturedState>();
  /** Every committed configuration, by the index of its entry (the bootstrap one at 0), in order. */
  private readonly confs: { index: number; conf: ConfState }[];
  /**
   * The configurations under which a leader committed each index: the one in force at the Ready
   * that first carried the commit, and at the leader's Ready before (a conf entry applied in
   * between may have changed it after the commit was counted).
   */
  private readonly commitConfs: (readonly [ConfState, ConfState])[] = [];
  /** Each node's configuration at its last Ready, and the term it led then (-1: it did not). */
  private readonly lastConf = new Map<NodeId, ConfState>();
  private readonly ledTerm = new Map<NodeId, number>();

  constructor(
    private readonly sim: Checked,
    bootstrapVoters: readonly NodeId[],
  ) {
    this.confs = [{ index: 0, conf: confOfVoters(bootstrapVoters) }];
  }

  /** The newest committed configuration. */
  get conf(): ConfState {
    return this.confs[this.confs.length - 1]!.conf;
  }

  /** Every configuration committed so far, oldest first, with its entry's index. */
  get confHistory(): readonly { index: number; conf: ConfState }[] {
    return this.confs;
  }

  /** The listener each node incarnation's RaftNode reports to. */
  observer(n: SimNode): RaftObserver {
    return {
      ready: (rd, r) => this.ready(n, r, rd),
      applied: (e) => this.applied(n, e),
      snapshotTaken: (meta) => this.snapshotTaken(n, meta),
      snapshotInstalled: (meta) => this.installed(n, meta),
      // Only a forgery or a bug makes the core refuse a message (the simulator forges none), or a
      // late answer to a node that no longer tracks the sender (it was removed, or this node no
      // longer leads).
      refused: (m, kind, detail) => {
        if (kind === 'notPeer' && (isResponse(m.type) || !isMember(n.server!.raft.conf, m.from))) return;
        this.sim.fail(`n${n.id} refused ${m.type} from n${m.from} in term ${m.term}: ${kind}: ${detail}`);
      },
    };
  }

  /** The lab's record of what a node applied at an entry. */
  static labValue(e: Entry): string {
    if (e.type === 'noop') return NOOP;
    if (e.type === 'conf') {
      const d = decodeConfEntry(e.data);
      return `<conf ${d.ok ? describeConf(d.entry.conf) : d.reason}>`;
    }
    const c = decodeCommand(e.data);
    return c.clientId === LAB_CLIENT_ID ? decoder.decode(c.value) : `kv ${c.clientId}/${c.seq}`;
  }

  // ---- durability ---------------------------------------------------------------------------

  /**
   * A message is leaving its node: what it tells the receiver must be on the sender's disk
   * (persist before speaking). Pre-votes are exempt: they promise nothing.
   */
  leaving(m: Message): void {
    if (m.type === 'preVote' || m.type === 'preVoteResp') return;
    const n = this.sim.nodes[m.from - 1]!;
    const d = n.disk.log.durable;
    const hs = d.hardState;
    const what = `n${m.from} sent ${m.type}${m.reject ? ' (reject)' : ''} in term ${m.term} to n${m.to}`;
    if (m.term > hs.term) this.sim.fail(`${what} before that term was durable (durable term ${hs.term})`);
    // A node never speaks for a term it is durably past (the core drops what it said in an
    // earlier term when its term moves on), and a vote is durable before it is announced.
    if (m.term < hs.term) this.sim.fail(`${what} after term ${hs.term} was durable: a message of an earlier term`);
    if (m.type === 'vote' && hs.vote !== m.from) {
      this.sim.fail(`${what} before its own vote was durable (durable term ${hs.term}, vote ${hs.vote})`);
    }
    if (m.type === 'voteResp' && !m.reject && hs.vote !== m.to) {
      this.sim.fail(`${what}: a grant before the vote was durable (durable term ${hs.term}, vote ${hs.vote})`);
    }
    if (m.type === 'appResp' && !m.reject) {
      if (m.index > (d.snapshot?.index ?? 0)) {
        const onDisk = d.termAt(m.index);
        if (onDisk === undefined || onDisk !== n.disk.log.view.termAt(m.index)) {
          this.sim.fail(`${what}: acknowledged entries up to ${m.index} before they were durable (durable log ends at ${d.lastIndex()})`);
        }
      }
      if (m.term > n.acked.term) n.acked = { term: m.term, index: m.index };
      else if (m.term === n.acked.term) n.acked.index = Math.max(n.acked.index, m.index);
    }
  }

  /**
   * A client is told its write is done: the write must be durable on a quorum (committed) of the
   * configuration its leader counted it under (joint: a majority of each half).
   */
  acknowledged(clientId: number, seq: number): void {
    const at = this.writes.get(`${clientId}/${seq}`);
    if (!at) this.sim.fail(`client ${clientId} seq ${seq} was told "ok" before any node applied its write`);
    const durable = new Set<NodeId>();
    for (const n of this.sim.nodes) {
      const d = n.disk.log.durable;
      if (at.index <= (d.snapshot?.index ?? 0) || d.termAt(at.index) === at.term) durable.add(n.id);
    }
    const confs = this.commitConfs[at.index] ?? [this.conf, this.conf];
    if (!confs.some((c) => hasQuorum(c, durable))) {
      this.sim.fail(
        `client ${clientId} seq ${seq} was told "ok" while its entry ${at.index} is durable on only ${[...durable].join(',') || 'no node'} ` +
          `(committed under ${describeConf(confs[1])})`,
      );
    }
  }

  // ---- state machines -----------------------------------------------------------------------

  private applied(n: SimNode, e: Entry): void {
    if (e.index !== n.lastApplied + 1) this.sim.fail(`n${n.id} applied index ${e.index} after ${n.lastApplied}: out of order`);
    const first = this.committed[e.index];
    if (!first) {
      this.committed[e.index] = e;
      if (e.type === 'conf') this.confCommitted(n, e);
      if (e.type === 'normal') {
        const c = decodeCommand(e.data);
        const key = `${c.clientId}/${c.seq}`;
        if (!this.writes.has(key)) this.writes.set(key, { index: e.index, term: e.term });
      }
    } else if (!sameEntry(first, e)) {
      this.sim.fail(`n${n.id} applied ${describe(e)} at index ${e.index} where another node applied ${describe(first)}`);
    }
    n.lastApplied = e.index;
    n.applied[e.index] = Checker.labValue(e);
  }

  /** State Machine Safety for a state a node holds after `meta`: the same on every node. */
  sameStateAt(n: SimNode, meta: SnapshotMeta, state: CapturedState, what: string): void {
    const first = this.states.get(meta.index);
    if (!first) {
      this.states.set(meta.index, state);
      if (this.states.size > STATES_KEPT) this.states.delete(this.states.keys().next().value!);
    } else if (!sameState(first, state)) {
      this.sim.fail(`n${n.id}'s ${what} at entry ${meta.index} holds another state than another node's there`);
    }
  }

  private snapshotTaken(n: SimNode, meta: SnapshotMeta): void {
    const file = n.snapshotFile(meta);
    if (!file) this.sim.fail(`n${n.id} compacted its log to ${meta.index} without a snapshot file there`);
    this.sameStateAt(n, meta, file, 'snapshot');
    n.snapshotsTaken++;
  }

  /** A snapshot from the leader is installed: the node's store must hold exactly its state. */
  private installed(n: SimNode, meta: SnapshotMeta): void {
    const file = n.snapshotFile(meta);
    const restored = n.server?.store.capture();
    if (!file || !restored) this.sim.fail(`n${n.id} installed snapshot ${meta.index} but holds no such file or store`);
    if (!sameState(file, restored.state)) this.sim.fail(`n${n.id}, restored from snapshot ${meta.index}, holds another state than the snapshot`);
    this.sameStateAt(n, meta, file, 'installed snapshot');
    this.restoredTo(n, meta.index);
    n.snapshotsInstalled++;
    this.sim.log(`n${n.id} installed snapshot ${meta.index}/${meta.term}`);
  }

  /** The node's state machine now starts after `index` (a snapshot): the lab's record catches up. */
  restoredTo(n: SimNode, index: number): void {
    for (let i = n.lastApplied + 1; i <= index; i++) {
      const c = this.committed[i];
      if (c) n.applied[i] = Checker.labValue(c);
    }
    n.lastApplied = index;
  }

  // ---- configurations -----------------------------------------------------------------------

  /**
   * A conf entry is committed (first applied): its configuration must follow from the one before
   * by a step Raft allows: at most one voter changed directly, or into a joint configuration whose
   * outgoing half is the old voters, or out of a joint one to its incoming half.
   */
  private confCommitted(n: SimNode, e: Entry): void {
    const d = decodeConfEntry(e.data);
    if (!d.ok) this.sim.fail(`n${n.id} applied conf entry ${e.index} that does not decode: ${d.reason}`);
    const prev = this.conf;
    const next = d.entry.conf;
    const step = `${describeConf(prev)} -> ${describeConf(next)} at ${e.index}`;
    if (isJoint(prev)) {
      if (!sameConf(next, leaveJoint(prev))) this.sim.fail(`configuration change ${step}: a joint configuration may only be left`);
    } else if (isJoint(next)) {
      if (!sameIds(next.votersOutgoing, prev.voters)) this.sim.fail(`configuration change ${step}: the joint configuration's outgoing half is not the old voters`);
    } else {
      const changed = symmetricDifference(prev.voters, next.voters);
      if (changed > 1) this.sim.fail(`configuration change ${step}: ${changed} voters changed without a joint configuration`);
    }
    this.confs.push({ index: e.index, conf: next });
    this.sim.log(`committed configuration ${describeConf(next)} at ${e.index}`);
  }

  /**
   * A leader appended conf entries of its term: each was proposed with no other change pending
   * (every earlier conf entry applied) and after the leader committed an entry of its own term.
   */
  private confProposed(n: SimNode, r: Raft, rd: Ready): void {
    for (const e of rd.entries) {
      if (e.type !== 'conf' || e.term !== r.term) continue;
      if (r.log.term(r.log.committed) !== r.term) this.sim.fail(`n${n.id} proposed conf entry ${e.index} in term ${r.term} before committing an entry of that term`);
      for (let i = Math.max(r.log.applied + 1, r.log.firstIndex()); i < e.index; i++) {
        if (r.log.entry(i)?.type === 'conf') this.sim.fail(`n${n.id} proposed conf entry ${e.index} while conf entry ${i} was not applied`);
      }
    }
  }

  // ---- Raft ---------------------------------------------------------------------------------

  /** Safety invariants visible in one Ready: Election Safety, Leader Completeness, Log Matching. */
  private ready(n: SimNode, r: Raft, rd: Ready): void {
    if (rd.hardState) this.maxTerm = Math.max(this.maxTerm, rd.hardState.term);
    // A leader's commit reaches its Ready before any message can tell another node about it
    // (also when applying its own removal made it step down since the Ready before).
    const conf = r.status().conf;
    const before = this.lastConf.get(n.id) ?? conf;
    const led = this.ledTerm.get(n.id) === r.term;
    this.lastConf.set(n.id, conf);
    this.ledTerm.set(n.id, r.role === 'leader' ? r.term : -1);
    if (rd.hardState && (r.role === 'leader' || led)) {
      for (; this.commitTermKnown < rd.hardState.commit; this.commitTermKnown++) {
        this.commitTerm[this.commitTermKnown + 1] = r.term;
        this.commitConfs[this.commitTermKnown + 1] = [before, conf];
      }
    }
    if (r.role === 'leader') this.confProposed(n, r, rd);
    // What a follower acknowledged to its term's leader is in that leader's log: only a leader of a
    // later term may make it truncate there (§5.3). A stale or repeated append must not.
    const lastNew = rd.entries[rd.entries.length - 1];
    if (lastNew && r.term === n.acked.term && lastNew.index < n.acked.index) {
      this.sim.fail(`n${n.id} cut its log back to ${lastNew.index} in term ${r.term}, below entry ${n.acked.index} it had acknowledged in that term`);
    }
    for (const e of rd.entries) {
      const prevTerm = e.index === 1 ? 0 : (r.log.term(e.index - 1) ?? -1);
      let byTerm = this.seenEntries.get(e.index);
      if (!byTerm) this.seenEntries.set(e.index, (byTerm = new Map()));
      const seen = byTerm.get(e.term);
      if (!seen) byTerm.set(e.term, { entry: e, prevTerm });
      else if (!sameEntry(seen.entry, e) || seen.prevTerm !== prevTerm) {
        this.sim.fail(`log matching: n${n.id} holds a different entry at index ${e.index} term ${e.term}`);
      }
    }
    if (!rd.softState) return;
    this.sim.log(`n${n.id} ${rd.softState.role} term=${r.term} leader=${rd.softState.leaderId}`);
    if (rd.softState.role === 'leader') this.onElected(n, r);
    else this.sim.leaderLost(n, r.term);
  }

  private onElected(n: SimNode, r: Raft): void {
    const other = this.leaderOfTerm.get(r.term);
    if (other !== undefined && other !== n.id) this.sim.fail(`election safety: n${other} and n${n.id} both leaders of term ${r.term}`);
    this.leaderOfTerm.set(r.term, n.id);
    // Leader Completeness promises committed entries to leaders of later terms only: a candidate
    // whose delayed votes elect it in a stale term may lack what a newer term committed (and can
    // commit nothing, since that newer majority rejects its term).
    for (let i = r.log.firstIndex(); i < this.committed.length; i++) {
      if ((this.commitTerm[i] ?? 0) >= r.term) continue;
      const c = this.committed[i]!;
      const mine = r.log.entry(i);
      if (!mine || !sameEntry(mine, c)) this.sim.fail(`leader completeness: n${n.id} leads term ${r.term} without committed entry ${i}`);
    }
    this.sim.elected(n, r.term);
  }
}

/** Whether `ids` hold a quorum of `c`: a majority of its voters, and of the outgoing voters too if it is joint. */
export function hasQuorum(c: ConfState, ids: ReadonlySet<NodeId>): boolean {
  const majority = (voters: readonly NodeId[]): boolean => voters.filter((v) => ids.has(v)).length * 2 > voters.length;
  return majority(c.voters) && (c.votersOutgoing.length === 0 || majority(c.votersOutgoing));
}

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

function symmetricDifference(a: readonly NodeId[], b: readonly NodeId[]): number {
  return a.filter((id) => !b.includes(id)).length + b.filter((id) => !a.includes(id)).length;
}

/**
 * Deep equality of captured states (plain objects, arrays, byte arrays, primitives), several times
 * faster than isDeepStrictEqual on them; anything else goes to isDeepStrictEqual.
 */
export function sameState(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array) return b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameState(a[i], b[i])) return false;
    return true;
  }
  if (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return isDeepStrictEqual(a, b);
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k) || !sameState((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a.term !== b.term || a.type !== b.type || a.data.length !== b.data.length) return false;
  if (a.data === b.data) return true;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

function describe(e: Entry): string {
  return `{term ${e.term}, ${Checker.labValue(e).slice(0, 40)}}`;
}
