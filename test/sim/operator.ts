/**
 * An operator with kv-cli on the simulator: membership calls made to the node that leads, through
 * the same member API kv-server serves (KvService → Membership → RaftNode), and clerks that keep
 * reading and writing meanwhile. Used by the membership scenarios (membership.ts).
 */
import { isJoint, membersOf, sameConf, describeConf } from '../../src/raft/core/conf.js';
import type { LeaderTransferResponse, MemberChangeResponse } from '../../src/kv-api.js';
import type { KvService, Reply, ServiceError } from '../../src/server/kv-service.js';
import type { SimCluster } from './cluster.js';
import type { Harness } from './harness.js';
import type { KvInput } from '../support/linearizability.js';
import type { Clerk, KvLab } from './kv.js';

/** How long an operator's command may take, retries included. */
const OP_LIMIT_MS = 30_000;
/** One attempt: longer than a leader waits to apply its term's entry or for a transfer (2 election timeouts). */
const ATTEMPT_MS = 1500;
/** How long a chaos operator (`must` false) keeps at a change: a minority may hold no leader for long. */
const TRY_LIMIT_MS = 3000;
/** Refusals that say "not now": the change is tried again. */
const PASSING = /pending|retry|being transferred|far behind|has not been heard|not the leader|no live quorum|would be live/;

export type Answer<T> = { ok: true; value: T } | { ok: false; error: ServiceError };

export class Operator {
  constructor(readonly h: Harness) {}

  get sim(): SimCluster {
    return this.h.sim;
  }

  /** The live node that leads the highest term, as a client finds it; undefined while there is none. */
  leader(): number | undefined {
    let best: number | undefined;
    for (let i = 0; i < this.sim.n; i++) {
      if (this.sim.alive(i) && this.sim.isLeader(i) && (best === undefined || this.sim.term(i) > this.sim.term(best))) best = i;
    }
    return best;
  }

  async waitLeader(limitMs = OP_LIMIT_MS): Promise<number> {
    const deadline = this.sim.now + limitMs;
    for (;;) {
      const l = this.leader();
      if (l !== undefined) return l;
      if (this.sim.now >= deadline) this.h.fail(`no leader within ${limitMs} ms`);
      await this.h.sleep(10);
    }
  }

  /**
   * One call to the leader, made again when no answer comes (its outcome unknown) or the node
   * answers that it does not lead, until a leader answers or refuses it; undefined if none does
   * within `limitMs`. `retried`: an earlier attempt may have taken effect.
   */
  async call<T>(invoke: (s: KvService, reply: Reply<T>) => void, limitMs = OP_LIMIT_MS): Promise<(Answer<T> & { retried: boolean }) | undefined> {
    const deadline = this.sim.now + limitMs;
    let retried = false;
    while (this.sim.now < deadline) {
      const l = this.leader();
      const node = l === undefined ? undefined : this.sim.nodes[l]!;
      const service = node && this.sim.network.service(node.id);
      if (node && service) {
        const incarnation = node.incarnation;
        let answer: Answer<T> | undefined;
        invoke(service, (e, v) => {
          if (node.incarnation === incarnation) answer = e ? { ok: false, error: e } : { ok: true, value: v as T };
        });
        const until = Math.min(deadline, this.sim.now + ATTEMPT_MS);
        while (!answer && this.sim.now < until) await this.h.sleep(5);
        if (answer && (answer.ok || answer.error.reason === 'conf-refused')) return { ...answer, retried };
        retried = true;
      }
      await this.h.sleep(20);
    }
    return undefined;
  }

  /**
   * A membership change, with refusals that say "not now" tried again, and one that says it is
   * done already (after an attempt whose outcome was unknown) taken as done. Returns false if it
   * was refused for good or not done within `limitMs`; `must`: fails the run instead.
   */
  async change(
    what: string,
    invoke: (s: KvService, reply: Reply<MemberChangeResponse>) => void,
    doneAlready: RegExp,
    must = true,
    limitMs = must ? OP_LIMIT_MS : TRY_LIMIT_MS,
  ): Promise<boolean> {
    const deadline = this.sim.now + limitMs;
    const no = (why: string): false => {
      this.sim.log(`operator: ${what}: ${why}`);
      return must ? this.h.fail(`${what}: ${why}`) : false;
    };
    let retried = false;
    for (;;) {
      const a = await this.call(invoke, deadline - this.sim.now);
      if (!a) return no(`not done within ${limitMs} ms`);
      retried ||= a.retried;
      if (a.ok) {
        this.sim.log(`operator: ${what}: done at ${a.value.index}`);
        return true;
      }
      if (retried && doneAlready.test(a.error.details)) return true;
      if (!PASSING.test(a.error.details)) return no(`refused: ${a.error.details}`);
      retried = true;
      await this.h.sleep(50);
    }
  }

  /** Starts a new node with --join and adds it; returns its index. */
  async add(learner: boolean, must = true): Promise<number | undefined> {
    const i = await this.sim.addNode();
    const id = i + 1;
    const ok = await this.change(
      `add n${id}${learner ? ' as a learner' : ''}`,
      (s, r) => s.memberAdd({ id, peerAddr: `n${id}:7000`, clientAddr: `n${id}:9000`, learner }, r),
      /already a member/,
      must,
    );
    return ok ? i : undefined;
  }

