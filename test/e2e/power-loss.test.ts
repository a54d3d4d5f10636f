/**
 * Power loss with real processes. Each node's data dir is on its own ext4 image (loop-disk.ts), so
 * a cut loses whatever the node wrote and did not sync, as a power loss does and kill -9 does not.
 * A writer keeps puts in flight while rounds of cuts hit a follower, the leader, both followers, or
 * the leader and a follower at once (a majority losing its unsynced state together): at a random
 * moment, or in half of the rounds while a victim is writing a snapshot (one is due every 200
 * entries). After each round the writes acknowledged since the last check are read back through
 * the cluster. At the end every node is stopped and its power cut once more; then its disk must
 * hold every acknowledged write, and committed entries must agree across nodes.
 * RAFTKV_POWERLOSS_ROUNDS sets the rounds (default 8, about 30 s; 50 for a soak), and
 * RAFTKV_POWERLOSS_SEED replays a run (the seed is printed). Needs root: skipped, saying why, where
 * loop mounts fail.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { seededRng } from '../../src/raft/core/rng.js';
import { Cluster, ensureBuilt, killAll, sleep, waitFor } from './cluster.js';
import { AckedWriter, clusterIdOf, durabilityViolations, lostEverywhere, readDurableState, unreadable } from './acked-writes.js';
import { checkPowerCutPremise, leftoversIn, LoopDisk, loopDisksUnavailable, ownDir, powerCut, removeDisks } from './loop-disk.js';

const ROUNDS = Number(process.env.RAFTKV_POWERLOSS_ROUNDS ?? 8);
const SEED = Number(process.env.RAFTKV_POWERLOSS_SEED ?? Date.now() % 1_000_000);
const IN_FLIGHT = 4;
const IMAGE_MIB = 64;
const SNAPSHOT_ARGS = ['--snapshot-threshold', '200', '--snapshot-retain', '50'];
/** What one round cuts; the rounds take them in turn, starting at a seeded one. */
const CUT_KINDS = ['follower', 'leader', 'both followers', 'leader and follower'] as const;
type CutKind = (typeof CUT_KINDS)[number];

const unavailable = loopDisksUnavailable();
if (unavailable !== undefined) console.warn(`power-loss tests skipped: ${unavailable}`);

let cluster: Cluster | undefined;
let disksDir: string | undefined;
let writer: AckedWriter | undefined;
let reader: KvClient | undefined;
afterAll(async () => {
  writer?.close();
  reader?.close();
  await killAll(); // the nodes first: a file system in use cannot be unmounted
  const left = removeDisks();
  await cluster?.close();
  const dir = disksDir;
  if (dir !== undefined) {
    // A loop device is detached when its last opener closes it, which can trail the unmount.
    await waitFor(`mounts and loop devices in ${dir} to go`, () => leftoversIn(dir).length === 0, 10_000).catch(() => {
      left.push(...leftoversIn(dir));
    });
  }
  if (left.length > 0) throw new Error(`power-loss test left behind: ${left.join('; ')}`);
});

