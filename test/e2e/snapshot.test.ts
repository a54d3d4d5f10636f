/**
 * Snapshots with real processes: the log stays bounded and a restart starts from the snapshot;
 * a follower whose data directory is wiped is replaced (removed; a new node started with --join,
 * added as a learner, caught up by InstallSnapshot, promoted); kill -9 while a snapshot is being
 * taken, and while one is being received, and the restarted node serves exactly the acknowledged data.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { nodeFileSystem } from '../../src/files.js';
import { decodeSnapshot } from '../../src/server/snapshot/decode.js';
import { listSnapshots } from '../../src/server/snapshot/files.js';
import { seededRng } from '../../src/raft/core/rng.js';
import { cli, Cluster, ensureBuilt, killAll, sleep, waitFor, type Node } from './cluster.js';
import { members } from './members.js';

const THRESHOLD = 300;
const RETAIN = 50;

let cluster: Cluster;
let client: KvClient;
/** What the cluster must hold: every acknowledged put. */
const expected = new Map<string, string>();

beforeAll(async () => {
  await ensureBuilt();
  cluster = await Cluster.create('snapshot', { extraArgs: ['--snapshot-threshold', String(THRESHOLD), '--snapshot-retain', String(RETAIN)] });
  cluster.startAll();
  await cluster.waitForLeader();
  client = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 20_000 });
});

afterAll(async () => {
  client?.close();
  await cluster?.close();
  await killAll();
});

/** `n` puts over `keys` keys, `inFlight` at a time, values of `valueBytes`; records them in `expected`. */
async function load(tag: string, n: number, keys: number, valueBytes = 64, inFlight = 16): Promise<void> {
  let next = 0;
  const pad = 'x'.repeat(valueBytes);
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const i = next++;
        const k = `k${i % keys}`;
        const v = `${tag}-${i}-${pad}`.slice(0, Math.max(valueBytes, 8));
        await client.put(k, v);
        expected.set(k, v);
      }
    }),
  );
}

/** Reads every expected key through the cluster, 64 at a time, and compares. */
async function checkAll(): Promise<void> {
  const keys = [...expected.keys()];
  const wrong: [string, string | undefined][] = [];
  for (let i = 0; i < keys.length; i += 64) {
    const got = await Promise.all(keys.slice(i, i + 64).map(async (k) => [k, (await client.get(k))?.toString()] as const));
    for (const [k, v] of got) if (v !== expected.get(k)) wrong.push([k, v]);
  }
  expect(wrong.slice(0, 3)).toEqual([]);
}

/** The keys and values in node `id`'s newest snapshot file (written by itself). */
async function snapshotContents(id: number): Promise<{ index: number; data: Map<string, string> }> {
  const files = nodeFileSystem(cluster.node(id).dataDir);
  const [newest] = await listSnapshots(files, 'snap');
  if (!newest) throw new Error(`node ${id} has no snapshot in ${cluster.node(id).dataDir}/snap`);
  const { meta, state } = decodeSnapshot(await files.read(newest.path), { clusterId: clusterIdOf(), nodeId: id });
  const data = new Map<string, string>();
  state.keys.forEach((k, i) => data.set(Buffer.from(k, 'latin1').toString(), Buffer.from(state.values[i]!).toString()));
  return { index: meta.index, data };
}

let clusterId: string | undefined;
function clusterIdOf(): string {
  if (!clusterId) {
    const m = /cluster=(\S+)/.exec(cluster.node(1).log);
    if (!m) throw new Error('no cluster id in node 1 log');
    clusterId = m[1]!;
  }
  return clusterId;
}

async function statusOf(id: number) {
  const rows = await cluster.status();
  const r = rows[cluster.members.findIndex((n) => n.id === id)]!;
  if (!r.ok) throw new Error(`node ${id}: ${r.error}`);
  return r.status;
}

async function followers(): Promise<[number, number[]]> {
  const leader = await cluster.waitForLeader();
  return [leader, cluster.members.map((n) => n.id).filter((id) => id !== leader)];
}

/**
 * Replaces follower `f`, whose data dir is gone: removes it, starts a new node with --join on an
 * empty data dir and adds it as a learner; `whileJoining` runs once it is added. Resolves with
 * the new node once it has caught up and been promoted.
 */
async function replace(f: number, whileJoining: (n: Node) => Promise<void> = async () => {}): Promise<Node> {
  await members.remove(cluster.endpoints, f);
  cluster.markRemoved(f);
  const n = await cluster.addNode();
  cluster.start(n.id);
  await waitFor(`node ${n.id} to ask to join`, () => /joining cluster: waiting to be added/.test(n.log), 15_000);
  await members.add(cluster.endpoints, n, true);
  await whileJoining(n);
  await cluster.waitCaughtUp(30_000);
  await members.promoteWhenCaughtUp(cluster.endpoints, n.id);
  return n;
}

