import { seededRng } from '../../src/raft/core/rng.js';
import type { NodeId, SnapshotMeta } from '../../src/raft/core/types.js';
import { encodeCommand } from '../../src/server/command.js';
import type { ServerConfig } from '../../src/server/config.js';
import { KvServer } from '../../src/server/kv-server.js';
import type { Fields, Logger } from '../../src/server/logger.js';
import { decodeSnapshot } from '../../src/server/snapshot/decode.js';
import { snapshotFileName } from '../../src/server/snapshot/files.js';
import type { CapturedState } from '../../src/server/state-machine.js';
import { SNAPSHOT_DIR } from '../../src/server/snapshotter.js';
import type { LabCluster } from './harness.js';
import { Checker, hasQuorum, LAB_CLIENT_ID, LAB_KEY, SimFailure } from './invariants.js';
import { SimClock, SimWorld } from './sim-clock.js';
import { SimDisk } from './sim-disk.js';
import { SimNetwork, type NetworkFaults } from './sim-network.js';

export { NOOP, SimFailure } from './invariants.js';
export type { NetworkFaults } from './sim-network.js';

export interface SimOptions {
  nodes: number;
  seed: number;
  /** Defaults 300 and 100 ms; the core ticks every TICK_MS. */
  electionTimeoutMs?: number;
  heartbeatMs?: number;
  /** The protocol's switches, on by default as in kv-server (tests turn them off to see scenarios fail). */
  preVote?: boolean;
  checkQuorum?: boolean;
  /** When every node snapshots and compacts: kv-server's --snapshot-threshold (entries) and a size trigger; never if absent. */
  snapshots?: { entries?: number; bytes?: number; retain?: number };
  /** --quota-bytes (default 1 GiB: kv-server's default on a machine with a 4 GiB heap limit, fixed so runs replay anywhere). */
  quotaBytes?: number;
}

const TICK_MS = 10;
const CLUSTER_ID = 'raftkv-sim';
const MAX_EVENTS = 20_000_000;
const TRACE_LENGTH = 300;
/** How long a node started with --join may take to hear from the cluster (kv-server gives up after 15 s). */
const JOIN_LIMIT_MS = 20_000;
const encoder = new TextEncoder();

/** One simulated machine: a disk that outlives the KvServer incarnations running on it. */
export class SimNode {
  server: KvServer | undefined;
  clock: SimClock | undefined;
  incarnation = 0;
  /** Every command this node has applied, by index (kept across restarts, like the lab's logs). */
  applied: string[] = [];
  lastApplied = 0;
  /** Snapshots received from a leader and installed, over all incarnations. */
  snapshotsInstalled = 0;
  /** Snapshots this node took (and compacted its log to), over all incarnations. */
  snapshotsTaken = 0;
  /** The highest entry this node acknowledged to a leader, and in which term (it is durable). */
  acked = { term: 0, index: 0 };

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    /** Started with --join (added to the running cluster), not one of the bootstrap --peers. */
    readonly joined = false,
  ) {}

  /** The state in this node's snapshot file at `meta`, as the node sees its files now. */
  snapshotFile(meta: SnapshotMeta): CapturedState | undefined {
    const bytes = this.disk.files.peek(`${SNAPSHOT_DIR}/${snapshotFileName(meta)}`);
    return bytes && decodeSnapshot(bytes, { clusterId: CLUSTER_ID }).state;
  }
}

/**
 * Whole KvServers, as kv-server builds them, on a virtual clock, simulated disks and a faulty
 * network, driven by one seed. The invariants are checked on every step (invariants.ts); the
 * first violation fails the run, which replays exactly from its seed.
 */
export class SimCluster implements LabCluster {
  readonly nodes: SimNode[];
  readonly network: SimNetwork;
  readonly checker: Checker;
  readonly tickMs = TICK_MS;
  readonly electionTimeoutMs: number;
  worstElectionMs = 0;
  private readonly world = new SimWorld(MAX_EVENTS);
  private readonly rng;
  private failure: Error | undefined;
  private current: { id: NodeId; term: number } | undefined;
  /** The leader whose loss started the election clock, in case it comes back still leading. */
  private lostLeader: { node: SimNode; term: number } | undefined;
  private leaderLostAt: number | undefined = 0;
  private readonly trace: string[] = [];
  private traceNext = 0;

  private constructor(private readonly opts: SimOptions) {
    this.rng = seededRng(opts.seed ^ 0x5eed);
    this.electionTimeoutMs = opts.electionTimeoutMs ?? 300;
    this.checker = new Checker(this, Array.from({ length: opts.nodes }, (_, i) => i + 1));
    this.network = new SimNetwork(this.world, this.rng, (m) => this.checker.leaving(m));
    this.nodes = Array.from({ length: opts.nodes }, (_, i) => new SimNode(i + 1, new SimDisk(seededRng(this.rng.int(2 ** 31)))));
  }