describe.skipIf(unavailable !== undefined)(`power loss${unavailable === undefined ? '' : ` (skipped: ${unavailable})`}`, () => {
  let premise: ReturnType<typeof checkPowerCutPremise>;
  beforeAll(() => {
    premise = checkPowerCutPremise();
    console.log(`power-cut premise on this machine: ${premise.summary}`);
  });
  const premiseHolds = (): boolean => premise.aIntact && premise.b !== 'present';

  it('a power cut keeps a file that was fsynced and loses one that was only written', () => {
    expect(premiseHolds(), `after the cut: ${premise.summary}`).toBe(true);
  });

  it(`acknowledged writes survive ${ROUNDS} rounds of power cuts (seed ${SEED})`, { timeout: 60_000 + ROUNDS * 20_000 }, async () => {
    if (!premiseHolds()) expect.fail(`a power cut here loses nothing unsynced (${premise.summary}), so this test would prove nothing`);
    await ensureBuilt();
    const startedMs = Date.now();
    const rng = seededRng(SEED);
    const pause = (lo: number, hi: number): Promise<void> => sleep(lo + rng.int(hi - lo));
    const c = (cluster = await Cluster.create('powerloss', { extraArgs: SNAPSHOT_ARGS }));
    const dir = (disksDir = ownDir(c.dir)); // the images and mounts go where the cluster kept its data dirs
    const disks = new Map<number, LoopDisk>();
    for (const n of c.nodes) {
      const disk = LoopDisk.create(dir, `node${n.id}`, IMAGE_MIB);
      disks.set(n.id, disk);
      n.dataDir = path.join(disk.mountpoint, 'data'); // not the mount root, which holds lost+found
    }
    c.startAll();
    await c.waitForLeader();
    const clusterId = await clusterIdOf(c);
    const w = (writer = new AckedWriter(c.endpoints, IN_FLIGHT));
    const { acked } = w;
    const r = (reader = new KvClient({ endpoints: c.endpoints, timeoutMs: 20_000 }));

    const cuts: Record<CutKind, number> = { follower: 0, leader: 0, 'both followers': 0, 'leader and follower': 0 };
    let cutsMidSnapshot = 0;
    /** Kills `ids` together, then cuts their disks' power at one moment. */
    const cut = async (ids: number[]): Promise<void> => {
      await Promise.all(ids.map((id) => c.stop(id, 'SIGKILL')));
      cutsMidSnapshot += ids.filter((id) => snapshotBeingWritten(c.node(id).dataDir)).length;
      powerCut(ids.map((id) => disks.get(id)!));
    };

    let checked = 0;
    const firstKind = rng.int(CUT_KINDS.length);
    for (let round = 0; round < ROUNDS; round++) {
      const kind = CUT_KINDS[(firstKind + round) % CUT_KINDS.length]!;
      const leader = await c.waitForLeader(20_000);
      const followers = c.nodes.map((n) => n.id).filter((id) => id !== leader);
      const follower = followers[rng.int(followers.length)]!;
      const victims = { follower: [follower], leader: [leader], 'both followers': followers, 'leader and follower': [leader, follower] }[kind];
      if (rng.int(2) === 0) await pause(100, 1500);
      // or while a victim writes a snapshot (one is due every 200 entries), if one is seen in time
      else await waitFor('a snapshot being written', () => victims.some((id) => snapshotBeingWritten(c.node(id).dataDir)), 5000, 1).catch(() => {});
      await cut(victims);
      cuts[kind]++;
      await pause(0, 300);
      for (const id of victims) c.start(id);
      const before = acked.length;
      await waitFor(`writes to make progress after round ${round} (${kind})`, () => acked.length > before, 20_000).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}\n${c.tailLogs()}`);
      });
      await c.waitForLeader(20_000);
      const down = c.nodes.filter((n) => !c.running(n.id)).map((n) => n.id);
      if (down.length > 0) expect.fail(`round ${round}: node(s) ${down.join(', ')} did not come back after the cut (seed ${SEED})\n${c.tailLogs()}`);
      const upTo = acked.length;
      const gone = await unreadable(r, acked.slice(checked, upTo));
      expect(gone, `round ${round} (${kind}): acknowledged writes read back wrong (seed ${SEED})`).toEqual([]);
      checked = upTo;
    }
    await w.stop();
    await c.waitCaughtUp(30_000);
    expect(await unreadable(r, acked), `acknowledged writes read back wrong at the end (seed ${SEED})`).toEqual([]);
    for (const n of c.nodes) expect((await c.stop(n.id, 'SIGTERM')).code, `node ${n.id} stopping cleanly\n${c.tailLogs()}`).toBe(0);
    powerCut([...disks.values()]); // what the disks hold, not what a page cache still has

    const nodes = await Promise.all(c.nodes.map((n) => readDurableState(n.id, n.dataDir, clusterId)));
    expect(durabilityViolations(nodes, acked), `seed ${SEED}`).toEqual([]);
    expect(acked.length).toBeGreaterThan(ROUNDS);
    const snapshots = c.nodes.reduce((sum, n) => sum + (n.log.match(/snapshot \d+ \(term \d+\)/g)?.length ?? 0), 0);
    console.log(
      `power-loss test seed ${SEED}: ${ROUNDS} rounds; cuts: ${CUT_KINDS.map((k) => `${k} ${cuts[k]}`).join(', ')} ` +
        `(${cutsMidSnapshot} node(s) cut while a snapshot temp file existed); ${snapshots} snapshots written; ` +
        `${acked.length} writes acknowledged, ${w.failed} gave up, ${lostEverywhere(nodes, acked).length} lost; ` +
        `${((Date.now() - startedMs) / 1000).toFixed(1)} s; ` +
        nodes.map((n) => `node ${n.id}: snapshot ${n.snapshotIndex} + ${n.committed.size} committed entries`).join(', '),
    );
  });
});

/** A snapshot temp file in the node's snap dir: the node died while writing one. */
function snapshotBeingWritten(dataDir: string): boolean {
  const snap = path.join(dataDir, 'snap');
  return fs.existsSync(snap) && fs.readdirSync(snap).some((name) => name.endsWith('.tmp'));
}
