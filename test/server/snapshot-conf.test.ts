/**
 * The configuration as of a snapshot (cluster membership) in snapshot files: written, read back,
 * refused when invalid; files from before membership still load. And the Snapshotter, which puts
 * it there and carries it to the log at a restart.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { nodeFileSystem } from '../../src/files.js';
import { confOfVoters, MAX_MEMBERS, type ConfState } from '../../src/raft/core/conf.js';
import type { SnapshotMeta } from '../../src/raft/core/types.js';
import { crc32c } from '../../src/raft/storage/crc32c.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import type { KvSnapshot, KvStore } from '../../src/server/kv-store.js';
import { decodeSnapshot, decodeSnapshotAsync } from '../../src/server/snapshot/decode.js';
import { encodeSnapshot, header } from '../../src/server/snapshot/encode.js';
import { readLatestSnapshot, snapshotFileName, writeSnapshot } from '../../src/server/snapshot/files.js';
import { SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_BYTES, SnapshotError } from '../../src/server/snapshot/format.js';
import { SNAPSHOT_DIR, Snapshotter } from '../../src/server/snapshotter.js';
import { entries } from '../storage/conformance.js';

const IDS = { clusterId: 'test-cluster', nodeId: 3 };
const STATE = { keys: ['a'], values: ['\u0001'], sessions: [], clockMs: 0, lastExpiryMs: 0 };
/** Every list set, ids up to 2^53 - 1. */
const JOINT: ConfState = { voters: [1, 2, 2 ** 40], votersOutgoing: [1, 2, 3], learners: [5, Number.MAX_SAFE_INTEGER], learnersNext: [3], autoLeave: true };

