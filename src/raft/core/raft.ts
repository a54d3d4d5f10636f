import { refusal, type Refusal } from './acceptance.js';
import { changeConf, confOfVoters, EMPTY_CONF, isJoint, leaveJoint, votersOf, type ConfChange, type ConfState } from './conf.js';
import { decodeConfEntry, encodeConfEntry, MAX_CONF_CONTEXT_BYTES } from './conf-codec.js';
import { ENTRY_OVERHEAD, RaftInvariantError, RaftLog } from './log.js';
import type { Progress } from './progress.js';
import { ReadIndexQueue } from './read-index.js';
import { Tracker } from './tracker.js';
import {
  CAMPAIGN_TRANSFER,
  NONE,
  type Entry,
  type EntryType,
  type HardState,
  message,
  type Message,
  type MessageType,
  type NodeId,
  type Ready,
  type Rng,
  type Role,
  type SnapshotMeta,
  type SoftState,
} from './types.js';

export interface RaftConfig {
  id: NodeId;
  /**
   * The voters of a cluster being bootstrapped, this node included: shorthand for a `conf` of
   * these voters. Neither given: a node waiting to be added, which learns its configuration from
   * the leader that adds it.
   */
  peers?: readonly NodeId[];
  /** The configuration in force as of `snapshot` (or of the log's start, without one). Default: `snapshot.conf`, then `peers`. */
  conf?: ConfState;
  /** Ticks without a leader before campaigning; each term draws a timeout in [electionTick, 2·electionTick). */
  electionTick: number;
  /** Ticks between a leader's heartbeats; must be well below electionTick. */
  heartbeatTick: number;
  /** Seeded randomness for election timeouts: the core has no other source. */
  rng: Rng;
  /** Thesis §9.6: ask whether an election could be won before raising the term. Default true. */
  preVote?: boolean;
  /** A leader that hears from no majority for an election timeout steps down; followers that hear from a live leader ignore votes. Default true. */
  checkQuorum?: boolean;
  /** Soft cap on the entry bytes in one append message. */
  maxMsgBytes?: number;
  /** Cap on unacknowledged append messages per follower. */
  maxInflight?: number;
  /** Cap on the entry bytes of unacknowledged appends per follower (default 8 MiB). */
  maxInflightBytes?: number;
  /** Durable state to resume from after a restart: the latest snapshot, and the log after it. */
  hardState?: HardState;
  entries?: Entry[];
  snapshot?: SnapshotMeta;
}

/** Not ok: this node does not lead (`leaderId` may), or it is handing leadership over (`leaderId` is NONE). */
export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; leaderId: NodeId };

export type ConfChangeResult = { ok: true; index: number; term: number; conf: ConfState } | { ok: false; reason: string; leaderId: NodeId };

export type TransferResult = { ok: true } | { ok: false; reason: string; leaderId: NodeId };

/** A leader's view of one member, for operators. */
export interface MemberProgress {
  id: NodeId;
  voter: boolean;
  match: number;
  next: number;
  state: Progress['state'];
  /** Heard from in the current check-quorum round. */
  recentActive: boolean;
}

export interface RaftStatus {
  id: NodeId;
  role: Role;
  term: number;
  vote: NodeId;
  leaderId: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  /** The last index covered by this node's latest snapshot (0: none). */
  snapshotIndex: number;
  /** The configuration in force (as of the applied index). */
  conf: ConfState;
  /** Leader: the node leadership is being handed to (NONE: none). */
  leadTransferee: NodeId;
}

const EMPTY_DATA = new Uint8Array(0);
const NO_ENTRIES: Entry[] = [];

/**
 * The Raft protocol as a deterministic state machine. It moves only on tick(), step() and
 * propose(), and hands back its effects through ready(): no clock, timer, randomness of its own,
 * promise or I/O, so every run is replayable from a seed.
 */
export class Raft {
  readonly id: NodeId;
  readonly log: RaftLog;
  term: number;
  vote: NodeId;
  leaderId: NodeId = NONE;
  role: Role = 'follower';

