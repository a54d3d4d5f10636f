/**
 * Serializable reads (kv-cli get --serializable, the SDK's { serializable: true }) on a real
 * 3-node cluster: a member answers from what it has applied, without the leader, so a lone
 * survivor of a lost quorum still answers them, while a linearizable read there fails (exit 3).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { cli, Cluster, ensureBuilt, killAll, waitFor } from './cluster.js';

let cluster: Cluster;

beforeAll(async () => {
  await ensureBuilt();
  cluster = await Cluster.create('serializable');
  cluster.startAll();
  await cluster.waitForLeader();
});

afterAll(async () => {
  await cluster?.close();
  await killAll();
});

it('a member without a leader answers serializable reads from what it applied; linearizable ones fail', async () => {
  const all = new KvClient({ endpoints: cluster.endpoints });
  try {
    await all.put('s', 'v1');
    // A serializable read may be stale until the node it reaches has applied the write: wait for
    // every member to apply it, then stop two, the leader among them.
    const written = Math.max(...(await all.status()).map((r) => (r.ok ? r.status.commitIndex : 0))); // the leader's, at least the write's
    await waitFor('every member to apply the write', async () => (await all.status()).every((r) => r.ok && r.status.appliedIndex >= written));
    expect(await all.get('s', { serializable: true })).toBe('v1');
  } finally {
    all.close();
  }
  const leader = await cluster.waitForLeader();
  const survivor = cluster.nodes.find((n) => n.id !== leader)!;
  for (const n of cluster.nodes) if (n.id !== survivor.id) await cluster.stop(n.id);

  const serializable = await cli(['--endpoints', survivor.clientAddr, '--timeout', '2000', 'get', 's', '--serializable']);
  expect([serializable.code, serializable.stdout, serializable.stderr]).toEqual([0, 'v1\n', '']);
  const linearizable = await cli(['--endpoints', survivor.clientAddr, '--timeout', '1000', 'get', 's']);
  expect(linearizable.code).toBe(3);
  const one = new KvClient({ endpoints: [survivor.clientAddr], timeoutMs: 2000 });
  try {
    expect(await one.get('s', { serializable: true })).toBe('v1');
    expect(await one.get('never', { serializable: true })).toBeUndefined();
  } finally {
    one.close();
  }
  const usage = await cli(['--endpoints', survivor.clientAddr, 'put', 's', 'x', '--serializable']);
  expect([usage.code, usage.stderr]).toEqual([2, expect.stringContaining('--serializable goes with get only')]);
});
