/**
 * Network partitions between real processes. Each kv-server runs in its own network namespace
 * on a bridge; while concurrent clients write and read a few shared keys (and ledger writers put
 * distinct keys), links are cut with iptables inside the namespaces — the leader isolated, a
 * minority isolated, a bridge (one node sees both halves, which do not see each other), one-way
 * links — and degraded by a delaying proxy and random packet loss, each fault held for a few
 * election timeouts and healed. Afterwards: the whole history is linearizable, every
 * acknowledged write reads back through the cluster and is on every node's disk after a clean
 * stop, the cluster has one leader, and no two leaders ever shared a term (polled throughout).
 *
 * RAFTKV_PARTITION_ROUNDS: rounds of every fault kind per cluster size (default 2, about 30 s per
 * size; a soak run sets more). RAFTKV_PARTITION_SEED replays a run's fault plan (the processes'
 * timing is real, so not its exact interleavings). Skipped, with the reason, without root,
 * `ip netns` or iptables (.ci/run installs iptables).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRng } from '../../src/raft/core/rng.js';
import { checkLinearizable, formatCounterexample } from '../support/linearizability.js';
import { Cluster, ensureBuilt, sleep, waitFor } from './cluster.js';
import { FAULT_KINDS, faultSchedule, Nemesis, planFault, type Fault, type FaultKind } from './nemesis.js';
import { netnsUnavailable, removeLeftovers, type Netns } from './netns.js';
import { Cleanups, createNetns, leaderTerm, removeLeftoverDirs, startNetnsCluster } from './netns-cluster.js';
import { diskValue, replayDataDir } from './on-disk.js';
import { Workload } from './workload.js';

const UNAVAILABLE = netnsUnavailable();
if (UNAVAILABLE !== undefined) console.warn(`partition tests skipped: ${UNAVAILABLE}`);
const ROUNDS = Number(process.env.RAFTKV_PARTITION_ROUNDS ?? 2);
const SEED = Number(process.env.RAFTKV_PARTITION_SEED ?? Date.now() % 1_000_000);
const ELECTION_TIMEOUT_MS = 300;
const HEARTBEAT_MS = 50;
/** Small, so that snapshots are taken, and sent to nodes that fell behind, during the faults. */
const SNAPSHOT_ARGS = ['--snapshot-threshold', '500', '--snapshot-retain', '100'];
const RECOVERY_MS = 30_000;
const CHECK_TIMEOUT_MS = 60_000;

/** Cleanups of the test running now, also run by afterAll if a test is cut short. */
const cleanups = new Cleanups();

