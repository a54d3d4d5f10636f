import { isDeepStrictEqual } from 'node:util';
import { Raft } from '../../src/raft/core/raft.js';
import { seededRng } from '../../src/raft/core/rng.js';
import { isResponse, type Entry, type Message, type NodeId, type Ready, type SnapshotMeta } from '../../src/raft/core/types.js';
import { MemoryStorage } from '../../src/raft/storage/storage.js';
import { EventQueue } from './event-queue.js';
import type { LabCluster } from './harness.js';
import type { ReadyHandler, ReplicatedLog } from '../../src/raft/replicated-log.js';

/** A broken promise of the protocol or of a scenario; the run that raised it is a replayable bug report. */
export class SimFailure extends Error {
  override name = 'SimFailure';
}

export interface SimOptions {
  nodes: number;
  seed: number;
  /** Virtual milliseconds per core tick. */
  tickMs?: number;
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  maxInflight?: number;
  maxMsgBytes?: number;
  /**
   * A state machine service per node incarnation (the KV store in the KV scenarios): it gets
   * every applied entry, read confirmation and loss of leadership, as on a real node.
   */
  service?: (node: SimNode, log: ReplicatedLog, sim: SimCluster) => SimService;
  /** When nodes snapshot their state machines and compact their logs; never if absent. */
  snapshots?: SnapshotPolicy;
}

/**
 * When a node takes a snapshot, checked after every Ready that applied entries (as a real driver
 * does between Readies). The snapshot covers the last entry applied, and holds every state
 * machine the node runs: the lab's list of applied commands, and the service's state if any.
 */
export type SnapshotPolicy = {
  /** Entries kept behind the snapshot, in the log and in storage, for followers a little behind (default 0). */
  retain?: number;
  /**
   * Writing a snapshot takes up to this many virtual ms (drawn per snapshot; default 0: at once).
   * Meanwhile the node goes on, takes no other snapshot, and keeps its log; a crash loses the
   * snapshot, and one installed from the leader supersedes it. kv-server writes in the background too.
   */
  writeMs?: number;
} & (
  /** Like the lab's 2D applier: when the applied index passes a multiple of `everyEntries`. */
  | { everyEntries: number }
  /** Like the lab's maxraftstate (3B), and kv-server: when the stored log holds `maxLogBytes` or more. */
  | { maxLogBytes: number }
);

/** A service's state as of one applied entry; immutable, so the simulator keeps it as the snapshot's bytes. */
export interface ServiceSnapshot {
  readonly meta: SnapshotMeta;
}

/**
 * A state machine service on one node incarnation. Under a snapshot policy it must capture its
 * state as of its last applied entry, and restore a captured state (from the leader, or from its
 * own snapshot at restart), as KvStore does.
 */
export interface SimService extends ReadyHandler {
  capture?(): ServiceSnapshot;
  restore?(snapshot: ServiceSnapshot): void;
}

/** Network behaviour; the defaults are a perfect network with 1 ms latency. */
export interface NetworkFaults {
  /** false = the lab's unreliable net: 0–26 ms latency, 10% of requests and 10% of replies dropped. */
  reliable: boolean;
  /** The lab's long reordering: about two thirds of replies delayed 200–2200 ms. */
  longReordering: boolean;
  /** Probability that a delivered message is delivered twice. */
  duplicateRate: number;
}

type SimEvent =
  | { kind: 'tick'; node: SimNode; incarnation: number }
  | { kind: 'deliver'; msg: Message; incarnation: number }
  | { kind: 'call'; fn: () => void };

export const NOOP = '<noop>';
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MESSAGE_HEADER_BYTES = 48;
const ENTRY_HEADER_BYTES = 16;
const MAX_EVENTS = 20_000_000;
const TRACE_LENGTH = 300;
const SERVICE_STATES_KEPT = 64;

