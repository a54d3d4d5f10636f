/**
 * Crash safety with real processes: a writer keeps puts in flight while a follower and then the
 * leader are SIGKILLed at random moments and restarted, round after round. Afterwards, read
 * straight from every node's SQLite log: the committed prefixes agree entry for entry, and every
 * write the writer was told had committed is in it, at the same index on every node.
 * RAFTKV_CRASH_ROUNDS sets the rounds (make test: 6; make soak: 50); the seed is printed.
 */
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { seededRng } from '../../src/raft/core/rng.js';
import type { Entry } from '../../src/raft/core/types.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { decodeCommand } from '../../src/server/command.js';
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

  const logs = c.nodes.map((n) => {
    const storage = SqliteStorage.open(`${n.dataDir}/raft.db`, { clusterId, nodeId: n.id, create: false });
    try {
      const { hardState, entries } = storage.load();
      return { id: n.id, committed: entries.slice(0, hardState.commit) };
    } finally {
      storage.close();
    }
  });

  // Committed prefixes agree entry for entry (State Machine Safety, on disk).
  for (const a of logs) {
    for (const b of logs) {
      const n = Math.min(a.committed.length, b.committed.length);
      for (let i = 0; i < n; i++) {
        if (!sameEntry(a.committed[i]!, b.committed[i]!)) {
          expect.fail(`node ${a.id} and node ${b.id} disagree at committed index ${i + 1}`);
        }
      }
    }
  }
  // Every acknowledged write is committed, at the same index everywhere (the prefixes agree).
  for (const log of logs) {
    const present = new Set<string>();
    for (const e of log.committed) if (e.type === 'normal') present.add(new TextDecoder().decode(decodeCommand(e.data).key));
    const lost = [...acked].filter((k) => !present.has(k));
    expect(lost, `node ${log.id} lost acknowledged writes (seed ${SEED})`).toEqual([]);
  }
  expect(acked.size).toBeGreaterThan(ROUNDS);
  console.log(
    `crash test seed ${SEED}: ${ROUNDS} rounds, ${acked.size} writes acknowledged, ${failed} gave up, ` +
      `committed logs of ${logs.map((l) => l.committed.length).join('/')} entries agree`,
  );
});

function sameEntry(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.type === b.type && Buffer.from(a.data).equals(b.data);
}
