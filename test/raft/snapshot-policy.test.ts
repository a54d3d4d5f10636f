import { expect, it } from 'vitest';
import { snapshotDue, type SnapshotPolicy } from '../../src/raft/snapshot-policy.js';

it('a snapshot due by count waits until the log since the last holds as many bytes as it (times the ratio)', () => {
  let last = 0;
  const p: SnapshotPolicy = { entries: 100, retain: 0, logPerStateByte: 1, lastSnapshotBytes: () => last };
  expect(snapshotDue(p, { entries: 99, bytes: 10_000 })).toBe(false);
  // No snapshot yet: the count alone decides.
  expect(snapshotDue(p, { entries: 100, bytes: 10 })).toBe(true);
  last = 5000;
  expect(snapshotDue(p, { entries: 100, bytes: 4999 })).toBe(false);
  expect(snapshotDue(p, { entries: 10_000, bytes: 4999 })).toBe(false);
  expect(snapshotDue(p, { entries: 100, bytes: 5000 })).toBe(true);
  expect(snapshotDue({ ...p, logPerStateByte: 0.5 }, { entries: 100, bytes: 2500 })).toBe(true);
  expect(snapshotDue({ ...p, logPerStateByte: 0 }, { entries: 100, bytes: 0 })).toBe(true);
});

it('a bound in bytes (the lab\'s maxraftstate) is kept whatever the state\'s size', () => {
  const p: SnapshotPolicy = { entries: 0, bytes: 1000, retain: 0, logPerStateByte: 1, lastSnapshotBytes: () => 1_000_000 };
  expect(snapshotDue(p, { entries: 3, bytes: 999 })).toBe(false);
  expect(snapshotDue(p, { entries: 3, bytes: 1000 })).toBe(true);
  expect(snapshotDue({ ...p, bytes: 0 }, { entries: 1e9, bytes: 1e9 })).toBe(false);
});
