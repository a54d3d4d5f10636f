import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { nodeFileSystem } from '../../src/files.js';
import type { Entry, SnapshotMeta } from '../../src/raft/core/types.js';
import type { Storage } from '../../src/raft/storage/storage.js';
import type { KvStore } from '../../src/server/kv-store.js';
import { writeSnapshot } from '../../src/server/snapshot/files.js';
import { SNAPSHOT_DIR, Snapshotter } from '../../src/server/snapshotter.js';

const IDS = { clusterId: 'test-cluster', nodeId: 3 };
const STATE = { keys: ['a'], values: ['\u0001'], sessions: [], clockMs: 0, lastExpiryMs: 0 };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A log of entries 1..last (term 1), recording what restore() asks of it. */
function fakeLog(last: number) {
  const calls: string[] = [];
  const entries: Entry[] = Array.from({ length: last }, (_, i) => ({ index: i + 1, term: 1, type: 'normal', data: new Uint8Array(0) }) as Entry);
  const storage = {
    load: () => ({ hardState: { term: 1, vote: 0, commit: last }, entries }),
    compact: (meta: SnapshotMeta, upTo: number) => calls.push(`compact ${meta.index} upTo ${upTo}`),
    installSnapshot: (meta: SnapshotMeta) => calls.push(`install ${meta.index}`),
  } as unknown as Storage;
  return { storage, calls };
}

async function restoreWith(retain: number, logLast: number, snapAt: number) {
  const root = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-snapshotter-'));
  dirs.push(root);
  const files = nodeFileSystem(root);
  await writeSnapshot(files, SNAPSHOT_DIR, { index: snapAt, term: 1 }, STATE, IDS, systemClock.slicer());
  const restored: number[] = [];
  const store = { restore: (s: { meta: SnapshotMeta }) => restored.push(s.meta.index) } as unknown as KvStore;
  const snapshotter = new Snapshotter({ files, ids: IDS, store, clock: systemClock, retain, log: () => {} });
  const log = fakeLog(logLast);
  await snapshotter.restore(log.storage, await snapshotter.latest(undefined));
  return { calls: log.calls, restored, index: snapshotter.index };
}

describe('Snapshotter.restore: a snapshot file ahead of the log (a crash between writing it and recording it)', () => {
  it('compacts the log behind the file, keeping --snapshot-retain entries as at any other snapshot', async () => {
    // Found by the 1000-seed soak: compacting to 0 here kept the whole old log after a restart.
    const r = await restoreWith(5, 50, 40);
    expect(r.calls).toEqual(['compact 40 upTo 35']);
    expect(r.restored).toEqual([40]);
    expect(r.index).toBe(40);
  });

  it('never compacts below 0 when retain exceeds the snapshot index', async () => {
    expect((await restoreWith(1000, 50, 40)).calls).toEqual(['compact 40 upTo 0']);
  });

  it('a file past the end of the log replaces the log', async () => {
    expect((await restoreWith(5, 30, 40)).calls).toEqual(['install 40']);
  });
});

describe('Snapshotter.restore: a log whose term is behind its snapshot file (a data dir made by kv-server --restore)', () => {
  it('takes the snapshot term, with no vote, durably, so that a leader it elects never appends below its log', async () => {
    const root = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-snapshotter-'));
    dirs.push(root);
    const files = nodeFileSystem(root);
    await writeSnapshot(files, SNAPSHOT_DIR, { index: 40, term: 7 }, STATE, IDS, systemClock.slicer());
    const calls: string[] = [];
    const storage = {
      load: () => ({ hardState: { term: 0, vote: 0, commit: 0 }, entries: [] }),
      installSnapshot: (meta: SnapshotMeta) => calls.push(`install ${meta.index}`),
      save: (hs: { term: number; vote: number; commit: number } | undefined, entries: Entry[]) => calls.push(`save ${JSON.stringify(hs)} ${entries.length}`),
      sync: () => (calls.push('sync'), Promise.resolve()),
    } as unknown as Storage;
    const store = { restore: () => undefined } as unknown as KvStore;
    const snapshotter = new Snapshotter({ files, ids: IDS, store, clock: systemClock, retain: 0, log: () => {} });
    await snapshotter.restore(storage, await snapshotter.latest(undefined));
    expect(calls).toEqual(['install 40', 'save {"term":7,"vote":0,"commit":0} 0', 'sync']);
  });
});
