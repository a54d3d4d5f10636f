import type { Clock } from '../clock.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { RaftNode, type RaftObserver } from '../raft/node.js';
import type { Storage } from '../raft/storage/storage.js';
import type { ServerConfig } from './config.js';
import type { Disk, LogIds, LogToOpen } from './disk.js';
import { ASK_AGAIN_DEADLINE_MS, askToJoin, JOIN_DEADLINE_MS, type Joined } from './join.js';
import { KvService } from './kv-service.js';
import { DEFAULT_ADMISSION, KvStore } from './kv-store.js';
import { AddressBook, bootstrapTable, type MemberTable } from './members.js';
import { transferTarget } from './membership.js';
import type { Logger } from './logger.js';
import { forceNewCluster } from './force-new-cluster.js';
import { restoreFromBackup } from './restore.js';
import type { ClientListener, Network, PeerTransport } from './network.js';
import { Snapshotter } from './snapshotter.js';
import { probeHealth, quickHealth, readiness, statusReport, type Health, type StatusReport } from './health.js';
import type { ServerMetrics } from './metrics.js';
import { ClusterViews, type ClusterView } from './cluster-view.js';

/**
 * How long a follower waits for the leader's answer to a call it forwarded, when the caller set no
 * deadline of its own (with one, until that deadline, which travels to the leader with the call).
 */
const FORWARD_TIMEOUT_MS = 10_000;
/** How long a forwarded call may take: until its caller's deadline, if it has one, at most FORWARD_TIMEOUT_MS. */
function forwardTimeoutMs(deadline: number | undefined, nowMs: number): number {
  return deadline === undefined ? FORWARD_TIMEOUT_MS : Math.max(1, Math.min(FORWARD_TIMEOUT_MS, deadline - nowMs));
}
/** The shortest a health check waits for its ReadIndex round (a loaded leader answers in well under this). */
const HEALTH_MIN_TIMEOUT_MS = 1000;
/** The longest a stopping leader waits for another to take over (kv-server's whole shutdown has 5 s). */
const HAND_OFF_MAX_MS = 2000;
/** How long the status page waits for a peer's Status before showing it down. */
const PEER_STATUS_TIMEOUT_MS = 800;
/**
 * A snapshot due by --snapshot-threshold waits until the log since the last one holds half as many
 * bytes as that snapshot: with a large state, snapshots then cost at most twice the disk writing
 * of the log (not a 77 MB file every 10,000 puts). Half, not all: the log since the last snapshot
 * is held in memory, at ~2× its bytes (an entry object and a view each), so with a floor of 1× a
 * node held about as much log as state (1M puts over 1M keys: peak RSS 379–419 MB at 1×, 347–368
 * at 0.5×, the same throughput; BENCHMARKS.md).
 */
export const SNAPSHOT_LOG_PER_STATE_BYTE = 0.5;

/** What a KvServer runs on, injected: the real machine in kv-server, a simulated one in tests. */
export interface KvServerDeps {
  clock: Clock;
  disk: Disk;
  network: Network;
  logger: Logger;
  /** Seeds the election-timeout jitter. */
  seed: number;
  /** The node hit an error it cannot continue after and has stopped itself. */
  onFatal(error: unknown): void;
  /** Hears the Raft node's events beside the server's own logging (the simulator's checks). */
  observer?: RaftObserver;
  /** Counts what the node does (kv-server --metrics-addr); without it, nothing is counted. */
  metrics?: ServerMetrics;
}

/** The server could not start; the message says what and where. Nothing it was given was changed. */
export class StartError extends Error {
  override name = 'StartError';
}

/**
 * One raftkv node, built from its parts: the composition root. start() binds the client port
 * (answering "starting" meanwhile), checks the log (reading only: it says which cluster this
 * node is in; on an empty data dir, --join asks the cluster), binds the peer port, checks the
 * newest valid snapshot, opens the log for writing, restores the snapshot, starts Raft and serves
 * clients. A port that cannot be bound, or a data dir that is refused, fails the start before
 * anything in the data dir is written.
 */
