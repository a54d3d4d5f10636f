import { Raft, type RaftConfig } from '../../src/raft/core/raft.js';
import { seededRng } from '../../src/raft/core/rng.js';
import type { Entry, Message, NodeId } from '../../src/raft/core/types.js';
import type { ReadState } from '../../src/raft/core/read-index.js';

/**
 * A tiny synchronous network for unit tests (after etcd's newNetwork): messages are delivered
 * at once until the cluster is quiet, except where links are cut or messages dropped.
 * Every Ready is taken as durable immediately.
 */
export class Network {
  readonly nodes = new Map<NodeId, Raft>();
  readonly delivered: Message[] = [];
  /** Read confirmations produced while delivering, per node. */
  readonly readStates: { node: NodeId; index: number; ctx: number }[] = [];
  private readonly cut = new Set<string>();
  private dropFilter: ((m: Message) => boolean) | undefined;

  constructor(ids: NodeId[], cfg: Partial<RaftConfig> = {}, seed = 1) {
    for (const id of ids) this.nodes.set(id, newRaft(id, ids, cfg, seed + id));
  }

  node(id: NodeId): Raft {
    return this.nodes.get(id)!;
  }

  /** Ticks a node until it campaigns, then delivers everything. */
  elect(id: NodeId): void {
    const r = this.node(id);
    for (let i = 0; i < 1000 && r.role === 'follower'; i++) r.tick();
    this.deliverAll();
  }

  propose(id: NodeId, text: string): void {
    const res = this.node(id).propose(new TextEncoder().encode(text));
    if (!res.ok) throw new Error(`node ${id} is not leader`);
    this.deliverAll();
  }

  /** Runs every node's Ready loop and delivers messages until nothing moves. */
  deliverAll(): void {
    for (let rounds = 0; rounds < 10_000; rounds++) {
      const inflight: Message[] = [];
      for (const [id, r] of this.nodes) inflight.push(...drain(r, (rs) => this.readStates.push({ node: id, ...rs })));
      if (inflight.length === 0) return;
      for (const m of inflight) {
        if (this.cut.has(`${m.from}-${m.to}`) || this.dropFilter?.(m)) continue;
        this.delivered.push(m);
        this.nodes.get(m.to)?.step(m);
      }
    }
    throw new Error('network never went quiet');
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}-${b}`).add(`${b}-${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  recover(): void {
    this.cut.clear();
    this.dropFilter = undefined;
  }

  drop(filter: (m: Message) => boolean): void {
    this.dropFilter = filter;
  }
}

export function newRaft(id: NodeId, peers: NodeId[], cfg: Partial<RaftConfig> = {}, seed = id): Raft {
  return new Raft({ id, peers, electionTick: 10, heartbeatTick: 1, rng: seededRng(seed), ...cfg });
}

/** Takes one node's pending output as if persisted and applied; returns its messages. */
export function drain(r: Raft, onRead?: (rs: ReadState) => void): Message[] {
  const out: Message[] = [];
  while (r.hasReady()) {
    const rd = r.ready();
    out.push(...rd.messages);
    if (onRead) rd.readStates.forEach(onRead);
    r.advance(rd);
  }
  return out;
}

export function entries(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: i + 1, term, type: 'normal', data: new TextEncoder().encode(`e${i + 1}`) }));
}

export function logTerms(r: Raft): number[] {
  const out: number[] = [];
  for (let i = 1; i <= r.log.lastIndex(); i++) out.push(r.log.term(i)!);
  return out;
}
