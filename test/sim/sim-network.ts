import { isResponse, type Message, type NodeId, type Rng } from '../../src/raft/core/types.js';
import type { MemberListResponse } from '../../src/kv-api.js';
import type { ForwardedCall, ForwardedReply, KvService } from '../../src/server/kv-service.js';
import type { ClientListener, Network, PeerTransport } from '../../src/server/network.js';
import type { SimClock, SimWorld } from './sim-clock.js';

/** Network behaviour; the defaults are a perfect network with 1 ms latency. */
export interface NetworkFaults {
  /** false = the lab's unreliable net: 0–26 ms latency, 10% of requests and 10% of replies dropped. */
  reliable: boolean;
  /** The lab's long reordering: about two thirds of replies delayed 200–2200 ms. */
  longReordering: boolean;
  /** Probability that a delivered message is delivered twice. */
  duplicateRate: number;
  /** The second copy arrives up to this long after the first. */
  duplicateDelayMs: number;
}

const MESSAGE_HEADER_BYTES = 48;
const ENTRY_HEADER_BYTES = 16;
/** Snapshot bytes a link carries per virtual ms. */
const SNAPSHOT_BYTES_PER_MS = 1 << 20;

/** One node incarnation on the network. */
interface Endpoint {
  id: NodeId;
  clock: SimClock;
  onMessage?: (m: Message) => void;
  onSnapshot?: (m: Message, data: Uint8Array) => void;
  onForward?: (call: ForwardedCall, from: NodeId) => Promise<ForwardedReply>;
  service?: KvService;
}

/**
 * The simulated network between KvServers: the peers' Raft messages and snapshots, and the
 * clients' calls (which test/sim/kv.ts makes). Faults: lost, delayed, duplicated and reordered
 * messages, nodes cut off, partitions, one-way links. A restarted node has new connections:
 * what was in flight to its old incarnation is lost.
 */
export class SimNetwork {
  readonly faults: NetworkFaults = { reliable: true, longReordering: false, duplicateRate: 0, duplicateDelayMs: 50 };
  /** Requests sent (replies not counted, like the lab's RPC count) and bytes of all messages. */
  rpcCount = 0;
  bytes = 0;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly cut = new Set<NodeId>();
  private readonly group = new Map<NodeId, number>();
  private readonly blocked = new Set<string>();

  constructor(
    private readonly world: SimWorld,
    private readonly rng: Rng & { next(): number },
    /** Sees every message as it leaves its node (the simulator checks it depends on nothing unsynced). */
    private readonly leaving: (m: Message) => void,
  ) {}

  /** The network as node `id`'s incarnation on `clock` sees it. */
  attach(id: NodeId, clock: SimClock): Network {
    const ep: Endpoint = { id, clock };
    this.endpoints.set(id, ep);
    return {
      peerTransport: () => this.transport(ep),
      listenClients: async (): Promise<ClientListener> => ({
        serve: (service) => void (ep.service = service),
        close: async () => void (ep.service = undefined),
      }),
      probeMember: async () => undefined,
      memberList: (addr, timeoutMs) => this.memberList(ep, addr, timeoutMs),
    };
  }