export class KvServer {
  private listener: ClientListener | undefined;
  private transport: PeerTransport | undefined;
  private storage: Storage | undefined;
  private node: RaftNode | undefined;
  private kv: KvStore | undefined;
  private api: KvService | undefined;
  private stopping: Promise<void> | undefined;
  private book: AddressBook | undefined;
  private clusterId = '';
  private leaderChanges = 0;
  /** The health check in flight: concurrent probes share its ReadIndex round. */
  private probing: Promise<Health> | undefined;
  private views: ClusterViews | undefined;

  constructor(
    readonly config: ServerConfig,
    private readonly deps: KvServerDeps,
  ) {}

  /** Rejects with StartError; whatever was set up is released again. */
  async start(): Promise<void> {
    try {
      await this.open();
    } catch (e) {
      await this.stop().catch(() => undefined);
      throw e instanceof StartError ? e : new StartError(e instanceof Error ? e.message : String(e), { cause: e });
    }
  }

  /**
   * Fails requests in flight (retryable), stops taking calls, stops Raft, closes the disk;
   * `handOff`: a leader first hands leadership over (kv-server does on SIGTERM and SIGINT).
   */
  stop(opts: { handOff?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      if (opts.handOff) await this.handOff();
      this.kv?.close();
      await this.listener?.close();
      if (this.node) await this.node.stop(); // closes the transport and the storage
      else {
        await this.transport?.close();
        this.storage?.close();
      }
    })();
    return this.stopping;
  }

  /**
   * A leader about to stop hands leadership to the most up-to-date voter first (thesis §3.10),
   * so that the cluster does not wait an election timeout for a new one: a rolling restart then
   * costs clients a moment, not an election. Meanwhile it keeps serving: calls it cannot propose
   * wait for the new leader and go to it (KvService). Gives up after HAND_OFF_MAX_MS.
   */
  private async handOff(): Promise<void> {
    const node = this.node;
    const log = this.deps.logger;
    if (!node || node.status().role !== 'leader') return;
    const to = transferTarget(node.members(), this.config.id);
    if (to === undefined) return;
    log.info('handing leadership over before stopping', { to });
    try {
      const r = await node.transferLeadership(to, Math.min(transferTimeoutMs(this.config), HAND_OFF_MAX_MS));
      log.info('handed leadership over', { leader: r.leaderId, term: r.term });
    } catch (e) {
      log.warn('could not hand leadership over; stopping anyway', { error: (e as Error).message });
    }
  }

  /** Whether a leader exists and can commit (a ReadIndex round completes); concurrent calls share one round. */
  health(): Promise<Health> {
    const [node, api] = [this.node, this.api];
    if (!node || !api || this.stopping) return Promise.resolve({ ok: false, reason: this.stopping ? 'stopping' : 'starting' });
    const quick = quickHealth(node);
    if (quick) return Promise.resolve(quick);
    const timeoutMs = Math.max(this.config.electionTimeoutMs, HEALTH_MIN_TIMEOUT_MS);
    this.probing ??= probeHealth({ service: api, clock: this.deps.clock, timeoutMs }).finally(() => (this.probing = undefined));
    return this.probing;
  }

  /** Serving clients and caught up enough to (health.ts readiness). */
  ready(): Health {
    return this.stopping ? { ok: false, reason: 'stopping' } : readiness(this.node, this.api !== undefined);
  }

  /** Every member's own Status, for the status page (GET /cluster); undefined until the node runs. */
  clusterView(): Promise<ClusterView | undefined> {
    return this.views?.get() ?? Promise.resolve(undefined);
  }

  /** This node's view of the cluster, for /status; undefined until it runs. */
  statusReport(): StatusReport | undefined {
    if (!this.node || !this.book || !this.kv) return undefined;
    return statusReport({ raft: this.node, book: this.book, clusterId: this.clusterId, leaderChanges: this.leaderChanges, store: this.kv });
  }

  get raft(): RaftNode {
    return this.started(this.node);
  }

  get store(): KvStore {
    return this.started(this.kv);
  }

  get service(): KvService {
    return this.started(this.api);
  }

  private async open(): Promise<void> {
    const cfg = this.config;
    const { clock, disk, network, logger: log } = this.deps;
    log.info('starting', {
      // With --restore or --force-new-cluster the cluster is a new one, named once it is made.
      cluster: cfg.clusterId === '' || cfg.restore || cfg.forceNewCluster ? undefined : cfg.clusterId,
      peer_addr: cfg.peerAddr,
      client_addr: cfg.clientAddr,
      peers: cfg.peers.length > 0 ? cfg.peers.map((p) => `${p.id}=${p.address}`).join(',') : undefined,
      join: cfg.join?.join(','),
      data_dir: cfg.dataDir,
      election_timeout_ms: cfg.electionTimeoutMs,
      heartbeat_ms: cfg.heartbeatMs,
      leader_hints: cfg.peers.length > 1 ? (cfg.clientAddrs.size > 1 ? 'on' : 'off (no --client-peers)') : undefined,
      quota_bytes: cfg.quotaBytes,
    });
    if (cfg.unsafeNoFsync) {
      log.warn(
        'UNSAFE: --unsafe-no-fsync is set: writes are acknowledged before they reach the disk; a machine crash or ' +
          'power loss can lose committed data and break Raft safety. For tests and benchmarks only.',
      );
    }
    this.listener = await network.listenClients(cfg.clientAddr);
    if (this.stopping) return;
    // Everything that can refuse the data dir runs before anything is written to it.
    const { logToOpen, clusterId, bootstrap, asked } = await this.identity();
    if (this.stopping) return;
    this.transport = network.peerTransport({
      clusterId,
      self: cfg.id,
      listen: cfg.peerAddr,
      peers: bootstrap.members.map((m) => ({ id: m.id, address: m.peerAddr })),
      log: (line) => (/refused|dropped|failed|lost|mismatch/.test(line) ? log.warn(line) : log.info(line)),
    });
    await this.transport.start();
    if (this.stopping) return;

    const ids = { clusterId, nodeId: cfg.id, formerClusterIds: logToOpen.formerClusterIds };
    const store = (this.kv = new KvStore(() => clock.epochMs(), DEFAULT_LIMITS, undefined, { ...DEFAULT_ADMISSION, maxStateBytes: cfg.quotaBytes }));
    const snapshotter = new Snapshotter({ files: disk.files, ids, store, clock, retain: cfg.snapshotRetain, log: (line) => log.info(line) });
    const file = await snapshotter.latest(logToOpen.snapshot);
    if (this.stopping) return;
    this.storage = this.openLog(logToOpen);
    await snapshotter.restore(this.storage, file);
    if (snapshotter.index > 0) log.info('restored snapshot', { index: snapshotter.index, keys: store.sm.size });
    const book = new AddressBook(store.sm.members || asked ? bootstrap : await this.askAgain(clusterId, bootstrap), () => store.sm.members);
    if (this.stopping) return;
    this.noteStaleFlags(book);
    this.book = book;
    this.clusterId = clusterId;
    const metrics = this.deps.metrics;
    this.node = new RaftNode({
      id: cfg.id,
      // Without --peers (a node that joined): no configuration until the leader's log or snapshot brings one.
      peers: cfg.peers.length > 0 ? cfg.peers.map((p) => p.id) : undefined,
      storage: this.storage,
      transport: this.transport,
      clock,
      seed: this.deps.seed,
      electionTimeoutMs: cfg.electionTimeoutMs,
      heartbeatMs: cfg.heartbeatMs,
      preVote: cfg.protocol?.preVote,
      checkQuorum: cfg.protocol?.checkQuorum,
      handler: store,
      snapshots: snapshotter,
      snapshotPolicy: {
        entries: cfg.snapshotThreshold,
        bytes: cfg.snapshotBytes,
        retain: cfg.snapshotRetain,
        logPerStateByte: SNAPSHOT_LOG_PER_STATE_BYTE,
        lastSnapshotBytes: () => snapshotter.lastBytes,
      },
      peerAddresses: () => book.peers(),
      observer: alongside(alongside(this.logEvents(), metrics?.observer()), this.deps.observer),
      onFatal: (e) => this.fatal(e),
    });
    const started = this.node;
    const transport = this.transport;
    metrics?.attach({
      status: () => started.status(),
      pendingProposals: () => store.pendingProposals,
      proposalsFailed: () => store.proposalsFailed,
      keys: () => store.sm.size,
      bytes: () => store.sm.bytes,
      quotaUsedBytes: () => store.stateBytes(),
      quotaBytes: () => cfg.quotaBytes,
      sessions: () => store.sm.sessionCount,
      snapshotBytes: () => snapshotter.lastBytes,
      peers: () => transport.stats?.() ?? new Map(),
    });
    const st = this.node.status();
    log.info('node started', { term: st.term, last_log_index: st.lastIndex, commit: st.commit });
    // Before clients are served, so no member can be added (and sent a snapshot) before it is done.
    if (logToOpen.formerClusterIds?.length && file?.meta.clusterId !== clusterId) await this.snapshotForked(this.node, st.commit);
    if (this.stopping) return;
    const node = this.node;
    const api = (this.api = new KvService({
      store,
      raft: this.node,
      snapshotIndex: () => snapshotter.index,
      nodeId: cfg.id,
      clusterId,
      book,
      transferTimeoutMs: transferTimeoutMs(cfg),
      probe: (m) => network.probeMember({ clusterId, ...m }),
      forward: (leader, call) => transport.forward(leader, call, forwardTimeoutMs(call.deadline, clock.epochMs())),
      backup: { confAt: (index) => node.confAt(index), slicer: () => clock.slicer() },
      load: metrics && (() => metrics.load()),
    }));
    transport.onForward((call) => api.serveForwarded(call));
    transport.onPeerStatus?.(() => api.statusNow());
    if (transport.peerStatus) {
      const ask = transport.peerStatus.bind(transport);
      this.views = new ClusterViews({ report: () => this.statusReport(), self: () => api.statusNow(), ask, clock, timeoutMs: PEER_STATUS_TIMEOUT_MS });
    }
    this.listener.serve(api, () => this.health());
    log.info('serving clients', { client_addr: cfg.clientAddr });
  }

  /**
   * Which cluster this node is in, and where its members are to start with. A data dir that holds
   * a log says which cluster (unless --cluster-id was given, which it must match); the members
   * then come from the replicated state, once restored, or from --peers until it has a table.
   * An empty data dir: --peers bootstraps a new cluster, --join asks a running one (`asked`).
   */
  private async identity(): Promise<{ logToOpen: LogToOpen; clusterId: string; bootstrap: MemberTable; asked: boolean }> {
    const cfg = this.config;
    const log = this.deps.logger;
    const { disk, clock } = this.deps;
    if (cfg.restore) {
      const restored = await restoreFromBackup({ cfg, disk, clock, logger: log, checkLog: (ids) => this.checkLog(ids) });
      return { ...restored, bootstrap: bootstrapTable(cfg.peers, cfg.clientAddrs), asked: false };
    }
    if (cfg.forceNewCluster) {
      const forced = forceNewCluster({ cfg, disk, logger: log, checkLog: (ids) => this.checkLog(ids) });
      const self = { id: cfg.id, peerAddr: cfg.peerAddr, clientAddr: cfg.clientAddr };
      return { ...forced, bootstrap: { members: [self], removed: [] }, asked: false };
    }
    const logToOpen = this.checkLog({ clusterId: cfg.clusterId, nodeId: cfg.id, adoptStoredClusterId: cfg.clusterIdDerived });
    if (logToOpen.fresh && cfg.join) {
      const joined = await this.ask(cfg.join, true);
      log.info('joining cluster: waiting to be added', { cluster: joined.clusterId, asked: joined.from, members: joined.table.members.map((m) => m.id).join(',') });
      return { logToOpen: this.checkLog({ clusterId: joined.clusterId, nodeId: cfg.id }), clusterId: joined.clusterId, bootstrap: joined.table, asked: true };
    }
    if (logToOpen.fresh && cfg.peers.length === 0) {
      throw new StartError(`${cfg.dataDir} holds no data: a new node needs --peers (to bootstrap a new cluster) or --join (to be added to a running one)`);
    }
    if (cfg.join) log.info('--join: the data dir holds this node\'s state already, so its cluster is the one it holds', { data_dir: cfg.dataDir });
    const clusterId = logToOpen.clusterId ?? cfg.clusterId;
    if (cfg.peers.length > 0 && clusterId !== cfg.clusterId) {
      // --peers was edited since the cluster was created. That is harmless once a snapshot
      // records the configuration; before, the log starts from --peers' voters, which must be
      // the original ones (other voters could elect a second leader). A log forked by
      // --force-new-cluster has a configuration of its own committed (the fork's conf entry),
      // which the node applies before it can campaign.
      if (!logToOpen.snapshot?.conf && !logToOpen.formerClusterIds?.length) {
        throw new StartError(
          `${cfg.dataDir} belongs to cluster ${JSON.stringify(clusterId)}, but --peers describes another (${JSON.stringify(cfg.clusterId)}): ` +
            'this node\'s log still starts from the members --peers listed when the cluster was created. Start it with that --peers ' +
            `list (if only addresses changed: --cluster-id ${clusterId}).`,
        );
      }
      log.info('--peers differs from when the cluster was created: the data dir\'s cluster id and configuration are used', { cluster: clusterId, from_peers: cfg.clusterId });
    }
    return { logToOpen, clusterId, bootstrap: bootstrapTable(cfg.peers, cfg.clientAddrs), asked: false };
  }

  /**
   * A node forked by --force-new-cluster holds snapshot files of its former cluster, which a new
   * member would refuse as another cluster's (and stop): once it has applied the fork (`index`),
   * it takes a snapshot of its new cluster, which replaces them and records the new configuration.
   */
  private async snapshotForked(node: RaftNode, index: number): Promise<void> {
    const log = this.deps.logger;
    await node.awaitApplied(index, 60_000);
    if (this.stopping || node.status().applied < index) return;
    try {
      const meta = await node.snapshot();
      log.info('took a snapshot of the forced cluster: followers receive it rather than the former cluster\'s', { index: meta.index, term: meta.term });
    } catch (e) {
      log.warn('could not take a snapshot of the forced cluster (kv-cli snapshot takes one)', { error: (e as Error).message });
    }
  }

  /**
   * A node that joined and stopped before its snapshot held the members (it was not added yet,
   * or not caught up) knows of no member to take the leader's messages from: it asks its --join
   * endpoints again. Without an answer it starts with none (the log it replays may name them).
   */
  private async askAgain(clusterId: string, bootstrap: MemberTable): Promise<MemberTable> {
    const join = this.config.join;
    if (!join || this.config.peers.length > 0) return bootstrap;
    const log = this.deps.logger;
    try {
      const joined = await this.ask(join, false);
      if (joined.clusterId === clusterId) {
        log.info('the data dir names no members yet: took them from the cluster', { asked: joined.from, members: joined.table.members.map((m) => m.id).join(',') });
        return joined.table;
      }
      log.warn('--join endpoints answer for another cluster than the data dir\'s: not used', { cluster: clusterId, answered: joined.clusterId });
    } catch (e) {
      log.warn('the data dir names no members yet, and --join endpoints did not say: waiting for the leader', { error: (e as Error).message });
    }
    return bootstrap;
  }

  private async ask(endpoints: string[], fresh: boolean): Promise<Joined> {
    const self = { id: this.config.id, peerAddr: this.config.peerAddr, clientAddr: this.config.clientAddr, fresh };
    try {
      return await askToJoin(this.deps.network, this.deps.clock, endpoints, self, () => this.stopping !== undefined, fresh ? JOIN_DEADLINE_MS : ASK_AGAIN_DEADLINE_MS);
    } catch (e) {
      throw new StartError((e as Error).message, { cause: e });
    }
  }

  private checkLog(ids: LogIds): LogToOpen {
    try {
      return this.deps.disk.checkLog(ids);
    } catch (e) {
      throw new StartError(e instanceof Error ? e.message : String(e), { cause: e });
    }
  }

  /** --peers that no longer match the replicated members are worth a note: they are not used. */
  private noteStaleFlags(book: AddressBook): void {
    const cfg = this.config;
    if (cfg.peers.length === 0 || !book.isReplicated) return;
    const flags = cfg.peers.map((p) => `${p.id}=${p.address}`).sort().join(',');
    const replicated = book.peers().map((p) => `${p.id}=${p.address}`).sort().join(',');
    if (flags !== replicated) this.deps.logger.info('--peers differs from the members in the replicated state, which are used', { peers: flags, members: replicated });
  }

  private openLog(log: LogToOpen): Storage {
    try {
      const storage = log.open();
      this.deps.logger.info(log.fresh ? 'created data file' : 'opened data file', { data_dir: this.config.dataDir });
      return storage;
    } catch (e) {
      throw new StartError(e instanceof Error ? e.message : String(e), { cause: e });
    }
  }

  private fatal(e: unknown): void {
    this.deps.logger.error('fatal error; stopping', { error: e instanceof Error ? e.message : String(e) });
    this.stop().then(
      () => this.deps.onFatal(e),
      () => this.deps.onFatal(e),
    );
  }

  /** The node's events as log lines. */
  private logEvents(): RaftObserver {
    const log = this.deps.logger;
    let lastLeader = -1;
    const refusalLogged = new Map<string, number>();
    return {
      leaderChanged: () => void this.leaderChanges++,
      roleChanged: (s) => {
        const fields = { role: s.role, term: s.term, leader: s.leaderId === 0 ? 'none' : s.leaderId };
        if (s.role === 'leader') log.info('became leader', fields);
        else if (s.leaderId !== lastLeader) log.info(s.leaderId === 0 ? 'no leader known' : 'following leader', fields);
        else log.info('role changed', fields);
        lastLeader = s.leaderId;
      },
      quorumLost: (silences) =>
        log.warn('stepped down: heard from too few voters in an election timeout', {
          last_heard: [...silences].map(([id, ms]) => `node ${id} ${Number.isFinite(ms) ? `${Math.round(ms)} ms ago` : 'never'}`).join(', '),
        }),
      snapshotTaken: (meta) => log.info('compacted the log', { snapshot: meta.index, term: meta.term }),
      snapshotSent: (to, meta, bytes) => log.info(`sent snapshot ${meta.index} (${bytes} bytes) to node ${to}`),
      snapshotInstalled: (meta) => log.info(`installed snapshot ${meta.index} from the leader`, { term: meta.term }),
      snapshotFailed: (what, e) => log.warn(`${what} failed`, { error: e instanceof Error ? e.message : String(e) }),
      refused: (m, kind, detail) => {
        // At most one line per kind of refusal a minute: a flood of forgeries must not flood the log.
        const now = this.deps.clock.now();
        if (now - (refusalLogged.get(kind) ?? -Infinity) < 60_000) return;
        refusalLogged.set(kind, now);
        log.warn('refused a peer message', { kind, type: m.type, from: m.from, term: m.term, detail });
      },
    };
  }

  private started<T>(part: T | undefined): T {
    if (part === undefined) throw new Error(`node ${this.config.id} has not started`);
    return part;
  }
}

/** How long a leadership transfer may take: the core gives up after an election timeout, and the new leader needs a moment to be heard of. */
export function transferTimeoutMs(cfg: ServerConfig): number {
  return 2 * cfg.electionTimeoutMs;
}

/** One observer that calls `a`'s listeners, then `b`'s. */
function alongside(a: RaftObserver, b: RaftObserver | undefined): RaftObserver {
  if (!b) return a;
  const both: Record<string, (...args: unknown[]) => void> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof RaftObserver>) {
    const fa = a[key] as ((...args: unknown[]) => void) | undefined;
    const fb = b[key] as ((...args: unknown[]) => void) | undefined;
    both[key] = fa && fb ? (...args) => (fa(...args), fb(...args)) : (fa ?? fb)!;
  }
  return both as RaftObserver;
}