describe.skipIf(UNAVAILABLE !== undefined)(`network partitions between real processes${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    await ensureBuilt();
    const removed = [...removeLeftovers(), ...removeLeftoverDirs('partition')];
    if (removed.length > 0) console.log(`removed leftovers of a crashed earlier run: ${removed.join(' ')}`);
  });
  afterAll(() => cleanups.run());

  it.each([
    [3, 'a'],
    [5, 'b'],
  ])(
    `%i nodes: linearizable and no acknowledged write lost through partitions, loss and delay (seed ${SEED})`,
    { timeout: 90_000 + ROUNDS * FAULT_KINDS.length * 2 * RECOVERY_MS },
    (size, tag) => cleanups.after(() => partitionRun(size, tag)),
  );
});

interface Run {
  readonly size: number;
  readonly net: Netns;
  readonly c: Cluster;
  readonly clusterId: string;
  readonly rng: ReturnType<typeof seededRng>;
  readonly monitor: LeaderMonitor;
  readonly workload: Workload;
  readonly nemesis: Nemesis;
}

async function partitionRun(size: number, tag: string): Promise<void> {
  const wallStart = performance.now();
  const run = await setUp(size, tag);
  const faults = await injectFaults(run);
  const { historyLength, checkMs, shared } = await checkHealed(run);
  const leaderAtEnd = await run.c.waitForLeader(RECOVERY_MS);
  const disks = await checkDisks(run, shared);
  const f = run.workload.snapshot();
  console.log(
    `partition test, ${size} nodes, seed ${SEED}: ${ROUNDS} round(s), ${faults.count} faults (${faults.byKind}; ` +
      `${faults.droppedPackets} packets dropped, ${run.nemesis.proxiedConnections()} proxied connections), ` +
      `slowest recovery ${faults.slowestRecoveryMs} ms; ${f.invoked} operations (${f.ok} ok, ${f.indeterminate} writes unknown, ` +
      `${f.failedReads} reads failed; errors ${JSON.stringify(f.errors)}), ${f.ackedWrites} acknowledged writes ` +
      `(${f.ledgerAcked} ledger keys); history of ${historyLength} operations checked linearizable in ${checkMs} ms; ` +
      `terms ${run.monitor.firstTerm}..${run.monitor.lastTerm} (${run.monitor.leaders()} leaders seen), leader at end ${leaderAtEnd}; ` +
      `disk: ${disks.map((d) => `node ${d.id} snapshot ${d.snapshotIndex} + ${d.replayed} entries`).join(', ')}; ` +
      `wall ${((performance.now() - wallStart) / 1000).toFixed(1)} s`,
  );
}

/** The network, the cluster in it, and the clients running against it. */
async function setUp(size: number, tag: string): Promise<Run> {
  const net = createNetns(tag, size, cleanups);
  const c = await startNetnsCluster(net, 'partition', { electionTimeoutMs: ELECTION_TIMEOUT_MS, heartbeatMs: HEARTBEAT_MS, extraArgs: SNAPSHOT_ARGS }, cleanups);
  await c.waitForLeader(20_000);
  const clusterId = await waitFor('a status', async () => {
    const row = (await c.status()).find((r) => r.ok);
    return row?.ok ? row.status.clusterId : undefined;
  });
  const seed = SEED * 31 + size;
  const monitor = new LeaderMonitor(c);
  const workload = new Workload({
    endpoints: c.endpoints,
    seed,
    registerClients: 5,
    readerEndpoints: c.endpoints,
    keys: 4,
    ledgerWriters: 2,
    timeoutMs: [1_000, 5_000],
    thinkMs: 20,
  });
  const nemesis = new Nemesis(net, seededRng(seed + 1).next);
  cleanups.push(() => nemesis.close(), () => workload.stop(), () => monitor.stop());
  monitor.start();
  workload.start();
  await waitFor('the clients to get going', () => workload.ackedWrites >= 20, 20_000);
  return { size, net, c, clusterId, rng: seededRng(seed), monitor, workload, nemesis };
}

/** The faults, one at a time; after each heal the cluster must elect one leader and take writes. */
async function injectFaults(run: Run): Promise<{ count: number; byKind: string; droppedPackets: number; slowestRecoveryMs: number }> {
  const { c, rng, nemesis, workload } = run;
  const ids = c.nodes.map((n) => n.id);
  const injected = new Map<FaultKind, number>();
  let slowestRecoveryMs = 0;
  let droppedPackets = 0;
  const schedule = faultSchedule(rng, ROUNDS);
  for (const [i, kind] of schedule.entries()) {
    const leader = await c.waitForLeader(RECOVERY_MS);
    const term = await leaderTerm(c, leader);
    const fault = planFault(kind, rng, ids, leader, ELECTION_TIMEOUT_MS);
    const proxiedBefore = nemesis.proxiedConnections();
    await nemesis.inject(fault);
    injected.set(kind, (injected.get(kind) ?? 0) + 1);
    await hold(nemesis, fault);
    droppedPackets += await checkBitten(run, fault, term, proxiedBefore);
    await nemesis.heal();
    const healedAt = performance.now();
    const before = workload.ackedWrites;
    await c.waitForLeader(RECOVERY_MS);
    await waitFor(`writes after healing ${kind} (${fault.description})`, () => workload.ackedWrites > before, RECOVERY_MS).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${c.tailLogs()}`);
    });
    const recoveryMs = Math.round(performance.now() - healedAt);
    slowestRecoveryMs = Math.max(slowestRecoveryMs, recoveryMs);
    console.log(`[${run.size} nodes] fault ${i + 1}/${schedule.length} ${kind}: ${fault.description}; held ${fault.holdMs} ms, recovered in ${recoveryMs} ms`);
  }
  const byKind = [...injected].map(([k, n]) => `${k} ${n}`).join(', ');
  return { count: schedule.length, byKind, droppedPackets, slowestRecoveryMs };
}

/**
 * The fault must have bitten, or the run proves nothing: a cut-off leader replaced (the fault is
 * held until then), packets dropped, streams sent through the proxies. Returns the packets dropped.
 */
