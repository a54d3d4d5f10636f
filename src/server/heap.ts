import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past what the last full collection kept. Left to
 * itself, V8 picks a factor of up to 4× on a machine with a large heap limit: a node holding
 * 150 MB of keys then keeps ~400 MB of heap, and the ArrayBuffers that die with it (log entries,
 * peer and client messages) pile up in malloc until the same late collection. A fixed 1.3× cut
 * the leader's peak RSS on 1M puts from 683 to 484 MB but, with a small state, ran full
 * collections so often that put throughput at 256 clients fell by a fifth. So the headroom is
 * absolute while the heap is small (HEADROOM_BYTES, up to V8's own largest factor, 4×) and 30% of the
 * live heap once that is larger (BENCHMARKS.md, "Memory").
 */
export const HEADROOM_BYTES = 32 * 1024 * 1024;
export const MIN_GROWING_PERCENT = 30;

/** The growing factor, in percent over 1, for a heap of `liveBytes` after a full collection. */
export function growingPercent(liveBytes: number): number {
  const p = Math.max(MIN_GROWING_PERCENT, (100 * HEADROOM_BYTES) / Math.max(liveBytes, 1));
  return Math.min(300, Math.ceil(p / 10) * 10); // steps of 10: a flag set now and then, not at every collection
}

/**
 * Sets V8's --heap-growing-percent from the live heap after every full collection (the factor is
 * read at each one), for the life of the process. An operator's own --heap-growing-percent on the
 * command line wins (V8 does not take it from NODE_OPTIONS).
 */
export function tuneHeap(): void {
  if (process.execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return;
  let current = 0;
  const set = (): void => {
    const p = growingPercent(getHeapStatistics().used_heap_size);
    if (p === current) return;
    setFlagsFromString(`--heap-growing-percent=${p}`);
    current = p;
  };
  const full = constants.NODE_PERFORMANCE_GC_MAJOR;
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === full)) set();
  });
  observer.observe({ entryTypes: ['gc'] });
  set();
}
