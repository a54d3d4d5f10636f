/**
 * kv-server's log on a pipe, as a log collector sees it: JSON lines by default (issue 13), each
 * with the node id, and the term and role once the node knows them.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cluster, ensureBuilt, killAll } from './cluster.js';

let cluster: Cluster | undefined;

beforeAll(async () => {
  await ensureBuilt();
});

afterAll(async () => {
  await cluster?.close();
  await killAll();
});

it('writes JSON lines to a pipe by default, each with node, and term and role once known', { timeout: 20_000 }, async () => {
  cluster = await Cluster.create('logs-json', { size: 1, logFormat: 'auto' });
  cluster.start(1);
  await cluster.waitForLeader();
  expect(await cluster.stop(1, 'SIGTERM')).toEqual({ code: 0, signal: null });

  const lines = cluster.node(1).log.split('\n').filter((l) => l !== '');
  const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const e of entries) {
    expect(e).toMatchObject({ node: 1, level: expect.stringMatching(/^(debug|info|warn|error)$/), time: expect.any(Number), msg: expect.any(String) });
  }
  const leader = entries.findIndex((e) => e.msg === 'became leader');
  expect(leader).toBeGreaterThanOrEqual(0);
  // Lines after the election carry the term and role without the caller passing them.
  const shutdown = entries.find((e) => e.msg === 'shutting down');
  expect(shutdown).toMatchObject({ signal: 'SIGTERM', role: 'leader', term: expect.any(Number) });
  expect(entries.indexOf(shutdown!)).toBeGreaterThan(leader);
});
