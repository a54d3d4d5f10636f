import { randomInt } from 'node:crypto';
import { Raft, type RaftStatus } from './core/raft.js';
import { seededRng } from './core/rng.js';
import type { Entry, Message, NodeId, Ready, SnapshotMeta } from './core/types.js';
import type { ReadState } from './core/read-index.js';
import type { ReadyHandler, ReplicatedLog } from './replicated-log.js';
import type { Storage } from './storage/storage.js';
import type { Transport } from './transport/transport.js';

export interface RaftNodeOptions {
  id: NodeId;
  /** Every voting member, this node included. */
  peers: readonly NodeId[];
  storage: Storage;
  transport: Transport;
  /** Base election timeout; each term draws one in [t, 2t). Default 300 ms: survives 10–50 ms disk stalls. */
  electionTimeoutMs?: number;
  /** Default 50 ms. */
  heartbeatMs?: number;
  /** Clock resolution. Default 10 ms. */
  tickMs?: number;
  /** Seeds the election-timeout jitter; random by default. */
  seed?: number;
  /** Receives one line per notable event; silent by default. */
  log?: (line: string, kind: LogKind) => void;
  /** Where committed entries and read confirmations go; by default the committed() stream. */
  handler?: ReadyHandler;
  /**
   * This node's data was lost and it rejoins its cluster empty (kv-server --join): it stays out
   * of elections until a leader contacts it (see RaftConfig.joining). Ignored once the node has
   * a term on disk, i.e. after that first contact.
   */
  joining?: boolean;
  /** The state machine's snapshots; without it the node never compacts and refuses installs. */
  snapshots?: SnapshotStore;
  /** Called once if the node hits an error it cannot continue after (a failed disk write); the node has stopped. Default: throw. */
  onFatal?: (error: unknown) => void;
}

export type LogKind = 'role' | 'snapshot' | 'fatal';

/** Where the state machine keeps its snapshots, for sending to and receiving from peers. */
export interface SnapshotStore {
  /** The bytes of this node's snapshot at `meta`, to stream to a follower. */
  read(meta: SnapshotMeta): Promise<Uint8Array>;
  /**
   * A snapshot received from the leader: make it durable and restore the state machine from it.
   * Resolves once durable; the node records it in its log only then.
   */
  install(meta: SnapshotMeta, data: Uint8Array): Promise<void>;
}

export interface NodeState {
  term: number;
  isLeader: boolean;
  leaderId: NodeId;
}

export interface StartResult {
  index: number;
  term: number;
  isLeader: boolean;
}

/**
 * A Raft core made into a running node: it owns the core, a Storage, a Transport and a real
 * clock, and runs the Ready loop: send what depends on nothing unflushed → write → apply what is
 * committed → flush → send the rest → advance. One Ready is in flight at a time; whatever arrives
 * while its write is being flushed waits for the next one, so a busy node makes one flush per
 * round of messages (group commit).
 */
