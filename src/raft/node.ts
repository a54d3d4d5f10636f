import type { Clock, Timer } from '../clock.js';
import { snapshotDue, type SnapshotPolicy } from './snapshot-policy.js';
import type { ConfChange, ConfState } from './core/conf.js';
import { decodeConfEntry } from './core/conf-codec.js';
import { Raft, type MemberProgress, type RaftStatus } from './core/raft.js';
import { seededRng } from './core/rng.js';
import { NONE, type Entry, type Message, type NodeId, type Ready, type SnapshotMeta } from './core/types.js';
import type { ReadyHandler, ReplicatedLog } from './replicated-log.js';
import { Timings, type RaftObserver } from './observer.js';
import type { Storage } from './storage/storage.js';
import type { PeerAddress, Transport } from './transport/transport.js';

export type { RaftObserver } from './observer.js';

export interface RaftNodeOptions {
  id: NodeId;
  /**
   * The voters of a cluster being bootstrapped, this node included: the configuration before the
   * first entry. Absent: a node waiting to be added, which learns its configuration from the
   * leader. Either way, a snapshot's configuration, then each conf entry applied, replace it.
   */
  peers?: readonly NodeId[];
  storage: Storage;
  transport: Transport;
  clock: Clock;
  /** Seeds the election-timeout jitter. */
  seed: number;
  /** Base election timeout; each term draws one in [t, 2t). Default 300 ms: survives 10–50 ms disk stalls. */
  electionTimeoutMs?: number;
  /** Default 50 ms. */
  heartbeatMs?: number;
  /** Clock resolution. Default 10 ms. */
  tickMs?: number;
  /** Thesis §9.6 pre-vote and check-quorum; both on by default. */
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Where committed entries and read confirmations go. */
  handler: ReadyHandler;
  /**
   * Where the members are, as the state machine knows it now (it records each conf entry's
   * addresses when it applies it, and a snapshot's when it restores one): the transport's peers
   * follow it, at start and after each conf entry or snapshot applied. Without it they never change.
   */
  peerAddresses?: () => readonly PeerAddress[];
  /** The state machine's snapshots; without them the node never compacts and refuses installs. */
  snapshots?: SnapshotStore;
  /** When to take a snapshot and compact the log; never if absent (snapshot() still works). */
  snapshotPolicy?: SnapshotPolicy;
  /** Hears what the node does: logs, metrics and the simulator's checks. */
  observer?: RaftObserver;
  /** Called once if the node hits an error it cannot continue after (a failed disk write); the node has stopped. */
  onFatal: (error: unknown) => void;
}

/** Where the state machine keeps its snapshots. */
export interface SnapshotStore {
  /**
   * Captures the state machine as it is now (all applied entries) and makes it durable, with
   * `confAt(index)` of the captured index: the configuration in force as of it (call it at once,
   * while capturing: it answers for entries applied so far). Resolves with what the snapshot
   * covers. The node compacts its log only then.
   */
  take(confAt: (index: number) => ConfState): Promise<SnapshotMeta>;
  /** The bytes of this node's snapshot at `meta`, to stream to a follower. */
  read(meta: SnapshotMeta): Promise<Uint8Array>;
  /**
   * A snapshot received from the leader: make it durable and restore the state machine from it.
   * `meta.conf` is the configuration as of it, which the node adopted. Resolves once durable;
   * the node records it in its log only then.
   */
  install(meta: SnapshotMeta, data: Uint8Array): Promise<void>;
}

/**
 * Why a configuration change or a leadership transfer did not (or may not) happen. `refused`:
 * the core refused it and nothing changed; `outcomeUnknown`: this node stopped leading (or
 * stopped) before the change was applied here, and it may still take effect under the next
 * leader; `abandoned`: no other node took over within the time allowed.
 */
export class MembershipError extends Error {
  override name = 'MembershipError';
  constructor(
    readonly kind: 'refused' | 'outcomeUnknown' | 'abandoned',
    message: string,
    /** The leader this node knows of, NONE if none. */
    readonly leaderId: NodeId,
  ) {
    super(message);
  }
}

/** A configuration change applied on this node: the entry's index and the configuration it put in force. */
export interface ConfChangeDone {
  index: number;
  term: number;
  conf: ConfState;
}

