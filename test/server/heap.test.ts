import { expect, it } from 'vitest';
import { growingPercent, HEADROOM_BYTES, MIN_GROWING_PERCENT } from '../../src/server/heap.js';

const MB = 1024 * 1024;

it('heap growth: an absolute headroom while the live heap is small, a share of it once large', () => {
  expect(growingPercent(HEADROOM_BYTES)).toBe(100); // 2×: the headroom is the live heap itself
  expect(growingPercent(4 * HEADROOM_BYTES)).toBe(30); // 25% rounds up to a step of 10, at least MIN
  expect(growingPercent(1000 * MB)).toBe(MIN_GROWING_PERCENT);
  expect(growingPercent(1 * MB)).toBe(300); // never past V8's own largest factor, 4×
  expect(growingPercent(0)).toBe(300);
  // Falls, in steps of 10, as the live heap grows.
  let prev = Infinity;
  for (let live = MB; live < 2000 * MB; live += 7 * MB) {
    const p = growingPercent(live);
    expect(p).toBeLessThanOrEqual(prev);
    expect(p % 10).toBe(0);
    prev = p;
  }
});
