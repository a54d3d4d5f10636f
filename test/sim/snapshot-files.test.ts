/**
 * Snapshot files against power loss, step by step: a snapshot is written over an older one on the
 * simulated disk, and the machine loses power at each file operation in turn (and, for each, under
 * many draws of what the lost page cache had written back). After every such crash the node must
 * find a snapshot, the old one or the new one, whole: never a damaged file under a final name and
 * never none at all. This is what makes "rename only after fsync" and "delete the old one only
 * after the new one is durable" tested rules.
 */
import { describe, expect, it } from 'vitest';
import type { FileSystem, WritableFile } from '../../src/files.js';
import { seededRng } from '../../src/raft/core/rng.js';
import { readLatestSnapshot, writeSnapshot } from '../../src/server/snapshot/files.js';
import type { CapturedState } from '../../src/server/state-machine.js';
import { SimClock, SimWorld } from './sim-clock.js';
import { SimFiles } from './sim-files.js';

const IDS = { clusterId: 'c', nodeId: 1 };
const DIR = 'snap';

function state(tag: string): CapturedState {
  const keys = Array.from({ length: 50 }, (_, i) => `${tag}-${i}`);
  return { keys, values: keys.map((k) => `value of ${k}`), sessions: [], clockMs: 0, lastExpiryMs: 0 };
}

/** A file system that calls `crash` as its `at`-th operation begins. */
function crashingAt(fs: FileSystem, at: number, crash: () => void): { fs: FileSystem; ops: () => number } {
  let n = 0;
  const step = (): void => {
    if (++n === at) crash();
  };
  const file = (f: WritableFile): WritableFile => ({
    write: (d, p) => (step(), f.write(d, p)),
    sync: () => (step(), f.sync()),
    close: () => (step(), f.close()),
  });
  return {
    ops: () => n,
    fs: {
      mkdir: (d) => (step(), fs.mkdir(d)),
      list: (d) => (step(), fs.list(d)),
      read: (p) => (step(), fs.read(p)),
      create: async (p) => (step(), file(await fs.create(p))),
      rename: (a, b) => (step(), fs.rename(a, b)),
      remove: (p) => (step(), fs.remove(p)),
      syncDir: (d) => (step(), fs.syncDir(d)),
    },
  };
}

/** One run: snapshot 10 durable, then snapshot 20 written with power lost at operation `at`. What is read back? */
async function run(at: number, seed: number): Promise<{ index: number | undefined; warnings: string[]; ops: number }> {
  const world = new SimWorld(100_000);
  const rng = seededRng(seed);
  const files = new SimFiles();
  let clock = new SimClock(world, 0);
  const mount = (c: SimClock): FileSystem =>
    files.mount({ after: (ms, fn) => c.after(ms, fn), latency: () => rng.int(21), alive: () => !c.dead });
  const settle = (p: Promise<unknown>): Promise<void> => world.runUntil(world.now + 10_000, () => {}).then(() => void p.catch(() => {}));

  await settle(writeSnapshot(mount(clock), DIR, { index: 10, term: 1 }, state('old'), IDS, clock.slicer(), { keep: 1 }));
  const c = crashingAt(mount(clock), at, () => {
    clock.kill();
    files.crash('power', rng);
  });
  await settle(writeSnapshot(c.fs, DIR, { index: 20, term: 1 }, state('new'), IDS, clock.slicer(), { keep: 1 }).catch(() => {}));
  if (!clock.dead) files.crash('power', rng); // the write finished: power lost right after

  clock = new SimClock(world, 0);
  const warnings: string[] = [];
  // A temp file left by the crash is ignored; a damaged snapshot is what must never be seen.
  const got = readLatestSnapshot(mount(clock), DIR, IDS, { onWarning: (m) => void (/skipping/.test(m) && warnings.push(m)) });
  await settle(got);
  const snap = await got;
  if (snap) expect(snap.state.keys[0]).toBe(snap.meta.index === 10 ? 'old-0' : 'new-0');
  return { index: snap?.meta.index, warnings, ops: c.ops() };
}

describe('snapshot files survive a power loss at any step of writing the next one', () => {
  it('at every operation, under many draws of what reached the disk: the old snapshot or the new one, whole', async () => {
    const { ops } = await run(Infinity, 1);
    expect(ops).toBeGreaterThan(5);
    let newer = 0;
    for (let at = 1; at <= ops + 1; at++) {
      for (let seed = 1; seed <= 25; seed++) {
        const r = await run(at, seed);
        expect(r.warnings, `power lost at operation ${at} of ${ops} (seed ${seed})`).toEqual([]);
        expect([10, 20], `power lost at operation ${at} of ${ops} (seed ${seed})`).toContain(r.index);
        if (r.index === 20) newer++;
      }
    }
    // Once the write has returned, the new snapshot is durable.
    for (let seed = 1; seed <= 25; seed++) expect((await run(ops + 1, seed)).index).toBe(20);
    expect(newer).toBeGreaterThan(0);
  });
});