export class RaftNode implements ReplicatedLog {
  readonly id: NodeId;
  private readonly raft: Raft;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly log: (line: string, kind: LogKind) => void;
  private readonly ticker: NodeJS.Timeout;
  private readonly stream = new ApplyStream();
  private readonly handler: ReadyHandler;
  private readonly snapshots: SnapshotStore | undefined;
  private readonly onFatal: (error: unknown) => void;
  /** The term and vote last made durable: a Ready that changes neither, and adds no entries, needs no sync. */
  private durable: { term: number; vote: NodeId };
  /** The latest snapshot received from the leader, until the core hands it back to install. */
  private incoming: { m: Message; data: Uint8Array } | undefined;
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
    this.log = opts.log ?? (() => {});
    this.handler = opts.handler ?? this.stream;
    this.snapshots = opts.snapshots;
    this.onFatal = opts.onFatal ?? ((e) => process.nextTick(() => { throw e; }));
    this.durable = { term: hardState.term, vote: hardState.vote };
    this.raft = new Raft({
      id: opts.id,
      peers: opts.peers,
      electionTick,
      heartbeatTick,
      rng: seededRng(opts.seed ?? randomInt(2 ** 31)),
      hardState,
      entries,
      snapshot,
      joining: opts.joining === true && hardState.term === 0,
    });
    this.transport.onMessage((m) => {
      if (this.stopped) return;
      this.raft.step(m);
      this.schedule();
    });
    this.transport.onSnapshot((m, data) => {
      if (this.stopped || !this.snapshots) return;
      this.incoming = { m, data };
      this.raft.step(m);
      this.schedule();
    });
    this.ticker = setInterval(() => {
      this.raft.tick();
      this.schedule();
    }, tickMs);
  }

  /** The lab's Start(): proposes a command, durable and replicated in the background if this node leads. */
  start(command: Uint8Array): StartResult {
    const r = this.propose(command);
    return r ? { ...r, isLeader: true } : { index: -1, term: this.raft.term, isLeader: false };
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
    this.schedule();
    return true;
  }

  /**
   * The state machine's snapshot covering `snapshot` (an applied entry) is durable: compact the
   * log up to it, keeping the last `retain` entries for followers that are only a little behind.
   * False if the node already holds a snapshot at least as new.
   */
  compact(snapshot: SnapshotMeta, retain: number): boolean {
    if (this.stopped || !this.raft.compact(snapshot, retain)) return false;
    this.storage.compact(snapshot, Math.max(snapshot.index - retain, 0));
    return true;
  }

  leaderId(): NodeId {
    return this.raft.leaderId;
  }

  getState(): NodeState {
    return { term: this.raft.term, isLeader: this.raft.role === 'leader', leaderId: this.raft.leaderId };
  }

  status(): RaftStatus {
    return this.raft.status();
  }

  /**
   * Committed entries in log order, each once (no-ops included: state machines skip them), when
   * no handler was given. One consumer.
   */
  committed(): AsyncIterable<Entry> {
    return this.stream;
  }

  /** Stops ticking and handling messages, then closes the transport and the storage. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    this.stream.end();
    await this.transport.close();
    this.storage.close();
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
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
      for (const e of rd.committedEntries) this.handler.applied(e);
      for (const rs of rd.readStates) this.handler.readConfirmed(rs);
      if (rd.softState && rd.softState.role !== 'leader') this.handler.leadershipLost(rd.softState.leaderId);
      if (this.needsSync(rd)) await this.storage.sync();
      if (this.stopped) return;
      for (const m of late) this.send(m);
      this.logChanges(rd);
      this.raft.advance(rd);
    }
  }

  /** New entries, or a new term or vote, must be durable before the messages that depend on them; a commit index need not. */
  private needsSync(rd: Ready): boolean {
    const hs = rd.hardState;
    const changed = hs !== undefined && (hs.term !== this.durable.term || hs.vote !== this.durable.vote);
    if (changed) this.durable = { term: hs.term, vote: hs.vote };
    return changed || rd.entries.length > 0;
  }

  private send(m: Message): void {
    if (m.type === 'snap') void this.sendSnapshot(m);
    else this.transport.send(m);
  }

  /** Streams our snapshot to a follower beside the snap message, and tells the core how it went. */
  private async sendSnapshot(m: Message): Promise<void> {
    let ok = false;
    try {
      if (!this.snapshots) throw new Error('this node keeps no snapshots');
      const data = await this.snapshots.read({ index: m.index, term: m.logTerm });
      await this.transport.sendSnapshot(m, data);
      ok = true;
      this.log(`node ${this.id}: sent snapshot ${m.index} (${data.length} bytes) to node ${m.to}`, 'snapshot');
    } catch (e) {
      this.log(`node ${this.id}: snapshot ${m.index} to node ${m.to} failed: ${(e as Error).message}`, 'snapshot');
    }
    if (this.stopped) return;
    this.raft.reportSnapshot(m.to, ok);
    this.schedule();
  }

  /** The core accepted a snapshot from the leader: durable first, then it replaces our log. */
  private async install(meta: SnapshotMeta): Promise<void> {
    const got = this.incoming;
    if (!this.snapshots || !got || got.m.index !== meta.index || got.m.logTerm !== meta.term) {
      throw new Error(`node ${this.id}: must install snapshot ${meta.index}/${meta.term}, but holds no such snapshot`);
    }
    this.incoming = undefined;
    await this.snapshots.install(meta, got.data);
    if (this.stopped) return;
    this.storage.installSnapshot(meta);
    this.log(`node ${this.id}: installed snapshot ${meta.index} from the leader`, 'snapshot');
  }

  /** A failed disk write leaves the disk's state unknown: stop rather than risk acting on it. */
  private fail(e: unknown): void {
    if (this.stopped) return;
    this.log(`node ${this.id}: fatal: ${(e as Error).message ?? String(e)}`, 'fatal');
    void this.stop().catch(() => undefined);
    this.onFatal(e);
  }

  private logChanges(rd: Ready): void {
    if (rd.softState) {
      const { role, leaderId } = rd.softState;
      this.log(`node ${this.id}: ${role} in term ${this.raft.term}${leaderId ? `, leader ${leaderId}` : ''}`, 'role');
    }
  }
}

/** Messages only a leader sends. */
function isLeaderMessage(m: Message): boolean {
  return m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
}

/** An unbounded single-consumer queue that ends cleanly: the default apply stream. */
class ApplyStream implements AsyncIterable<Entry>, ReadyHandler {
  private readonly items: Entry[] = [];
  private head = 0;
  private waiter: (() => void) | undefined;
  private done = false;

  applied(e: Entry): void {
    this.items.push(e);
    this.wake();
  }

  readConfirmed(_rs: ReadState): void {}

  leadershipLost(): void {}

  end(): void {
    this.done = true;
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Entry> {
    for (;;) {
      while (this.head < this.items.length) {
        const e = this.items[this.head]!;
        this.items[this.head++] = undefined as unknown as Entry;
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items.splice(0, this.head);
          this.head = 0;
        }
        yield e;
      }
      if (this.done) return;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