const dirs: string[] = [];
function tempDir(): string {
  const d = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-snapconf-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const encode = (meta: SnapshotMeta): Promise<Uint8Array> => encodeSnapshot(meta, STATE, IDS, systemClock.slicer());

const Snapshot = protobuf.loadSync(fileURLToPath(new URL('../../proto/snapshot.proto', import.meta.url))).lookupType('raftkv.snapshot.Snapshot');

/**
 * A snapshot whose body protobufjs encodes from `fields` (any configuration, valid or not),
 * followed by `raw` body bytes, behind a valid header: only what the body says can be wrong.
 */
function handMade(fields: Record<string, unknown>, raw: number[] = []): Uint8Array {
  const encoded = Snapshot.encode(
    Snapshot.fromObject({ formatVersion: SNAPSHOT_FORMAT_VERSION, clusterId: IDS.clusterId, nodeId: IDS.nodeId, lastIndex: 9, lastTerm: 2, keyCount: 0, ...fields }),
  ).finish();
  const body = Buffer.concat([encoded, Buffer.from(raw)]);
  return Buffer.concat([header(body.length, crc32c(body)), body]);
}

/** Field 11 (conf) holding `inner` as it is. */
const confField = (inner: number[]): number[] => [(11 << 3) | 2, inner.length, ...inner];

describe('snapshot files: the configuration', () => {
  it('round-trips a configuration (sync and async), and protobufjs reads it as raftkv.snapshot.ConfState', async () => {
    const bytes = await encode({ index: 9, term: 2, conf: JOINT });
    expect(decodeSnapshot(bytes, IDS).meta).toEqual({ formatVersion: SNAPSHOT_FORMAT_VERSION, ...IDS, index: 9, term: 2, conf: JOINT });
    expect((await decodeSnapshotAsync(bytes, IDS, systemClock.slicer(0))).meta.conf).toEqual(JOINT);
    const msg = Snapshot.toObject(Snapshot.decode(bytes.subarray(SNAPSHOT_HEADER_BYTES)), { longs: Number, defaults: true });
    expect(msg.conf).toEqual(JOINT);
    // protobufjs's own encoding of it (packed, in its field order) reads the same.
    expect(decodeSnapshot(handMade({ conf: JOINT }), IDS).meta.conf).toEqual(JOINT);
  });

  it('loads a file from before membership (no configuration) without one, and writes one without a configuration as before', async () => {
    expect(decodeSnapshot(handMade({}), IDS).meta).not.toHaveProperty('conf');
    const bytes = await encode({ index: 9, term: 2 });
    expect(decodeSnapshot(bytes, IDS).meta).not.toHaveProperty('conf');
    expect(Snapshot.decode(bytes.subarray(SNAPSHOT_HEADER_BYTES)).toJSON()).not.toHaveProperty('conf');
  });

  it('reads ids written unpacked too (a protobuf writer may), and skips fields it does not know', () => {
    // voters 1 (packed), 2 and 3 (unpacked); an unknown field 9 = 7; auto_leave absent.
    const inner = [(1 << 3) | 2, 1, 1, (1 << 3) | 0, 2, (1 << 3) | 0, 3, (9 << 3) | 0, 7];
    expect(decodeSnapshot(handMade({}, confField(inner)), IDS).meta.conf).toEqual(confOfVoters([1, 2, 3]));
  });

  const invalid: [string, Uint8Array, RegExp][] = [
    ['no voters', handMade({ conf: { learners: [1] } }), /invalid configuration: it has no voters/],
    ['node id 0', handMade({ conf: { voters: [0, 1] } }), /voters holds 0, not a node id/],
    ['ids out of order', handMade({ conf: { voters: [2, 1] } }), /voters is not in strictly ascending order/],
    ['a repeated id', handMade({ conf: { voters: [1, 2], learners: [3, 3] } }), /learners is not in strictly ascending order \(3 after 3\)/],
    ['a voter that is a learner', handMade({ conf: { voters: [1, 2], learners: [2] } }), /node 2 is both a voter and a learner/],
    ['autoLeave outside a joint configuration', handMade({ conf: { voters: [1], autoLeave: true } }), /not joint has learnersNext or autoLeave/],
    [`more than ${MAX_MEMBERS} ids in a list`, handMade({ conf: { voters: Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => i + 1) } }), /more than 1024 ids/],
    ['an id past 2^53', handMade({}, confField([(1 << 3) | 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])), /integer beyond 2\^53/],
    ['a packed list running past its field', handMade({}, confField([(1 << 3) | 2, 1, 0x81, 0x01])), /runs past/],
    ['two configurations', handMade({ conf: { voters: [1] } }, confField([(1 << 3) | 0, 2])), /two configurations/],
  ];
  for (const [name, bytes, why] of invalid) {
    it(`refuses a file whose configuration has ${name} (CORRUPT, with the reason)`, () => {
      let err: unknown;
      try {
        decodeSnapshot(bytes, IDS);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SnapshotError);
      expect(err).toMatchObject({ code: 'CORRUPT', message: expect.stringMatching(why) });
    });
  }

  it('a reader skips a file with an invalid configuration, with a warning, and leaves it in place', async () => {
    const root = tempDir();
    const files = nodeFileSystem(root);
    await writeSnapshot(files, SNAPSHOT_DIR, { index: 5, term: 1, conf: JOINT }, STATE, IDS, systemClock.slicer());
    const bad = nodePath.join(root, SNAPSHOT_DIR, snapshotFileName({ index: 9, term: 2 }));
    fs.writeFileSync(bad, handMade({ conf: { voters: [1, 2], learners: [2] } }));
    const warnings: string[] = [];
    const got = await readLatestSnapshot(files, SNAPSHOT_DIR, IDS, { onWarning: (w) => warnings.push(w) });
    expect(got?.meta).toMatchObject({ index: 5, conf: JOINT });
    expect(warnings.join('\n')).toMatch(/node 2 is both a voter and a learner/);
    expect(fs.existsSync(bad)).toBe(true);
  });

  it('refuses to write a configuration it would refuse to read', async () => {
    await expect(encode({ index: 9, term: 2, conf: { ...JOINT, learners: [1] } })).rejects.toThrow(/invalid configuration: node 1 is both a voter and a learner/);
    await expect(encode({ index: 9, term: 2, conf: { ...JOINT, voters: [2, 1] } })).rejects.toThrow(RangeError);
  });
});

