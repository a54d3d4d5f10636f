/**
 * The Raft lab's KV tests (part 3A) on the simulator: every node incarnation runs a KvStore
 * (the same code as kv-server), and simulated clerks send Get/Put/Append to the servers over the
 * simulated network, retrying like the lab's Clerk. Every operation goes into a history that
 * must be linearizable.
 *
 * Client network model: a request and its reply are callbacks scheduled with `sim.at`. Each is
 * dropped if, when sent or when it arrives, the server is crashed (or was restarted since the
 * request reached it), disconnected, or not among the servers the clerk is connected to (the
 * lab's makeClient(to) / ConnectClient: server partitions do not cut clerks off, as in the lab;
 * OnePartition connects its clerks to one side only). With `faults.reliable = false`, 10% of
 * requests and 10% of replies are lost and each takes 0–26 ms; otherwise 1 ms. With
 * `faults.duplicateRate`, requests are sometimes delivered twice.
 */
import { seededRng } from '../../src/raft/core/rng.js';
import type { CasResponse, GetResponse } from '../../src/kv-api.js';
import type { KvService, ServiceError } from '../../src/server/kv-service.js';
import { CallStream, CODE_NUMBERS } from '../../src/server/call-stream.js';
import type { Call__Output } from '../../src/generated/raftkv/kv/Call.js';
import type { Refusal } from '../../src/generated/raftkv/kv/Refusal.js';
import {
  checkLinearizable,
  formatCounterexample,
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  type Operation,
} from '../support/linearizability.js';
import { SimFailure, type SimCluster } from './cluster.js';
import { LAB_ELECTION_TIMEOUT as ET, type Harness } from './harness.js';
import type { Scenario } from './scenarios.js';

/** How long a clerk waits for a reply before trying the next server (virtual ms). */
export const CLERK_TIMEOUT_MS = 100;
/** A pause after a full cycle of servers that all said "not leader": no hot loop during elections. */
const CLERK_BACKOFF_MS = 20;
/** How long a scenario waits for one of its own (blocking) operations before failing. */
const OP_LIMIT_MS = 60_000;
/**
 * Search steps the final linearizability check may take; hitting the limit fails the run (see
 * checkHistory). Steps, not time: under a wall-clock limit a history near it passed or failed with
 * the machine's load (ClientsCutFromLeader seed 370: unfinished after 20 s on a busy machine, done
 * within 20 million steps), and a seed must replay exactly. 50 million take about a minute.
 */
const CHECK_STEP_LIMIT = 50_000_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- clerks ------------------------------------------------------------------------------------

interface PendingOp {
  readonly input: KvInput;
  readonly historyId: number;
  /** Writes: the session seq, the same on every retry. */
  readonly seq: number;
  readonly done: (out: KvOutput) => void;
  /** The attempt whose failure or timeout moves the clerk on; replies to older attempts only count if ok. */
  attempt: number;
  /** Failed attempts in a row that ended in a reply (not a timeout). */
  streak: number;
  finished: boolean;
}

/** What came back: the service's response, or its refusal. */
type Reply = { ok: true; value: unknown } | { ok: false; error: ServiceError };

/**
 * The lab's Clerk: one operation at a time, sent to the server it believes leads; on a timeout
 * or a refusal it tries the leader named in the refusal, or the next server, until some server
 * answers. A write keeps its session (clientId, seq, first_incomplete) across retries.
 */
export class Clerk {
  /** Index of the server the clerk believes leads. */
  leader: number;
  /** Servers this clerk can reach. */
  reach: Set<number>;
  private seq = 0;
  private op: PendingOp | undefined;

  constructor(
    private readonly lab: KvLab,
    /** The client number in the history (and in failure messages). */
    readonly label: number,
    /** The KV session's client_id. */
    readonly clientId: number,
    reach: readonly number[],
  ) {
    this.reach = new Set(reach);
    this.leader = lab.rand(lab.sim.n);
  }

