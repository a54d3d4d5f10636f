/**
 * A leader that its clients cannot reach does not stop the service. Three kv-servers in network
 * namespaces (with --client-peers, so that followers name the leader); concurrent clients, each
 * knowing all three client addresses, write and read throughout. A few times, only the client
 * traffic between the test process and the leader's client port is dropped, both ways, for
 * several seconds, while the leader goes on talking to its peers. Before the fix no call
 * succeeded for the whole cut: the followers refused with a hint naming the leader, and the SDK
 * went back to it. Now a follower forwards the calls to the leader over the peer connection, and
 * the SDK avoids the endpoint that did not answer, so during every cut: the longest stretch
 * without a successful call stays under GAP_BOUND_MS, no call fails, and no election happens (it
 * is no peer fault: the term after each cut is the term before it). Afterwards the whole history
 * is linearizable and every acknowledged write reads back.
 *
 * RAFTKV_CLIENT_CUT_ROUNDS: cuts (default 3, about 60 s in all). RAFTKV_CLIENT_CUT_SEED: the
 * clients' choices. Skipped, with the reason, without root, `ip netns` or iptables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLinearizable, formatCounterexample } from '../support/linearizability.js';
import { ensureBuilt, sleep, waitFor, type Cluster } from './cluster.js';
import { HEALTHY, netnsUnavailable, removeLeftovers, type Netns } from './netns.js';
import { Cleanups, createNetns, leaderTerm, removeLeftoverDirs, startNetnsCluster } from './netns-cluster.js';
import { Workload } from './workload.js';

const UNAVAILABLE = netnsUnavailable();
if (UNAVAILABLE !== undefined) console.warn(`client-cut test skipped: ${UNAVAILABLE}`);
const ROUNDS = Number(process.env.RAFTKV_CLIENT_CUT_ROUNDS ?? 3);
const SEED = Number(process.env.RAFTKV_CLIENT_CUT_SEED ?? Date.now() % 1_000_000);
/** How long each cut is held: well beyond GAP_BOUND_MS, so that a service that stops shows. */
const HOLD_MS = 6_000;
/**
 * The longest a cut may leave every client without a successful call. A call in flight to the
 * leader when the cut begins waits out its attempt (the SDK's attempt timeout, 1 s), the SDK marks
 * the leader suspect and tries a follower, which forwards it: about 1 s and one forwarded round
 * trip. The other 2 s are for a loaded machine's late timers and slow processes. Without
 * forwarding nothing succeeds for the whole cut (HOLD_MS).
 */
const GAP_BOUND_MS = 3_000;
/** Each call's deadline, retries included (the SDK's default): every call must succeed within it. */
const CALL_TIMEOUT_MS = 5_000;
/**
 * Longer than the partition test's (300/50 ms): nothing here should elect, and on a loaded
 * machine a node starved of CPU for 300 ms would call an election that is no fault of the cut.
 */
const ELECTION_TIMEOUT_MS = 1_000;
const HEARTBEAT_MS = 100;
/** A client connection that carried a call within this long is in use. */
const ACTIVE_MS = 1_000;
/** For the clients to go back to the leader after a cut (the SDK avoids it for 10 s) and for recovery. */
const SETTLE_MS = 30_000;
const CHECK_TIMEOUT_MS = 60_000;

/** Cleanups of the test running now, also run by afterAll if the test is cut short. */
const cleanups = new Cleanups();

describe.skipIf(UNAVAILABLE !== undefined)(`clients cut off from the leader${UNAVAILABLE ? ` (skipped: ${UNAVAILABLE})` : ''}`, () => {
  beforeAll(async () => {
    await ensureBuilt();
    const removed = [...removeLeftovers(), ...removeLeftoverDirs('client-cut')];
    if (removed.length > 0) console.log(`removed leftovers of a crashed earlier run: ${removed.join(' ')}`);
  });
  afterAll(() => cleanups.run());

  it(
    `the followers serve them: no stall, no failed call, no election, a linearizable history (seed ${SEED})`,
    { timeout: 90_000 + ROUNDS * (HOLD_MS + 2 * SETTLE_MS) },
    () => cleanups.after(clientCutRun),
  );
});

/** What one cut showed. */
interface Cut {
  leader: number;
  term: number;
  /** Client connections in use at the leader just before the cut: the clients were there to be cut off. */
  clientsAtLeader: number;
  /** How long the clients took to get there (after the previous cut, the SDK avoids the leader for 10 s). */
  settleMs: number;
  heldMs: number;
  /** Calls that succeeded during the cut, and the longest stretch without one. */
  ok: number;
  longestGapMs: number;
  droppedPackets: number;
  leaderAfter: number;
  termAfter: number;
}