/** A member as the leader sees it, and whether it was heard from within the last election timeout. */
export type MemberState = MemberProgress & { active: boolean };


/**
 * A Raft core made into a running node: it owns the core, a Storage, a Transport and a clock,
 * and runs the Ready loop: send what depends on nothing unflushed → write → apply what is
 * committed → flush → send the rest → advance. One Ready is in flight at a time; whatever arrives
 * while its write is being flushed waits for the next one, so a busy node makes one flush per
 * round of messages (group commit).
 */
export class RaftNode implements ReplicatedLog {
  readonly id: NodeId;
  private readonly raft: Raft;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly observer: RaftObserver;
  private readonly ticker: Timer;
  private readonly handler: ReadyHandler;
  private readonly snapshots: SnapshotStore | undefined;
  private readonly policy: SnapshotPolicy | undefined;
  private readonly onFatal: (error: unknown) => void;
  private readonly peerAddresses: (() => readonly PeerAddress[]) | undefined;
  private readonly electionTimeoutMs: number;
  /** When each peer was last heard from (any message), for members(). */
  private readonly heard = new Map<NodeId, number>();
  /** Configuration changes proposed here, by index, until applied here or leadership is lost. */
  private readonly confWaits = new Map<number, { term: number; done: (e: MembershipError | undefined) => void }>();
  /** Conditions waited for (a transfer's outcome): checked after each tick and Ready, dropped once they return true. */
  private readonly watchers = new Set<() => boolean>();
  /** The term and vote last made durable: a Ready that changes neither, and adds no entries, needs no sync. */
  private durable: { term: number; vote: NodeId };
  /** The latest snapshot received from the leader, until the core hands it back to install. */
  private incoming: { m: Message; data: Uint8Array } | undefined;
  /** The snapshot being taken, if any: one at a time. */
  private taking: Promise<SnapshotMeta> | undefined;
  /** Applied since the last snapshot, for the policy. */
  private sinceSnapshot = { entries: 0, bytes: 0 };
  /** Entries the handler has applied that the core has not been told of yet (advance() follows the sync). */
  private unadvanced: readonly Entry[] = [];
  /** The term on disk: `durable` runs ahead of it while the Ready that changed it is being flushed. */
  private syncedTerm: number;
  /** Round trips and ReadIndex rounds, timed for the observer. */
  private readonly timings: Timings;
  /** The leader last reported to the observer's leaderChanged. */
  private knownLeader: NodeId = NONE;
  private scheduled = false;
  private running = false;
  private stopped = false;

  constructor(opts: RaftNodeOptions) {
    const tickMs = opts.tickMs ?? 10;
    const electionTick = Math.max(2, Math.round((opts.electionTimeoutMs ?? 300) / tickMs));
    const heartbeatTick = Math.max(1, Math.round((opts.heartbeatMs ?? 50) / tickMs));
    const { hardState, entries, snapshot } = opts.storage.load();
    this.id = opts.id;
    this.storage = opts.storage;
    this.transport = opts.transport;
    this.clock = opts.clock;
    this.observer = opts.observer ?? {};
    this.handler = opts.handler;
    this.snapshots = opts.snapshots;
    this.policy = opts.snapshotPolicy;
    this.onFatal = opts.onFatal;
    this.peerAddresses = opts.peerAddresses;
    this.electionTimeoutMs = electionTick * tickMs;
    this.timings = new Timings(this.clock, this.observer, this.electionTimeoutMs);
    this.durable = { term: hardState.term, vote: hardState.vote };
    this.syncedTerm = hardState.term;
    this.raft = new Raft({
      id: opts.id,
      peers: opts.peers,
      electionTick,
      heartbeatTick,
      rng: seededRng(opts.seed),
      preVote: opts.preVote,
      checkQuorum: opts.checkQuorum,
      hardState,
      entries,
      snapshot,
    });
    this.transport.onMessage((m) => {
      if (this.stopped) return;
      this.heard.set(m.from, this.clock.now());
      this.timings.received(m);
      this.step(m);
      this.sendHeartbeats();
    });
    this.transport.onSnapshot((m, data) => {
      if (this.stopped || !this.snapshots) return;
      this.incoming = { m, data };
      this.step(m);
    });
    this.ticker = this.clock.setInterval(() => {
      const leading = this.raft.role === 'leader';
      this.raft.tick();
      // A leader steps down on a tick only for check-quorum: say whom it had not heard from.
      if (leading && this.raft.role !== 'leader') this.observer.quorumLost?.(this.silences());
      this.sendHeartbeats();
      this.schedule();
      this.checkWatchers();
    }, tickMs);
    this.syncPeers();
  }