/** A node's snapshot: what its state machines held after applying the entry at meta. */
export interface SimSnapshot {
  readonly meta: SnapshotMeta;
  /**
   * The lab's state machine: the commands applied up to meta.index, by index. It may be the
   * node's own growing list (entries past meta.index are not part of the snapshot): what a node
   * applied at an index never changes, as State Machine Safety is checked on every apply.
   */
  readonly applied: readonly string[];
  /** The service's state, if the node runs one. */
  readonly service?: ServiceSnapshot;
}

/** One simulated server: a core that crashes and restarts, over storage that survives. */
export class SimNode {
  raft: Raft | undefined;
  incarnation = 0;
  connected = true;
  group = 0;
  readonly storage = new MemoryStorage();
  /** Every command this node has applied, by index (kept across restarts, like the lab's logs). */
  applied: string[] = [];
  /** This incarnation's state machine service, if the cluster has one. */
  service: SimService | undefined;
  /** The node's snapshot on "disk", beside its storage's record of it. Survives crashes. */
  snapshot: SimSnapshot | undefined;
  /** A snapshot received with a snap message, waiting for the core to hand it back in a Ready. */
  incoming: SimSnapshot | undefined;
  /** Snapshots received from a leader and installed, over all incarnations. */
  snapshotsInstalled = 0;
  /** This incarnation is writing a snapshot (SnapshotPolicy.writeMs). */
  writingSnapshot = false;
  lastApplied = 0;
  constructor(readonly id: NodeId) {}
}

/**
 * N Raft cores on a virtual clock, a faulty network and crash-surviving storage, driven by one
 * seed. Every Ready is checked against the safety invariants as it happens; the first violation
 * throws a SimFailure.
 */
export class SimCluster implements LabCluster {
  now = 0;
  readonly nodes: SimNode[];
  readonly faults: NetworkFaults = { reliable: true, longReordering: false, duplicateRate: 0 };
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  /** Requests sent (replies not counted, like the lab's RPC count) and bytes of all messages. */
  rpcCount = 0;
  bytes = 0;
  maxTerm = 0;
  worstElectionMs = 0;
  snapshotsTaken = 0;
  snapshotsInstalled = 0;
  /** The most log bytes any node's storage held when it considered a snapshot (under a snapshot policy). */
  peakLogBytes = 0;

  private readonly opts: Required<Omit<SimOptions, 'nodes' | 'seed' | 'service' | 'snapshots'>> &
    Pick<SimOptions, 'service' | 'snapshots'>;
  /** The snapshot bytes that travel beside each snap message. */
  private readonly snapshotsInFlight = new WeakMap<Message, SimSnapshot>();
  /** The first service state captured at recent indices, until another node's capture there is compared with it. */
  private readonly serviceStates = new Map<number, ServiceSnapshot>();
  private readonly netRng;
  private readonly queue = new EventQueue<SimEvent>();
  private readonly blocked = new Set<number>();
  /** Nodes with inputs since their last Ready: like a real driver, one Ready per node per instant. */
  private readonly dirty = new Set<SimNode>();
  private events = 0;
  /** First applied entry at each index: what every state machine must apply there. */
  private readonly committed: (Entry | undefined)[] = [];
  /** The term in which each index was first committed (by that term's leader), and how far that is known. */
  private readonly commitTerm: number[] = [];
  private commitTermKnown = 0;
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** (index, term) → the entry and its predecessor's term, for the Log Matching check. */
  private readonly seenEntries = new Map<number, Map<number, { entry: Entry; prevTerm: number }>>();
  private current: { id: NodeId; term: number } | undefined;
  /** The leader whose loss started the election clock, in case it comes back still leading. */
  private lostLeader: SimNode | undefined;
  private lostLeaderTerm = 0;
  private leaderLostAt: number | undefined = 0;
  /** A ring of recent events; deliveries are kept as messages and formatted only on failure. */
  private readonly trace: (string | { at: number; m: Message })[] = [];
  private traceNext = 0;

