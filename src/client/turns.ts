import { ClusterOverloadedError } from './errors.js';

/** Calls waiting for a turn, at most: beyond, a call is refused at once as overloaded. */
const MAX_WAITING = 100_000;

/**
 * The client's `max` turns on the wire, handed out first come, first served. Keeps a burst of
 * calls from swamping the client's own process and the cluster: the rest wait here, within their
 * deadline.
 */
export class Turns {
  private inflight = 0;
  /** Calls waiting for a turn (a FIFO: `head` is its first). */
  private waiting: (() => void)[] = [];
  private head = 0;

  constructor(readonly max: number) {}

  /** Resolves when one of the turns is free. */
  take(): Promise<void> {
    if (this.inflight < this.max) {
      this.inflight++;
      return Promise.resolve();
    }
    if (this.waiting.length - this.head >= MAX_WAITING) {
      return Promise.reject(new ClusterOverloadedError(`${MAX_WAITING} calls are already waiting in this client for a turn`, 0));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the turn to the next waiting call, if any. */
  release(): void {
    if (this.head < this.waiting.length) {
      const next = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined as unknown as () => void;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting = this.waiting.slice(this.head);
        this.head = 0;
      }
      next();
    } else this.inflight--;
  }

  /** Wakes every waiting call (the client is closing: they find it closed). */
  wakeAll(): void {
    for (const wake of this.waiting.slice(this.head)) wake();
    this.waiting = [];
    this.head = 0;
  }
}
