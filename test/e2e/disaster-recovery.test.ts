/**
 * Disaster recovery with real processes (README: "Disaster recovery").
 *
 * Backup and restore: a 3-node cluster takes writes, `kv-cli backup` writes a backup while a
 * writer goes on, and a new 3-node cluster is started from it with `kv-server --restore`: every
 * write acknowledged before the backup began reads back from the new cluster with its value, the
 * new cluster has a cluster id of its own, and it takes writes.
 *
 * Loss of quorum: two nodes of three are killed under a writer, and the survivor is started with
 * `kv-server --force-new-cluster`: every acknowledged write its log held, the entries it did not
 * know to be committed included, is there; it serves writes alone, under a new cluster id; a
 * fresh member added with `kv-cli member add` and `kv-server --join` catches up and holds it all
 * on disk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { decodeCommand } from '../../src/server/command.js';
import { AckedWriter, clusterIdOf, unreadable, valueFor } from './acked-writes.js';
import { cli, Cluster, ensureBuilt, killAll, tempDir, waitFor } from './cluster.js';
import { diskValue, readDataDir, replayDataDir } from './on-disk.js';

const clusters: Cluster[] = [];
const dirs: string[] = [];
afterAll(async () => {
  for (const c of clusters) await c.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await killAll();
});

async function cluster(name: string): Promise<Cluster> {
  const c = await Cluster.create(name, { extraArgs: ['--snapshot-threshold', '500', '--snapshot-retain', '100'] });
  clusters.push(c);
  return c;
}

/** Every node of `c` reports one cluster id and has applied what the leader committed. */
async function oneClusterId(c: Cluster): Promise<string> {
  await c.waitCaughtUp(20_000);
  const ids = new Set((await c.status()).map((r) => (r.ok ? r.status.clusterId : '-')));
  expect(ids.size).toBe(1);
  return [...ids][0]!;
}

