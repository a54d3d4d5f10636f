/**
 * A rolling restart under load, with real processes (the membership issue's acceptance): 16
 * clients (12 on a few shared keys, doing gets, puts, appends and compare-and-swaps, and 4 putting
 * distinct keys) run while each node of a 3-node cluster in turn stops with SIGTERM and comes back
 * caught up; the leader goes first, so that leadership moves at least once and usually twice.
 * Small snapshot settings make the nodes compact their logs meanwhile and restart from snapshots.
 * Afterwards: the whole history is linearizable, every acknowledged write reads back through
 * every member and is on every member's disk, leadership moved only by hand-over (one term per
 * stopping leader: no election timed out), and no stretch without a successful call lasted an
 * election timeout.
 *
 * RAFTKV_ROLLING_SEED replays a run's clients (the processes' timing is real, so not its exact
 * interleavings).
 */
import { afterAll, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { checkLinearizable, formatCounterexample } from '../support/linearizability.js';
import { clusterIdOf, durabilityViolations, readDurableState, unreadable } from './acked-writes.js';
import { Cluster, ensureBuilt, killAll, waitFor } from './cluster.js';
import { LoopStalls } from './loop-stalls.js';
import { diskValue, replayDataDir } from './on-disk.js';
import { Workload } from './workload.js';

const ELECTION_TIMEOUT_MS = 300;
const SEED = Number(process.env.RAFTKV_ROLLING_SEED ?? Date.now() % 1_000_000);
/** Small, so that nodes compact their logs during the roll and restart from a snapshot. */
const SNAPSHOT_ARGS = ['--snapshot-threshold', '500', '--snapshot-retain', '100'];
const CATCH_UP_MS = 15_000;
const CHECK_TIMEOUT_MS = 20_000;

let cluster: Cluster | undefined;
let workload: Workload | undefined;
afterAll(async () => {
  await workload?.stop();
  await cluster?.close();
  await killAll();
});

it(`a rolling SIGTERM restart of 3 nodes under 16 clients: linearizable, no acknowledged write lost, no gap as long as an election timeout (seed ${SEED})`, { timeout: 60_000 }, async () => {
  await ensureBuilt();
  const wallStart = Date.now();
  const c = (cluster = await Cluster.create('rolling', { electionTimeoutMs: ELECTION_TIMEOUT_MS, extraArgs: SNAPSHOT_ARGS }));
  c.startAll();
  await c.waitForLeader();
  const clusterId = await clusterIdOf(c);
  const w = (workload = new Workload({
    endpoints: c.endpoints,
    seed: SEED,
    registerClients: 12,
    readerEndpoints: [],
    keys: 3,
    ledgerWriters: 4,
    // Long enough that no call gives up during the roll: a call that did would only hide a gap.
    timeoutMs: [10_000, 10_000],
    thinkMs: 10,
  }));
  expect(w.clients).toBe(16);
  w.start();
  await waitFor('the clients to get going', () => w.ackedWrites >= 100, 15_000);

  const roll = await rollingRestart(c, w);
  const acked = w.ackedWrites;
  await waitFor('writes to go on after the roll', () => w.ackedWrites > acked + 100, 15_000);
  await w.stop();

  // The whole history, with a read of every key at the end, is linearizable.
  const { lost, shared } = await w.readBack();
  expect(lost, 'acknowledged writes that do not read back').toEqual([]);
  const history = w.history.operations();
  const checkStart = Date.now();
  const result = checkLinearizable(history, { timeoutMs: CHECK_TIMEOUT_MS });
  const checkMs = Date.now() - checkStart;
  if (result.ok === false) expect.fail(`seed ${SEED}: ${formatCounterexample(result)}`);
  if (result.ok === 'unknown') expect.fail(`seed ${SEED}: the linearizability check gave no answer: ${result.reason}`);

  // Every acknowledged write reads back through every member, and is on every member's disk.
  const ledger = [...w.ledgerAcked];
  for (const n of c.members) {
    const one = new KvClient({ endpoints: [n.clientAddr], timeoutMs: 10_000 });
    try {
      expect(await unreadable(one, ledger), `acknowledged writes that do not read back through node ${n.id}`).toEqual([]);
    } finally {
      one.close();
    }
  }
  await c.waitCaughtUp(CATCH_UP_MS);
  for (const n of c.members) expect((await c.stop(n.id, 'SIGTERM')).code, `node ${n.id}'s exit after SIGTERM`).toBe(0);
  const disks = await Promise.all(c.members.map((n) => readDurableState(n.id, n.dataDir, clusterId)));
  expect(durabilityViolations(disks, ledger)).toEqual([]);
  for (const n of c.members) {
    const state = await replayDataDir(n.dataDir, n.id, clusterId);
    for (const [key, value] of shared) expect(diskValue(state, key), `${key} on node ${n.id}'s disk`).toBe(value);
  }

  const f = w.snapshot();
  console.log(
    `rolling restart, seed ${SEED}: longest gap in successful calls ${roll.gapMs} ms (${roll.rawGapMs} ms less ${roll.rawGapMs - roll.gapMs} ms in ` +
      `which this process was stalled; its longest stall ${roll.longestStallMs} ms) over ${(roll.ms / 1000).toFixed(1)} s (${roll.ok} calls succeeded meanwhile); ` +
      `leadership handed over ${roll.handedOver.join(', ')}, terms ${roll.terms[0]}..${roll.terms[1]}; ${f.invoked} calls (${f.ok} ok, ` +
      `${f.indeterminate} writes unknown, ${f.failedReads} reads failed; errors ${JSON.stringify(f.errors)}), ${f.ackedWrites} acknowledged writes ` +
      `(${f.ledgerAcked} distinct keys); history of ${history.length} checked linearizable in ${checkMs} ms; wall ${((Date.now() - wallStart) / 1000).toFixed(1)} s\n` +
      `  timeline: ${roll.timeline}`,
  );
  // No call gave up: each had 10 s, and the cluster was never unavailable that long.
  expect(f.indeterminate + f.failedReads, JSON.stringify(f.errors)).toBe(0);
  // Leadership moved by hand-over only: a transfer is one term; an election that timed out adds more.
  expect(roll.terms[1] - roll.terms[0], `terms during the roll (${roll.timeline})`).toBe(roll.handedOver.length);
  // And the clients followed it at once: no stretch without an answer as long as an election timeout.
  expect(roll.gapMs, `${roll.timeline}\nthe nodes' logs from 100 ms before the gap to 100 ms after:\n${roll.gapLogs}`).toBeLessThan(ELECTION_TIMEOUT_MS);
});

interface Roll {
  ms: number;
  /** Calls that succeeded during the roll. */
  ok: number;
  /** The longest stretch without a successful call, less the time this process was stalled in it. */
  gapMs: number;
  rawGapMs: number;
  longestStallMs: number;
  /** `from->to` for each stopping leader. */
  handedOver: string[];
  /** The leader's term before and after. */
  terms: [number, number];
  timeline: string;
  gapLogs: string;
}

/** Each node in turn, the leader first: SIGTERM (a leader hands over first), restart, catch up. */
async function rollingRestart(c: Cluster, w: Workload): Promise<Roll> {
  const first = await c.waitForLeader();
  const termBefore = await leaderTerm(c);
  const from = w.now();
  const fromWall = Date.now();
  const stalls = new LoopStalls(() => w.now());
  const events: string[] = [];
  const note = (what: string): void => void events.push(`${Math.round(w.now() - from)} ms ${what}`);
  const handedOver: string[] = [];
  for (const id of [first, ...c.nodes.map((n) => n.id).filter((id) => id !== first)]) {
    const n = c.node(id);
    const leads = (await c.waitForLeader(CATCH_UP_MS)) === id;
    const logFrom = n.log.length;
    note(`SIGTERM ${id}${leads ? ' (leader)' : ''}`);
    expect(await c.stop(id, 'SIGTERM'), `node ${id}'s exit after SIGTERM`).toEqual({ code: 0, signal: null });
    note(`${id} exited`);
    if (leads) {
      const to = /handed leadership over .*leader=(\d+)/.exec(n.log.slice(logFrom));
      expect(to, `node ${id} stopped leading without handing over:\n${n.log.slice(logFrom)}`).not.toBeNull();
      handedOver.push(`${id}->${to![1]}`);
    }
    c.start(id);
    await c.waitCaughtUp(CATCH_UP_MS);
    note(`${id} back and caught up`);
  }
  const to = w.now();
  stalls.stop();
  const terms: [number, number] = [termBefore, await leaderTerm(c)];
  const gap = w.successesBetween(from, to, (a, b) => stalls.within(a, b));
  const rawGapMs = Math.round(gap.gapToMs - gap.gapFromMs);
  const gapWall = fromWall + gap.gapFromMs - from;
  return {
    ms: to - from,
    ok: gap.ok,
    gapMs: gap.longestGapMs,
    rawGapMs,
    longestStallMs: stalls.longest(),
    handedOver,
    terms,
    timeline: `${events.join(', ')}; the longest gap began at ${Math.round(gap.gapFromMs - from)} ms`,
    gapLogs: logsBetween(c, gapWall - 100, gapWall + rawGapMs + 100),
  };
}

async function leaderTerm(c: Cluster): Promise<number> {
  return waitFor('the leader\'s term', async () => {
    const row = (await c.status()).find((r) => r.ok && r.status.role === 'leader');
    return row?.ok ? row.status.term : undefined;
  });
}

/** The nodes' log lines stamped from `fromMs` to `toMs` (wall clock), in time order, each with its node. */
function logsBetween(c: Cluster, fromMs: number, toMs: number): string {
  const lines = c.nodes.flatMap((n) =>
    n.log.split('\n').flatMap((line) => {
      const t = Date.parse(line.slice(0, 24));
      return t >= fromMs && t <= toMs ? [{ t, line: `[node ${n.id}] ${line}` }] : [];
    }),
  );
  return lines
    .sort((a, b) => a.t - b.t)
    .map((l) => l.line)
    .join('\n');
}