  static async create(opts: SimOptions): Promise<SimCluster> {
    const c = new SimCluster(opts);
    for (const n of c.nodes) await c.boot(n);
    return c;
  }

  /**
   * A new machine starts kv-server with --join, naming the client addresses of the nodes up now:
   * it asks them for the cluster and waits to be added (kv-cli member add). Returns its index.
   */
  async addNode(): Promise<number> {
    const n = new SimNode(this.nodes.length + 1, new SimDisk(seededRng(this.rng.int(2 ** 31))), true);
    this.nodes.push(n);
    const hadQuorum = this.reachableQuorum(undefined);
    await this.boot(n);
    this.changeTopology(`start n${n.id} (--join)`, () => {}, hadQuorum);
    return n.id - 1;
  }

  get now(): number {
    return this.world.now;
  }

  get faults(): NetworkFaults {
    return this.network.faults;
  }

  get rpcCount(): number {
    return this.network.rpcCount;
  }

  get bytes(): number {
    return this.network.bytes;
  }

  get maxTerm(): number {
    return this.checker.maxTerm;
  }

  get snapshotsTaken(): number {
    return this.nodes.reduce((k, n) => k + n.snapshotsTaken, 0);
  }

  get snapshotsInstalled(): number {
    return this.nodes.reduce((k, n) => k + n.snapshotsInstalled, 0);
  }

  // ---- faults -------------------------------------------------------------------------------

  /**
   * The node's machine goes down: a killed process (the page cache survives) or a power loss
   * (what was not synced is lost, perhaps torn), drawn from the seed unless given.
   */
  crash(i: number, kind: 'process' | 'power' = this.rng.int(2) === 0 ? 'process' : 'power'): void {
    const n = this.nodes[i]!;
    if (!n.server) return;
    this.changeTopology(`crash n${n.id} (${kind})`, () => {
      n.clock!.kill();
      this.network.detach(n.id);
      n.disk.crash(kind);
      n.server = undefined;
      n.clock = undefined;
    });
  }

  async restart(i: number): Promise<void> {
    const n = this.nodes[i]!;
    if (n.server) this.crash(i);
    // The node is up from its boot on: whether a quorum was reachable is judged before it.
    const hadQuorum = this.reachableQuorum(undefined);
    await this.boot(n);
    this.changeTopology(`restart n${n.id}`, () => {}, hadQuorum);
  }

  disconnect(i: number): void {
    this.changeTopology(`disconnect n${i + 1}`, () => this.network.setConnected(i + 1, false));
  }

  connect(i: number): void {
    this.changeTopology(`connect n${i + 1}`, () => this.network.setConnected(i + 1, true));
  }

  /** Splits the network: messages flow only within a group. Nodes not named form one more group. */
  partition(...groups: number[][]): void {
    this.changeTopology(`partition ${JSON.stringify(groups)}`, () =>
      this.network.partition(
        groups.map((g) => g.map((i) => i + 1)),
        this.nodes.map((n) => n.id),
      ),
    );
  }

  /** Drops every message from node i to node j (one direction only). */
  blockLink(i: number, j: number): void {
    this.network.block(i + 1, j + 1);
    this.log(`block n${i + 1}->n${j + 1}`);
  }

  heal(): void {
    this.changeTopology('heal', () => this.network.heal());
  }

  // ---- inputs -------------------------------------------------------------------------------

  /** The lab's Start(cmd): a raw command, proposed as a KV put so that the node's real state machine applies it. */
  propose(i: number, command: string): { ok: boolean; index: number; term: number } {
    const raft = this.nodes[i]!.server?.raft;
    if (!raft) return { ok: false, index: -1, term: -1 };
    this.labSeq++;
    const data = encodeCommand({
      op: 'put',
      clientId: LAB_CLIENT_ID,
      seq: this.labSeq,
      firstIncomplete: this.labSeq,
      leaderTimeMs: this.now,
      key: encoder.encode(LAB_KEY),
      value: encoder.encode(command),
      expected: new Uint8Array(0),
    });
    const r = raft.propose(data);
    return r ? { ok: true, ...r } : { ok: false, index: -1, term: raft.status().term };
  }

  private labSeq = 0;

  /** Runs a callback at a virtual time: the simulator's threads (clients) are chains of these. */
  at(delayMs: number, fn: () => void): void {
    this.world.after(delayMs, fn);
  }