describe('snapshots', () => {
  it('every node snapshots every --snapshot-threshold entries; the log stays bounded; a full restart starts from the snapshot', async () => {
    await load('a', 2000, 100);
    await cluster.waitCaughtUp();
    for (const n of cluster.nodes) {
      const s = await statusOf(n.id);
      expect(s.snapshotIndex).toBeGreaterThan(0);
      // Bounded: a snapshot follows every THRESHOLD entries (the one due may still be being written).
      expect(s.appliedIndex - s.snapshotIndex).toBeLessThan(2 * THRESHOLD);
      expect((await listSnapshots(nodeFileSystem(n.dataDir), 'snap')).length).toBe(1);
    }
    for (const n of cluster.nodes) await cluster.stop(n.id, 'SIGKILL');
    for (const n of cluster.nodes) n.log = '';
    cluster.startAll();
    await cluster.waitForLeader();
    for (const n of cluster.nodes) expect(n.log).toMatch(/restored snapshot/);
    await checkAll();
  });

  it('kv-cli snapshot: the node answers once its snapshot is durable, and the file holds exactly the data', async () => {
    await load('b', 50, 100);
    await cluster.waitCaughtUp();
    const [, [f]] = await followers();
    const r = await cli(['--endpoints', cluster.node(f!).clientAddr, 'snapshot']);
    expect(r.code, r.stderr).toBe(0);
    const index = Number(/snapshot at index (\d+)/.exec(r.stdout)?.[1]);
    const snap = await snapshotContents(f!);
    expect(snap.index).toBe(index);
    expect(Object.fromEntries(snap.data)).toEqual(Object.fromEntries(expected));
  });

  it('a wiped follower is replaced: a new node joins, is added as a learner, catches up by InstallSnapshot, and is promoted', async () => {
    const [leader, [f]] = await followers();
    await cluster.stop(f!, 'SIGKILL');
    fs.rmSync(cluster.node(f!).dataDir, { recursive: true, force: true });
    await load('c', 1000, 200);
    const leaderLog = cluster.node(leader).log.length;
    const n = await replace(f!);
    expect(n.log).toMatch(/installed snapshot \d+ from the leader/);
    expect(cluster.node(leader).log.slice(leaderLog)).toMatch(/sent snapshot/);
    // The new node applies its promotion too: every member a voter.
    const voters = JSON.stringify(cluster.members.map((m) => [m.id, false]));
    await waitFor('node applies its promotion', async () => JSON.stringify((await members.list(n.clientAddr)).members.map((m) => [m.id, m.learner])) === voters);
    // Its own state, as its next snapshot records it, is the cluster's.
    const r = await cli(['--endpoints', n.clientAddr, 'snapshot']);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.fromEntries((await snapshotContents(n.id)).data)).toEqual(Object.fromEntries(expected));
    await checkAll();
  });

  it('kill -9 while taking a snapshot, and while receiving one: the restarted node serves the acknowledged data', { timeout: 240_000 }, async () => {
    // A state big enough that writing a snapshot takes a while (about 12 MB).
    await load('big', 6000, 6000, 2000, 32);
    await cluster.waitCaughtUp(30_000);
    const rng = seededRng(Number(process.env.RAFTKV_SNAPSHOT_SEED ?? 7));
    for (let round = 0; round < 4; round++) {
      const [, fs2] = await followers();
      let f = fs2[round % 2]!;
      if (round % 2 === 0) {
        // Mid-snapshot: ask for one and kill the node while its temp file is being written. A
        // request can join a threshold snapshot that is already past its temp file: ask again.
        const snapDir = path.join(cluster.node(f).dataDir, 'snap');
        // A node that already holds a snapshot of everything it applied answers at once: write first.
        const one = new KvClient({ endpoints: [cluster.node(f).clientAddr], timeoutMs: 5000 });
        const writer = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 5000 });
        let asked: Promise<unknown> | undefined;
        let n = 0;
        await waitFor('a snapshot being written', () => {
          if (fs.readdirSync(snapDir).some((n) => n.endsWith('.tmp'))) return true;
          const v = String(n++);
          asked ??= writer
            .put('mid-snapshot', v)
            .then(() => (expected.set('mid-snapshot', v), one.snapshot()))
            .finally(() => (asked = undefined));
          return false;
        }, 10_000, 2);
        writer.close();
        const pending = asked;
        await sleep(rng.int(20));
        await cluster.stop(f, 'SIGKILL');
        await pending;
        one.close();
        cluster.start(f);
      } else {
        // Mid-install: its data is lost; its replacement is killed while receiving the leader's
        // snapshot, and restarted (its data dir holds no members yet: it asks --join again).
        await cluster.stop(f, 'SIGKILL');
        fs.rmSync(cluster.node(f).dataDir, { recursive: true, force: true });
        f = (
          await replace(f, async (n) => {
            await waitFor('the snapshot to start arriving', () => /receiving snapshot from node/.test(n.log), 15_000, 2);
            await sleep(rng.int(10));
            await cluster.stop(n.id, 'SIGKILL');
            expect(n.log).not.toMatch(/installed snapshot/);
            cluster.start(n.id);
          })
        ).id;
      }
      await load(`r${round}`, 300, 6000, 64);
      await cluster.waitCaughtUp(30_000);
      // The temp file the kill left is gone once the node has written a snapshot again (one may be
      // in progress right now: wait for it).
      const snapDir = path.join(cluster.node(f).dataDir, 'snap');
      await waitFor('no snapshot temp file left', () => !fs.readdirSync(snapDir).some((n) => n.endsWith('.tmp')), 15_000);
    }
    // Every node's own view: make each write a snapshot and compare it with what was acknowledged.
    for (const n of cluster.members) {
      const r = await cli(['--endpoints', n.clientAddr, 'snapshot']);
      expect(r.code, r.stderr).toBe(0);
    }
    await cluster.waitCaughtUp();
    const want = Object.fromEntries(expected);
    for (const n of cluster.members) expect(Object.fromEntries((await snapshotContents(n.id)).data)).toEqual(want);
    await checkAll();
  });
});