  private readonly tracker: Tracker;
  /** Leader: the index of the last conf entry it appended; no new change until it is applied. */
  private pendingConfIndex = 0;
  /** Leader: the node it is handing leadership to (thesis §3.10); proposals wait meanwhile. */
  private leadTransferee: NodeId = NONE;
  /** Leader: ticks since the transfer began; at electionTick it is abandoned. */
  private transferElapsed = 0;
  /** Whether the transfer's target has been sent timeoutNow. */
  private transferTold = false;
  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly rng: Rng;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxMsgBytes: number;
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;

  /** Pre-vote answers in the current pre-vote round. */
  private preVotes = new Map<NodeId, boolean>();
  /**
   * Vote answers for this node in the current term. Kept when a candidate falls back to
   * pre-vote: a grant for this term that arrives late is still a grant (each voter grants once
   * per term), which keeps elections converging when replies are slower than the timeout.
   */
  private votes = new Map<NodeId, boolean>();
  private msgs: Message[] = [];
  /** Leader: reads being confirmed, and reads waiting for the first commit of this term. */
  private reads: ReadIndexQueue;
  private readsAwaitingCommit: number[] = [];
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** Leader: new entries to send at the next ready(), batched per follower. */
  private appendPending = false;
  /** The latest snapshot this node holds: what it sends to followers whose entries it compacted. */
  private snapshot: SnapshotMeta | undefined;
  /** A snapshot received from the leader, to hand to the driver in the next Ready. */
  private snapshotToInstall: SnapshotMeta | undefined;
  private prevHardState: HardState;
  private prevSoftState: SoftState;
  private stepRole: (m: Message) => void = this.stepFollower;
  private tickRole: () => void = this.tickElection;

