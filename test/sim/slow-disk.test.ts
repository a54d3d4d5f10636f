/**
 * A disk that stalls must not pass for a dead node: while a Ready waits on a flush, heartbeats
 * and their answers still go out (RaftNode.sendHeartbeats), so a leader whose fsync takes longer
 * than an election timeout keeps its followers, and no election is held.
 */
import { expect, it } from 'vitest';
import { SimCluster } from './cluster.js';

it.each([1, 2, 3])('a leader whose flush stalls for 700 ms (over any election timeout) keeps leading, seed %i', async (seed) => {
  const sim = await SimCluster.create({ nodes: 3, seed });
  let l = -1;
  for (let waited = 0; l < 0 && waited < 5000; waited += 10) {
    await sim.sleep(10);
    l = [0, 1, 2].find((i) => sim.isLeader(i)) ?? -1;
  }
  expect(l).toBeGreaterThanOrEqual(0);
  await sim.sleep(200);
  const term = sim.term(l);
  sim.nodes[l]!.disk.stallNextFlush(700);
  expect(sim.propose(l, 'x').ok).toBe(true);
  await sim.sleep(1500);
  expect([0, 1, 2].map((i) => sim.term(i))).toEqual([term, term, term]);
  expect(sim.isLeader(l)).toBe(true);
});
