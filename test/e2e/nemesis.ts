/**
 * The faults of the partition test and their schedule (Jepsen calls this the nemesis). A fault is
 * planned from a seeded RNG as plain data — which directed links are blocked, lossy or delayed,
 * for how long — and the Nemesis turns it into iptables rules in the namespaces and settings of
 * the delaying proxies, then heals it. Only the cluster's current leader comes from outside the
 * seed, so a seed replays the same kinds, choices relative to the leader, and durations.
 */
import type { seededRng } from '../../src/raft/core/rng.js';
import { DelayProxy, type LinkShape } from './delay-proxy.js';
import { HEALTHY, PEER_PORT, type Link, type LinkState, type Netns } from './netns.js';

type Rng = ReturnType<typeof seededRng>;

export const FAULT_KINDS = ['isolate-leader', 'isolate-minority', 'bridge', 'one-way', 'delay', 'loss'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  readonly kind: FaultKind;
  /** What it does, for the test's log: "leader 2 cut off from 1,3". */
  readonly description: string;
  readonly holdMs: number;
  readonly blocked: readonly Link[];
  readonly lossy: readonly (Link & { readonly probability: number })[];
  readonly delayed: readonly (Link & LinkShape)[];
  /** Moments (ms into the hold) at which the delayed links stop forwarding for a while. */
  readonly stalls: readonly { readonly atMs: number; readonly forMs: number }[];
  /** The leader is cut off from a majority: the others must elect a new one before the heal. */
  readonly leaderCutOff: boolean;
}

/** Every kind once per round, each round in its own order. */
export function faultSchedule(rng: Rng, rounds: number): FaultKind[] {
  const out: FaultKind[] = [];
  for (let r = 0; r < rounds; r++) out.push(...shuffled(rng, FAULT_KINDS));
  return out;
}

