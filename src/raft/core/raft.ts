import { refusal, type Refusal } from './acceptance.js';
import { ENTRY_OVERHEAD, RaftInvariantError, RaftLog } from './log.js';
import { Progress } from './progress.js';
import { majorityIndex, tallyVotes } from './quorum.js';
import { ReadIndexQueue } from './read-index.js';
import {
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
  /** Every voting member, this node included. */
  peers: readonly NodeId[];
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
  /**
   * This node lost its state (an empty data directory rejoining its cluster): it may have voted
   * in terms it no longer remembers, and entries may have been committed with its lost copy. It
   * counts as having voted for each leader that contacts it in that leader's term, and neither
   * campaigns nor grants votes until it holds an entry committed in the current leader's term.
   */
  joining?: boolean;
  /** Durable state to resume from after a restart: the latest snapshot, and the log after it. */
  hardState?: HardState;
  entries?: Entry[];
  snapshot?: SnapshotMeta;
}

export type ProposeResult = { ok: true; index: number; term: number } | { ok: false; leaderId: NodeId };

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

  private readonly peers: readonly NodeId[];
  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly rng: Rng;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxMsgBytes: number;
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;

  private progress = new Map<NodeId, Progress>();
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
  private joining: boolean;
  private stepRole: (m: Message) => void = this.stepFollower;
  private tickRole: () => void = this.tickElection;

  constructor(cfg: RaftConfig) {
    if (!cfg.peers.includes(cfg.id)) throw new RangeError(`node ${cfg.id} is not among peers ${cfg.peers.join(',')}`);
    if (cfg.heartbeatTick <= 0 || cfg.electionTick <= cfg.heartbeatTick) {
      throw new RangeError(`need 0 < heartbeatTick (${cfg.heartbeatTick}) < electionTick (${cfg.electionTick})`);
    }
    this.id = cfg.id;
    this.peers = [...cfg.peers];
    this.electionTick = cfg.electionTick;
    this.heartbeatTick = cfg.heartbeatTick;
    this.rng = cfg.rng;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxMsgBytes = cfg.maxMsgBytes ?? 1024 * 1024;
    this.maxInflight = cfg.maxInflight ?? 256;
    this.maxInflightBytes = cfg.maxInflightBytes ?? 8 * 1024 * 1024;
    this.joining = cfg.joining ?? false;
    const hs = cfg.hardState ?? { term: 0, vote: NONE, commit: 0 };
    this.log = new RaftLog(cfg.entries ?? [], hs.commit, cfg.snapshot);
    this.snapshot = cfg.snapshot;
    this.term = hs.term;
    this.vote = hs.vote;
    this.prevHardState = hs;
    this.reads = new ReadIndexQueue(this.id, this.peers.length);
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
    const e = this.appendEntry('normal', data);
    return { ok: true, index: e.index, term: e.term };
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
    this.snapshot = snapshot;
    this.log.compact(Math.max(snapshot.index - retain, 0));
    return true;
  }

  /** The driver's word on a snapshot it was sending to `to`: a failure makes the leader try again later. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.role === 'leader' ? this.progress.get(to) : undefined;
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
      { id: this.id, peers: this.peers, term: this.term, role: this.role, leaderId: this.leaderId, joining: this.joining, lastIndex: this.log.lastIndex() },
      m,
    );
    if (refused) return refused;
    if (m.term > this.term) {
      if ((m.type === 'vote' || m.type === 'preVote') && this.inLease()) return undefined;
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
    const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
    if (this.joining && fromLeader && this.vote === NONE) this.vote = m.from;
    if (m.type === 'vote' || m.type === 'preVote') this.handleVote(m);
    else this.stepRole(m);
    // Joined once we hold an entry the leader committed in its own term: every entry committed
    // before (some perhaps with our lost copy) precedes it, so our log has them all again.
    if (this.joining && fromLeader && this.log.committed > 0 && this.log.term(this.log.committed) === this.term) {
      this.joining = false;
    }
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
        for (const id of this.peers) if (id !== this.id) this.sendAppends(id, false);
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
        this.progress.get(this.id)!.maybeUpdate(this.log.stabled);
        this.maybeCommit();
      }
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) this.log.appliedTo(lastApplied.index);
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
    };
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
    const next = this.log.lastIndex() + 1;
    this.progress = new Map(this.peers.map((id) => [id, new Progress(next, this.maxInflight, this.maxInflightBytes)]));
    const self = this.progress.get(this.id)!;
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
    this.reads = new ReadIndexQueue(this.id, this.peers.length);
    this.readsAwaitingCommit = [];
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTick + this.rng.int(this.electionTick);
  }

  // ---- ticks --------------------------------------------------------------------------------

  private tickElection(): void {
    if (this.joining) return;
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.preVote ? 'preVote' : 'vote');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.reads.newestCtx());
    }
    // A new commit index travels with the next append; a follower that got none since hears it
    // here, at most a tick late. Not at once: a commit-only append per follower per commit, and
    // its answer, would double the messages of a write and contend for the CPU with the reply.
    for (const [id, pr] of this.progress) {
      if (id !== this.id && pr.sentCommit < this.log.committed) this.maybeSendAppend(id, true);
    }
  }

  // ---- elections ----------------------------------------------------------------------------

  private campaign(kind: 'preVote' | 'vote'): void {
    if (kind === 'preVote') this.becomePreCandidate();
    else this.becomeCandidate();
    // A pre-vote asks about the term we would campaign in, without entering it.
    const term = kind === 'preVote' ? this.term + 1 : this.term;
    const decided = kind === 'preVote' ? this.countPreVote(this.id, true) : this.countVote(this.id, true);
    if (decided) return;
    for (const id of this.peers) {
      if (id === this.id) continue;
      this.send({ type: kind, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm() });
    }
  }

  /** Records a pre-vote answer; returns true if it decided the round (and acted on it). */
  private countPreVote(from: NodeId, granted: boolean): boolean {
    this.preVotes.set(from, granted);
    const result = tallyVotes(this.peers, this.preVotes);
    if (result === 'won') this.campaign('vote');
    else if (result === 'lost') this.becomeFollower(this.term, NONE);
    return result !== 'pending';
  }

  /** Records a vote for this node in the current term; returns true if it decided the election. */
  private countVote(from: NodeId, granted: boolean): boolean {
    this.votes.set(from, granted);
    const result = tallyVotes(this.peers, this.votes);
    if (result === 'won') this.becomeLeader();
    else if (result === 'lost' && this.role === 'candidate') this.becomeFollower(this.term, NONE);
    return result !== 'pending';
  }

  private handleVote(m: Message): void {
    const respType: MessageType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote =
      !this.joining &&
      (this.vote === m.from ||
        (this.vote === NONE && this.leaderId === NONE) ||
        (m.type === 'preVote' && m.term > this.term));
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

  private quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.recentActive) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active > this.peers.length / 2;
  }

  // ---- per-role message handling ------------------------------------------------------------

  private stepFollower(m: Message): void {
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
    const pr = this.progress.get(m.from);
    if (!pr || m.from === this.id) return;
    if (m.type === 'appResp') {
      pr.recentActive = true;
      this.handleAppendResponse(m, pr);
    } else if (m.type === 'heartbeatResp') {
      pr.recentActive = true;
      if (m.context !== 0) this.reads.ack(m.from, m.context);
      // The follower's log ends before what it once acknowledged: it lost its state (a wiped
      // data dir rejoining). Lowering match is safe (commit never goes back); probe from there.
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
      this.snapshotToInstall = snap;
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
    const pr = this.progress.get(to)!;
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
    this.send({ type: 'snap', to, index: snap.index, logTerm: snap.term, commit: this.log.committed });
    pr.becomeSnapshot(snap.index);
    return true;
  }

  private broadcastHeartbeat(context: number): void {
    for (const [id, pr] of this.progress) {
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
    const index = majorityIndex([...this.progress.values()].map((pr) => pr.match));
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