  /** Advances virtual time by ms, running every event due meanwhile. */
  async sleep(ms: number): Promise<void> {
    await this.world.runUntil(this.now + ms, () => {
      if (this.failure) throw this.failure;
    });
  }

  // ---- observation --------------------------------------------------------------------------

  get n(): number {
    return this.nodes.length;
  }

  alive(i: number): boolean {
    return this.nodes[i]!.server !== undefined;
  }

  connected(i: number): boolean {
    return this.network.connected(i + 1);
  }

  term(i: number): number {
    return this.nodes[i]!.server?.raft.status().term ?? -1;
  }

  isLeader(i: number): boolean {
    return this.nodes[i]!.server?.raft.status().role === 'leader';
  }

  applied(i: number): readonly (string | undefined)[] {
    return this.nodes[i]!.applied;
  }

  /** The largest retained log, in bytes, over all nodes. */
  logBytes(): number {
    return Math.max(...this.nodes.map((n) => n.disk.logBytes()));
  }

  /** The most log bytes any node held at any moment. */
  get peakLogBytes(): number {
    return Math.max(...this.nodes.map((n) => n.disk.log.peakBytes));
  }

  /** The trace of the last events, oldest first, for failure reports. */
  recentTrace(): string[] {
    return [...this.trace.slice(this.traceNext), ...this.trace.slice(0, this.traceNext)];
  }

  log(line: string): void {
    this.trace[this.traceNext] = `${String(this.now).padStart(7)}ms ${line}`;
    this.traceNext = (this.traceNext + 1) % TRACE_LENGTH;
  }

  /** Runs a check from inside the code under test: false if it failed (the failure is recorded, and ends the run at its next step). */
  tryCheck(check: () => void): boolean {
    try {
      check();
      return true;
    } catch (e) {
      if (e instanceof SimFailure) return false;
      throw e;
    }
  }

  /** Records the run's first failure (so that an error swallowed by the code under test still ends it) and throws. */
  fail(message: string): never {
    const e = new SimFailure(message);
    this.failure ??= e;
    throw e;
  }

  // ---- machinery ----------------------------------------------------------------------------