  constructor(cfg: RaftConfig) {
    if (!cfg.conf && !cfg.snapshot?.conf && cfg.peers && !cfg.peers.includes(cfg.id)) {
      throw new RangeError(`node ${cfg.id} is not among peers ${cfg.peers.join(',')}`);
    }
    if (cfg.heartbeatTick <= 0 || cfg.electionTick <= cfg.heartbeatTick) {
      throw new RangeError(`need 0 < heartbeatTick (${cfg.heartbeatTick}) < electionTick (${cfg.electionTick})`);
    }
    this.id = cfg.id;
    this.electionTick = cfg.electionTick;
    this.heartbeatTick = cfg.heartbeatTick;
    this.rng = cfg.rng;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxMsgBytes = cfg.maxMsgBytes ?? 1024 * 1024;
    this.maxInflight = cfg.maxInflight ?? 256;
    this.maxInflightBytes = cfg.maxInflightBytes ?? 8 * 1024 * 1024;
    const hs = cfg.hardState ?? { term: 0, vote: NONE, commit: 0 };
    this.log = new RaftLog(cfg.entries ?? [], hs.commit, cfg.snapshot);
    const conf = cfg.conf ?? cfg.snapshot?.conf ?? (cfg.peers ? confOfVoters(cfg.peers) : EMPTY_CONF);
    this.tracker = new Tracker(conf, cfg.snapshot?.index ?? 0, this.maxInflight, this.maxInflightBytes);
    this.snapshot = cfg.snapshot && { ...cfg.snapshot, conf };
    this.term = hs.term;
    this.vote = hs.vote;
    this.prevHardState = hs;
    this.reads = this.newReadQueue();
    this.becomeFollower(this.term, NONE);
    this.prevSoftState = this.softState();
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** Advances logical time by one tick. */
  tick(): void {
    this.tickRole();
  }

  /** Appends a command at the leader; it is replicated at the next ready(). */
  propose(data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') return { ok: false, leaderId: this.leaderId };
    if (this.leadTransferee !== NONE) return { ok: false, leaderId: NONE };
    const e = this.appendEntry('normal', data);
    return { ok: true, index: e.index, term: e.term };
  }

  /**
   * Proposes a configuration change (thesis ch. 4). It takes effect on each node when applied; a
   * joint configuration it enters is left by the leader on its own (unless `explicitJoint`).
   * Refused, changing nothing: on a follower; while a change is pending (appended, not yet
   * applied); before this leader has committed an entry of its own term (a change proposed
   * earlier could still be undone by an older leader's change: the 2015 single-server bug);
   * during a leadership transfer; and when the change is not one Raft can make in one step.
   * `context` travels with the entry for the driver (members' addresses); the core ignores it.
   */
  proposeConfChange(cc: ConfChange, context: Uint8Array = EMPTY_DATA): ConfChangeResult {
    const no = (reason: string): ConfChangeResult => ({ ok: false, reason, leaderId: this.leaderId });
    if (this.role !== 'leader') return no('this node is not the leader');
    if (this.leadTransferee !== NONE) return no(`leadership is being transferred to node ${this.leadTransferee}`);
    if (this.pendingConfIndex > this.log.applied) return no(`a configuration change is pending (at index ${this.pendingConfIndex})`);
    if (!this.committedInTerm()) return no('this leader has not yet committed an entry of its term; retry shortly');
    // No node could decode (so apply) the entry: every one would stop at it.
    if (context.length > MAX_CONF_CONTEXT_BYTES) return no(`a context of ${context.length} bytes is over the limit of ${MAX_CONF_CONTEXT_BYTES}`);
    const next = changeConf(this.tracker.conf, cc);
    if (!next.ok) return no(next.reason);
    const e = this.appendEntry('conf', encodeConfEntry({ conf: next.conf, context }));
    this.pendingConfIndex = e.index;
    return { ok: true, index: e.index, term: e.term, conf: next.conf };
  }

  /**
   * Hands leadership to voter `to` (thesis §3.10): proposals are refused meanwhile, `to` is
   * brought up to date and told to campaign at once. The transfer is abandoned after an election
   * timeout if `to` has not taken over by then.
   */
  transferLeadership(to: NodeId): TransferResult {
    const no = (reason: string): TransferResult => ({ ok: false, reason, leaderId: this.leaderId });
    if (this.role !== 'leader') return no('this node is not the leader');
    if (to === this.id) return no(`node ${to} leads already`);
    if (!this.tracker.isVoter(to)) return no(`node ${to} is not a voter`);
    if (this.leadTransferee === to) return { ok: true };
    this.leadTransferee = to;
    // The target has an election timeout to catch up, and another from timeoutNow to win: its
    // vote requests wait for its disk, and a leader taking proposals again meanwhile would leave
    // it behind, lose the election to nobody and cost the cluster an election timeout. (Its own
    // count: restarting the check-quorum round instead would let repeated transfers keep a
    // cut-off leader in place.)
    this.transferElapsed = 0;
    this.transferTold = false;
    const pr = this.tracker.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.tellTransferee(to);
    else this.maybeSendAppend(to, true);
    return { ok: true };
  }

  /** The transfer's target is up to date: it campaigns at once; the first time, its election timeout starts now. */
  private tellTransferee(to: NodeId): void {
    this.send({ type: 'timeoutNow', to });
    if (this.transferTold) return;
    this.transferTold = true;
    this.transferElapsed = 0;
  }

  /** The configuration in force as of applied index `index` (at or after the latest snapshot). */
  confAt(index: number): ConfState {
    return this.tracker.confAt(index);
  }

  /** Leader: each member's replication progress; otherwise empty. */
  members(): MemberProgress[] {
    if (this.role !== 'leader') return [];
    return [...this.tracker.progress].map(([id, pr]) => ({
      id,
      voter: this.tracker.isVoter(id),
      match: pr.match,
      next: pr.next,
      state: pr.state,
      recentActive: id === this.id || pr.recentActive,
    }));
  }

  /**
   * Asks for a linearizable read point (thesis §6.4). Returns false if this node is not leader.
   * Otherwise a later Ready carries a ReadState for `ctx` (a positive number, increasing per
   * request) once a majority has confirmed this leadership; if leadership is lost first, it never
   * does, and the driver must fail the request.
   */
  readIndex(ctx: number): boolean {
    if (this.role !== 'leader') return false;
    // Until an entry of this term commits, our commit index may lag the true one (§6.4 step 1).
    if (this.committedInTerm()) this.reads.add(ctx, this.log.committed);
    else this.readsAwaitingCommit.push(ctx);
    return true;
  }

  /**
   * The state machine has taken a snapshot covering `snapshot` (an applied entry): it becomes the
   * one sent to followers that fall behind, and entries up to `snapshot.index - retain` are
   * dropped (a trailing window lets slow followers catch up from the log instead). False, and
   * nothing changes, if the node already holds a snapshot at least as new.
   */
  compact(snapshot: SnapshotMeta, retain = 0): boolean {
    if (snapshot.index > this.log.applied) {
      throw new RaftInvariantError(`snapshot at ${snapshot.index} is past the applied index ${this.log.applied}`);
    }
    if (this.snapshot && snapshot.index <= this.snapshot.index) return false;
    this.snapshot = { index: snapshot.index, term: snapshot.term, conf: this.confAt(snapshot.index) };
    this.tracker.compacted(snapshot.index);
    this.log.compact(Math.max(snapshot.index - retain, 0));
    return true;
  }

  /** The driver's word on a snapshot it was sending to `to`: a failure makes the leader try again later. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.role === 'leader' ? this.tracker.progress.get(to) : undefined;
    if (pr?.state !== 'snapshot') return;
    // Either way, probe from where the follower stands; after a delivered snapshot, wait for its
    // answer (or a heartbeat response) before the first probe.
    pr.becomeProbe();
    pr.probeSent = ok;
  }

  /**
   * Takes a message from a peer. One that no peer could have sent (core/acceptance.ts) is refused:
   * it changes nothing, and the refusal says why (as etcd's Step returns an error).
   */
  step(m: Message): Refusal | undefined {
    const refused = refusal(
      { id: this.id, tracked: (id) => this.tracker.progress.has(id) || this.tracker.isVoter(id), term: this.term, role: this.role, leaderId: this.leaderId, unconfigured: this.tracker.conf.voters.length === 0, lastIndex: this.log.lastIndex() },
      m,
    );
    if (refused) return refused;
    if (m.term > this.term) {
      const transfer = m.type === 'vote' && m.context === CAMPAIGN_TRANSFER;
      if ((m.type === 'vote' || m.type === 'preVote') && !transfer && this.inLease()) return undefined;
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) {
        // Pre-vote never changes a term: requests carry a term we might reach, grants echo it.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      this.respondToStaleTerm(m);
      return undefined;
    }
    if (m.type === 'vote' || m.type === 'preVote') this.handleVote(m);
    else this.stepRole(m);
    return undefined;
  }

  // ---- outputs ------------------------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      (this.role === 'leader' && (this.appendPending || this.reads.hasWork())) ||
      this.log.lastIndex() > this.log.stabled ||
      this.log.committed > this.log.applied ||
      this.snapshotToInstall !== undefined ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      !sameSoftState(this.softState(), this.prevSoftState)
    );
  }

  /**
   * Collects what to persist, send and apply. The caller must finish it (persist → send →
   * apply) and call advance() before the next ready().
   */
  ready(): Ready {
    if (this.role === 'leader') {
      if (this.appendPending) {
        for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendAppends(id, false);
      }
      const round = this.reads.takeUnsent();
      if (round !== 0) this.broadcastHeartbeat(round);
    }
    this.appendPending = false;
    const hs = this.hardState();
    const ss = this.softState();
    const rd: Ready = {
      snapshot: this.snapshotToInstall,
      softState: sameSoftState(ss, this.prevSoftState) ? undefined : ss,
      hardState: sameHardState(hs, this.prevHardState) ? undefined : hs,
      entries: this.log.unstableEntries(),
      messages: this.msgs,
      committedEntries: this.log.nextCommittedEntries(),
      readStates: this.reads.takeReleased(),
    };
    this.msgs = [];
    this.prevHardState = hs;
    this.prevSoftState = ss;
    return rd;
  }

  /**
   * The heartbeats (a leader's) and heartbeat answers queued since the last ready(), taken out
   * ahead of it: a driver whose Ready waits on a slow disk sends them at once, so that a slow
   * flush does not pass for a dead leader, or a dead follower (check-quorum). They carry no
   * entries and acknowledge none; answers go only in `durableTerm`, the term on disk.
   */
  takeHeartbeats(durableTerm: number): Message[] {
    const urgent = (m: Message): boolean => (m.type === 'heartbeat' && this.role === 'leader') || (m.type === 'heartbeatResp' && m.term === durableTerm);
    if (!this.msgs.some(urgent)) return [];
    const taken = this.msgs.filter(urgent);
    this.msgs = this.msgs.filter((m) => !urgent(m));
    return taken;
  }

  /** The Ready has been persisted, sent and applied. */
  advance(rd: Ready): void {
    if (rd.snapshot) {
      this.log.snapshotApplied(rd.snapshot.index);
      this.snapshot = rd.snapshot;
      if (this.snapshotToInstall === rd.snapshot) this.snapshotToInstall = undefined;
    }
    const lastNew = rd.entries[rd.entries.length - 1];
    if (lastNew) {
      this.log.stableTo(lastNew.index, lastNew.term);
      // The leader counts its own copy only once it is durable.
      if (this.role === 'leader') {
        this.tracker.progress.get(this.id)?.maybeUpdate(this.log.stabled);
        this.maybeCommit();
      }
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) {
      this.log.appliedTo(lastApplied.index);
      for (const e of rd.committedEntries) if (e.type === 'conf') this.applyConf(e);
      this.maybeLeaveJoint();
    }
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { role: this.role, leaderId: this.leaderId };
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leaderId: this.leaderId,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.snapshot?.index ?? 0,
      conf: this.tracker.conf,
      leadTransferee: this.leadTransferee,
    };
  }

  // ---- configuration ------------------------------------------------------------------------

  /** A committed conf entry has been applied: its configuration is now in force here. */
  private applyConf(e: Entry): void {
    const d = decodeConfEntry(e.data);
    // The transport refuses appends carrying a malformed conf entry, so a committed one is a bug.
    if (!d.ok) throw new RaftInvariantError(`conf entry ${e.index}: ${d.reason}`);
    const leading = this.role === 'leader';
    this.tracker.applied(e.index, d.entry.conf, d.entry.context, leading, this.log.lastIndex() + 1);
    if (!leading) return;
    if (this.leadTransferee !== NONE && !this.tracker.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    if (!this.tracker.isVoter(this.id)) return this.stepDownRemoved();
    // Fewer or other voters may commit what the old ones did not; new members need the log.
    this.maybeCommit();
    this.appendPending = true;
  }

  /** Leader: a joint configuration with autoLeave, applied, is left at once (thesis §4.3). */
  private maybeLeaveJoint(): void {
    const conf = this.tracker.conf;
    if (this.role !== 'leader' || !isJoint(conf) || !conf.autoLeave || this.pendingConfIndex > this.log.applied) return;
    // The driver's context (member addresses) carries over; empty if the joint configuration came from a snapshot.
    const e = this.appendEntry('conf', encodeConfEntry({ conf: leaveJoint(conf), context: this.tracker.context() }));
    this.pendingConfIndex = e.index;
  }

  /**
   * This leader is no longer a voter: it steps down, handing leadership to the voter most up to
   * date if one has the whole log (else the others elect one after an election timeout).
   */
  private stepDownRemoved(): void {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const [id, pr] of this.tracker.progress) {
      if (id !== this.id && this.tracker.isVoter(id) && pr.match > bestMatch) [best, bestMatch] = [id, pr.match];
    }
    if (best !== NONE && bestMatch === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: best });
    // Then tell everyone the removal committed: a follower that has not heard it is still in the
    // old configuration, where this node's vote is missing from every quorum, so electing the
    // next leader would need all the others (and take several timeouts on a lossy network).
    // After timeoutNow: a target that knew of a committed conf entry not yet applied would not campaign.
    this.broadcastHeartbeat(0);
    this.becomeFollower(this.term, NONE);
  }

  /** Only a voter campaigns, and not while committed configuration changes wait to be applied (they may remove it). */
  private promotable(): boolean {
    if (!this.tracker.isVoter(this.id)) return false;
    if (this.log.committed > this.log.applied) {
      for (const e of this.log.slice(Math.max(this.log.applied + 1, this.log.firstIndex()), this.log.committed + 1)) if (e.type === 'conf') return false;
    }
    return true;
  }

  // ---- roles --------------------------------------------------------------------------------

  private becomeFollower(term: number, leaderId: NodeId): void {
    this.reset(term);
    this.role = 'follower';
    this.leaderId = leaderId;
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  private becomePreCandidate(): void {
    // Unlike a candidate, keep term and vote: a failed pre-vote disturbs nobody.
    this.preVotes = new Map();
    this.leaderId = NONE;
    this.resetRandomizedElectionTimeout();
    this.role = 'preCandidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.leaderId = this.id;
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    this.tracker.resetProgress(this.log.lastIndex() + 1);
    // Entries of earlier terms may hold a configuration change: none is proposed before they apply.
    this.pendingConfIndex = this.log.lastIndex();
    const self = this.tracker.progress.get(this.id)!;
    self.maybeUpdate(this.log.stabled);
    self.becomeReplicate();
    // §5.4.2: entries of earlier terms commit only under an entry of this term.
    this.appendEntry('noop', EMPTY_DATA);
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
      this.votes = new Map();
      // What this node said in an earlier term, and has not yet sent, is dropped (as the network
      // may): an acknowledgement of entries that a later leader's append has since replaced, or a
      // vote never made durable, would otherwise leave after the Ready that no longer holds it.
      // (Pre-vote messages carry a future term and stay.)
      if (this.msgs.some((m) => m.term < term)) this.msgs = this.msgs.filter((m) => m.term >= term);
    }
    this.leaderId = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.preVotes = new Map();
    this.appendPending = false;
    this.reads = this.newReadQueue();
    this.readsAwaitingCommit = [];
    this.leadTransferee = NONE;
  }

  private newReadQueue(): ReadIndexQueue {
    return new ReadIndexQueue(this.id, (acks) => this.tracker.hasQuorum((id) => acks.has(id)));
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTick + this.rng.int(this.electionTick);
  }

  // ---- ticks --------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    // A node that may not campaign (a learner, or one that does not know yet it was promoted)
    // lets the count run on: restarting it would renew its lease on a leader that is gone, and
    // it would ignore the votes of the candidates that need it, every other timeout.
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.electionElapsed = 0;
      this.campaign(this.preVote ? 'preVote' : 'vote');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.tracker.quorumActive(this.id)) {
        this.becomeFollower(this.term, NONE);
        return;
      }
    }
    // A transfer not done within an election timeout is abandoned: proposals resume.
    if (this.leadTransferee !== NONE && ++this.transferElapsed >= this.electionTick) this.leadTransferee = NONE;
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.reads.newestCtx());
    }
    // A new commit index travels with the next append; a follower that got none since hears it
    // here, at most a tick late. Not at once: a commit-only append per follower per commit, and
    // its answer, would double the messages of a write and contend for the CPU with the reply.
    for (const [id, pr] of this.tracker.progress) {
      if (id !== this.id && pr.sentCommit < this.log.committed) this.maybeSendAppend(id, true);
    }
  }

  // ---- elections ----------------------------------------------------------------------------

  /** `transfer`: the leader asked for this election (timeoutNow), so voters that hear from it grant it anyway. */
  private campaign(kind: 'preVote' | 'vote', transfer = false): void {
    if (kind === 'preVote') this.becomePreCandidate();
    else this.becomeCandidate();
    // A pre-vote asks about the term we would campaign in, without entering it.
    const term = kind === 'preVote' ? this.term + 1 : this.term;
    const decided = kind === 'preVote' ? this.countPreVote(this.id, true) : this.countVote(this.id, true);
    if (decided) return;
    const context = transfer ? CAMPAIGN_TRANSFER : 0;
    for (const id of votersOf(this.tracker.conf)) {
      if (id === this.id) continue;
      this.send({ type: kind, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
    }
  }

  /** Records a pre-vote answer; returns true if it decided the round (and acted on it). */
  private countPreVote(from: NodeId, granted: boolean): boolean {
    this.preVotes.set(from, granted);
    const result = this.tracker.tally(this.preVotes);
    if (result === 'won') this.campaign('vote');
    else if (result === 'lost') this.becomeFollower(this.term, NONE);
    return result !== 'pending';
  }

  /** Records a vote for this node in the current term; returns true if it decided the election. */
  private countVote(from: NodeId, granted: boolean): boolean {
    this.votes.set(from, granted);
    const result = this.tracker.tally(this.votes);
    if (result === 'won') this.becomeLeader();
    else if (result === 'lost' && this.role === 'candidate') this.becomeFollower(this.term, NONE);
    return result !== 'pending';
  }

  private handleVote(m: Message): void {
    const respType: MessageType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.leaderId === NONE) || (m.type === 'preVote' && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A grant echoes the request's term, so a pre-candidate can count it without a term change.
      this.send({ type: respType, to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, reject: true });
    }
  }

  /** Check-quorum's other half: while a live leader is known, a vote request is a disruption. */
  private inLease(): boolean {
    return this.checkQuorum && this.leaderId !== NONE && this.electionElapsed < this.electionTick;
  }

  private respondToStaleTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap')) {
      // A stale leader cannot learn our term from votes we never send (pre-vote) or it ignores
      // (lease): tell it directly, so it steps down and this node can rejoin.
      this.send({ type: 'appResp', to: m.from });
    } else if (m.type === 'preVote') {
      // Reject with our term so a pre-candidate behind us catches up instead of retrying forever.
      this.send({ type: 'preVoteResp', to: m.from, reject: true });
    }
  }

  // ---- per-role message handling ------------------------------------------------------------

  private stepFollower(m: Message): void {
    if (m.type === 'timeoutNow') {
      // Only our leader hands leadership over; this election skips pre-vote (§3.10).
      if (m.from === this.leaderId && this.promotable()) this.campaign('vote', true);
      return;
    }
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
      this.electionElapsed = 0;
      this.leaderId = m.from;
      if (m.type === 'app') this.handleAppend(m);
      else if (m.type === 'heartbeat') this.handleHeartbeat(m);
      else this.handleSnapshot(m);
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        // A leader exists at our term (pre-candidates have not left it).
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        break;
      case 'preVoteResp':
        if (this.role === 'preCandidate') this.countPreVote(m.from, !m.reject);
        break;
      case 'voteResp':
        // Our own candidacy in this term, possibly answered after we fell back to pre-vote.
        if (m.term === this.term && this.vote === this.id) this.countVote(m.from, !m.reject);
        break;
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.tracker.progress.get(m.from);
    if (!pr || m.from === this.id) return;
    if (m.type === 'appResp') {
      pr.recentActive = true;
      this.handleAppendResponse(m, pr);
    } else if (m.type === 'heartbeatResp') {
      pr.recentActive = true;
      if (m.context !== 0) this.reads.ack(m.from, m.context);
      // The follower's log ends before what it once acknowledged: it lost its state (a learner's
      // wiped data dir, started again). Lowering match is safe (commit never goes back); probe from there.
      if (m.reject && m.index < pr.match) pr.resetTo(m.index);
      if (pr.state === 'probe') pr.probeSent = false;
      if (pr.match < this.log.lastIndex()) {
        // A full pipeline is not reopened here: a slow follower answers heartbeats while its
        // backlog is still arriving, and more data would only pile up in the transport. An empty
        // append asks whether the pipeline was lost instead: it travels behind the appends in
        // flight, so the follower rejects it only if they never arrived, and then we probe.
        if (pr.state === 'replicate' && pr.isPaused()) this.sendEmptyAppend(m.from, pr);
        else this.maybeSendAppend(m.from, true);
      }
    }
  }

  // ---- replication --------------------------------------------------------------------------

  private appendEntry(type: EntryType, data: Uint8Array): Entry {
    const e: Entry = { index: this.log.lastIndex() + 1, term: this.term, type, data };
    this.log.append([e]);
    this.appendPending = true;
    return e;
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index matches the leader (Leader Completeness).
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    // A leader sends at most what we acknowledged, so a commit past our log means we lost
    // entries we once acknowledged: commit nothing and tell the leader where our log ends.
    const lost = m.commit > this.log.lastIndex();
    if (!lost) this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', to: m.from, context: m.context, reject: lost, index: lost ? this.log.lastIndex() : 0 });
  }

  /** §7 and Figure 13. */
  private handleSnapshot(m: Message): void {
    const snap: SnapshotMeta = { index: m.index, term: m.logTerm };
    if (snap.index <= this.log.committed) {
      // Nothing new: we hold all of it already.
    } else if (this.log.matchTerm(snap.index, snap.term)) {
      // Rule 7: our log already has the snapshot's last entry; keep what follows it.
      this.log.commitTo(snap.index);
    } else {
      this.log.restore(snap);
      // The configuration as of the snapshot comes with it (an older sender's lacks it: keep ours).
      const conf = m.conf ?? this.tracker.conf;
      this.tracker.restored(snap.index, conf);
      this.snapshotToInstall = { ...snap, conf };
    }
    this.send({ type: 'appResp', to: m.from, index: this.log.committed });
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // The hint lets us skip every entry of a term the follower cannot hold.
      const hint = m.logTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe' || (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot)) pr.becomeReplicate();
    else pr.acked(m.index);
    this.maybeCommit();
    if (this.role !== 'leader') return;
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.tellTransferee(m.from);
    this.sendAppends(m.from, false);
  }

  /** Fills the follower's pipeline up to the in-flight cap. */
  private sendAppends(to: NodeId, sendIfEmpty: boolean): void {
    if (!this.maybeSendAppend(to, sendIfEmpty)) return;
    while (this.maybeSendAppend(to, false)) {
      // each call sends one message of at most maxMsgBytes
    }
  }

  /** Sends the follower the entries it lacks, if flow control allows; false if nothing was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.tracker.progress.get(to)!;
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    const last = this.log.lastIndex();
    const entries = pr.next <= last ? this.log.slice(pr.next, last + 1, this.maxMsgBytes) : NO_ENTRIES;
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    pr.sentCommit = this.log.committed;
    if (entries.length > 0 || pr.state === 'probe') pr.sent(prevIndex + entries.length, entryBytes(entries));
    return true;
  }

  /** An append of no entries at the follower's next index: answered, it tells where the follower's log ends. */
  private sendEmptyAppend(to: NodeId, pr: Progress): void {
    const prevTerm = this.log.term(pr.next - 1);
    if (prevTerm === undefined) {
      // We compacted what is in flight: if it was lost we could not send it again. Probe from
      // the follower's match (a snapshot, if that is compacted too) rather than wait forever.
      pr.becomeProbe();
      this.maybeSendAppend(to, true);
      return;
    }
    this.send({ type: 'app', to, index: pr.next - 1, logTerm: prevTerm, entries: NO_ENTRIES, commit: Math.min(this.log.committed, pr.match) });
  }

  /** §7: the follower needs entries we compacted; it gets our latest snapshot instead. */
  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.snapshot;
    if (!snap) throw new RaftInvariantError(`follower ${to} needs entry ${pr.next - 1}, compacted without a snapshot`);
    this.send({ type: 'snap', to, index: snap.index, logTerm: snap.term, commit: this.log.committed, conf: snap.conf });
    pr.becomeSnapshot(snap.index);
    return true;
  }

  private broadcastHeartbeat(context: number): void {
    for (const [id, pr] of this.tracker.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', to: id, commit, context });
      pr.sentCommit = Math.max(pr.sentCommit, commit);
    }
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** §5.4.2: advance the commit index only over an entry of the current term. */
  private maybeCommit(): void {
    const index = this.tracker.committed();
    if (index <= this.log.committed || this.log.term(index) !== this.term) return;
    this.log.commitTo(index);
    // The first commit of the term: reads held for it go first, so the queue stays in arrival order.
    for (const ctx of this.readsAwaitingCommit) this.reads.add(ctx, this.log.committed);
    this.readsAwaitingCommit = [];
  }

  /** `m` is always a fresh literal at the call site, so completing it in place is safe (and cheap). */
  private send(m: Partial<Message> & Pick<Message, 'type' | 'to'>): void {
    m.from = this.id;
    m.term ??= this.term;
    this.msgs.push(message(m as Parameters<typeof message>[0]));
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId;
}

/** Bytes an append message carries in entries, for flow-control tests. */
export function entryBytes(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += e.data.length + ENTRY_OVERHEAD;
  return n;
}