async function clientCutRun(): Promise<void> {
  const wallStart = performance.now();
  const net = createNetns('a', 3, cleanups);
  const c = await startNetnsCluster(net, 'client-cut', { electionTimeoutMs: ELECTION_TIMEOUT_MS, heartbeatMs: HEARTBEAT_MS }, cleanups);
  await c.waitForLeader(SETTLE_MS);
  const workload = new Workload({
    endpoints: c.endpoints,
    seed: SEED,
    registerClients: 5,
    ledgerWriters: 2,
    readerEndpoints: [],
    keys: 4,
    timeoutMs: [CALL_TIMEOUT_MS, CALL_TIMEOUT_MS],
    thinkMs: 20,
  });
  cleanups.push(() => workload.stop());
  workload.start();

  const cuts: Cut[] = [];
  for (let round = 0; round < ROUNDS; round++) cuts.push(await cutClientsFromLeader(net, c, workload));

  await workload.stop();
  const { lost } = await workload.readBack();
  const history = workload.history.operations();
  const checkStart = performance.now();
  const result = checkLinearizable(history, { timeoutMs: CHECK_TIMEOUT_MS });
  const checkMs = Math.round(performance.now() - checkStart);
  const f = workload.snapshot();
  console.log(
    `client-cut test, seed ${SEED}: ${cuts.length} cuts of ${HOLD_MS} ms:\n` +
      cuts
        .map(
          (k, i) =>
            `  cut ${i + 1}: leader ${k.leader} (term ${k.term}, ${k.clientsAtLeader} client connections in use after ${k.settleMs} ms) held ${k.heldMs} ms, ` +
            `${k.ok} calls succeeded, longest gap ${k.longestGapMs} ms, ${k.droppedPackets} packets dropped; after: leader ${k.leaderAfter}, term ${k.termAfter}`,
        )
        .join('\n') +
      `\n  ${f.invoked} calls (${f.ok} ok, ${f.indeterminate} writes unknown, ${f.failedReads} reads failed; errors ${JSON.stringify(f.errors)}), ` +
      `${f.ackedWrites} acknowledged writes (${f.ledgerAcked} ledger keys); history of ${history.length} operations checked in ${checkMs} ms; ` +
      `wall ${((performance.now() - wallStart) / 1000).toFixed(1)} s`,
  );

  for (const [i, k] of cuts.entries()) {
    expect(k.droppedPackets, `cut ${i + 1}: packets dropped (did the cut bite?)`).toBeGreaterThan(0);
    expect(k.longestGapMs, `cut ${i + 1} of leader ${k.leader}: longest stretch without a successful call (ms)`).toBeLessThan(GAP_BOUND_MS);
    expect({ leader: k.leaderAfter, term: k.termAfter }, `cut ${i + 1}: the leader and term after the cut (no election)`).toEqual({ leader: k.leader, term: k.term });
  }
  expect({ writesUnknown: f.indeterminate, readsFailed: f.failedReads, errors: f.errors }, 'calls that failed').toEqual({ writesUnknown: 0, readsFailed: 0, errors: {} });
  if (result.ok === false) expect.fail(`seed ${SEED}: ${formatCounterexample(result)}`);
  if (result.ok === 'unknown') expect.fail(`seed ${SEED}: the linearizability check gave no answer: ${result.reason}`);
  expect(lost, `acknowledged ledger writes that do not read back (seed ${SEED})`).toEqual([]);
}

/**
 * Waits until the clients use the leader directly (so that the cut cuts them off), drops the
 * traffic between the test process and the leader's client port for HOLD_MS, heals, and waits
 * for the cluster to answer again.
 */
async function cutClientsFromLeader(net: Netns, c: Cluster, workload: Workload): Promise<Cut> {
  const leader = await c.waitForLeader(SETTLE_MS);
  const term = await leaderTerm(c, leader);
  const settleStart = performance.now();
  // The status client's connection (it just asked) counts too: all but one client may be needed.
  const clientsAtLeader = await waitFor(
    `the ${workload.clients} clients to use leader ${leader} directly`,
    async () => {
      const n = await net.activeClientConnections(leader, ACTIVE_MS);
      return n >= workload.clients ? n : undefined;
    },
    SETTLE_MS,
    200,
  );
  const settleMs = Math.round(performance.now() - settleStart);
  const fromMs = workload.now();
  await net.apply({ ...HEALTHY, clientCut: [leader] });
  await sleep(HOLD_MS);
  const droppedPackets = await net.droppedPackets();
  const toMs = workload.now();
  await net.apply(HEALTHY);
  const { ok, longestGapMs } = workload.successesBetween(fromMs, toMs);
  const leaderAfter = await c.waitForLeader(SETTLE_MS);
  const termAfter = await leaderTerm(c, leaderAfter);
  console.log(`cut of leader ${leader}'s clients: ${ok} calls succeeded, longest gap ${longestGapMs} ms`);
  return { leader, term, clientsAtLeader, settleMs, heldMs: Math.round(toMs - fromMs), ok, longestGapMs, droppedPackets, leaderAfter, termAfter };
}