  /** Starts a KvServer on the node's disk, as kv-server does, and waits until it serves. */
  private async boot(n: SimNode): Promise<void> {
    const clock = new SimClock(this.world, this.rng.int(TICK_MS));
    n.clock = clock;
    n.incarnation++;
    // A new incarnation applies from its snapshot on (or from the start).
    n.lastApplied = 0;
    const server = new KvServer(this.config(n), {
      clock,
      disk: n.disk.attach(clock),
      network: this.network.attach(n.id, clock),
      logger: this.logger(n),
      seed: this.rng.int(2 ** 31),
      // Called on a later turn, with nobody to catch a throw: record the failure for sleep() to end the run.
      onFatal: (e) => void (this.failure ??= e instanceof SimFailure ? e : new SimFailure(`n${n.id} stopped: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)),
      observer: this.checker.observer(n),
    });
    n.server = server;
    let started = false;
    let error: unknown;
    server.start().then(
      () => {
        started = true;
        // Entries up to the snapshot it restored are in its state machine: check that state, and
        // record them as applied (the lab's logs are kept across restarts). Done here, before
        // the node applies anything more (one that joined starts after virtual time has passed).
        const restored = server.store.appliedIndex;
        if (restored === 0) return;
        const meta = { index: restored, term: server.store.appliedTerm };
        if (this.tryCheck(() => this.checker.sameStateAt(n, meta, server.store.capture().state, 'state restored at restart'))) this.checker.restoredTo(n, restored);
      },
      (e: unknown) => (error = e),
    );
    // Start-up reads the disk without waiting for it: done once its microtasks have run. A node
    // started with --join asks the cluster over the network first, which takes (virtual) time.
    await new Promise((resolve) => setImmediate(resolve));
    for (let waited = 0; n.joined && !started && error === undefined && waited < JOIN_LIMIT_MS; waited += TICK_MS) await this.sleep(TICK_MS);
    if (error !== undefined) this.fail(`n${n.id} refused to ${n.incarnation > 1 ? 'restart' : 'start'}: ${(error as Error).message}`);
    if (!started) this.fail(`n${n.id} did not start ${n.joined ? `within ${JOIN_LIMIT_MS} ms` : 'at once'}`);
    if (this.failure) throw this.failure;
  }

  private config(n: SimNode): ServerConfig {
    const addr = (id: NodeId, port: number): string => `n${id}:${port}`;
    const snap = this.opts.snapshots;
    const bootstrap = this.nodes.filter((m) => !m.joined);
    return {
      id: n.id,
      // As kv-server is started: the bootstrap members with --peers, a node added later with --join.
      peers: n.joined ? [] : bootstrap.map((m) => ({ id: m.id, address: addr(m.id, 7000) })),
      ...(n.joined ? { join: this.nodes.filter((m) => m !== n && m.server).map((m) => addr(m.id, 9000)) } : {}),
      peerAddr: addr(n.id, 7000),
      clientAddr: addr(n.id, 9000),
      dataDir: `/n${n.id}`,
      electionTimeoutMs: this.electionTimeoutMs,
      heartbeatMs: this.opts.heartbeatMs ?? 100,
      clusterId: n.joined ? '' : CLUSTER_ID,
      // As kv-server's flags make it: a node that joins takes its cluster's id from its data dir once it has one.
      clusterIdDerived: n.joined,
      clientAddrs: new Map((n.joined ? [n] : bootstrap).map((m) => [m.id, addr(m.id, 9000)])),
      logLevel: 'info',
      unsafeNoFsync: false,
      snapshotThreshold: snap?.entries ?? 0,
      snapshotBytes: snap?.bytes ?? 0,
      snapshotRetain: snap?.retain ?? 0,
      quotaBytes: this.opts.quotaBytes ?? 1024 * 1024 * 1024,
      protocol: { preVote: this.opts.preVote, checkQuorum: this.opts.checkQuorum },
    };
  }

  /** A node's log lines go to the trace; a damaged snapshot file found at restart fails the run. */
  private logger(n: SimNode): Logger {
    const line = (level: string, msg: string, fields?: Fields): void => {
      const extra = fields ? Object.entries(fields).filter(([, v]) => v !== undefined) : [];
      this.log(`n${n.id} ${level} ${msg}${extra.map(([k, v]) => ` ${k}=${String(v)}`).join('')}`);
      if (/snapshot: skipping/.test(msg)) this.fail(`n${n.id} found a damaged snapshot file after a crash: ${msg}`);
    };
    return {
      debug: () => {},
      info: (m, f) => line('info', m, f),
      warn: (m, f) => line('WARN', m, f),
      error: (m, f) => line('ERROR', m, f),
    };
  }

  // ---- the election clock -------------------------------------------------------------------

  /** Called by the checker: node n became leader of `term`. */
  elected(n: SimNode, term: number): void {
    if (this.leaderLostAt !== undefined) {
      this.worstElectionMs = Math.max(this.worstElectionMs, this.now - this.leaderLostAt);
      this.leaderLostAt = undefined;
      this.lostLeader = undefined;
    }
    this.current = { id: n.id, term };
  }

  /** Called by the checker: node n stopped leading in `term`. */
  leaderLost(n: SimNode, term: number): void {
    if (this.current?.id === n.id && this.current.term === term) this.noteLeaderLoss(n);
  }

  /**
   * Applies a fault or repair and keeps the election clock honest: it runs from the moment the
   * leader became unusable, or from when a quorum became reachable again, whichever is later.
   */
  private changeTopology(what: string, change: () => void, hadQuorum = this.reachableQuorum(undefined)): void {
    change();
    this.log(what);
    if (this.current && !this.reachableQuorum(this.nodes[this.current.id - 1]!)) this.noteLeaderLoss(this.nodes[this.current.id - 1]!);
    const back = this.lostLeader;
    const status = back?.node.server?.raft.status();
    if (back && status?.role === 'leader' && status.term === back.term && this.reachableQuorum(back.node)) {
      // The leader came back before anyone replaced it: no election was needed.
      this.current = { id: back.node.id, term: back.term };
      this.leaderLostAt = undefined;
      this.lostLeader = undefined;
    }
    if (!hadQuorum && this.leaderLostAt !== undefined && this.reachableQuorum(undefined)) this.leaderLostAt = this.now;
  }

  /** Whether `via` (or, if undefined, some live node) reaches a quorum of the configuration in force among live, connected nodes. */
  private reachableQuorum(via: SimNode | undefined): boolean {
    const up = this.nodes.filter((n) => n.server && this.network.connected(n.id));
    if (via && !up.includes(via)) return false;
    const from = via ? [via] : up;
    const conf = this.checker.conf;
    return from.some((a) => hasQuorum(conf, new Set(up.filter((b) => this.network.together(a.id, b.id)).map((b) => b.id))));
  }

  /** Starts the election clock when the leader everyone follows becomes unusable. */
  private noteLeaderLoss(n: SimNode): void {
    if (this.current?.id !== n.id) return;
    this.leaderLostAt ??= this.now;
    this.lostLeader = { node: n, term: this.current.term };
    this.current = undefined;
  }
}