function shuffled<T>(rng: Rng, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

const between = (rng: Rng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);

/** Both directions of every link between the groups `a` and `b`. */
function cutBetween(a: readonly number[], b: readonly number[]): Link[] {
  return a.flatMap((x) => b.flatMap((y) => [{ from: x, to: y }, { from: y, to: x }]));
}

function allLinks(ids: readonly number[]): Link[] {
  return ids.flatMap((from) => ids.filter((to) => to !== from).map((to) => ({ from, to })));
}

const key = (l: Link): string => `${l.from}>${l.to}`;

const list = (ids: readonly number[]): string => [...ids].sort((x, y) => x - y).join(',');

/**
 * Plans one fault of `kind` for nodes `ids` led by `leader`, held for 3 to 7 election timeouts
 * (long enough for the cut-off side to time out and elect, short enough to keep the run short).
 */
export function planFault(kind: FaultKind, rng: Rng, ids: readonly number[], leader: number, electionTimeoutMs: number): Fault {
  const holdMs = between(rng, 3 * electionTimeoutMs, 7 * electionTimeoutMs);
  const none = { blocked: [], lossy: [], delayed: [], stalls: [], leaderCutOff: false };
  const others = ids.filter((id) => id !== leader);
  switch (kind) {
    case 'isolate-leader':
      return {
        ...none,
        kind,
        holdMs,
        blocked: cutBetween([leader], others),
        leaderCutOff: true,
        description: `leader ${leader} cut off from ${list(others)}`,
      };
    case 'isolate-minority': {
      // Any minority: with five nodes it may hold the leader and one follower.
      const minority = shuffled(rng, ids).slice(0, Math.floor((ids.length - 1) / 2));
      const rest = ids.filter((id) => !minority.includes(id));
      return {
        ...none,
        kind,
        holdMs,
        blocked: cutBetween(minority, rest),
        leaderCutOff: minority.includes(leader),
        description: `minority ${list(minority)} cut off from ${list(rest)} (leader ${leader})`,
      };
    }
    case 'bridge': {
      // One node sees everyone; the others split into two halves that do not see each other.
      // The bridge is a follower, so that the leader is on one side and loses the other (with
      // the leader as the bridge, three followers that never talk to each other notice nothing).
      const bridge = others[rng.int(others.length)]!;
      const rest = shuffled(rng, ids.filter((id) => id !== bridge));
      const left = rest.slice(0, Math.floor(rest.length / 2));
      const right = rest.slice(left.length);
      return {
        ...none,
        kind,
        holdMs,
        blocked: cutBetween(left, right),
        description: `bridge ${bridge} sees all; ${list(left)} and ${list(right)} do not see each other (leader ${leader})`,
      };
    }
    case 'one-way': {
      const follower = others[rng.int(others.length)]!;
      const variants: [string, Link[]][] = [
        [`leader ${leader} cannot send to ${follower}`, [{ from: leader, to: follower }]],
        [`${follower} cannot send to leader ${leader}`, [{ from: follower, to: leader }]],
        [`leader ${leader} hears no one (its messages still arrive)`, others.map((id) => ({ from: id, to: leader }))],
        [`no one hears leader ${leader} (it still hears them)`, others.map((id) => ({ from: leader, to: id }))],
      ];
      const [description, blocked] = variants[rng.int(variants.length)]!;
      return { ...none, kind, holdMs, blocked, description };
    }
    case 'delay': {
      // Most links slowed by up to a third of an election timeout each way, sometimes stalled;
      // always one of the leader's (links between followers may carry nothing to delay).
      const first = { from: leader, to: others[rng.int(others.length)]! };
      const links = [first, ...allLinks(ids).filter((l) => key(l) !== key(first) && rng.next() < 0.7)];
      const maxDelay = Math.floor(electionTimeoutMs / 3);
      const delayed = links.map((l) => ({ ...l, delayMs: between(rng, 5, maxDelay), jitterMs: between(rng, 0, Math.floor(maxDelay / 3)) }));
      const stalls = rng.next() < 0.5 ? [{ atMs: between(rng, 0, Math.floor(holdMs / 2)), forMs: between(rng, electionTimeoutMs, 2 * electionTimeoutMs) }] : [];
      const worst = Math.max(...delayed.map((d) => d.delayMs + d.jitterMs));
      return {
        ...none,
        kind,
        holdMs,
        delayed,
        stalls,
        description: `${delayed.length} of ${ids.length * (ids.length - 1)} links delayed (up to ${worst} ms)${stalls.length > 0 ? `, stalled ${stalls[0]!.forMs} ms` : ''}`,
      };
    }
    case 'loss': {
      const first = { from: leader, to: others[rng.int(others.length)]! };
      const links = [first, ...allLinks(ids).filter((l) => key(l) !== key(first) && rng.next() < 0.6)];
      const lossy = links.map((l) => ({ ...l, probability: between(rng, 5, 35) / 100 }));
      const worst = Math.max(...lossy.map((l) => l.probability));
      return { ...none, kind, holdMs, lossy, description: `${lossy.length} of ${ids.length * (ids.length - 1)} links lose packets (up to ${Math.round(worst * 100)}%)` };
    }
  }
}

/** Applies faults to a Netns and heals them; owns the delaying proxies. */
export class Nemesis {
  private readonly proxies = new Map<string, DelayProxy>();
  private readonly proxyPorts = new Map<string, number>();

  constructor(
    private readonly net: Netns,
    /** Jitter of the delays: a stream of its own, so that timing does not shift the fault plan. */
    private readonly jitter: () => number,
  ) {}

  async inject(fault: Fault): Promise<void> {
    const proxied: (Link & { proxyPort: number })[] = [];
    for (const d of fault.delayed) {
      const proxy = await this.proxy(d);
      proxy.shape = { delayMs: d.delayMs, jitterMs: d.jitterMs };
      proxied.push({ from: d.from, to: d.to, proxyPort: this.proxyPorts.get(key(d))! });
    }
    const state: LinkState = { blocked: fault.blocked, lossy: fault.lossy, proxied };
    await this.net.apply(state);
  }

  /** Stalls every link the fault delays. */
  stall(fault: Fault, ms: number): void {
    for (const d of fault.delayed) this.proxies.get(key(d))?.stall(ms);
  }

  /** Removes every rule, then ends the proxied connections so that nodes reconnect directly. */
  async heal(): Promise<void> {
    await this.net.apply(HEALTHY);
    for (const p of this.proxies.values()) {
      p.unstall();
      p.shape = { delayMs: 0, jitterMs: 0 };
      p.dropConnections();
    }
  }

  /** Connections the proxies accepted (how many streams actually went through them). */
  proxiedConnections(): number {
    let n = 0;
    for (const p of this.proxies.values()) n += p.accepted;
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.proxies.clear();
  }

  private async proxy(l: Link): Promise<DelayProxy> {
    let p = this.proxies.get(key(l));
    if (!p) {
      p = new DelayProxy({ host: this.net.nodeIp(l.to), port: PEER_PORT }, this.jitter);
      this.proxies.set(key(l), p);
      this.proxyPorts.set(key(l), await p.listen(this.net.hostIp));
    }
    return p;
  }
}
