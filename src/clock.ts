/**
 * Time as the server sees it, injected: the system clock in kv-server, a virtual one in the
 * simulator, so that everything a node does in time replays exactly under a seed. Code below the
 * composition root never touches setTimeout, setImmediate, Date or performance directly.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock: timers and durations. */
  now(): number;
  /** Milliseconds since the Unix epoch: times that go into the log (a leader stamps sessions with it). */
  epochMs(): number;
  /** Runs `fn` once after `ms`. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Runs `fn` every `ms`. */
  setInterval(fn: () => void, ms: number): Timer;
  /** Runs `fn` on a later turn of the event loop, after the I/O that is ready now (setImmediate). */
  defer(fn: () => void): void;
  /** A budget for one long synchronous job that must keep yielding to the rest of the node. */
  slicer(sliceMs?: number): Slicer;
}

export interface Timer {
  cancel(): void;
}

/**
 * Cooperative time slicing: a job checks `expired()` every so often and, when it says so, awaits
 * `next()`, which yields to the event loop and starts a new slice.
 */
export interface Slicer {
  expired(): boolean;
  next(): Promise<void>;
}

/** The longest stretch of synchronous work between yields, by default. */
export const DEFAULT_SLICE_MS = 5;

/** The process's own clock: Node's timers, performance.now() and Date.now(). */
export const systemClock: Clock = {
  now: () => performance.now(),
  epochMs: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
  defer: (fn) => void setImmediate(fn),
  slicer(sliceMs = DEFAULT_SLICE_MS) {
    let deadline = performance.now() + sliceMs;
    return {
      expired: () => performance.now() >= deadline,
      next: () =>
        new Promise<void>((resolve) =>
          setImmediate(() => {
            deadline = performance.now() + sliceMs;
            resolve();
          }),
        ),
    };
  },
};
