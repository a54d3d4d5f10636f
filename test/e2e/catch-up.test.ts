/**
 * Catching up a follower that fell far behind is flow-controlled: the leader keeps a bounded
 * amount of entries in flight to it, so its transport never overflows (and drops) while the
 * follower drinks from the fire hose, and the follower still catches up.
 */
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { Cluster, ensureBuilt, killAll, waitFor } from './cluster.js';

let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.close();
  await killAll();
});

it('a follower frozen while 40 MB are written catches up without the leader dropping anything', { timeout: 120_000 }, async () => {
  await ensureBuilt();
  const c = (cluster = await Cluster.create('catch-up'));
  c.startAll();
  const leader = await c.waitForLeader();
  const follower = c.nodes.map((n) => n.id).find((id) => id !== leader)!;
  const kv = new KvClient({ endpoints: c.endpoints, timeoutMs: 20_000 });
  try {
    await kv.put('before', 'x');
    // Frozen, the follower reads nothing: whatever the leader sends it piles up in the leader.
    process.kill(c.node(follower).proc!.pid!, 'SIGSTOP');
    const value = 'v'.repeat(100 * 1024);
    for (let batch = 0; batch < 50; batch++) {
      await Promise.all(Array.from({ length: 8 }, (_, i) => kv.put(`k${batch}-${i}`, value)));
    }
    process.kill(c.node(follower).proc!.pid!, 'SIGCONT');
    await c.waitCaughtUp(60_000);
    expect(await kv.get('k49-7')).toBe(value);
  } finally {
    kv.close();
    const pid = c.node(follower).proc?.pid;
    if (pid) process.kill(pid, 'SIGCONT');
  }
  await waitFor('the leader to log its state', () => c.node(leader).log.length > 0);
  expect(c.node(leader).log).not.toMatch(/queue full/);
});
