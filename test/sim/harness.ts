import { seededRng } from '../../src/raft/core/rng.js';
import { SimCluster, SimFailure } from './cluster.js';

/** The lab's RaftElectionTimeout: the unit its tests sleep in (our own election timeout is shorter). */
export const LAB_ELECTION_TIMEOUT = 1000;

/**
 * What the lab's checks need from a cluster, simulated or real: servers are 0-based, and an
 * applied log records every command a server's state machine has applied, by index.
 */
export interface LabCluster {
  readonly n: number;
  /** Milliseconds on the cluster's clock (virtual in the simulator). */
  readonly now: number;
  sleep(ms: number): void | Promise<void>;
  alive(i: number): boolean;
  connected(i: number): boolean;
  connect(i: number): void;
  disconnect(i: number): void;
  crash(i: number): void | Promise<void>;
  restart(i: number): void | Promise<void>;
  propose(i: number, cmd: string): { ok: boolean; index: number; term: number };
  term(i: number): number;
  isLeader(i: number): boolean;
  applied(i: number): readonly (string | undefined)[];
}

/**
 * The Raft lab's test configuration (config.go), written once over a LabCluster: "up" means
 * alive and connected, crash() also disconnects, and start() restarts a server still
 * disconnected, as in the lab.
 */
export class Harness {
  private readonly rng;

  constructor(
    readonly cluster: LabCluster,
    seed: number,
  ) {
    this.rng = seededRng(seed ^ 0xa11ce);
  }

  /** How many servers there are (membership scenarios start more). */
  get n(): number {
    return this.cluster.n;
  }

  /** The simulator behind this harness, for scenarios that need its fault injection. */
  get sim(): SimCluster {
    if (!(this.cluster instanceof SimCluster)) throw new Error('this scenario needs the simulator');
    return this.cluster;
  }

  /** Scenario randomness, from the run's seed. */
  rand(n: number): number {
    return this.rng.int(n);
  }

  fail(message: string): never {
    throw new SimFailure(message);
  }

  async sleep(ms: number): Promise<void> {
    await this.cluster.sleep(ms);
  }

  get now(): number {
    return this.cluster.now;
  }

  up(i: number): boolean {
    return this.cluster.alive(i) && this.cluster.connected(i);
  }

  alive(i: number): boolean {
    return this.cluster.alive(i);
  }

  connected(i: number): boolean {
    return this.cluster.connected(i);
  }

  connect(i: number): void {
    this.cluster.connect(i);
  }

  disconnect(i: number): void {
    this.cluster.disconnect(i);
  }

  async crash(i: number): Promise<void> {
    this.cluster.disconnect(i);
    await this.cluster.crash(i);
  }

  async start(i: number): Promise<void> {
    await this.cluster.restart(i);
  }

  propose(i: number, cmd: string): { ok: boolean; index: number; term: number } {
    return this.cluster.propose(i, cmd);
  }

  setUnreliable(unreliable: boolean): void {
    this.sim.faults.reliable = !unreliable;
  }

  setLongReordering(on: boolean): void {
    this.sim.faults.longReordering = on;
  }

  term(i: number): number {
    return this.cluster.term(i);
  }

  isLeader(i: number): boolean {
    return this.cluster.isLeader(i);
  }

  /** Polls for a single leader among the up servers for up to ~5 s; returns it. */
  async checkOneLeader(): Promise<number> {
    for (let iter = 0; iter < 10; iter++) {
      await this.sleep(450 + this.rand(100));
      const leaders = new Map<number, number[]>();
      for (let i = 0; i < this.n; i++) {
        if (this.up(i) && this.isLeader(i)) {
          const t = this.term(i);
          leaders.set(t, [...(leaders.get(t) ?? []), i]);
        }
      }
      let last = -1;
      for (const [t, ls] of leaders) {
        if (ls.length > 1) this.fail(`term ${t} has ${ls.length} (>1) leaders`);
        last = Math.max(last, t);
      }
      if (last >= 0) return leaders.get(last)![0]!;
    }
    this.fail('expected one leader, got none');
  }

