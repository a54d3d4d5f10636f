/**
 * Overload degrades gracefully: a burst far beyond what the cluster can take (20,000 puts at once
 * from one client) neither deposes the leader nor fails a request except as a clear overload
 * refusal; the excess is refused at once and retried by the SDK after a pause. The throughput
 * this keeps (goodput against the peak) is a benchmark: make bench-overload, BENCHMARKS.md.
 */
import { afterAll, expect, it } from 'vitest';
import { ClusterOverloadedError, KvClient } from '../../src/index.js';
import { Cluster, ensureBuilt, killAll } from './cluster.js';

let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.close();
  await killAll();
});

it('20,000 concurrent puts: no leader change, and every failure is an overload refusal', { timeout: 120_000 }, async () => {
  await ensureBuilt();
  const c = (cluster = await Cluster.create('overload'));
  c.startAll();
  const leader = await c.waitForLeader();
  const term = async (): Promise<number[]> => (await c.status()).flatMap((r) => (r.ok ? [r.status.term] : []));
  const before = await term();
  const kv = new KvClient({ endpoints: c.endpoints, timeoutMs: 30_000 });
  const failures = new Map<string, number>();
  let ok = 0;
  const value = 'v'.repeat(100);
  try {
    await Promise.all(
      Array.from({ length: 20_000 }, (_, i) =>
        kv.put(`k${i}`, value).then(
          () => void ok++,
          (e: unknown) => {
            const kind = e instanceof ClusterOverloadedError ? 'overloaded' : `${(e as Error).name}: ${(e as Error).message}`;
            failures.set(kind, (failures.get(kind) ?? 0) + 1);
          },
        ),
      ),
    );
  } finally {
    kv.close();
  }
  const after = await term();
  console.log(`overload: ${ok} of 20000 puts acknowledged; failures ${JSON.stringify([...failures])}; terms ${before} -> ${after}`);
  expect([...failures.keys()].filter((k) => k !== 'overloaded')).toEqual([]);
  expect(ok).toBeGreaterThan(0);
  expect(after).toEqual(before.map(() => before[0]));
  expect(await c.waitForLeader()).toBe(leader);
});
