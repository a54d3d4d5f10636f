import type { Clock, Slicer, Timer } from '../../src/clock.js';
import { EventQueue } from './event-queue.js';

/** Virtual milliseconds since the Unix epoch at the start of every run (a fixed, plausible date). */
const EPOCH_MS = 1_767_225_600_000;
/** A time-sliced job yields after this many checks of its slicer: a fixed amount of work, not of time. */
const SLICE_CHECKS = 4;

/**
 * Virtual time for one simulated run: an event queue ordered by (time, insertion), run one event
 * at a time with every microtask drained in between, so that a promise resolved by an event
 * continues at that event's instant, before the next. Nothing else advances time: a run is a pure
 * function of its seed.
 */
export class SimWorld {
  now = 0;
  private readonly queue = new EventQueue<() => void>();
  private events = 0;

  constructor(private readonly maxEvents: number) {}

  at(time: number, fn: () => void): void {
    this.queue.push(Math.max(time, this.now), fn);
  }

  after(delayMs: number, fn: () => void): void {
    this.at(this.now + delayMs, fn);
  }

  /**
   * Runs every event due up to `end`, then sets the time to `end`. `check` runs after each
   * event (and its microtasks): the place to stop a run that went wrong.
   */
  async runUntil(end: number, check: () => void): Promise<void> {
    for (;;) {
      // Work started outside an event (a scenario's call) runs to its first wait first.
      await drainMicrotasks();
      check();
      if (this.queue.peekTime() > end) break;
      const { time, item } = this.queue.pop()!;
      this.now = time;
      if (++this.events > this.maxEvents) throw new Error(`event budget of ${this.maxEvents} exhausted (livelock?)`);
      item();
    }
    this.now = Math.max(this.now, end);
  }
}

/** Resolves once every microtask queued so far, and every one they queue, has run. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * One node incarnation's clock. A crash kills it: its timers, deferred work and pending slices
 * never run again, so nothing of the dead incarnation acts after the crash (its promises stay
 * pending forever, as a killed process's would).
 */
export class SimClock implements Clock {
  private alive = true;

  constructor(
    private readonly world: SimWorld,
    /** How far this node's ticks are out of phase with the others' (real clocks are). */
    private readonly phaseMs: number,
  ) {}

  get dead(): boolean {
    return !this.alive;
  }

  kill(): void {
    this.alive = false;
  }

  now(): number {
    return this.world.now;
  }

  epochMs(): number {
    return EPOCH_MS + this.world.now;
  }

  /** Runs `fn` after `delayMs` if this incarnation still lives (for the simulated disk and network too). */
  after(delayMs: number, fn: () => void): void {
    this.world.after(delayMs, () => {
      if (this.alive) fn();
    });
  }

  setTimeout(fn: () => void, ms: number): Timer {
    let cancelled = false;
    this.after(ms, () => {
      if (!cancelled) fn();
    });
    return { cancel: () => void (cancelled = true) };
  }

  setInterval(fn: () => void, ms: number): Timer {
    let cancelled = false;
    const fire = (): void => {
      if (cancelled) return;
      fn();
      this.after(ms, fire);
    };
    this.after(ms + this.phaseMs, fire);
    return { cancel: () => void (cancelled = true) };
  }

  defer(fn: () => void): void {
    this.after(0, fn);
  }

  slicer(): Slicer {
    let checks = 0;
    return {
      expired: () => ++checks % SLICE_CHECKS === 0,
      next: () => new Promise<void>((resolve) => this.after(0, resolve)),
    };
  }
}
