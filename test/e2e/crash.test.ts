/**
 * Crash safety with real processes: a writer keeps puts in flight while a follower and then the
 * leader are SIGKILLed at random moments and restarted, round after round. Afterwards, read
 * straight from every node's SQLite log and snapshot: committed entries agree index for index, and
 * every write the writer was told had committed is in the committed log or in the snapshot below it.
 * RAFTKV_CRASH_ROUNDS sets the rounds (make test: 6; make soak: 50); the seed is printed.
 */
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { seededRng } from '../../src/raft/core/rng.js';
import type { Entry } from '../../src/raft/core/types.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { decodeCommand } from '../../src/server/command.js';
import { nodeFileSystem } from '../../src/files.js';
import { readLatestSnapshot } from '../../src/server/snapshot/files.js';
import { Cluster, ensureBuilt, killAll, sleep, waitFor } from './cluster.js';

const ROUNDS = Number(process.env.RAFTKV_CRASH_ROUNDS ?? 6);
const SEED = Number(process.env.RAFTKV_CRASH_SEED ?? Date.now() % 1_000_000);
const IN_FLIGHT = 4;

let cluster: Cluster | undefined;
afterAll(async () => {
  await cluster?.close();
  await killAll();
});

it(`acknowledged writes survive ${ROUNDS} rounds of kill -9 (seed ${SEED})`, { timeout: 60_000 + ROUNDS * 15_000 }, async () => {
  await ensureBuilt();
  const rng = seededRng(SEED);
  const pause = (lo: number, hi: number): Promise<void> => sleep(lo + rng.int(hi - lo));
  const c = (cluster = await Cluster.create('crash'));
  c.startAll();
  await c.waitForLeader();
  const clusterId = await waitFor('a status', async () => {
    const row = (await c.status()).find((r) => r.ok);
    return row?.ok ? row.status.clusterId : undefined;
  });

  // The writer: IN_FLIGHT puts at all times, each a distinct key; `acked` holds what it was told.
  const client = new KvClient({ endpoints: c.endpoints, timeoutMs: 20_000 });
  const acked = new Set<string>();
  let next = 0;
  let failed = 0;
  let stop = false;
  const writer = async (): Promise<void> => {
    while (!stop) {
      const key = `k${next++}`;
      try {
        await client.put(key, `v-${key}`);
        acked.add(key);
      } catch {
        failed++; // outcome unknown: neither required nor forbidden in the log
      }
    }
  };
  const writers = Array.from({ length: IN_FLIGHT }, writer);

  for (let round = 0; round < ROUNDS; round++) {
    const leader = await c.waitForLeader(20_000);
    const follower = c.nodes.map((n) => n.id).find((id) => id !== leader)!;
    await pause(100, 600);
    await c.stop(follower, 'SIGKILL');
    await pause(50, 400);
    c.start(follower);
    await pause(100, 600);
    await c.stop(leader, 'SIGKILL');
    await pause(50, 400);
    c.start(leader);
    const before = acked.size;
    await waitFor(`writes to make progress after round ${round}`, async () => acked.size > before, 20_000).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${c.tailLogs()}`);
    });
  }
  stop = true;
  await Promise.all(writers);
  client.close();
  await c.waitCaughtUp(20_000);
  for (const n of c.nodes) await c.stop(n.id, 'SIGTERM');

  const nodes = await Promise.all(c.nodes.map((n) => readNode(n.id, n.dataDir, clusterId)));

  // Committed entries agree index for index wherever two logs both hold them (State Machine
  // Safety, on disk); what a node compacted away is in its snapshot.
  for (const a of nodes) {
    for (const b of nodes) {
      for (const [index, e] of a.committed) {
        const other = b.committed.get(index);
        if (other && !sameEntry(e, other)) expect.fail(`node ${a.id} and node ${b.id} disagree at committed index ${index}`);
      }
    }
  }
  // Every acknowledged write is in the committed log or, with its value, in the snapshot below it.
  for (const n of nodes) {
    const present = new Set<string>();
    for (const e of n.committed.values()) if (e.type === 'normal') present.add(new TextDecoder().decode(decodeCommand(e.data).key));
    for (const [key, value] of n.snapshotState) if (value === `v-${key}`) present.add(key);
    const lost = [...acked].filter((k) => !present.has(k));
    expect(lost, `node ${n.id} lost acknowledged writes (seed ${SEED})`).toEqual([]);
  }
  expect(acked.size).toBeGreaterThan(ROUNDS);
  console.log(
    `crash test seed ${SEED}: ${ROUNDS} rounds, ${acked.size} writes acknowledged, ${failed} gave up; ` +
      nodes.map((n) => `node ${n.id}: snapshot ${n.snapshotIndex} + ${n.committed.size} committed entries`).join(', '),
  );
});

/** A stopped node's data dir: its committed log entries by index, and the state of its newest snapshot. */
async function readNode(id: number, dataDir: string, clusterId: string) {
  const storage = SqliteStorage.open(`${dataDir}/raft.db`, { clusterId, nodeId: id, create: false });
  let persisted;
  try {
    persisted = storage.load();
  } finally {
    storage.close();
  }
  const { hardState, entries } = persisted;
  const snap = await readLatestSnapshot(nodeFileSystem(dataDir), 'snap', { clusterId, nodeId: id }, { onWarning: (m) => expect.fail(m) });
  const snapshotIndex = snap?.meta.index ?? 0;
  const committed = new Map(entries.filter((e) => e.index <= hardState.commit).map((e) => [e.index, e]));
  // Nothing between the snapshot and the log may be missing.
  const first = entries[0]?.index ?? hardState.commit + 1;
  expect(first, `node ${id}: its log starts at ${first}, after its snapshot at ${snapshotIndex}`).toBeLessThanOrEqual(snapshotIndex + 1);
  const snapshotState = new Map<string, string>();
  if (snap) snap.state.keys.forEach((k, i) => snapshotState.set(Buffer.from(k, 'latin1').toString(), new TextDecoder().decode(snap.state.values[i])));
  return { id, committed, snapshotIndex, snapshotState };
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.type === b.type && Buffer.from(a.data).equals(b.data);
}