  get busy(): boolean {
    return this.op !== undefined;
  }

  /** Starts an operation; `done` runs (inside the event loop) when some server has answered it. */
  call(input: KvInput, done: (out: KvOutput) => void): void {
    if (this.op) throw new Error(`clerk ${this.label} already has ${this.op.input.op} in flight`);
    const op: PendingOp = {
      input,
      historyId: this.lab.history.invoke(this.label, input, this.lab.sim.now),
      seq: input.op === 'get' ? 0 : ++this.seq,
      done,
      attempt: 0,
      streak: 0,
      finished: false,
    };
    this.op = op;
    this.send(op);
  }

  private send(op: PendingOp): void {
    const attempt = ++op.attempt;
    const server = this.leader;
    this.lab.request(this, server, op.input, op.seq, (reply) => this.onReply(op, attempt, server, reply));
    this.lab.sim.at(CLERK_TIMEOUT_MS, () => {
      if (op.finished || op.attempt !== attempt) return;
      this.leader = (server + 1) % this.lab.sim.n;
      this.send(op);
    });
  }

  private onReply(op: PendingOp, attempt: number, server: number, reply: Reply): void {
    if (op.finished) return;
    if (reply.ok) {
      op.finished = true;
      this.op = undefined;
      this.leader = server;
      const out = toOutput(op.input, reply.value);
      this.lab.history.complete(op.historyId, out, this.lab.sim.now);
      op.done(out);
      return;
    }
    const e = reply.error;
    if (e.code === 'INVALID_ARGUMENT' || e.reason === 'session-expired' || e.code === 'INTERNAL' || e.code === 'UNIMPLEMENTED') {
      throw new SimFailure(
        `clerk ${this.label} (client_id ${this.clientId}) ${describeInput(op.input)} seq ${op.seq} was refused by ` +
          `n${server + 1}: ${e.code} ${e.reason ?? ''} (${e.details})`,
      );
    }
    if (attempt !== op.attempt) return;
    if (e.reason === 'overloaded') {
      // The right server, too busy: try it again after a pause.
      const paused = ++op.attempt;
      this.lab.sim.at(CLERK_BACKOFF_MS, () => {
        if (!op.finished && op.attempt === paused) this.send(op);
      });
      return;
    }
    op.streak++;
    // Leader hints name the leader's client address, n<id>:<port>.
    const hint = e.leaderAddr ? Number(/^n(\d+):/.exec(e.leaderAddr)?.[1] ?? 0) - 1 : -1;
    this.leader = hint >= 0 && hint < this.lab.sim.n && hint !== server ? hint : (server + 1) % this.lab.sim.n;
    if (op.streak % this.lab.sim.n !== 0) {
      this.send(op);
      return;
    }
    // A whole cycle of refusals (an election under way): pause rather than spin. Bumping the
    // attempt makes the pending timeout stale.
    const paused = ++op.attempt;
    this.lab.sim.at(CLERK_BACKOFF_MS, () => {
      if (!op.finished && op.attempt === paused) this.send(op);
    });
  }
}

function toOutput(input: KvInput, v: unknown): KvOutput {
  if (input.op === 'get') {
    const r = v as GetResponse;
    return { value: r.found ? dec.decode(r.value) : undefined };
  }
  if (input.op === 'cas') return { ok: (v as CasResponse).swapped };
  return {};
}

function describeInput(i: KvInput): string {
  return `${i.op}(${JSON.stringify(i.key)}${i.value !== undefined ? `, ${JSON.stringify(i.value).slice(0, 40)}` : ''})`;
}

// ---- the KV test configuration -----------------------------------------------------------------

/** The lab's KV config (kvraft/config.go) over the simulator: clerks, their network, the history. */
interface SimStream {
  stream: CallStream;
  replies: Map<number, (r: Reply) => void>;
}

/** gRPC's status code names by number, for the refusals a stream carries as numbers. */
const CODE_NAMES = new Map(Object.entries(CODE_NUMBERS).map(([name, n]) => [n, name as ServiceError['code']]));