  /** kv-server --join asking a member (by client address, n<id>:<port>) for the membership; each leg subject to the faults. */
  private memberList(from: Endpoint, addr: string, timeoutMs: number): Promise<MemberListResponse> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void): void => {
        if (!settled) f();
        settled = true;
      };
      from.clock.after(timeoutMs, () => settle(() => reject(new Error(`${addr}: no answer within ${timeoutMs} ms`))));
      const to = Number(/^n(\d+):/.exec(addr)?.[1] ?? 0);
      const dest = this.endpoints.get(to);
      const there = dest && this.linkUp(from.id, to) ? this.delay(false) : undefined;
      if (!dest || there === undefined) return;
      this.world.after(there, () => {
        if (this.endpoints.get(to) !== dest || !dest.service || !this.linkUp(from.id, to)) return;
        dest.service.memberList({}, (err, answer) => {
          const back = this.linkUp(to, from.id) ? this.delay(true) : undefined;
          if (back === undefined) return;
          this.world.after(back, () => {
            if (this.endpoints.get(from.id) !== from) return;
            settle(() => (err ? reject(new Error(`${addr}: ${err.code} ${err.details}`)) : resolve(answer!)));
          });
        });
      });
    });
  }

  /** Node `id` crashed: its incarnation is off the network. */
  detach(id: NodeId): void {
    this.endpoints.delete(id);
  }

  /** The client API of node `id`, if it is up and serving. */
  service(id: NodeId): KvService | undefined {
    return this.endpoints.get(id)?.service;
  }

  // ---- faults -------------------------------------------------------------------------------

  connected(id: NodeId): boolean {
    return !this.cut.has(id);
  }

  setConnected(id: NodeId, on: boolean): void {
    if (on) this.cut.delete(id);
    else this.cut.add(id);
  }

  /** Messages flow only within a group; nodes not named form one more group. */
  partition(groups: NodeId[][], all: NodeId[]): void {
    for (const id of all) this.group.set(id, groups.length);
    groups.forEach((g, gi) => g.forEach((id) => this.group.set(id, gi)));
  }

  /** Drops every message from `from` to `to` (one direction only). */
  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
    this.group.clear();
    this.blocked.clear();
  }

  /** Whether a and b are on the same side of every cut (one-way blocks aside). */
  together(a: NodeId, b: NodeId): boolean {
    return !this.cut.has(a) && !this.cut.has(b) && (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  linkUp(from: NodeId, to: NodeId): boolean {
    return (
      !this.cut.has(from) &&
      !this.cut.has(to) &&
      (this.group.get(from) ?? 0) === (this.group.get(to) ?? 0) &&
      !this.blocked.has(`${from}>${to}`)
    );
  }

  /** The network's verdict on one message: its delay, or undefined if it is lost. */
  delay(reply: boolean): number | undefined {
    const rng = this.rng;
    let delay = 1;
    if (!this.faults.reliable) {
      if (rng.int(1000) < 100) return undefined;
      delay = rng.int(27);
    }
    if (reply && this.faults.longReordering && rng.int(900) < 600) delay = 200 + rng.int(1 + rng.int(2000));
    return delay;
  }

  /** Delivers `deliver` after the delay, then maybe once more (duplicates). */
  carry(delay: number, deliver: () => void): void {
    this.world.after(delay, deliver);
    if (this.faults.duplicateRate > 0 && this.rng.next() < this.faults.duplicateRate) this.world.after(delay + this.rng.int(this.faults.duplicateDelayMs), deliver);
  }

  // ---- peers --------------------------------------------------------------------------------

  private transport(ep: Endpoint): PeerTransport {
    let closed = false;
    return {
      start: async () => {},
      close: async () => void (closed = true),
      onMessage: (h) => void (ep.onMessage = h),
      onSnapshot: (h) => void (ep.onSnapshot = h),
      // Any two nodes can reach each other here; whom a node listens to is its core's business.
      setPeers: () => {},
      send: (m) => {
        if (!closed) this.send(m);
      },
      sendSnapshot: (m, data) =>
        new Promise<void>((resolve, reject) => {
          if (closed) return reject(new Error('transport closed'));
          this.sendSnapshot(ep, m, data, resolve, reject);
        }),
      onForward: (h) => void (ep.onForward = h),
      forward: (to, call, timeoutMs) =>
        new Promise<ForwardedReply>((resolve, reject) => {
          if (closed) return reject(new Error('transport closed'));
          this.forward(ep, to, call, timeoutMs, resolve, reject);
        }),
    };
  }

  /** A client's call, forwarded to the leader and answered over the peer network, both legs subject to its faults. */
  private forward(from: Endpoint, to: NodeId, call: ForwardedCall, timeoutMs: number, resolve: (r: ForwardedReply) => void, reject: (e: Error) => void): void {
    let settled = false;
    from.clock.after(timeoutMs, () => {
      if (!settled) reject(new Error(`no answer from node ${to} within ${timeoutMs} ms`));
      settled = true;
    });
    const dest = this.endpoints.get(to);
    const there = dest && this.linkUp(from.id, to) ? this.delay(false) : undefined;
    if (!dest || there === undefined) return;
    this.carry(there, () => {
      if (this.endpoints.get(to) !== dest || !this.linkUp(from.id, to) || !dest.onForward) return;
      void dest.onForward(call, from.id).then((reply) => {
        const back = this.endpoints.get(to) === dest && this.linkUp(to, from.id) ? this.delay(true) : undefined;
        if (back === undefined) return;
        this.world.after(back, () => {
          if (settled || this.endpoints.get(from.id) !== from || !this.linkUp(to, from.id)) return;
          settled = true;
          resolve(reply);
        });
      });
    });
  }

  private send(m: Message): void {
    this.leaving(m);
    if (!isResponse(m.type)) this.rpcCount++;
    this.bytes += MESSAGE_HEADER_BYTES;
    for (const e of m.entries) this.bytes += ENTRY_HEADER_BYTES + e.data.length;
    const dest = this.endpoints.get(m.to);
    if (!dest || !this.linkUp(m.from, m.to)) return;
    const delay = this.delay(isResponse(m.type));
    if (delay === undefined) return;
    this.carry(delay, () => {
      if (this.endpoints.get(m.to) === dest && this.linkUp(m.from, m.to)) dest.onMessage?.(m);
    });
  }

  /** A snapshot travels beside its snap message; the sender hears how it went, as from a real transport. */
  private sendSnapshot(from: Endpoint, m: Message, data: Uint8Array, resolve: () => void, reject: (e: Error) => void): void {
    this.leaving(m);
    this.rpcCount++;
    this.bytes += MESSAGE_HEADER_BYTES + data.length;
    const fail = (why: string): void => from.clock.after(1, () => reject(new Error(`snapshot to node ${m.to}: ${why}`)));
    const dest = this.endpoints.get(m.to);
    const delay = dest && this.linkUp(m.from, m.to) ? this.delay(false) : undefined;
    if (!dest || delay === undefined) return fail('lost');
    this.world.after(delay + Math.ceil(data.length / SNAPSHOT_BYTES_PER_MS), () => {
      if (this.endpoints.get(m.to) !== dest || !this.linkUp(m.from, m.to) || !dest.onSnapshot) return fail('connection lost');
      dest.onSnapshot(m, data);
      from.clock.after(1, resolve);
    });
  }
}