  checkTerms(): number {
    let term = -1;
    for (let i = 0; i < this.n; i++) {
      if (!this.up(i)) continue;
      if (term === -1) term = this.term(i);
      else if (term !== this.term(i)) this.fail('servers disagree on term');
    }
    return term;
  }

  checkNoLeader(): void {
    for (let i = 0; i < this.n; i++) {
      if (this.up(i) && this.isLeader(i)) this.fail(`expected no leader among connected servers, but ${i} claims to be leader`);
    }
  }

  /** How many servers think the entry at index is committed, and its command (they must agree). */
  nCommitted(index: number): { count: number; cmd: string | undefined } {
    let count = 0;
    let cmd: string | undefined;
    for (let i = 0; i < this.n; i++) {
      const v = this.cluster.applied(i)[index];
      if (v === undefined) continue;
      if (count > 0 && v !== cmd) this.fail(`committed values do not match: index ${index}, ${cmd}, ${v}`);
      count++;
      cmd = v;
    }
    return { count, cmd };
  }

  /** Proposes cmd and waits until `expected` servers committed it; returns its index. */
  async one(cmd: string, expected: number, retry = false): Promise<number> {
    return (await this.oneMany([cmd], expected, retry))[0]!;
  }

  /**
   * The lab's one(), for several commands in flight at once (its concurrent callers): each is
   * proposed to some leader and re-proposed (if retry) when not committed within 2 s; all must
   * be committed on `expected` servers within 10 s.
   */
  async oneMany(cmds: string[], expected: number, retry = false): Promise<number[]> {
    const t0 = this.now;
    const pending = cmds.map((cmd) => ({ cmd, index: -1, since: 0, done: false }));
    let starts = 0;
    while (this.now - t0 < 10_000) {
      let waiting = false;
      let leaderless = false;
      for (const p of pending) {
        if (p.done) continue;
        waiting = true;
        if (p.index >= 0) {
          const { count, cmd } = this.nCommitted(p.index);
          if (count > 0 && count >= expected && cmd === p.cmd) {
            p.done = true;
            continue;
          }
          if (this.now - p.since < 2000) continue;
          if (!retry) this.fail(`one(${p.cmd}) failed to reach agreement`);
        }
        p.index = -1;
        for (let k = 0; k < this.n && p.index < 0; k++) {
          starts = (starts + 1) % this.n;
          if (!this.up(starts)) continue;
          const r = this.propose(starts, p.cmd);
          if (r.ok) {
            p.index = r.index;
            p.since = this.now;
          }
        }
        if (p.index < 0) leaderless = true;
      }
      if (!waiting) return pending.map((p) => p.index);
      await this.sleep(leaderless ? 50 : 20);
    }
    const late = pending.filter((p) => !p.done).map((p) => p.cmd);
    this.fail(`one(${late.join(',')}) failed to reach agreement within 10 s`);
  }

  /** Waits for at least n servers to commit index; undefined if some server moved past startTerm. */
  async wait(index: number, n: number, startTerm: number): Promise<string | undefined> {
    let to = 10;
    for (let iter = 0; iter < 30; iter++) {
      if (this.nCommitted(index).count >= n) break;
      await this.sleep(to);
      if (to < 1000) to *= 2;
      if (startTerm > -1) {
        for (let i = 0; i < this.n; i++) if (this.alive(i) && this.term(i) > startTerm) return undefined;
      }
    }
    const { count, cmd } = this.nCommitted(index);
    if (count < n) this.fail(`only ${count} decided for index ${index}; wanted ${n}`);
    return cmd;
  }

  /** The highest index any server has applied. */
  maxApplied(): number {
    let max = 0;
    for (let i = 0; i < this.n; i++) max = Math.max(max, this.cluster.applied(i).length - 1);
    return max;
  }
}
