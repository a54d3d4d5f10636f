/**
 * The clients of the real-process fault tests. Register clients do puts, appends,
 * compare-and-swaps and gets on a few shared keys; readers only get them, each knowing one node
 * (so that a node which answers reads it may not answer keeps its reader, instead of the reader
 * moving to the leader after its first write); ledger writers put distinct keys, once each, so
 * that every acknowledged one can be looked for afterwards, in the cluster and on disk. Each
 * client is its own KvClient with its own deadline, and every call is recorded for the
 * linearizability checker: a write that fails is left without a response (it may still take
 * effect), and its client continues under a new id, as Jepsen does with a crashed process. A
 * failed get is left out: it changed nothing and showed nothing.
 */
import { KvClient, type ClientTls } from '../../src/index.js';
import { seededRng } from '../../src/raft/core/rng.js';
import { HistoryRecorder, type KvInput, type KvOutput } from '../support/linearizability.js';
import { sleep } from './cluster.js';

export interface WorkloadOptions {
  endpoints: string[];
  seed: number;
  /** Clients on the shared keys. */
  registerClients: number;
  /** One read-only client per entry, given only that node's address (it follows leader hints). */
  readerEndpoints: string[];
  /** Shared keys: x0, x1, ... */
  keys: number;
  ledgerWriters: number;
  /** Each client's deadline per call is drawn from [lo, hi] ms. */
  timeoutMs: readonly [number, number];
  /** Pause between a client's calls, drawn from [0, thinkMs] ms: keeps the history checkable. */
  thinkMs: number;
  /** TLS to the nodes (the SDK's option); plaintext without. */
  tls?: ClientTls;
}

export interface WorkloadFigures {
  invoked: number;
  ok: number;
  /** Writes without an answer (outcome unknown). */
  indeterminate: number;
  failedReads: number;
  /** Acknowledged writes (shared keys and ledger). */
  ackedWrites: number;
  ledgerAcked: number;
  /** Errors the clients saw, by name. */
  errors: Record<string, number>;
}

export class Workload {
  readonly history = new HistoryRecorder();
  /** Ledger keys (`w<n>`, value `v-w<n>`) whose put was acknowledged. */
  readonly ledgerAcked = new Set<string>();
  private ledgerNext = 0;
  private readonly figures: WorkloadFigures = { invoked: 0, ok: 0, indeterminate: 0, failedReads: 0, ackedWrites: 0, ledgerAcked: 0, errors: {} };
  private readonly started = performance.now();
  private nextClientId = 0;
  private stopping = false;
  private workers: Promise<void>[] = [];

  constructor(private readonly opts: WorkloadOptions) {}

  private tlsOption(): { tls?: ClientTls } {
    return this.opts.tls ? { tls: this.opts.tls } : {};
  }

  start(): void {
    const { registerClients, ledgerWriters } = this.opts;
    for (let i = 0; i < registerClients; i++) this.workers.push(this.withClient(i, (c, rng) => this.registerLoop(c, rng, i)));
    for (let i = 0; i < ledgerWriters; i++) this.workers.push(this.withClient(registerClients + i, (c) => this.ledgerLoop(c)));
    this.opts.readerEndpoints.forEach((endpoint, i) => {
      this.workers.push(this.withClient(registerClients + ledgerWriters + i, (c, rng) => this.readerLoop(c, rng), [endpoint]));
    });
  }

  /** Lets every client finish its call in progress (each has a deadline), then closes them. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  get ackedWrites(): number {
    return this.figures.ackedWrites;
  }

  snapshot(): WorkloadFigures {
    return { ...this.figures, ledgerAcked: this.ledgerAcked.size, errors: { ...this.figures.errors } };
  }

  /** Clients running (each its own KvClient). */
  get clients(): number {
    return this.opts.registerClients + this.opts.ledgerWriters + this.opts.readerEndpoints.length;
  }

  /**
   * Over [fromMs, toMs] of the history's clock (now()): the calls that succeeded, and the longest
   * stretch without one (from the start of the window to the first, between two, or from the last
   * to the end of the window), and when that stretch began. `unseen(from, to)`: how much of a
   * stretch this process could not have seen an answer in (its event loop was blocked), taken
   * off its length.
   */
  successesBetween(
    fromMs: number,
    toMs: number,
    unseen: (from: number, to: number) => number = () => 0,
  ): { ok: number; longestGapMs: number; gapFromMs: number; gapToMs: number } {
    const done = this.history
      .operations()
      .map((o) => o.ret)
      .filter((t) => t >= fromMs && t <= toMs)
      .sort((a, b) => a - b);
    let longestGapMs = 0;
    let gap = { gapFromMs: fromMs, gapToMs: fromMs };
    let last = fromMs;
    for (const t of [...done, toMs]) {
      const ms = t - last - unseen(last, t);
      if (ms > longestGapMs) [longestGapMs, gap] = [ms, { gapFromMs: last, gapToMs: t }];
      last = t;
    }
    return { ok: done.length, longestGapMs: Math.round(longestGapMs), ...gap };
  }

  /** ms since the workload began, to 10 µs: the clock of its history (rounding can only make calls look concurrent). */
  now(): number {
    return Math.round((performance.now() - this.started) * 100) / 100;
  }

