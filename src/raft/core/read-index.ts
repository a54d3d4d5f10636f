import type { NodeId } from './types.js';

/** A confirmed read: once the state machine has applied `index`, request `ctx` may be answered. */
export interface ReadState {
  readonly index: number;
  readonly ctx: number;
}

/**
 * The leader's side of ReadIndex (thesis §6.4). Each request records the commit index at its
 * arrival; a heartbeat round that started after it, acknowledged by a majority, proves this node
 * was still leader then, so no newer write can have committed elsewhere. Requests arriving
 * together share one round; an acknowledgement of round `ctx` covers every request up to `ctx`.
 */
export class ReadIndexQueue {
  private readonly queue: { ctx: number; index: number; acks: Set<NodeId> }[] = [];
  private released: ReadState[] = [];
  private unsent = 0;

  /** `isQuorum`: whether a set of acknowledging nodes is a quorum of the configuration in force. */
  constructor(
    private readonly self: NodeId,
    private readonly isQuorum: (acks: ReadonlySet<NodeId>) => boolean,
  ) {}

  add(ctx: number, index: number): void {
    this.queue.push({ ctx, index, acks: new Set([this.self]) });
    this.unsent = ctx;
    this.release();
  }

  ack(from: NodeId, ctx: number): void {
    for (const r of this.queue) {
      if (r.ctx > ctx) break;
      r.acks.add(from);
    }
    this.release();
  }

  /** The round a heartbeat should carry: the newest waiting request, or 0. */
  newestCtx(): number {
    return this.queue[this.queue.length - 1]?.ctx ?? 0;
  }

  /** The context of a round that must start now (requests not yet covered by one), or 0. */
  takeUnsent(): number {
    const ctx = this.unsent;
    this.unsent = 0;
    return ctx;
  }

  hasWork(): boolean {
    return this.released.length > 0 || this.unsent !== 0;
  }

  takeReleased(): ReadState[] {
    const out = this.released;
    this.released = [];
    return out;
  }

  private release(): void {
    let last = -1;
    for (let i = 0; i < this.queue.length; i++) if (this.isQuorum(this.queue[i]!.acks)) last = i;
    for (const r of this.queue.splice(0, last + 1)) this.released.push({ index: r.index, ctx: r.ctx });
  }
}