/** A refusal off a stream, as the service said it. */
function serviceError(r: Refusal): ServiceError {
  const e: ServiceError = { code: CODE_NAMES.get(r.code ?? 0) ?? 'INTERNAL', details: r.details ?? '' };
  if (r.reason) e.reason = r.reason as ServiceError['reason'];
  if (r.leaderAddr) e.leaderAddr = r.leaderAddr;
  return e;
}

export class KvLab {
  readonly history = new HistoryRecorder();
  readonly sim: SimCluster;
  private readonly rng;
  private clerks = 0;
  /** Each clerk's stream to each server incarnation; an incarnation's go with it. */
  private readonly streams = new WeakMap<KvService, Map<number, SimStream>>();
  private nextCallId = 1;

  constructor(readonly h: Harness) {
    this.sim = h.sim;
    this.rng = seededRng(h.rand(2 ** 31));
  }

  rand(n: number): number {
    return this.rng.int(n);
  }

  get n(): number {
    return this.sim.n;
  }

  all(): number[] {
    return Array.from({ length: this.sim.n }, (_, i) => i);
  }

  /** A clerk with a fresh session (a random client_id up to 2^53), connected to `to` (all servers). */
  makeClerk(to: readonly number[] = this.all(), label = this.clerks): Clerk {
    this.clerks++;
    const clientId = this.rng.int(2 ** 21) * 2 ** 32 + this.rng.int(2 ** 32) + 1;
    return new Clerk(this, label, Math.min(clientId, Number.MAX_SAFE_INTEGER), to);
  }

  connectClerk(ck: Clerk, to: readonly number[]): void {
    ck.reach = new Set(to);
  }

  /** Whether a message between clerk and server i could pass now. */
  private linkUp(ck: Clerk, i: number): boolean {
    return this.sim.alive(i) && this.sim.connected(i) && ck.reach.has(i);
  }

  /** The network's verdict on one message: its delay, or undefined if it is lost. */
  private transit(ck: Clerk, i: number): number | undefined {
    if (!this.linkUp(ck, i)) return undefined;
    if (this.sim.faults.reliable) return 1;
    if (this.rng.int(1000) < 100) return undefined;
    return this.rng.int(27);
  }

  /** Sends one attempt of an operation to server i; `reply` runs if an answer makes it back. */
  request(ck: Clerk, i: number, input: KvInput, seq: number, reply: (r: Reply) => void): void {
    const delay = this.transit(ck, i);
    if (delay === undefined) return;
    const node = this.sim.nodes[i]!;
    const incarnation = node.incarnation;
    const deliver = (): void => {
      const service = this.sim.network.service(node.id);
      if (!this.linkUp(ck, i) || node.incarnation !== incarnation || !service) return;
      this.serve(service, ck, input, seq, (r) => {
        // The answer leaves only from the incarnation that took the request, if it is still up.
        if (node.incarnation !== incarnation || !node.server) return;
        // A violation is recorded for the run to end on; thrown here it would only reach the server's promise chain.
        if (r.ok && input.op !== 'get' && !this.sim.tryCheck(() => this.sim.checker.acknowledged(ck.clientId, seq))) return;
        const back = this.transit(ck, i);
        if (back === undefined) return;
        this.sim.at(back, () => {
          if (this.linkUp(ck, i) && node.incarnation === incarnation) reply(r);
        });
      });
    };
    this.sim.at(delay, deliver);
    const dup = this.sim.faults.duplicateRate;
    if (dup > 0 && this.rng.next() < dup) this.sim.at(delay + this.rng.int(this.sim.faults.duplicateDelayMs), deliver);
  }