  /**
   * Reads every shared key and every ledger key ever written back through the cluster, 64 at a
   * time, into the history; returns the acknowledged ledger keys that do not read back as written,
   * and the shared keys' values.
   */
  async readBack(timeoutMs = 20_000): Promise<{ lost: string[]; shared: Map<string, string | undefined> }> {
    const client = new KvClient({ endpoints: this.opts.endpoints, timeoutMs, ...this.tlsOption() });
    const shared = new Map<string, string | undefined>();
    const lost: string[] = [];
    try {
      const keys = [...Array.from({ length: this.opts.keys }, (_, i) => `x${i}`), ...Array.from({ length: this.ledgerNext }, (_, i) => `w${i}`)];
      for (let i = 0; i < keys.length; i += 64) {
        await Promise.all(
          keys.slice(i, i + 64).map(async (key) => {
            const t0 = this.now();
            const value = await client.get(key);
            this.history.complete(this.history.invoke(this.newClientId(), { op: 'get', key }, t0), { value }, this.now());
            if (key.startsWith('x')) shared.set(key, value);
            else if (this.ledgerAcked.has(key) && value !== `v-${key}`) lost.push(key);
          }),
        );
      }
    } finally {
      client.close();
    }
    return { lost, shared };
  }

  // -------------------------------------------------------------------------------------------

  private async withClient(
    index: number,
    loop: (c: KvClient, rng: ReturnType<typeof seededRng>) => Promise<void>,
    endpoints = this.opts.endpoints,
  ): Promise<void> {
    const rng = seededRng(this.opts.seed * 1009 + index + 1);
    const [lo, hi] = this.opts.timeoutMs;
    const client = new KvClient({ endpoints, timeoutMs: lo + rng.int(hi - lo + 1), ...this.tlsOption() });
    try {
      await loop(client, rng);
    } finally {
      client.close();
    }
  }

  private async registerLoop(client: KvClient, rng: ReturnType<typeof seededRng>, index: number): Promise<void> {
    let id = this.newClientId();
    /** The last value this client saw per key: what its compare-and-swaps expect. */
    const seen = new Map<string, string>();
    for (let n = 0; !this.stopping; n++) {
      const key = `x${rng.int(this.opts.keys)}`;
      const token = `${index}.${n}`;
      const dice = rng.next();
      let ok: boolean;
      if (dice < 0.4) {
        ok = await this.record(id, { op: 'get', key }, async () => {
          const value = await client.get(key);
          if (value !== undefined) seen.set(key, value);
          return { value };
        });
      } else if (dice < 0.6) {
        ok = await this.record(id, { op: 'put', key, value: token }, async () => {
          await client.put(key, token);
          seen.set(key, token);
          return {};
        });
      } else if (dice < 0.9) {
        ok = await this.record(id, { op: 'append', key, value: `/${token}` }, async () => (await client.append(key, `/${token}`), {}));
      } else {
        const expected = seen.get(key) ?? 'nothing';
        ok = await this.record(id, { op: 'cas', key, expected, value: token }, async () => {
          const swapped = await client.cas(key, expected, token);
          if (swapped) seen.set(key, token);
          return { ok: swapped };
        });
      }
      if (!ok) id = this.newClientId();
      await sleep(rng.int(this.opts.thinkMs + 1));
    }
  }

  private async readerLoop(client: KvClient, rng: ReturnType<typeof seededRng>): Promise<void> {
    while (!this.stopping) {
      const key = `x${rng.int(this.opts.keys)}`;
      await this.record(this.newClientId(), { op: 'get', key }, async () => ({ value: await client.get(key) }));
      await sleep(rng.int(this.opts.thinkMs + 1));
    }
  }

  private async ledgerLoop(client: KvClient): Promise<void> {
    let id = this.newClientId();
    while (!this.stopping) {
      const key = `w${this.ledgerNext++}`;
      const ok = await this.record(id, { op: 'put', key, value: `v-${key}` }, async () => (await client.put(key, `v-${key}`), {}));
      if (ok) this.ledgerAcked.add(key);
      else id = this.newClientId();
    }
  }

  /**
   * Makes one call and records it. Returns false when a write's outcome is unknown (the caller
   * then continues under a new client id); a failed get returns true and is not recorded.
   */
  private async record(clientId: number, input: KvInput, call: () => Promise<KvOutput>): Promise<boolean> {
    this.figures.invoked++;
    const isRead = input.op === 'get';
    const t0 = this.now();
    const id = isRead ? undefined : this.history.invoke(clientId, input, t0);
    try {
      const output = await call();
      const t1 = this.now();
      this.history.complete(id ?? this.history.invoke(clientId, input, t0), output, t1);
      this.figures.ok++;
      if (!isRead) this.figures.ackedWrites++;
      return true;
    } catch (e) {
      const name = (e as Error).name ?? 'Error';
      this.figures.errors[name] = (this.figures.errors[name] ?? 0) + 1;
      if (isRead) this.figures.failedReads++;
      else this.figures.indeterminate++;
      return isRead;
    }
  }

  private newClientId(): number {
    return this.nextClientId++;
  }
}