  constructor(options: SimOptions) {
    this.opts = {
      tickMs: 10,
      electionTick: 30,
      heartbeatTick: 10,
      preVote: true,
      checkQuorum: true,
      maxInflight: 64,
      maxMsgBytes: 1024 * 1024,
      ...options,
    };
    this.tickMs = this.opts.tickMs;
    this.electionTimeoutMs = this.opts.electionTick * this.tickMs;
    this.netRng = seededRng(options.seed ^ 0x5eed);
    this.nodes = Array.from({ length: options.nodes }, (_, i) => new SimNode(i + 1));
    for (const n of this.nodes) this.boot(n);
  }

  // ---- faults -------------------------------------------------------------------------------

  crash(i: number): void {
    const n = this.nodes[i]!;
    if (!n.raft) return;
    this.changeTopology(`crash n${n.id}`, () => {
      n.raft = undefined;
      n.incarnation++;
    });
  }

  restart(i: number): void {
    const n = this.nodes[i]!;
    if (n.raft) this.crash(i);
    this.changeTopology(`restart n${n.id}`, () => this.boot(n));
  }

  disconnect(i: number): void {
    this.changeTopology(`disconnect n${i + 1}`, () => (this.nodes[i]!.connected = false));
  }

  connect(i: number): void {
    this.changeTopology(`connect n${i + 1}`, () => (this.nodes[i]!.connected = true));
  }

  /** Splits the network: messages flow only within a group. Nodes not named form one more group. */
  partition(...groups: number[][]): void {
    this.changeTopology(`partition ${JSON.stringify(groups)}`, () => {
      for (const n of this.nodes) n.group = groups.length;
      groups.forEach((g, gi) => g.forEach((i) => (this.nodes[i]!.group = gi)));
    });
  }

  /** Drops every message from node i to node j (one direction only). */
  blockLink(i: number, j: number): void {
    this.blocked.add(i * 1000 + j);
    this.log(`block n${i + 1}->n${j + 1}`);
  }

  heal(): void {
    this.changeTopology('heal', () => {
      for (const n of this.nodes) {
        n.group = 0;
        n.connected = true;
      }
      this.blocked.clear();
    });
  }

  /**
   * Applies a fault or repair and keeps the election clock honest: it runs from the moment the
   * leader became unusable, or from when a quorum became reachable again, whichever is later.
   */
  private changeTopology(what: string, change: () => void): void {
    const hadQuorum = this.reachableQuorum(undefined);
    change();
    this.log(what);
    if (this.current && !this.reachableQuorum(this.nodes[this.current.id - 1]!)) {
      this.noteLeaderLoss(this.nodes[this.current.id - 1]!);
    }
    const back = this.lostLeader;
    if (back && back.raft?.role === 'leader' && back.raft.term === this.lostLeaderTerm && this.reachableQuorum(back)) {
      // The leader came back before anyone replaced it: no election was needed.
      this.current = { id: back.id, term: back.raft.term };
      this.leaderLostAt = undefined;
      this.lostLeader = undefined;
    }
    if (!hadQuorum && this.leaderLostAt !== undefined && this.reachableQuorum(undefined)) this.leaderLostAt = this.now;
  }

  /** Whether `via` (or, if undefined, some live node) reaches a majority of live, connected nodes. */
  private reachableQuorum(via: SimNode | undefined): boolean {
    const up = this.nodes.filter((n) => n.raft && n.connected);
    const groups = via ? [via.group] : up.map((n) => n.group);
    if (via && !(via.raft && via.connected)) return false;
    return groups.some((g) => up.filter((n) => n.group === g).length > this.nodes.length / 2);
  }

  // ---- inputs -------------------------------------------------------------------------------

  propose(i: number, command: string): { ok: boolean; index: number; term: number } {
    const n = this.nodes[i]!;
    if (!n.raft) return { ok: false, index: -1, term: -1 };
    const r = n.raft.propose(encoder.encode(command));
    if (!r.ok) return { ok: false, index: -1, term: n.raft.term };
    this.dirty.add(n);
    return { ok: true, index: r.index, term: r.term };
  }