  private step(m: Message): void {
    const refused = this.raft.step(m);
    if (refused) this.observer.refused?.(m, refused.kind, refused.detail);
    this.schedule();
  }

  propose(data: Uint8Array): { index: number; term: number } | undefined {
    if (this.stopped) return undefined;
    const r = this.raft.propose(data);
    if (!r.ok) return undefined;
    this.schedule();
    return { index: r.index, term: r.term };
  }

  /**
   * Starts a ReadIndex round (thesis §6.4); the handler's readConfirmed(ctx) follows once a
   * majority confirms this leadership, or leadershipLost() if it ends first.
   */
  readIndex(ctx: number): boolean {
    if (this.stopped || !this.raft.readIndex(ctx)) return false;
    this.timings.readStarted(ctx);
    this.schedule();
    return true;
  }

  /**
   * Takes a snapshot of the state machine now (or joins the one being taken) and, once it is
   * durable, compacts the log up to it, keeping the policy's trailing window.
   */
  snapshot(): Promise<SnapshotMeta> {
    const snapshots = this.snapshots;
    if (!snapshots) return Promise.reject(new Error(`node ${this.id} keeps no snapshots`));
    const started = this.clock.now();
    this.taking ??= snapshots
      .take((index) => this.confAt(index))
      .then((meta) => {
        this.compact(meta, started);
        return meta;
      })
      .finally(() => (this.taking = undefined));
    return this.taking;
  }

  /**
   * Proposes a configuration change (core: Raft.proposeConfChange); `context` travels with the
   * entry. Resolves once the entry is applied on this node; rejects with a MembershipError if the
   * core refuses it, or if this node stops leading first.
   */
  proposeConfChange(cc: ConfChange, context: Uint8Array): Promise<ConfChangeDone> {
    if (this.stopped) return Promise.reject(new MembershipError('refused', `node ${this.id} is stopping`, NONE));
    const r = this.raft.proposeConfChange(cc, context);
    if (!r.ok) return Promise.reject(new MembershipError('refused', r.reason, r.leaderId));
    this.schedule();
    return new Promise((resolve, reject) => {
      this.confWaits.set(r.index, { term: r.term, done: (e) => (e ? reject(e) : resolve({ index: r.index, term: r.term, conf: r.conf })) });
    });
  }