it('kv-cli backup, then a new 3-node cluster from it with --restore: every write acknowledged before the backup, a new cluster id, new writes', { timeout: 60_000 }, async () => {
  await ensureBuilt();
  const started = Date.now();
  const a = await cluster('backup-src');
  a.startAll();
  await a.waitForLeader();
  const sourceId = await clusterIdOf(a);
  const writer = new AckedWriter(a.endpoints, 16);
  await waitFor('2000 acknowledged writes', () => writer.acked.length >= 2000, 20_000);

  // The backup begins while the writer goes on: what was acknowledged by then must be in it.
  const dir = tempDir('backup-file');
  dirs.push(dir);
  const file = path.join(dir, 'cluster.snap');
  const before = [...writer.acked];
  const r = await cli(['--endpoints', a.endpoints.join(','), '--json', 'backup', file]);
  await writer.stop();
  expect(r.code, r.stderr).toBe(0);
  const info = JSON.parse(r.stdout) as { path: string; bytes: number; index: number; term: number; keys: number; clusterId: string; voters: number[] };
  expect(info).toMatchObject({ path: file, clusterId: sourceId, voters: [1, 2, 3] });
  expect(info.keys).toBeGreaterThanOrEqual(before.length);
  expect(fs.statSync(file).size).toBe(info.bytes);
  expect(fs.readdirSync(dir)).toEqual(['cluster.snap']); // no FILE.tmp left behind
  // Not overwritten without --force.
  const again = await cli(['--endpoints', a.endpoints.join(','), 'backup', file]);
  expect(again.code).toBe(2);
  expect(again.stderr).toMatch(/exists: not overwriting it/);
  expect(fs.statSync(file).size).toBe(info.bytes);

  // A new cluster, elsewhere, from the file.
  const b = await cluster('backup-restored');
  for (const n of b.nodes) b.start(n.id, ['--restore', file]);
  await b.waitForLeader();
  const restoredId = await oneClusterId(b);
  expect(restoredId).not.toBe(sourceId);
  expect(b.nodes.every((n) => /--restore: this node starts a NEW cluster from the backup/.test(n.log))).toBe(true);
  const client = new KvClient({ endpoints: b.endpoints, timeoutMs: 10_000 });
  try {
    expect(await unreadable(client, before)).toEqual([]);
    await client.put('after-restore', 'yes');
    expect(await client.get('after-restore')).toBe('yes');
  } finally {
    client.close();
  }
  // The source cluster is untouched, and the two do not mix: the new one has its own members.
  expect((await a.status()).every((s) => s.ok && s.status.clusterId === sourceId)).toBe(true);
  console.log(
    `backup: ${info.keys} keys, ${info.bytes} bytes at index ${info.index}; ${before.length} acknowledged before it, all restored into ` +
      `${restoredId} (from ${sourceId}); ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});

it('--force-new-cluster on the survivor of a lost quorum: its acknowledged writes, writes alone, a new member catches up', { timeout: 60_000 }, async () => {
  await ensureBuilt();
  const started = Date.now();
  const c = await cluster('force');
  c.startAll();
  const leader = await c.waitForLeader();
  const oldId = await clusterIdOf(c);
  const writer = new AckedWriter(c.endpoints, 16, 2000);
  await waitFor('500 acknowledged writes', () => writer.acked.length >= 500, 20_000);

  // One follower hangs (SIGSTOP): from then on every write is acknowledged only once the other
  // follower, the survivor, holds it. Then the leader dies under the writer, and the hung one too.
  const [survivor, other] = c.nodes.map((n) => n.id).filter((id) => id !== leader) as [number, number];
  process.kill(c.node(other).proc!.pid!, 'SIGSTOP');
  const hungAt = writer.acked.length;
  await waitFor('acknowledged writes with the survivor in every quorum', () => writer.acked.length >= hungAt + 1000, 20_000);
  await c.stop(leader, 'SIGKILL');
  await c.stop(other, 'SIGKILL');
  await writer.stop();
  await c.stop(survivor, 'SIGKILL');
  const s = c.node(survivor);
  // What the survivor's log held, read from its disk before the force: it keeps all of it.
  const disk = await readDataDir(s.dataDir, survivor, oldId);
  const inLog = new Set<string>();
  const beyondCommit = new Set<string>();
  for (const e of disk.persisted.entries) {
    if (e.type !== 'normal') continue;
    const key = new TextDecoder().decode(decodeCommand(e.data).key);
    inLog.add(key);
    if (e.index > disk.persisted.hardState.commit) beyondCommit.add(key);
  }
  disk.snapshot?.state.keys.forEach((k) => inLog.add(Buffer.from(k, 'latin1').toString()));
  const held = writer.acked.filter((k) => inLog.has(k));
  const ackedBeyondCommit = writer.acked.filter((k) => beyondCommit.has(k));
  // Since it was in every quorum of the last 1000 writes (and all before were caught up to it, or
  // are in the same log), the survivor holds every acknowledged write.
  expect(writer.acked.length - held.length).toBe(0);

  c.start(survivor, ['--force-new-cluster']);
  c.markRemoved(leader);
  c.markRemoved(other);
  await c.waitForLeader();
  expect(s.log).toMatch(/--force-new-cluster: this node's data dir is now a NEW cluster of this node alone/);
  const newId = await oneClusterId(c);
  expect(newId).not.toBe(oldId);
  const client = new KvClient({ endpoints: [s.clientAddr], timeoutMs: 10_000 });
  try {
    expect(await unreadable(client, held)).toEqual([]);
    await client.put('after-force', 'alone');
    expect(await client.get('after-force')).toBe('alone');
  } finally {
    client.close();
  }
  // The forced node snapshots its new cluster, which new members will be sent.
  await waitFor('the forced node to snapshot its new cluster', () => /took a snapshot of the forced cluster/.test(s.log));

  // A fresh member: kv-cli member add (a learner), kv-server --join, caught up, promoted.
  const n = await c.addNode();
  const add = await cli(['--endpoints', s.clientAddr, 'member', 'add', String(n.id), n.peerAddr, '--client-addr', n.clientAddr, '--learner']);
  expect(add.code, add.stderr).toBe(0);
  expect(add.stdout).toMatch(/--join /);
  c.start(n.id);
  await c.waitCaughtUp(20_000);
  const promote = await cli(['--endpoints', s.clientAddr, 'member', 'promote', String(n.id)]);
  expect(promote.code, promote.stderr).toBe(0);
  await c.waitCaughtUp(20_000);
  expect(await oneClusterId(c)).toBe(newId);
  // It holds everything, on disk, in a snapshot of the new cluster and the log after it.
  await c.stop(n.id, 'SIGTERM');
  const replayed = await replayDataDir(n.dataDir, n.id, newId);
  const missing = [...held, 'after-force'].filter((k) => diskValue(replayed, k) !== (k === 'after-force' ? 'alone' : valueFor(k)));
  expect(missing.slice(0, 5)).toEqual([]);

  console.log(
    `force-new-cluster: ${writer.acked.length} writes acknowledged, ${writer.failed} gave up; the survivor (node ${survivor}) held ${held.length} of them, ` +
      `${ackedBeyondCommit.length} beyond its commit index (${disk.persisted.hardState.commit}), all kept; ${writer.acked.length - held.length} it never received are lost; ` +
      `node ${n.id} joined ${newId} (from ${oldId}) and holds them all; ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
});