  /**
   * A request as it arrives from the wire, to the server's client API: on the clerk's stream to
   * that server incarnation (kv.proto's Calls, the SDK's default), through the same CallStream
   * and KvService that kv-server serves it with over gRPC.
   */
  private serve(service: KvService, ck: Clerk, input: KvInput, seq: number, reply: (r: Reply) => void): void {
    const key = Buffer.from(input.key);
    const call: Call__Output = { id: this.nextCallId++, timeoutMs: 0 };
    if (input.op === 'get') call.get = { key, serializable: false };
    else {
      const req = {
        // One operation at a time: everything before this one has been answered.
        session: { clientId: ck.clientId, seq, firstIncomplete: seq },
        key,
        value: Buffer.from(input.value ?? ''),
        expected: Buffer.from(input.expected ?? ''),
      };
      if (input.op === 'put') call.put = req;
      else if (input.op === 'append') call.append = req;
      else call.compareAndSwap = req;
    }
    const s = this.streamFor(service, ck);
    s.replies.set(call.id, reply);
    s.stream.receive([call]);
  }

  /** The clerk's stream to one server incarnation (its KvService), opened on first use. */
  private streamFor(service: KvService, ck: Clerk): SimStream {
    let byClerk = this.streams.get(service);
    if (!byClerk) this.streams.set(service, (byClerk = new Map()));
    let s = byClerk.get(ck.clientId);
    if (s) return s;
    const replies = new Map<number, (r: Reply) => void>();
    const stream = new CallStream({
      service: () => service,
      starting: { code: 'UNAVAILABLE', reason: 'starting', details: 'the node is starting' },
      send: (answers) => {
        for (const a of answers) {
          const reply = replies.get(a.id as number);
          replies.delete(a.id as number);
          if (!reply) continue;
          if (a.refusal) reply({ ok: false, error: serviceError(a.refusal) });
          else reply({ ok: true, value: a.get ?? a.put ?? a.append ?? a.delete ?? a.compareAndSwap });
        }
      },
      backlogged: () => false,
      defer: (fn) => this.sim.at(0, fn),
      after: (ms, fn) => this.sim.at(ms, fn),
      epochMs: () => this.sim.now,
      now: () => this.sim.now,
    });
    byClerk.set(ck.clientId, (s = { stream, replies }));
    return s;
  }

  /** Runs the simulator until `start`'s operation completes; fails after `limitMs`. */
  async wait<T>(what: string, start: (done: (v: T) => void) => void, limitMs = OP_LIMIT_MS): Promise<T> {
    let result: { v: T } | undefined;
    start((v) => (result = { v }));
    const deadline = this.sim.now + limitMs;
    while (!result) {
      if (this.sim.now >= deadline) this.h.fail(`${what} did not complete within ${limitMs} ms`);
      await this.h.sleep(2);
    }
    return result.v;
  }

  async get(ck: Clerk, key: string): Promise<string | undefined> {
    const out = await this.wait<KvOutput>(`clerk ${ck.label} get(${key})`, (d) => ck.call({ op: 'get', key }, d));
    return (out as { value?: string }).value;
  }

  async put(ck: Clerk, key: string, value: string): Promise<void> {
    await this.wait(`clerk ${ck.label} put(${key})`, (d) => ck.call({ op: 'put', key, value }, d));
  }

  async append(ck: Clerk, key: string, value: string): Promise<void> {
    await this.wait(`clerk ${ck.label} append(${key})`, (d) => ck.call({ op: 'append', key, value }, d));
  }

  /** The lab's check(): a Get through ck must return `want`. */
  async check(ck: Clerk, key: string, want: string): Promise<void> {
    const v = await this.get(ck, key);
    if (v !== want) this.h.fail(`get(${key}): expected ${JSON.stringify(want)}, got ${show(v)}`);
  }

  /** Heals every partition and reconnects every server (the lab's ConnectAll). */
  connectAll(): void {
    this.sim.heal();
  }