describe('Snapshotter: the configuration', () => {
  /** A Snapshotter on a fresh directory over a store that captures at `index` and records what it is restored from. */
  function setUp(index = 7) {
    const root = tempDir();
    const files = nodeFileSystem(root);
    const restored: KvSnapshot[] = [];
    const store = {
      capture: (): KvSnapshot => ({ meta: { index, term: 2 }, state: STATE }),
      restore: (s: KvSnapshot) => restored.push(s),
    } as unknown as KvStore;
    const snapshotter = new Snapshotter({ files, ids: IDS, store, clock: systemClock, retain: 5, log: () => {} });
    const latest = () => readLatestSnapshot(files, SNAPSHOT_DIR, IDS, { onWarning: () => {} });
    return { root, files, snapshotter, restored, latest };
  }

  it('take() writes the configuration as of the captured index, asked for at once', async () => {
    const { snapshotter, latest } = setUp(7);
    const asked: number[] = [];
    const meta = await snapshotter.take((i) => (asked.push(i), JOINT));
    expect(asked).toEqual([7]);
    expect(meta).toEqual({ index: 7, term: 2, conf: JOINT });
    expect((await latest())?.meta).toMatchObject({ index: 7, term: 2, conf: JOINT });
  });

  it('lastBytes is the size of the file it wrote (raftkv_snapshot_size_bytes)', async () => {
    const { snapshotter, root } = setUp(7);
    expect(snapshotter.lastBytes).toBe(0);
    await snapshotter.take(() => JOINT);
    const dir = nodePath.join(root, SNAPSHOT_DIR);
    const sizes = fs.readdirSync(dir).map((f) => fs.statSync(nodePath.join(dir, f)).size);
    expect(sizes).toContain(snapshotter.lastBytes);
    expect(snapshotter.lastBytes).toBeGreaterThan(0);
  });

  it("install() keeps the configuration the node adopted (the snap message's), not the leader file's", async () => {
    const { snapshotter, restored, latest } = setUp();
    const fromLeader = await encode({ index: 9, term: 2 }); // a leader from before membership
    await snapshotter.install({ index: 9, term: 2, conf: JOINT }, fromLeader);
    expect((await latest())?.meta).toMatchObject({ index: 9, conf: JOINT });
    expect(restored.map((s) => s.meta)).toEqual([{ index: 9, term: 2, conf: JOINT }]);
  });

  /** A log (entries 1..`last`, term 2) and a snapshot file at `at` ahead of it, as a crash after the file was written leaves them; then a restart. */
  async function restartWithFileAhead(last: number, at: number, conf: ConfState | undefined): Promise<SnapshotMeta | undefined> {
    const { root, files, snapshotter, restored } = setUp();
    const path = nodePath.join(root, 'raft.db');
    const storage = SqliteStorage.open(path, { ...IDS, create: true, unsafeNoFsync: true });
    storage.save({ term: 2, vote: 1, commit: last }, entries(1, last, 2));
    await writeSnapshot(files, SNAPSHOT_DIR, { index: at, term: 2, ...(conf ? { conf } : {}) }, STATE, IDS, systemClock.slicer());
    await snapshotter.restore(storage, await snapshotter.latest(undefined));
    storage.close();
    expect(restored.map((s) => s.meta.conf)).toEqual([conf]);
    const reopened = SqliteStorage.open(path, { ...IDS, create: false });
    try {
      return reopened.load().snapshot;
    } finally {
      reopened.close();
    }
  }

  it("a restart from a file ahead of the log records the file's configuration, so the next restart finds it", async () => {
    expect(await restartWithFileAhead(50, 40, JOINT)).toEqual({ index: 40, term: 2, conf: JOINT }); // compacted
    expect(await restartWithFileAhead(30, 40, JOINT)).toEqual({ index: 40, term: 2, conf: JOINT }); // installed
  });

  it('a file from before membership records none: the node falls back to its peers', async () => {
    expect(await restartWithFileAhead(50, 40, undefined)).toEqual({ index: 40, term: 2 });
  });
});