  /**
   * Hands leadership to voter `to` (thesis §3.10). Resolves once this node hears of another
   * leader; rejects with a MembershipError if the core refuses, or if no other leader is known
   * within `timeoutMs` (the core abandons the transfer after an election timeout, and leads on).
   */
  transferLeadership(to: NodeId, timeoutMs: number): Promise<{ leaderId: NodeId; term: number }> {
    if (this.stopped) return Promise.reject(new MembershipError('refused', `node ${this.id} is stopping`, NONE));
    const r = this.raft.transferLeadership(to);
    if (!r.ok) return Promise.reject(new MembershipError('refused', r.reason, r.leaderId));
    this.schedule();
    const deadline = this.clock.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      this.watchers.add(() => {
        const core = this.raft;
        const abandoned = (why: string): true => (reject(new MembershipError('abandoned', `the transfer to node ${to} was abandoned: ${why}`, core.leaderId)), true);
        if (core.leaderId !== NONE && core.leaderId !== this.id) return (resolve({ leaderId: core.leaderId, term: core.term }), true);
        if (this.stopped) return abandoned(`node ${this.id} is stopping`);
        // The core gives up after an election timeout, but a target told to campaign just before
        // may still win (its vote requests wait for its disk): only the deadline decides.
        if (this.clock.now() <= deadline) return false;
        if (core.role === 'leader') return abandoned(`it did not take over within ${timeoutMs} ms (is it running and reachable?)`);
        return abandoned(`no leader was known within ${timeoutMs} ms`);
      });
    });
  }

  /**
   * Resolves once this node knows a leader that is not handing leadership over (after a
   * transfer, the new one), or it stops, or after `timeoutMs`.
   */
  awaitLeader(timeoutMs: number): Promise<void> {
    return this.waitUntil(() => this.raft.leaderId !== NONE && this.raft.status().leadTransferee === NONE, timeoutMs);
  }

  /**
   * Leader: resolves once it has applied an entry of its own term (its no-op), and so whatever
   * earlier leaders left in its log: only then does the core take a configuration change (one
   * among those entries would be pending). It waits, too, until the core has taken in every conf
   * entry the state machine has applied (at advance(), after a sync): until then the member
   * table is a change ahead of the core's configuration, and a change judged on both would see
   * them disagree. Also resolves once it stops leading, or stops, or after `timeoutMs`.
   */
  awaitTermApplied(timeoutMs: number): Promise<void> {
    const core = this.raft;
    return this.waitUntil(
      () => core.role !== 'leader' || (core.log.term(core.log.applied) === core.term && !this.unadvanced.some((e) => e.type === 'conf')),
      timeoutMs,
    );
  }

  /** Resolves once the core has applied entry `index` (or the node stops, or after `timeoutMs`). */
  awaitApplied(index: number, timeoutMs: number): Promise<void> {
    return this.waitUntil(() => this.raft.log.applied >= index, timeoutMs);
  }

  /** Resolves once `done()` holds (looked at after each tick and Ready), or the node stops, or after `timeoutMs`. */
  private waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = this.clock.now() + timeoutMs;
    const over = (): boolean => this.stopped || this.clock.now() >= deadline || done();
    if (over()) return Promise.resolve();
    return new Promise((resolve) => this.watchers.add(() => over() && (resolve(), true)));
  }

  /**
   * Whether this node heard from a majority of the voters (of each half of a joint configuration),
   * itself counted, within the last election timeout. On a leader that has lost its quorum this
   * turns false an election timeout after the last answer, where check-quorum, which looks once per
   * election timeout, may take up to two to step down.
   */
  quorumHeard(): boolean {
    const conf = this.raft.status().conf;
    const now = this.clock.now();
    const heard = (id: NodeId): boolean => id === this.id || now - (this.heard.get(id) ?? -Infinity) <= this.electionTimeoutMs;
    const majority = (ids: readonly NodeId[]): boolean => ids.length === 0 || ids.filter(heard).length * 2 > ids.length;
    return majority(conf.voters) && majority(conf.votersOutgoing ?? []);
  }

  /** Leader: each member's replication progress and activity; otherwise empty. */
  members(): MemberState[] {
    const now = this.clock.now();
    return this.raft.members().map((m) => ({ ...m, active: m.recentActive || now - (this.heard.get(m.id) ?? -Infinity) <= this.electionTimeoutMs }));
  }

  /** The configuration in force here (as of the last entry the core knows applied). */
  get conf(): ConfState {
    return this.raft.status().conf;
  }

  leaderId(): NodeId {
    return this.raft.leaderId;
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  /** Stops ticking and handling messages, then closes the transport and the storage. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ticker.cancel();
    this.failConfWaits(`node ${this.id} is stopping`);
    this.checkWatchers();
    await this.transport.close();
    this.storage.close();
  }

  /**
   * The configuration in force as of applied entry `index` (a state captured from the handler
   * now: a snapshot's, a backup's). The core learns that the handler applied a conf entry only at
   * advance(), after the sync that follows apply(): a state captured in between holds entries the
   * core's confAt() does not count yet, so they count here.
   */
  confAt(index: number): ConfState {
    for (let i = this.unadvanced.length - 1; i >= 0; i--) {
      const e = this.unadvanced[i]!;
      if (e.type !== 'conf' || e.index > index) continue;
      const d = decodeConfEntry(e.data);
      if (d.ok) return d.entry.conf; // (one that does not decode stops the core at advance())
    }
    return this.raft.confAt(index);
  }

  /** A durable snapshot covers `meta` (an applied entry): the log may forget what it covers. */
  private compact(taken: SnapshotMeta, started: number): void {
    this.sinceSnapshot = { entries: 0, bytes: 0 };
    const retain = this.policy?.retain ?? 0;
    if (this.stopped || !this.raft.compact(taken, retain)) return;
    // The core has applied up to the snapshot (compact() checks it), so its confAt() is exact:
    // the configuration a restart from this snapshot must find again.
    const meta: SnapshotMeta = { index: taken.index, term: taken.term, conf: this.raft.confAt(taken.index) };
    this.storage.compact(meta, Math.max(meta.index - retain, 0));
    this.observer.snapshotTaken?.(meta, this.clock.now() - started);
  }

  /** After a Ready is done: a snapshot if the policy says one is due. */
  private maybeSnapshot(): void {
    const p = this.policy;
    if (!p || this.taking || this.stopped) return;
    if (snapshotDue(p, this.sinceSnapshot)) {
      this.snapshot().catch((e: unknown) => this.observer.snapshotFailed?.('taking a snapshot', e));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    this.clock.defer(() => {
      this.scheduled = false;
      if (this.stopped || this.running) return;
      this.running = true;
      this.processReadies()
        .catch((e: unknown) => this.fail(e))
        .finally(() => {
          this.running = false;
          if (this.raft.hasReady()) this.schedule();
        });
    });
  }

  private async processReadies(): Promise<void> {
    while (!this.stopped && this.raft.hasReady()) {
      const rd = this.raft.ready();
      this.observer.ready?.(rd, this.raft);
      if (rd.snapshot) await this.install(rd.snapshot);
      // A leader's appends and heartbeats depend on nothing unsynced (its term became durable
      // before it asked for votes), so they leave now and the followers' disk writes overlap
      // ours (thesis §10.2.1); the leader counts its own copy only after advance(), once durable.
      // Everything else (votes, acknowledgements) waits for the sync: persist before speaking.
      const early = rd.messages.filter(isLeaderMessage);
      const late = early.length === rd.messages.length ? [] : rd.messages.filter((m) => !isLeaderMessage(m));
      if (early.length > 0) {
        for (const m of early) this.send(m);
        await Promise.resolve(); // the transport writes them now, ahead of our disk write
        if (this.stopped) return;
      }
      this.storage.save(rd.hardState, rd.entries);
      // Committed entries are durable on a majority already (the leader counted its own copy
      // only once durable), so clients get their answers without waiting for this flush.
      this.unadvanced = rd.committedEntries;
      this.apply(rd.committedEntries);
      for (const rs of rd.readStates) this.handler.readConfirmed(rs);
      this.timings.readsConfirmed(rd);
      if (rd.softState && rd.softState.role !== 'leader') {
        this.handler.leadershipLost(rd.softState.leaderId);
        this.failConfWaits(`node ${this.id} stopped leading`);
      }
      if (this.needsSync(rd)) await this.sync(rd.entries.length);
      if (this.stopped) return;
      this.syncedTerm = this.durable.term;
      for (const m of late) this.send(m);
      this.raft.advance(rd);
      this.unadvanced = [];
      if (rd.snapshot || rd.committedEntries.some((e) => e.type === 'conf')) this.syncPeers();
      if (rd.softState) this.roleChanged();
      this.maybeSnapshot();
      this.checkWatchers();
    }
  }

  /** The storage's flush, timed for the observer (a clock read each side: one per Ready, not per entry). */
  private async sync(entries: number): Promise<void> {
    const synced = this.observer.synced;
    if (!synced) return this.storage.sync();
    const started = this.clock.now();
    await this.storage.sync();
    synced(this.clock.now() - started, entries);
  }

  /** How long ago each other voter was last heard from (ms; Infinity: never). */
  private silences(): Map<NodeId, number> {
    const now = this.clock.now();
    const conf = this.raft.status().conf;
    const voters = new Set([...conf.voters, ...(conf.votersOutgoing ?? [])]);
    voters.delete(this.id);
    return new Map([...voters].map((id) => [id, now - (this.heard.get(id) ?? -Infinity)]));
  }

  private roleChanged(): void {
    const s = this.raft.status();
    this.observer.roleChanged?.(s);
    if (s.leaderId === this.knownLeader) return;
    this.knownLeader = s.leaderId;
    this.observer.leaderChanged?.(s.leaderId, s.term);
  }

  /** The transport's peers follow the members the state machine knows of. */
  private syncPeers(): void {
    const peers = this.peerAddresses?.();
    if (peers) this.transport.setPeers(peers);
  }

  private checkWatchers(): void {
    for (const w of this.watchers) if (w()) this.watchers.delete(w);
  }

  /** Changes proposed here that are not applied yet may still be, under another leader: their outcome is unknown. */
  private failConfWaits(why: string): void {
    if (this.confWaits.size === 0) return;
    const e = new MembershipError('outcomeUnknown', `${why} before the change was applied here; it may still take effect`, this.raft.leaderId);
    for (const w of this.confWaits.values()) w.done(e);
    this.confWaits.clear();
  }

  private apply(entries: readonly Entry[]): void {
    const applied = this.observer.applied;
    for (const e of entries) {
      applied?.(e);
      this.handler.applied(e);
      this.sinceSnapshot.bytes += e.data.length;
      const w = this.confWaits.get(e.index);
      if (!w) continue;
      this.confWaits.delete(e.index);
      // Another leader's entry took its index: this change was lost with our leadership.
      w.done(e.term === w.term ? undefined : new MembershipError('refused', `entry ${e.index} was replaced by another leader's; the change did not take effect`, this.raft.leaderId));
    }
    this.sinceSnapshot.entries += entries.length;
  }

  /** New entries, or a new term or vote, must be durable before the messages that depend on them; a commit index need not. */
  private needsSync(rd: Ready): boolean {
    const hs = rd.hardState;
    const changed = hs !== undefined && (hs.term !== this.durable.term || hs.vote !== this.durable.vote);
    if (changed) this.durable = { term: hs.term, vote: hs.vote };
    return changed || rd.entries.length > 0;
  }

  /**
   * While a Ready waits on the disk, heartbeats and their answers go at once instead of after
   * the flush: a slow fsync on the leader (or on a quorum of followers) must not look like a dead
   * node and cost an election (heartbeats are never starved by client work).
   */
  private sendHeartbeats(): void {
    if (!this.running || this.stopped) return;
    for (const m of this.raft.takeHeartbeats(this.syncedTerm)) this.send(m);
  }

  private send(m: Message): void {
    this.timings.sent(m);
    if (m.type === 'snap') void this.sendSnapshot(m);
    else this.transport.send(m);
  }

  /** Streams our snapshot to a follower beside the snap message, and tells the core how it went. */
  private async sendSnapshot(m: Message): Promise<void> {
    let ok = false;
    try {
      if (!this.snapshots) throw new Error('this node keeps no snapshots');
      const data = await this.snapshots.read({ index: m.index, term: m.logTerm });
      // Reading took a while: a node that moved on to a later term meanwhile no longer speaks for this one.
      if (this.raft.term !== m.term) throw new Error(`the term moved on from ${m.term} to ${this.raft.term}`);
      await this.transport.sendSnapshot(m, data);
      ok = true;
      this.observer.snapshotSent?.(m.to, { index: m.index, term: m.logTerm }, data.length);
    } catch (e) {
      this.observer.snapshotFailed?.(`sending snapshot ${m.index} to node ${m.to}`, e);
    }
    if (this.stopped) return;
    this.raft.reportSnapshot(m.to, ok);
    this.schedule();
  }

  /**
   * The core accepted a snapshot from the leader: durable first, then it replaces our log.
   * `meta.conf`, the configuration as of it, goes to disk with it (the core always sets it).
   */
  private async install(meta: SnapshotMeta): Promise<void> {
    const got = this.incoming;
    if (!this.snapshots || !got || got.m.index !== meta.index || got.m.logTerm !== meta.term) {
      throw new Error(`node ${this.id}: must install snapshot ${meta.index}/${meta.term}, but holds no such snapshot`);
    }
    this.incoming = undefined;
    await this.snapshots.install(meta, got.data);
    if (this.stopped) return;
    this.storage.installSnapshot(meta);
    this.sinceSnapshot = { entries: 0, bytes: 0 };
    this.observer.snapshotInstalled?.(meta, got.data.length);
  }

  /** A failed disk write leaves the disk's state unknown: stop rather than risk acting on it. */
  private fail(e: unknown): void {
    if (this.stopped) return;
    this.observer.fatal?.(e);
    void this.stop().catch(() => undefined);
    this.onFatal(e);
  }
}

/**
 * Messages only a leader sends. They depend on nothing the leader has not made durable: its term
 * was durable before it asked for votes, and timeoutNow goes to a follower that holds the whole
 * log already (held back behind a slow flush, it would eat into the transfer's election timeout).
 */
function isLeaderMessage(m: Message): boolean {
  return m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap' || m.type === 'timeoutNow';
}
