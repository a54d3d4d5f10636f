/**
 * A 3-node cluster in the simulator, narrated: elections, commits, a leader crash and its
 * recovery, on virtual time (so it runs in a blink). `make run` shows this until kv-server exists.
 */
import { SimCluster } from './cluster.js';
import { Harness } from './harness.js';

const seed = Number(process.argv[2] ?? 7);
const h = new Harness(new SimCluster({ nodes: 3, seed }), seed);
h.sim.observer = (line) => {
  if (/leader|crash|restart/.test(line)) console.log(line);
};
let shown = 0;
const showCommits = (): void => {
  const node = h.sim.nodes.find((n) => n.raft?.role === 'leader') ?? h.sim.nodes[0]!;
  for (; shown < node.applied.length - 1; shown++) {
    const cmd = node.applied[shown + 1];
    if (cmd !== undefined) console.log(`${String(h.sim.now).padStart(7)}ms   committed #${shown + 1}: ${cmd}`);
  }
};

console.log(`raftkv simulated cluster: 3 nodes on virtual time, seed ${seed}`);
await h.checkOneLeader();
for (let k = 1; k <= 3; k++) {
  await h.one(`set x=${k}`, 3);
  showCommits();
}
const leader = await h.checkOneLeader();
console.log(`${String(h.sim.now).padStart(7)}ms -- crashing the leader n${leader + 1}`);
await h.crash(leader);
await h.one('set y=after-failover', 2, true);
showCommits();
await h.start(leader);
h.connect(leader);
await h.one('set z=all-three', 3, true);
showCommits();
console.log(`the restarted node n${leader + 1} caught up: it applied ${h.sim.nodes[leader]!.lastApplied} entries`);