  /** Some server that believes it leads (the lab's cfg.Leader()), waiting for one if need be. */
  async leader(): Promise<number> {
    for (let waited = 0; waited < 10_000; waited += 50) {
      let best = -1;
      for (let i = 0; i < this.n; i++) {
        if (this.h.up(i) && this.h.isLeader(i) && (best < 0 || this.h.term(i) > this.h.term(best))) best = i;
      }
      if (best >= 0) return best;
      await this.h.sleep(50);
    }
    this.h.fail('no leader within 10 s');
  }

  /** The lab's make_partition: a majority without the leader, and a minority with it. */
  async makePartition(): Promise<[number[], number[]]> {
    const l = await this.leader();
    const others = this.all().filter((i) => i !== l);
    const p1 = others.slice(0, Math.floor(this.n / 2) + 1);
    const p2 = [...others.slice(p1.length), l];
    return [p1, p2];
  }

  /** The lab's porcupine check, without its timeout-means-ok: an inconclusive check fails the run. */
  checkHistory(): void {
    const ops = this.history.operations();
    const r = checkLinearizable(ops, { stepLimit: CHECK_STEP_LIMIT });
    if (r.ok === true) return;
    if (r.ok === 'unknown') this.h.fail(`linearizability check of ${ops.length} operations inconclusive: ${r.reason}`);
    this.h.fail(`history is not linearizable (${ops.length} operations, ${pendingCount(ops)} without an answer)\n${formatCounterexample(r)}`);
  }
}

function pendingCount(ops: readonly Operation[]): number {
  return ops.filter((o) => o.ret === Infinity).length;
}

function show(v: string | undefined): string {
  if (v === undefined) return '<absent>';
  return v.length > 300 ? `${JSON.stringify(v.slice(0, 150))}…(${v.length} chars)…${JSON.stringify(v.slice(-150))}` : JSON.stringify(v);
}

/** The lab's checkClntAppends: every append of client clnt is in v exactly once, in order. */
function checkClntAppends(h: Harness, clnt: number, v: string, count: number): void {
  let lastoff = -1;
  for (let j = 0; j < count; j++) {
    const wanted = `x ${clnt} ${j} y`;
    const off = v.indexOf(wanted);
    if (off < 0) h.fail(`${clnt} missing element ${JSON.stringify(wanted)} in Append result ${show(v)}`);
    if (v.lastIndexOf(wanted) !== off) h.fail(`duplicate element ${JSON.stringify(wanted)} in Append result ${show(v)}`);
    if (off <= lastoff) h.fail(`wrong order for element ${JSON.stringify(wanted)} in Append result ${show(v)}`);
    lastoff = off;
  }
}

/** The lab's checkConcurrentAppends: every client's appends are in v exactly once, each client's in order. */
function checkConcurrentAppends(h: Harness, v: string, counts: readonly number[]): void {
  counts.forEach((count, clnt) => checkClntAppends(h, clnt, v, count));
}

// ---- the lab's 3A tests ------------------------------------------------------------------------

export interface GenericParams {
  nclients: number;
  unreliable: boolean;
  crash: boolean;
  partitions: boolean;
  randomkeys: boolean;
  /** Rounds of client load (the lab: 3), each `roundMs` long (the lab: 5 s) plus 1 s before partitions start. */
  rounds?: number;
  roundMs?: number;
  /**
   * The lab's maxraftstate: the servers' snapshot threshold in log bytes (SimOptions.snapshots
   * must say the same). Absent: the servers take no snapshots (3A).
   */
  maxRaftState?: number;
}

/**
 * The lab's GenericTest: clients append and get (each on its own key, or on random keys) for a
 * few seconds per round while the network misbehaves; between rounds the partitions heal, all
 * servers crash and restart (if crash), every client key is read back and must hold all of its
 * client's appends in order; at the end the whole history must be linearizable.
 */
