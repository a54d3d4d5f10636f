/**
 * Wall time of the lab's 2A–2C suite under one seed in the simulator, against the virtual time it
 * covers (what the lab's real-time version spends). Median of 5 in-process runs.
 */
import { runScenario } from '../sim/run.js';
import { SCENARIOS } from '../sim/scenarios.js';

const lab = SCENARIOS.filter((s) => ['2A', '2B', '2C'].includes(s.suite));
const seed = Number(process.argv[2] ?? 1);
const totals: number[] = [];
let virtualMs = 0;
for (let rep = 0; rep < 5; rep++) {
  let wall = 0;
  virtualMs = 0;
  for (const s of lab) {
    const r = await runScenario(s.name, seed);
    if (!r.ok) throw new Error(`${s.name} failed under seed ${seed}: ${r.error}`);
    wall += r.wallMs;
    virtualMs += r.virtualMs;
  }
  totals.push(wall);
}
totals.sort((a, b) => a - b);
console.log(`lab 2A–2C suite, ${lab.length} scenarios, seed ${seed}`);
console.log(`  wall time:    median ${(totals[2]! / 1000).toFixed(2)} s  (min ${(totals[0]! / 1000).toFixed(2)}, max ${(totals[4]! / 1000).toFixed(2)}) over 5 runs`);
console.log(`  virtual time: ${(virtualMs / 1000).toFixed(1)} s of cluster time simulated`);
console.log(`  speed-up:     ${(virtualMs / totals[2]!).toFixed(0)}× real time`);