async function checkBitten(run: Run, fault: Fault, term: number, proxiedBefore: number): Promise<number> {
  const { c, net, nemesis } = run;
  if (fault.leaderCutOff) {
    await waitFor(
      `a new leader while ${fault.description}`,
      async () => (await c.status()).some((r) => r.ok && r.status.role === 'leader' && r.status.term > term),
      RECOVERY_MS,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${c.tailLogs(40)}`);
    });
  }
  if (fault.delayed.length > 0) {
    await waitFor(`a stream through the delaying proxies (${fault.description})`, () => nemesis.proxiedConnections() > proxiedBefore, RECOVERY_MS);
  }
  if (fault.blocked.length + fault.lossy.length === 0) return 0;
  const dropped = await net.droppedPackets();
  expect(dropped, `packets dropped by ${fault.kind}: ${fault.description}`).toBeGreaterThan(0);
  return dropped;
}

/** Healed: one leader, every acknowledged write reads back, the history is linearizable, no safety violation seen. */
async function checkHealed(run: Run): Promise<{ historyLength: number; checkMs: number; shared: Map<string, string | undefined> }> {
  const { c, workload, monitor, size } = run;
  await c.waitForLeader(RECOVERY_MS);
  await workload.stop();
  const { lost, shared } = await workload.readBack();
  const history = workload.history.operations();
  const checkStart = performance.now();
  const result = checkLinearizable(history, { timeoutMs: CHECK_TIMEOUT_MS });
  const checkMs = Math.round(performance.now() - checkStart);
  if (result.ok === false) expect.fail(`seed ${SEED}, ${size} nodes: ${formatCounterexample(result)}`);
  if (result.ok === 'unknown') expect.fail(`seed ${SEED}, ${size} nodes: the linearizability check gave no answer: ${result.reason}`);
  expect(lost, `acknowledged ledger writes that do not read back (seed ${SEED})`).toEqual([]);
  await monitor.stop();
  expect(monitor.violations, `seed ${SEED}: safety violations seen while polling Status`).toEqual([]);
  return { historyLength: history.length, checkMs, shared };
}

/** A clean stop; then every node's disk holds every acknowledged write, and the values read back. */
async function checkDisks(run: Run, shared: Map<string, string | undefined>) {
  const { c, workload, clusterId } = run;
  await c.waitCaughtUp(RECOVERY_MS);
  for (const n of c.nodes) expect((await c.stop(n.id, 'SIGTERM')).code, `node ${n.id} exit code after SIGTERM`).toBe(0);
  const disks = await Promise.all(c.nodes.map(async (n) => ({ id: n.id, ...(await replayDataDir(n.dataDir, n.id, clusterId)) })));
  for (const d of disks) {
    const missing = [...workload.ledgerAcked].filter((k) => diskValue(d, k) !== `v-${k}`);
    expect(missing, `node ${d.id}: acknowledged writes missing on disk (seed ${SEED})`).toEqual([]);
    for (const [key, value] of shared) expect(diskValue(d, key), `node ${d.id}: ${key} on disk (seed ${SEED})`).toBe(value);
  }
  return disks;
}

/** Holds a fault for its time, stalling its delayed links when it says so. */
async function hold(nemesis: Nemesis, fault: Fault): Promise<void> {
  let elapsed = 0;
  for (const s of fault.stalls) {
    await sleep(s.atMs - elapsed);
    nemesis.stall(fault, s.forMs);
    elapsed = s.atMs;
  }
  await sleep(fault.holdMs - elapsed);
}

/**
 * Polls every node's Status throughout the run and records what must never happen: two leaders
 * in one term (Election Safety), a node's commit index going back.
 */
class LeaderMonitor {
  readonly violations: string[] = [];
  firstTerm = Infinity;
  lastTerm = 0;
  private readonly leaderOfTerm = new Map<number, number>();
  private readonly commitOf = new Map<number, number>();
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly cluster: Cluster) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopping) {
        const rows = await this.cluster.status().catch(() => []);
        for (const r of rows) if (r.ok) this.observe(r.status);
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  leaders(): number {
    return this.leaderOfTerm.size;
  }

  private observe(s: { nodeId: number; role: string; term: number; commitIndex: number }): void {
    this.firstTerm = Math.min(this.firstTerm, s.term);
    this.lastTerm = Math.max(this.lastTerm, s.term);
    if (s.role === 'leader') {
      const other = this.leaderOfTerm.get(s.term);
      if (other !== undefined && other !== s.nodeId) this.violations.push(`nodes ${other} and ${s.nodeId} both led term ${s.term}`);
      this.leaderOfTerm.set(s.term, s.nodeId);
    }
    const commit = this.commitOf.get(s.nodeId) ?? 0;
    if (s.commitIndex < commit) this.violations.push(`node ${s.nodeId}'s commit index went back from ${commit} to ${s.commitIndex}`);
    this.commitOf.set(s.nodeId, Math.max(commit, s.commitIndex));
  }
}