export async function genericTest(h: Harness, p: GenericParams): Promise<void> {
  const lab = new KvLab(h);
  const rounds = p.rounds ?? 3;
  const roundMs = p.roundMs ?? 5000;
  h.setUnreliable(p.unreliable);
  const ck = lab.makeClerk(lab.all(), p.nclients);

  for (let round = 0; round < rounds; round++) {
    const state = { done: false };
    const counts: (number | undefined)[] = new Array<number | undefined>(p.nclients).fill(undefined);
    for (let cli = 0; cli < p.nclients; cli++) runClient(lab, cli, p, state, (j) => (counts[cli] = j));

    const partitioner = { done: false };
    if (p.partitions) {
      // Let the clients work undisturbed for a while.
      await h.sleep(1000);
      startPartitioner(lab, partitioner);
    }
    await h.sleep(roundMs);
    state.done = true;
    partitioner.done = true;

    if (p.partitions) {
      // A request sent to a minority completes only once its server learns of the new term.
      lab.connectAll();
      await h.sleep(ET);
    }
    if (p.crash) {
      for (let i = 0; i < lab.n; i++) await h.crash(i);
      await h.sleep(ET);
      for (let i = 0; i < lab.n; i++) await h.start(i);
      lab.connectAll();
    }

    const deadline = h.now + OP_LIMIT_MS;
    while (counts.some((c) => c === undefined)) {
      if (h.now >= deadline) {
        const stuck = counts.flatMap((c, i) => (c === undefined ? [i] : []));
        h.fail(`round ${round}: clients ${stuck.join(',')} did not finish their last operation within ${OP_LIMIT_MS} ms`);
      }
      await h.sleep(5);
    }
    for (let cli = 0; cli < p.nclients; cli++) {
      const v = (await lab.get(ck, String(cli))) ?? '';
      if (!p.randomkeys) checkClntAppends(h, cli, v, counts[cli]!);
    }
    if (p.maxRaftState !== undefined) {
      // The servers have processed every request and had time to snapshot: their logs are short.
      const sz = lab.sim.logBytes();
      if (sz > 8 * p.maxRaftState) h.fail(`round ${round}: logs were not trimmed (${sz} > 8*${p.maxRaftState} bytes)`);
    } else if (lab.sim.snapshotsTaken > 0) {
      h.fail(`round ${round}: ${lab.sim.snapshotsTaken} snapshots taken, but there is no maxraftstate`);
    }
  }
  lab.checkHistory();
}

/** One client of GenericTest as a chain of callbacks: its operations run inside the event loop. */
function runClient(lab: KvLab, cli: number, p: GenericParams, state: { done: boolean }, finish: (j: number) => void): void {
  const ck = lab.makeClerk(lab.all(), cli);
  let j = 0;
  let last = '';
  const next = (): void => {
    if (state.done) {
      finish(j);
      return;
    }
    const key = p.randomkeys ? String(lab.rand(p.nclients)) : String(cli);
    const nv = `x ${cli} ${j} y`;
    if (lab.rand(1000) < 500) {
      ck.call({ op: 'append', key, value: nv }, () => {
        if (!p.randomkeys) last += nv;
        j++;
        next();
      });
    } else if (p.randomkeys && lab.rand(1000) < 100) {
      ck.call({ op: 'put', key, value: nv }, () => {
        j++;
        next();
      });
    } else {
      ck.call({ op: 'get', key }, (out) => {
        const v = (out as { value?: string }).value;
        if (!p.randomkeys && v !== last) {
          throw new SimFailure(`get wrong value, key ${key}, wanted:\n${show(last)}\n, got\n${show(v)}`);
        }
        next();
      });
    }
  };
  if (p.randomkeys) next();
  else ck.call({ op: 'put', key: String(cli), value: last }, next);
}

/** The lab's partitioner: a random split of the servers into two groups about every second. */
function startPartitioner(lab: KvLab, state: { done: boolean }): void {
  const step = (): void => {
    if (state.done) return;
    const groups: number[][] = [[], []];
    for (let i = 0; i < lab.n; i++) groups[lab.rand(2)]!.push(i);
    lab.sim.partition(groups[0]!, groups[1]!);
    lab.sim.at(ET + lab.rand(200), step);
  };
  step();
}

