/**
 * Crash safety with real processes: a writer keeps puts in flight while a follower and then the
 * leader are SIGKILLed at random moments and restarted, round after round. Afterwards, read
 * straight from every node's SQLite log and snapshot: committed entries agree index for index, and
 * every write the writer was told had committed is in the committed log or in the snapshot below it.
 * RAFTKV_CRASH_ROUNDS sets the rounds (make test: 6; make soak: 50); the seed is printed.
 */
import { afterAll, expect, it } from 'vitest';
import { seededRng } from '../../src/raft/core/rng.js';
import { AckedWriter, clusterIdOf, durabilityViolations, readDurableState } from './acked-writes.js';
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
  const clusterId = await clusterIdOf(c);
  const writer = new AckedWriter(c.endpoints, IN_FLIGHT);
  const acked = writer.acked;

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
    const before = acked.length;
    await waitFor(`writes to make progress after round ${round}`, async () => acked.length > before, 20_000).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${c.tailLogs()}`);
    });
  }
  await writer.stop();
  await c.waitCaughtUp(20_000);
  for (const n of c.nodes) await c.stop(n.id, 'SIGTERM');

  // Committed entries agree across nodes; every acknowledged write is in each node's committed
  // log or, with its value, in the snapshot below it.
  const nodes = await Promise.all(c.nodes.map((n) => readDurableState(n.id, n.dataDir, clusterId)));
  expect(durabilityViolations(nodes, acked), `seed ${SEED}`).toEqual([]);
  expect(acked.length).toBeGreaterThan(ROUNDS);
  console.log(
    `crash test seed ${SEED}: ${ROUNDS} rounds, ${acked.length} writes acknowledged, ${writer.failed} gave up; ` +
      nodes.map((n) => `node ${n.id}: snapshot ${n.snapshotIndex} + ${n.committed.size} committed entries`).join(', '),
  );
});