  /** Runs a callback at a virtual time: the simulator's threads (clients) are chains of these. */
  at(delayMs: number, fn: () => void): void {
    this.queue.push(this.now + delayMs, { kind: 'call', fn });
  }

  /** Advances virtual time by ms, delivering every event due meanwhile. */
  sleep(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      if (this.dirty.size > 0 && this.queue.peekTime() > this.now) this.flushDirty();
      if (this.queue.peekTime() > end) break;
      const { time, item } = this.queue.pop()!;
      this.now = time;
      if (++this.events > MAX_EVENTS) throw new SimFailure(`event budget of ${MAX_EVENTS} exhausted (livelock?)`);
      this.handle(item);
    }
    this.now = end;
  }

  // ---- observation --------------------------------------------------------------------------

  get n(): number {
    return this.nodes.length;
  }

  alive(i: number): boolean {
    return this.nodes[i]!.raft !== undefined;
  }

  term(i: number): number {
    return this.nodes[i]!.raft?.term ?? -1;
  }

  isLeader(i: number): boolean {
    return this.nodes[i]!.raft?.role === 'leader';
  }

  applied(i: number): readonly (string | undefined)[] {
    return this.nodes[i]!.applied;
  }

  connected(i: number): boolean {
    return this.nodes[i]!.connected;
  }

  /** The trace of the last events, oldest first, for failure reports. */
  recentTrace(): string[] {
    return [...this.trace.slice(this.traceNext), ...this.trace.slice(0, this.traceNext)].map((t) =>
      typeof t === 'string' ? t : `${String(t.at).padStart(7)}ms   ${formatMessage(t.m)}`,
    );
  }

  log(line: string): void {
    this.record(`${String(this.now).padStart(7)}ms ${line}`);
  }

  private record(t: string | { at: number; m: Message }): void {
    this.trace[this.traceNext] = t;
    this.traceNext = (this.traceNext + 1) % TRACE_LENGTH;
  }

  // ---- machinery ----------------------------------------------------------------------------

  private boot(n: SimNode): void {
    const { hardState, entries, snapshot } = n.storage.load();
    if (!sameMeta(snapshot, n.snapshot?.meta)) {
      throw new SimFailure(`n${n.id}'s storage records snapshot ${JSON.stringify(snapshot)} but its disk holds ${JSON.stringify(n.snapshot?.meta)}`);
    }
    n.raft = new Raft({
      id: n.id,
      peers: this.nodes.map((x) => x.id),
      electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick,
      preVote: this.opts.preVote,
      checkQuorum: this.opts.checkQuorum,
      maxInflight: this.opts.maxInflight,
      maxMsgBytes: this.opts.maxMsgBytes,
      rng: seededRng((this.netRng.int(2 ** 31) ^ n.id) >>> 0),
      hardState,
      entries,
      snapshot,
    });
    // The state machines restart from the snapshot, then the core replays the log after it. (The
    // lab's list of applied commands is kept across restarts, like the lab's logs.)
    n.lastApplied = snapshot?.index ?? 0;
    n.incoming = undefined;
    n.writingSnapshot = false;
    n.service = this.opts.service?.(n, this.replicatedLog(n, n.raft), this);
    if (n.snapshot) this.restoreService(n, n.snapshot);
    // Nodes tick out of phase, as real clocks do.
    this.queue.push(this.now + 1 + this.netRng.int(this.tickMs), { kind: 'tick', node: n, incarnation: n.incarnation });
  }

  /** The node as a service sees it; bound to one incarnation, dead once it crashes. */
  private replicatedLog(n: SimNode, r: Raft): ReplicatedLog {
    const live = (): boolean => n.raft === r;
    return {
      propose: (data) => {
        const res = live() ? r.propose(data) : undefined;
        if (!res?.ok) return undefined;
        this.dirty.add(n);
        return { index: res.index, term: res.term };
      },
      readIndex: (ctx) => {
        if (!live() || !r.readIndex(ctx)) return false;
        this.dirty.add(n);
        return true;
      },
      leaderId: () => r.leaderId,
    };
  }

  private handle(ev: SimEvent): void {
    if (ev.kind === 'call') {
      ev.fn();
      return;
    }
    if (ev.kind === 'tick') {
      const n = ev.node;
      if (!n.raft || n.incarnation !== ev.incarnation) return;
      n.raft.tick();
      this.dirty.add(n);
      this.queue.push(this.now + this.tickMs, ev);
      return;
    }
    const m = ev.msg;
    const dest = this.nodes[m.to - 1]!;
    // A restart breaks connections: what was in flight to the old incarnation is lost.
    const r = dest.incarnation === ev.incarnation && this.linkUp(m.from, m.to) ? dest.raft : undefined;
    if (m.type === 'snap') this.reportSnapshot(m, r !== undefined);
    if (!r) return;
    if (m.type === 'snap') dest.incoming = this.snapshotsInFlight.get(m);
    this.record({ at: this.now, m });
    r.step(m);
    this.dirty.add(dest);
  }

  private linkUp(from: NodeId, to: NodeId): boolean {
    const a = this.nodes[from - 1]!;
    const b = this.nodes[to - 1]!;
    return a.connected && b.connected && a.group === b.group && !this.blocked.has((from - 1) * 1000 + (to - 1));
  }

  private flushDirty(): void {
    for (const n of this.dirty) if (n.raft) this.flush(n, n.raft);
    this.dirty.clear();
  }

  /** The driver loop of a real node, in its obligatory order: persist → send → apply → advance. */
  private flush(n: SimNode, r: Raft): void {
    while (r.hasReady()) {
      const rd = r.ready();
      this.checkReady(n, r, rd);
      if (rd.snapshot) this.persistSnapshot(n, rd.snapshot);
      n.storage.save(rd.hardState, rd.entries);
      for (const m of rd.messages) this.transmit(m);
      if (rd.snapshot) this.installSnapshot(n, n.snapshot!);
      for (const e of rd.committedEntries) this.apply(n, e);
      if (n.service) {
        for (const e of rd.committedEntries) n.service.applied(e);
        for (const rs of rd.readStates) n.service.readConfirmed(rs);
        if (rd.softState && rd.softState.role !== 'leader') n.service.leadershipLost(rd.softState.leaderId);
      }
      r.advance(rd);
      this.maybeSnapshot(n, r, rd.committedEntries);
    }
  }

  /** Takes a snapshot and compacts the log if the policy says so, having just applied `applied`. */
  private maybeSnapshot(n: SimNode, r: Raft, applied: Entry[]): void {
    const policy = this.opts.snapshots;
    const last = applied[applied.length - 1];
    if (!policy || !last) return;
    const bytes = n.storage.logBytes();
    this.peakLogBytes = Math.max(this.peakLogBytes, bytes);
    const due = 'everyEntries' in policy ? applied.some((e) => e.index % policy.everyEntries === 0) : bytes >= policy.maxLogBytes;
    if (!due || n.writingSnapshot || last.index > r.log.stabled || last.index <= (n.snapshot?.meta.index ?? 0)) return;
    const meta = { index: last.index, term: last.term };
    const snap: SimSnapshot = { meta, applied: n.applied, service: n.service && this.captureService(n, meta) };
    const retain = policy.retain ?? 0;
    const writeMs = policy.writeMs ? this.netRng.int(policy.writeMs + 1) : 0;
    if (writeMs === 0) return this.compact(n, r, snap, retain);
    n.writingSnapshot = true;
    this.at(writeMs, () => {
      if (n.raft !== r) return;
      n.writingSnapshot = false;
      this.compact(n, r, snap, retain);
    });
  }

  /** The snapshot is durable: now the log may forget what it covers. */
  private compact(n: SimNode, r: Raft, snap: SimSnapshot, retain: number): void {
    // A snapshot installed from the leader while this one was being written is newer.
    if (snap.meta.index <= (n.snapshot?.meta.index ?? 0)) return;
    n.snapshot = snap;
    r.compact(snap.meta, retain);
    n.storage.compact(snap.meta, Math.max(snap.meta.index - retain, 0));
    this.snapshotsTaken++;
  }

  /** The service's state at `meta`; State Machine Safety: the same on every node that captures there. */
  private captureService(n: SimNode, meta: SnapshotMeta): ServiceSnapshot {
    if (!n.service?.capture) throw new SimFailure(`n${n.id}'s service cannot take snapshots`);
    const s = n.service.capture();
    if (!sameMeta(s.meta, meta)) {
      throw new SimFailure(`n${n.id}'s service captured its state at ${JSON.stringify(s.meta)} after applying ${JSON.stringify(meta)}`);
    }
    // One comparison per index is enough to catch a restore or a replay that went wrong, and
    // captures at one index happen close together: a short window of them bounds time and memory.
    const first = this.serviceStates.get(meta.index);
    if (!first) {
      this.serviceStates.set(meta.index, s);
      if (this.serviceStates.size > SERVICE_STATES_KEPT) this.serviceStates.delete(this.serviceStates.keys().next().value!);
    } else {
      if (!sameState(first, s)) {
        throw new SimFailure(`n${n.id}'s service state after entry ${meta.index} differs from another node's there`);
      }
      this.serviceStates.delete(meta.index);
    }
    return s;
  }

  /** The core accepted the snapshot that came with a snap message: it goes to "disk" first, replacing the log. */
  private persistSnapshot(n: SimNode, meta: SnapshotMeta): void {
    const snap = n.incoming;
    if (!snap || !sameMeta(snap.meta, meta)) {
      throw new SimFailure(`n${n.id} must install snapshot ${meta.index}/${meta.term} but received ${JSON.stringify(snap?.meta)}`);
    }
    n.snapshot = snap;
    n.incoming = undefined;
    n.storage.installSnapshot(meta);
  }

  /** The state machines take a leader's snapshot, after the Ready's messages and before its entries. */
  private installSnapshot(n: SimNode, snap: SimSnapshot): void {
    const { meta } = snap;
    // State Machine Safety for everything the snapshot covers.
    for (let i = n.lastApplied + 1; i <= meta.index; i++) {
      const c = this.committed[i];
      const v = snap.applied[i];
      if (c && v !== undefined && v !== (c.type === 'noop' ? NOOP : decoder.decode(c.data))) {
        throw new SimFailure(`n${n.id} installed a snapshot whose entry ${i} differs from the committed one`);
      }
      if (v !== undefined) n.applied[i] = v;
    }
    n.lastApplied = meta.index;
    this.restoreService(n, snap);
    n.snapshotsInstalled++;
    this.snapshotsInstalled++;
    this.log(`n${n.id} installed snapshot ${meta.index}/${meta.term}`);
  }

  /** A service (new at restart, or running) takes the state the snapshot holds for it. */
  private restoreService(n: SimNode, snap: SimSnapshot): void {
    if (!n.service) return;
    if (!n.service.restore || !snap.service) {
      throw new SimFailure(`n${n.id} cannot restore its service from snapshot ${snap.meta.index}: no service state or no restore()`);
    }
    if (!sameMeta(snap.service.meta, snap.meta)) {
      throw new SimFailure(`snapshot ${JSON.stringify(snap.meta)} holds service state at ${JSON.stringify(snap.service.meta)}`);
    }
    n.service.restore(snap.service);
    const back = n.service.capture?.();
    if (back && !sameState(back, snap.service)) {
      throw new SimFailure(`n${n.id}'s service, restored from snapshot ${snap.meta.index}, holds another state than the snapshot`);
    }
  }

  /**
   * The sender's snapshot travels with its snap message, as a real transport streams it beside.
   * False if a newer snapshot replaced it on disk since the core asked (a write that finished
   * meanwhile): the transfer fails, as kv-server's does, and the leader retries with the newer one.
   */
  private attachSnapshot(m: Message): boolean {
    const snap = this.nodes[m.from - 1]!.snapshot;
    if (snap && sameMeta(snap.meta, { index: m.index, term: m.logTerm })) {
      this.snapshotsInFlight.set(m, snap);
      return true;
    }
    if (snap && snap.meta.index > m.index) {
      this.log(`n${m.from} cannot send snapshot ${m.index}/${m.logTerm} to n${m.to}: replaced by ${snap.meta.index}/${snap.meta.term}`);
      return false;
    }
    throw new SimFailure(`n${m.from} sent snapshot ${m.index}/${m.logTerm} it does not hold`);
  }

  /** A message the network lost: only a snapshot's sender learns of it, from its transport. */
  private lost(m: Message): void {
    if (m.type === 'snap') this.reportSnapshot(m, false);
  }

  /** Tells the sender how the transfer ended, as a real transport would. */
  private reportSnapshot(m: Message, ok: boolean): void {
    const sender = this.nodes[m.from - 1]!;
    const incarnation = sender.incarnation;
    this.queue.push(this.now + 1, {
      kind: 'call',
      fn: () => {
        if (!sender.raft || sender.incarnation !== incarnation) return;
        sender.raft.reportSnapshot(m.to, ok);
        this.dirty.add(sender);
      },
    });
  }

  /** The largest retained log, in bytes, over all nodes' storage. */
  logBytes(): number {
    return Math.max(...this.nodes.map((n) => n.storage.logBytes()));
  }

  private transmit(m: Message): void {
    const reply = isResponse(m.type);
    if (!reply) this.rpcCount++;
    this.bytes += MESSAGE_HEADER_BYTES;
    for (const e of m.entries) this.bytes += ENTRY_HEADER_BYTES + e.data.length;
    if (m.type === 'snap' && !this.attachSnapshot(m)) return this.lost(m);
    if (!this.linkUp(m.from, m.to)) return this.lost(m);
    const rng = this.netRng;
    let delay = 1;
    if (!this.faults.reliable) {
      if (rng.int(1000) < 100) return this.lost(m);
      delay = rng.int(27);
    }
    if (reply && this.faults.longReordering && rng.int(900) < 600) delay = 200 + rng.int(1 + rng.int(2000));
    const incarnation = this.nodes[m.to - 1]!.incarnation;
    this.queue.push(this.now + delay, { kind: 'deliver', msg: m, incarnation });
    if (this.faults.duplicateRate > 0 && rng.next() < this.faults.duplicateRate) {
      this.queue.push(this.now + delay + rng.int(50), { kind: 'deliver', msg: m, incarnation });
    }
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.lastApplied + 1) {
      throw new SimFailure(`n${n.id} applied index ${e.index} after ${n.lastApplied}: out of order`);
    }
    const first = this.committed[e.index];
    if (!first) this.committed[e.index] = e;
    else if (!sameEntry(first, e)) {
      throw new SimFailure(
        `n${n.id} applied ${describe(e)} at index ${e.index} where another node applied ${describe(first)}`,
      );
    }
    n.lastApplied = e.index;
    n.applied[e.index] = e.type === 'noop' ? NOOP : decoder.decode(e.data);
  }

  /** Safety invariants visible in one Ready: Election Safety, Leader Completeness, Log Matching. */
  private checkReady(n: SimNode, r: Raft, rd: Ready): void {
    if (rd.hardState) this.maxTerm = Math.max(this.maxTerm, rd.hardState.term);
    // A leader's commit reaches its Ready before any message can tell another node about it.
    if (rd.hardState && r.role === 'leader') {
      for (; this.commitTermKnown < rd.hardState.commit; this.commitTermKnown++) this.commitTerm[this.commitTermKnown + 1] = r.term;
    }
    for (const e of rd.entries) {
      const prevTerm = e.index === 1 ? 0 : (r.log.term(e.index - 1) ?? -1);
      let byTerm = this.seenEntries.get(e.index);
      if (!byTerm) this.seenEntries.set(e.index, (byTerm = new Map()));
      const seen = byTerm.get(e.term);
      if (!seen) byTerm.set(e.term, { entry: e, prevTerm });
      else if (!sameEntry(seen.entry, e) || seen.prevTerm !== prevTerm) {
        throw new SimFailure(`log matching: n${n.id} holds a different entry at index ${e.index} term ${e.term}`);
      }
    }
    if (!rd.softState) return;
    this.log(`n${n.id} ${rd.softState.role} term=${r.term} leader=${rd.softState.leaderId}`);
    if (rd.softState.role === 'leader') this.onElected(n, r);
    else if (this.current?.id === n.id && this.current.term === r.term) this.noteLeaderLoss(n);
  }

  private onElected(n: SimNode, r: Raft): void {
    const other = this.leaderOfTerm.get(r.term);
    if (other !== undefined && other !== n.id) {
      throw new SimFailure(`election safety: n${other} and n${n.id} both leaders of term ${r.term}`);
    }
    this.leaderOfTerm.set(r.term, n.id);
    // Leader Completeness promises committed entries to leaders of later terms only: a candidate
    // whose delayed votes elect it in a stale term may lack what a newer term committed (and can
    // commit nothing, since that newer majority rejects its term).
    for (let i = r.log.firstIndex(); i < this.committed.length; i++) {
      if ((this.commitTerm[i] ?? 0) >= r.term) continue;
      const c = this.committed[i]!;
      const mine = r.log.entry(i);
      if (!mine || !sameEntry(mine, c)) {
        throw new SimFailure(`leader completeness: n${n.id} leads term ${r.term} without committed entry ${i}`);
      }
    }
    if (this.leaderLostAt !== undefined) {
      this.worstElectionMs = Math.max(this.worstElectionMs, this.now - this.leaderLostAt);
      this.leaderLostAt = undefined;
      this.lostLeader = undefined;
    }
    this.current = { id: n.id, term: r.term };
  }

  /** Starts the election clock when the leader everyone follows becomes unusable. */
  private noteLeaderLoss(n: SimNode): void {
    if (this.current?.id !== n.id) return;
    this.leaderLostAt ??= this.now;
    this.lostLeader = n;
    this.lostLeaderTerm = this.current.term;
    this.current = undefined;
  }
}

/**
 * Deep equality of captured states (plain objects, arrays, byte arrays, primitives), several times
 * faster than isDeepStrictEqual on them; anything else goes to isDeepStrictEqual.
 */
function sameState(a: unknown, b: unknown): boolean {
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

function sameMeta(a: SnapshotMeta | undefined, b: SnapshotMeta | undefined): boolean {
  return a?.index === b?.index && a?.term === b?.term;
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a.term !== b.term || a.type !== b.type || a.data.length !== b.data.length) return false;
  if (a.data === b.data) return true;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

function describe(e: Entry): string {
  return `{term ${e.term}, ${e.type === 'noop' ? 'noop' : JSON.stringify(decoder.decode(e.data)).slice(0, 40)}}`;
}

function formatMessage(m: Message): string {
  const parts = [`n${m.from}->n${m.to} ${m.type} t${m.term}`];
  if (m.type !== 'heartbeat' && m.type !== 'heartbeatResp') parts.push(`i${m.index} lt${m.logTerm}`);
  if (m.entries.length > 0) parts.push(`ents ${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}`);
  if (m.commit) parts.push(`c${m.commit}`);
  if (m.reject) parts.push(`REJECT hint ${m.rejectHint}`);
  return parts.join(' ');
}