/** TestUnreliableOneKey3A: concurrent appends to one key over an unreliable network, each exactly once. */
async function unreliableOneKey(h: Harness): Promise<void> {
  const lab = new KvLab(h);
  h.setUnreliable(true);
  const ck = lab.makeClerk(lab.all(), -1);
  await lab.put(ck, 'k', '');
  const nclient = 5;
  const upto = 10;
  let finished = 0;
  for (let me = 0; me < nclient; me++) {
    const myck = lab.makeClerk(lab.all(), me);
    let n = 0;
    const next = (): void => {
      if (n === upto) {
        finished++;
        return;
      }
      myck.call({ op: 'append', key: 'k', value: `x ${me} ${n} y` }, () => {
        n++;
        next();
      });
    };
    next();
  }
  const deadline = h.now + OP_LIMIT_MS;
  while (finished < nclient) {
    if (h.now >= deadline) h.fail(`only ${finished} of ${nclient} clients finished their ${upto} appends within ${OP_LIMIT_MS} ms`);
    await h.sleep(5);
  }
  const vx = (await lab.get(ck, 'k')) ?? '';
  checkConcurrentAppends(h, vx, new Array<number>(nclient).fill(upto));
  // The lab records no history here: 50 overlapping appends to one key are exponential for a
  // porcupine-style search (every order is a distinct state). With unique values and the final
  // read giving their order, linearizability reduces to: that order respects real time.
  checkAppendsInRealTimeOrder(h, lab.history.operations(), 'k', vx);
}

/**
 * For a key that only received unique appends (all present once in `final`): an append that
 * returned before another was called must come first in `final`.
 */
function checkAppendsInRealTimeOrder(h: Harness, ops: readonly Operation[], key: string, final: string): void {
  const appends = ops
    .filter((o) => o.input.key === key && o.input.op === 'append' && o.ret !== Infinity)
    .map((o) => ({ o, at: final.indexOf(o.input.value!) }));
  for (const a of appends) {
    for (const b of appends) {
      if (a.o.ret < b.o.call && a.at > b.at) {
        h.fail(
          `append order violates real time: the first returned before the second was called, yet comes after it in ${show(final)}\n` +
            formatCounterexample([a.o, b.o]),
        );
      }
    }
  }
}

/**
 * TestOnePartition3A: with the leader cut off in a minority, the majority keeps serving, while
 * a Put and a Get sent to the minority must not complete; after the heal they do.
 */
async function onePartition(h: Harness): Promise<void> {
  const lab = new KvLab(h);
  const ck = lab.makeClerk(lab.all(), 0);
  await lab.put(ck, '1', '13');

  // Test: progress in majority
  const [p1, p2] = await lab.makePartition();
  lab.sim.partition(p1, p2);
  const ckp1 = lab.makeClerk(p1, 1);
  const ckp2a = lab.makeClerk(p2, 2);
  const ckp2b = lab.makeClerk(p2, 3);
  await lab.put(ckp1, '1', '14');
  await lab.check(ckp1, '1', '14');

  // Test: no progress in minority
  let done0 = false;
  let done1 = false;
  ckp2a.call({ op: 'put', key: '1', value: '15' }, () => (done0 = true));
  ckp2b.call({ op: 'get', key: '1' }, () => (done1 = true));
  const noProgress = (): void => {
    if (!done0 && !done1) return;
    // The checker's counterexample (a stale read, typically) says more than the lab's message.
    lab.checkHistory();
    h.fail(`${done0 ? 'Put' : 'Get'} in minority ${JSON.stringify(p2)} completed`);
  };
  await h.sleep(1000);
  noProgress();
  await lab.check(ckp1, '1', '14');
  await lab.put(ckp1, '1', '16');
  await lab.check(ckp1, '1', '16');
  noProgress();

  // Test: completion after heal
  lab.connectAll();
  lab.connectClerk(ckp2a, lab.all());
  lab.connectClerk(ckp2b, lab.all());
  await h.sleep(ET);
  const deadline = h.now + 3000;
  while (!done0) {
    if (h.now >= deadline) h.fail('Put did not complete after the heal');
    await h.sleep(5);
  }
  await lab.check(ck, '1', '15');
  lab.checkHistory();
}

