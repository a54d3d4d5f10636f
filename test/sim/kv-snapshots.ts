/**
 * The Raft lab's KV tests with snapshots (part 3B) on the simulator. Every server snapshots its
 * KvStore when its stored log reaches the lab's maxraftstate in bytes (kv-server counts entries
 * instead; the lab's bounds are in bytes): it captures the store's state, writes it in the
 * background, then compacts its log, keeping a short window. The snapshot is kept on the node's
 * "disk", restored before the log tail at restart, and sent beside snap messages to followers
 * whose entries were compacted away.
 * Every history must be linearizable.
 */
import { SNAPSHOT_DIR } from '../../src/server/snapshotter.js';
import type { SimOptions } from './cluster.js';
import { LAB_ELECTION_TIMEOUT as ET, type Harness } from './harness.js';
import { genericTest, KvLab, type GenericParams } from './kv.js';
import type { Scenario } from './scenarios.js';

/** The lab's maxraftstate for 3B: a server snapshots once its stored log holds this many bytes. */
export const MAX_RAFT_STATE = 1000;
/** The lab's bound on a snapshot in SnapshotSize: one key and one client's session. */
const MAX_SNAPSHOT_STATE = 500;
/** Entries kept behind each snapshot (kv-server keeps such a window); a few, so the log stays under the bound. */
const RETAIN = 4;

const enc = new TextEncoder();
const dec = new TextDecoder();

const snapshotting: Partial<SimOptions> = { snapshots: { bytes: MAX_RAFT_STATE, retain: RETAIN } };

/** The lab's check on LogSize(): the persisted Raft state of every server is at most 8 × maxraftstate. */
function checkLogTrimmed(h: Harness, what: string): void {
  const sz = h.sim.logBytes();
  if (sz > 8 * MAX_RAFT_STATE) h.fail(`${what}: logs were not trimmed (${sz} > 8*${MAX_RAFT_STATE} bytes)`);
}

/**
 * TestSnapshotRPC3B: a server cut off while the majority writes and compacts must catch up by
 * InstallSnapshot once the majority needs it; the majority's logs stay short meanwhile.
 */
async function snapshotRPC(h: Harness): Promise<void> {
  const lab = new KvLab(h);
  const ck = lab.makeClerk(lab.all(), 0);
  await lab.put(ck, 'a', 'A');
  await lab.check(ck, 'a', 'A');

  // A bunch of puts into the majority partition.
  lab.sim.partition([0, 1], [2]);
  const ck1 = lab.makeClerk([0, 1], 1);
  for (let i = 0; i < 50; i++) await lab.put(ck1, String(i), String(i));
  await h.sleep(ET);
  await lab.put(ck1, 'b', 'B');
  checkLogTrimmed(h, 'majority after 50 puts');

  // A group that needs the lagging server, so that it has to catch up.
  lab.sim.partition([0, 2], [1]);
  const ck2 = lab.makeClerk([0, 2], 2);
  await lab.put(ck2, 'c', 'C');
  await lab.put(ck2, 'd', 'D');
  await lab.check(ck2, 'a', 'A');
  await lab.check(ck2, 'b', 'B');
  await lab.check(ck2, '1', '1');
  await lab.check(ck2, '49', '49');
  const lagging = h.sim.nodes[2]!;
  if (lagging.snapshotsInstalled === 0) h.fail('server 2 caught up without installing a snapshot');

  // Now everybody.
  lab.connectAll();
  await lab.put(ck, 'e', 'E');
  await lab.check(ck, 'c', 'C');
  await lab.check(ck, 'e', 'E');
  await lab.check(ck, '1', '1');
  lab.checkHistory();

  // Every server's store holds every key, the lagging one's included (it serves no reads to check).
  await h.sleep(ET);
  const want = new Map([...'abcde'].map((k) => [k, k.toUpperCase()]));
  for (let i = 0; i < 50; i++) want.set(String(i), String(i));
  for (const n of h.sim.nodes) {
    const store = n.server!.store;
    for (const [k, v] of want) {
      const got = store.sm.get(enc.encode(k));
      if (got === undefined || dec.decode(got) !== v) h.fail(`server ${n.id - 1} holds ${k}=${got && dec.decode(got)}, not ${v}`);
    }
  }
}

/**
 * TestSnapshotSize3B: 800 operations on one key; the persisted Raft state stays under the lab's
 * bound all along (not only at the end), and every snapshot, encoded as kv-server writes it, is small.
 */
async function snapshotSize(h: Harness): Promise<void> {
  const lab = new KvLab(h);
  const ck = lab.makeClerk(lab.all(), 0);
  let largest = 0;
  for (let i = 0; i < 200; i++) {
    await lab.put(ck, 'x', '0');
    await lab.check(ck, 'x', '0');
    await lab.put(ck, 'x', '1');
    await lab.check(ck, 'x', '1');
    for (const n of h.sim.nodes) {
      for (const name of n.disk.files.list(SNAPSHOT_DIR)) largest = Math.max(largest, n.disk.files.peek(`${SNAPSHOT_DIR}/${name}`)!.length);
    }
  }
  checkLogTrimmed(h, 'after 800 operations');
  if (h.sim.peakLogBytes > 8 * MAX_RAFT_STATE) {
    h.fail(`a server's log reached ${h.sim.peakLogBytes} bytes (> 8*${MAX_RAFT_STATE}) during the run`);
  }
  if (h.sim.snapshotsTaken === 0) h.fail('no server took a snapshot');
  if (largest > MAX_SNAPSHOT_STATE) h.fail(`snapshot too large (${largest} > ${MAX_SNAPSHOT_STATE} bytes)`);
  lab.checkHistory();
}

const kv3B = (name: string, nodes: number, run: (h: Harness) => Promise<void>): Scenario => ({
  name,
  suite: '3B',
  nodes,
  options: snapshotting,
  run,
});

const generic = (name: string, nodes: number, p: Omit<GenericParams, 'maxRaftState'>): Scenario =>
  kv3B(name, nodes, (h) => genericTest(h, { ...p, maxRaftState: MAX_RAFT_STATE }));

const plain = { unreliable: false, crash: false, partitions: false, randomkeys: false };

/** The lab's 3B tests, with its parameters (nclients, nservers, unreliable, crash, partitions, randomkeys). */
export const KV_SNAPSHOT_SCENARIOS: readonly Scenario[] = [
  kv3B('SnapshotRPC', 3, snapshotRPC),
  kv3B('SnapshotSize', 3, snapshotSize),
  generic('SnapshotRecover', 5, { ...plain, nclients: 1, crash: true }),
  generic('SnapshotRecoverManyClients', 5, { ...plain, nclients: 20, crash: true }),
  generic('SnapshotUnreliable', 5, { ...plain, nclients: 5, unreliable: true }),
  generic('SnapshotUnreliableRecover', 5, { ...plain, nclients: 5, unreliable: true, crash: true }),
  generic('SnapshotUnreliableRecoverConcurrentPartition', 5, {
    ...plain,
    nclients: 5,
    unreliable: true,
    crash: true,
    partitions: true,
  }),
  generic('SnapshotUnreliableRecoverConcurrentPartitionLinearizable', 7, {
    nclients: 15,
    unreliable: true,
    crash: true,
    partitions: true,
    randomkeys: true,
  }),
];
