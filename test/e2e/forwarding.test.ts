/**
 * A follower serves the clients that reach only it: it forwards their calls to the leader over
 * the peer connection (kv-server's rpc Forward). Here the followers cannot even name the leader
 * (no --client-peers), so a client that knows one follower only is served by forwarding or not
 * at all; reads are linearizable through it and a retried write is applied once.
 */
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { Cluster, ensureBuilt, killAll } from './cluster.js';

let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.close();
  await killAll();
});

it('a client that reaches one follower only is served through it', { timeout: 60_000 }, async () => {
  await ensureBuilt();
  const c = (cluster = await Cluster.create('forwarding', { leaderHints: false }));
  c.startAll();
  const leader = await c.waitForLeader();
  const follower = c.nodes.find((n) => n.id !== leader)!;
  // Attempts as long as the call: this test is about where calls go, not how fast (a slow machine
  // must not turn it into a test of retries).
  const viaFollower = new KvClient({ endpoints: [follower.clientAddr], timeoutMs: 30_000, attemptTimeoutMs: 30_000 });
  const direct = new KvClient({ endpoints: [c.node(leader).clientAddr], timeoutMs: 30_000, attemptTimeoutMs: 30_000 });
  try {
    await viaFollower.put('k', 'one');
    expect(await direct.get('k')).toBe('one');
    await direct.put('k', 'two');
    expect(await viaFollower.get('k')).toBe('two'); // linearizable: the write before it is seen
    await viaFollower.append('log', 'a');
    await viaFollower.append('log', 'b');
    expect(await viaFollower.cas('log', 'ab', 'c')).toBe(true);
    expect(await viaFollower.delete('log')).toBe(true);
    expect(await direct.get('log')).toBeUndefined();
    await Promise.all(Array.from({ length: 200 }, (_, i) => viaFollower.append('many', `<${i}>`)));
    const many = (await direct.get('many'))!;
    for (let i = 0; i < 200; i++) expect(many.split(`<${i}>`).length).toBe(2); // each once
  } finally {
    viaFollower.close();
    direct.close();
  }
});
