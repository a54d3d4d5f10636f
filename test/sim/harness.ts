import { seededRng } from '../../src/raft/core/rng.js';
import { SimCluster, SimFailure, type SimOptions } from './cluster.js';

/** The lab's RaftElectionTimeout: the unit its tests sleep in (our own election timeout is shorter). */
export const LAB_ELECTION_TIMEOUT = 1000;

/**
 * The Raft lab's test configuration (config.go) re-expressed on the simulator: servers are
 * 0-based, "up" means alive and connected, crash() also disconnects and start() restarts a
 * server still disconnected, as in the lab.
 */
export class Harness {
  readonly sim: SimCluster;
  readonly n: number;
  private readonly rng;

  constructor(options: SimOptions) {
    this.sim = new SimCluster(options);
    this.n = options.nodes;
    this.rng = seededRng(options.seed ^ 0xa11ce);
  }

  /** Scenario randomness, from the run's seed. */
  rand(n: number): number {
    return this.rng.int(n);
  }

  fail(message: string): never {
    throw new SimFailure(message);
  }

  sleep(ms: number): void {
    this.sim.sleep(ms);
  }

  up(i: number): boolean {
    return this.sim.alive(i) && this.sim.connected(i);
  }

  connect(i: number): void {
    this.sim.connect(i);
  }

  disconnect(i: number): void {
    this.sim.disconnect(i);
  }

  crash(i: number): void {
    this.sim.disconnect(i);
    this.sim.crash(i);
  }

  start(i: number): void {
    this.sim.restart(i);
  }

  propose(i: number, cmd: string): { ok: boolean; index: number; term: number } {
    return this.sim.propose(i, cmd);
  }

  setUnreliable(unreliable: boolean): void {
    this.sim.faults.reliable = !unreliable;
  }

  setLongReordering(on: boolean): void {
    this.sim.faults.longReordering = on;
  }

  term(i: number): number {
    return this.sim.nodes[i]!.raft?.term ?? -1;
  }

  isLeader(i: number): boolean {
    return this.sim.nodes[i]!.raft?.role === 'leader';
  }

  /** Polls for a single leader among the up servers for up to ~5 s; returns it. */
  checkOneLeader(): number {
    for (let iter = 0; iter < 10; iter++) {
      this.sleep(450 + this.rand(100));
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
    for (const node of this.sim.nodes) {
      const v = node.applied[index];
      if (v === undefined) continue;
      if (count > 0 && v !== cmd) this.fail(`committed values do not match: index ${index}, ${cmd}, ${v}`);
      count++;
      cmd = v;
    }
    return { count, cmd };
  }

  /** Proposes cmd and waits until `expected` servers committed it; returns its index. */
  one(cmd: string, expected: number, retry = false): number {
    return this.oneMany([cmd], expected, retry)[0]!;
  }

  /**
   * The lab's one(), for several commands in flight at once (its concurrent callers): each is
   * proposed to some leader and re-proposed (if retry) when not committed within 2 s; all must
   * be committed on `expected` servers within 10 s.
   */
  oneMany(cmds: string[], expected: number, retry = false): number[] {
    const t0 = this.sim.now;
    const pending = cmds.map((cmd) => ({ cmd, index: -1, since: 0, done: false }));
    let starts = 0;
    while (this.sim.now - t0 < 10_000) {
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
          if (this.sim.now - p.since < 2000) continue;
          if (!retry) this.fail(`one(${p.cmd}) failed to reach agreement`);
        }
        p.index = -1;
        for (let k = 0; k < this.n && p.index < 0; k++) {
          starts = (starts + 1) % this.n;
          if (!this.up(starts)) continue;
          const r = this.propose(starts, p.cmd);
          if (r.ok) {
            p.index = r.index;
            p.since = this.sim.now;
          }
        }
        if (p.index < 0) leaderless = true;
      }
      if (!waiting) return pending.map((p) => p.index);
      this.sleep(leaderless ? 50 : 20);
    }
    const late = pending.filter((p) => !p.done).map((p) => p.cmd);
    this.fail(`one(${late.join(',')}) failed to reach agreement within 10 s`);
  }

  /** Waits for at least n servers to commit index; undefined if some server moved past startTerm. */
  wait(index: number, n: number, startTerm: number): string | undefined {
    let to = 10;
    for (let iter = 0; iter < 30; iter++) {
      if (this.nCommitted(index).count >= n) break;
      this.sleep(to);
      if (to < 1000) to *= 2;
      if (startTerm > -1) {
        for (let i = 0; i < this.n; i++) if (this.sim.alive(i) && this.term(i) > startTerm) return undefined;
      }
    }
    const { count, cmd } = this.nCommitted(index);
    if (count < n) this.fail(`only ${count} decided for index ${index}; wanted ${n}`);
    return cmd;
  }

  /** The highest index any server has applied. */
  maxApplied(): number {
    return Math.max(...this.sim.nodes.map((n) => n.applied.length - 1), 0);
  }
}