const kv = (name: string, nodes: number, run: (h: Harness) => Promise<void>): Scenario => ({
  name,
  suite: '3A',
  nodes,
  run,
});

const generic = (name: string, nodes: number, p: GenericParams): Scenario => kv(name, nodes, (h) => genericTest(h, p));

const plain = { unreliable: false, crash: false, partitions: false, randomkeys: false };

/** The lab's 3A tests, with its parameters (nclients, nservers, unreliable, crash, partitions, randomkeys). */
export const KV_SCENARIOS: readonly Scenario[] = [
  generic('Basic', 5, { ...plain, nclients: 1 }),
  generic('Concurrent', 5, { ...plain, nclients: 5 }),
  generic('Unreliable', 5, { ...plain, nclients: 5, unreliable: true }),
  kv('UnreliableOneKey', 3, unreliableOneKey),
  kv('OnePartition', 5, onePartition),
  generic('ManyPartitionsOneClient', 5, { ...plain, nclients: 1, partitions: true }),
  generic('ManyPartitionsManyClients', 5, { ...plain, nclients: 5, partitions: true }),
  generic('PersistOneClient', 5, { ...plain, nclients: 1, crash: true }),
  generic('PersistConcurrent', 5, { ...plain, nclients: 5, crash: true }),
  generic('PersistConcurrentUnreliable', 5, { ...plain, nclients: 5, unreliable: true, crash: true }),
  generic('PersistPartition', 5, { ...plain, nclients: 5, crash: true, partitions: true }),
  generic('PersistPartitionUnreliable', 5, { ...plain, nclients: 5, unreliable: true, crash: true, partitions: true }),
  generic('PersistPartitionUnreliableLinearizable', 7, {
    nclients: 15,
    unreliable: true,
    crash: true,
    partitions: true,
    randomkeys: true,
  }),
];

/**
 * Clients that cannot reach the leader (only the followers) are served all the same: a follower
 * forwards their calls to the leader over the peer network. Every round the leader changes
 * (crashed, then restarted), and the clients' reach changes with it; every operation completes
 * and the history is linearizable.
 */
async function clientsCutFromLeader(h: Harness): Promise<void> {
  const lab = new KvLab(h);
  h.setUnreliable(true);
  const nclients = 3;
  const ops = 15;
  for (let round = 0; round < 3; round++) {
    const leader = await lab.leader();
    const reach = lab.all().filter((i) => i !== leader);
    let finished = 0;
    for (let c = 0; c < nclients; c++) {
      const ck = lab.makeClerk(reach, round * nclients + c);
      let n = 0;
      const next = (): void => {
        if (n === ops) return void finished++;
        const key = String(lab.rand(2));
        const op: KvInput = n % 3 === 2 ? { op: 'get', key } : { op: 'append', key, value: `x ${ck.label} ${n} y` };
        n++;
        ck.call(op, next);
      };
      next();
    }
    const deadline = h.now + 10 * ET;
    while (finished < nclients) {
      if (h.now >= deadline) h.fail(`round ${round}: clients cut off from leader ${leader} finished ${finished} of ${nclients} within ${10 * ET} ms`);
      await h.sleep(5);
    }
    await h.crash(leader);
    await h.sleep(ET);
    await h.start(leader);
    h.connect(leader);
  }
  lab.checkHistory();
}

/** Our KV scenarios beyond the lab's. */
export const KV_OUR_SCENARIOS: readonly Scenario[] = [{ name: 'ClientsCutFromLeader', suite: 'ours', nodes: 5, run: clientsCutFromLeader }];