  async promote(i: number, must = true): Promise<boolean> {
    const id = i + 1;
    return this.change(`promote n${id}`, (s, r) => s.memberPromote({ id }, r), /is a voter already/, must);
  }

  async remove(i: number, must = true): Promise<boolean> {
    const id = i + 1;
    return this.change(`remove n${id}`, (s, r) => s.memberRemove({ id, force: false }, r), /is not a member/, must);
  }

  /** Asks the leader to hand leadership to node i (undefined: the most up-to-date voter). */
  transfer(i: number | undefined, limitMs = OP_LIMIT_MS): Promise<(Answer<LeaderTransferResponse> & { retried: boolean }) | undefined> {
    const id = i === undefined ? 0 : i + 1;
    return this.call<LeaderTransferResponse>((s, r) => s.leaderTransfer({ id }, r), limitMs);
  }

  /** Waits until node i has applied all the leader has committed (a learner about to be promoted). */
  async caughtUp(i: number, limitMs = OP_LIMIT_MS): Promise<void> {
    const deadline = this.sim.now + limitMs;
    for (;;) {
      const l = this.leader();
      const commit = l === undefined ? Infinity : this.sim.nodes[l]!.server!.raft.status().commit;
      if (this.sim.nodes[i]!.lastApplied >= commit) return;
      if (this.sim.now >= deadline) this.h.fail(`n${i + 1} did not catch up within ${limitMs} ms (applied ${this.sim.nodes[i]!.lastApplied}, leader's commit ${commit})`);
      await this.h.sleep(10);
    }
  }

  /**
   * The end of a run: with the network healed, every member of the configuration in force is up,
   * holds that configuration (not joint), and has applied all the leader has committed.
   */
  async converged(limitMs = 30_000): Promise<void> {
    const sim = this.sim;
    await this.recover();
    const deadline = sim.now + limitMs;
    let why = '';
    for (;;) {
      const conf = sim.checker.conf;
      for (const id of membersOf(conf)) if (!sim.alive(id - 1)) await sim.restart(id - 1);
      why = this.unconverged();
      if (why === '') return;
      if (sim.now >= deadline) this.h.fail(`the members did not converge within ${limitMs} ms: ${why}`);
      await this.h.sleep(20);
    }
  }

  /** The faults end: the network heals and is reliable again, and every member is up. */
  async recover(): Promise<void> {
    const sim = this.sim;
    sim.heal();
    sim.faults.reliable = true;
    sim.faults.longReordering = false;
    sim.faults.duplicateRate = 0;
    for (const id of membersOf(sim.checker.conf)) if (!sim.alive(id - 1)) await sim.restart(id - 1);
  }

  /** Why the members have not converged yet, or '' once they have. */
  private unconverged(): string {
    const conf = this.sim.checker.conf;
    if (isJoint(conf)) return `the configuration in force is joint: ${describeConf(conf)}`;
    const l = this.leader();
    if (l === undefined) return 'no leader';
    const lead = this.sim.nodes[l]!.server!.raft.status();
    if (!conf.voters.includes(l + 1)) return `n${l + 1} leads but is no voter of ${describeConf(conf)}`;
    if (lead.applied < lead.lastIndex) return `the leader has applied ${lead.applied} of ${lead.lastIndex}`;
    for (const id of membersOf(conf)) {
      const st = this.sim.nodes[id - 1]!.server?.raft.status();
      if (!st) return `member n${id} is down`;
      if (!sameConf(st.conf, lead.conf)) return `n${id} holds ${describeConf(st.conf)}, the leader ${describeConf(lead.conf)}`;
      if (st.applied !== lead.applied) return `n${id} has applied ${st.applied}, the leader ${lead.applied}`;
    }
    return '';
  }
}

/**
 * Clerks that read and write a few keys until stopped (appends, puts and gets; every answer goes
 * into the lab's history). They may send to any node there will be.
 */
export function startClerks(lab: KvLab, count: number, keys = 3): { stop(): Promise<void> } {
  const reach = Array.from({ length: 64 }, (_, i) => i);
  let stopping = false;
  let running = count;
  for (let c = 0; c < count; c++) {
    const ck: Clerk = lab.makeClerk(reach, c);
    let j = 0;
    const next = (): void => {
      if (stopping) return void running--;
      const key = String(lab.rand(keys));
      const r = lab.rand(10);
      const op: KvInput = r < 5 ? { op: 'append', key, value: `x ${c} ${j++} y` } : r < 6 ? { op: 'put', key, value: `p ${c} ${j++}` } : { op: 'get', key };
      ck.call(op, next);
    };
    next();
  }
  return {
    stop: async () => {
      stopping = true;
      const deadline = lab.sim.now + OP_LIMIT_MS;
      while (running > 0) {
        if (lab.sim.now >= deadline) lab.h.fail(`${running} clerks did not finish their last operation within ${OP_LIMIT_MS} ms`);
        await lab.h.sleep(10);
      }
    },
  };
}
