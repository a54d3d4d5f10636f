import { randomInt } from 'node:crypto';
import { Raft, type RaftStatus } from './core/raft.js';
import { seededRng } from './core/rng.js';
import type { Entry, NodeId, Ready } from './core/types.js';
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
  /** Receives one line per notable event (role changes); silent by default. */
  log?: (line: string) => void;
  /** Where committed entries and read confirmations go; by default the committed() stream. */
  handler?: ReadyHandler;
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
 * clock, and runs the Ready loop in the obligatory order persist → send → apply → advance, once
 * per event-loop turn, so everything that arrived in one turn shares one durable write.
 */
export class RaftNode implements ReplicatedLog {
  readonly id: NodeId;
  private readonly raft: Raft;
  private readonly storage: Storage;
  private readonly transport: Transport;
  private readonly log: (line: string) => void;
  private readonly ticker: NodeJS.Timeout;
  private readonly stream = new ApplyStream();
  private readonly handler: ReadyHandler;
  private scheduled = false;
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
    this.raft = new Raft({
      id: opts.id,
      peers: opts.peers,
      electionTick,
      heartbeatTick,
      rng: seededRng(opts.seed ?? randomInt(2 ** 31)),
      hardState,
      entries,
      snapshot,
    });
    this.transport.onMessage((m) => {
      if (this.stopped) return;
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
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.processReady();
    });
  }

  private processReady(): void {
    while (this.raft.hasReady()) {
      const rd = this.raft.ready();
      // Real nodes do not compact yet, so no leader sends snapshots; fail loudly rather than guess.
      if (rd.snapshot) throw new Error(`node ${this.id}: received snapshot ${rd.snapshot.index}, but installing snapshots is not implemented`);
      // Persist before speaking: votes and acknowledgements below depend on this write.
      this.storage.save(rd.hardState, rd.entries);
      for (const m of rd.messages) this.transport.send(m);
      for (const e of rd.committedEntries) this.handler.applied(e);
      for (const rs of rd.readStates) this.handler.readConfirmed(rs);
      if (rd.softState && rd.softState.role !== 'leader') this.handler.leadershipLost(rd.softState.leaderId);
      this.logChanges(rd);
      this.raft.advance(rd);
    }
  }

  private logChanges(rd: Ready): void {
    if (rd.softState) {
      const { role, leaderId } = rd.softState;
      this.log(`node ${this.id}: ${role} in term ${this.raft.term}${leaderId ? `, leader ${leaderId}` : ''}`);
    }
  }
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
