/**
 * RaftNode records the configuration as of each snapshot it takes, so that a restart restores
 * exactly that configuration (not its --peers); also for a snapshot captured between the state
 * machine applying a conf entry and the core being told (advance() waits for the disk sync).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { confOfVoters, type ConfState } from '../../src/raft/core/conf.js';
import type { Raft } from '../../src/raft/core/raft.js';
import type { Entry, SnapshotMeta } from '../../src/raft/core/types.js';
import { RaftNode } from '../../src/raft/node.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import type { Transport } from '../../src/raft/transport/transport.js';
import { waitFor } from '../e2e/cluster.js';

const ID = { clusterId: 'snapshot-conf', nodeId: 1 };
/** A single node's network: nobody to talk to. */
const alone: Transport = {
  send: () => {},
  onMessage: () => {},
  sendSnapshot: () => Promise.reject(new Error('no peers')),
  onSnapshot: () => {},
  setPeers: () => {},
  close: () => Promise.resolve(),
};

const dirs: string[] = [];
const nodes: RaftNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Node 1 on the data at `path`, started with `peers`; `onApplied` runs inside the node's apply step. */
function start(path: string, peers: number[], onApplied: (e: Entry, node: RaftNode) => void = () => {}) {
  const fatal: unknown[] = [];
  const taken: { meta: SnapshotMeta; conf: ConfState }[] = [];
  let applied = { index: 0, term: 0 };
  const node: RaftNode = new RaftNode({
    id: 1,
    peers,
    storage: SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true }),
    transport: alone,
    clock: systemClock,
    seed: 1,
    electionTimeoutMs: 50,
    heartbeatMs: 10,
    handler: {
      applied: (e) => {
        applied = { index: e.index, term: e.term };
        onApplied(e, node);
      },
      readConfirmed: () => {},
      leadershipLost: () => {},
    },
    snapshots: {
      take: (confAt) => {
        // As the Snapshotter: capture now (the conf with it), durable a little later.
        const meta = { ...applied };
        taken.push({ meta, conf: confAt(meta.index) });
        return new Promise((resolve) => setTimeout(() => resolve(meta), 20));
      },
      read: () => Promise.reject(new Error('no followers')),
      install: () => Promise.reject(new Error('no leader')),
    },
    onFatal: (e) => fatal.push(e),
  });
  nodes.push(node);
  return { node, taken, fatal, core: (node as unknown as { raft: Raft }).raft };
}

const persistedSnapshot = (path: string): SnapshotMeta | undefined => {
  const s = SqliteStorage.open(path, { ...ID, create: false });
  try {
    return s.load().snapshot;
  } finally {
    s.close();
  }
};

describe('RaftNode: the configuration of its snapshots', () => {
  it('records the configuration as of a snapshot it takes; a restart with other --peers restores that one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-node-conf-'));
    dirs.push(dir);
    const path = join(dir, 'raft.db');
    const a = start(path, [1]);
    await waitFor('node 1 to lead', () => a.node.status().role === 'leader');
    for (let i = 0; i < 3; i++) a.node.propose(new TextEncoder().encode(`x${i}`));
    await waitFor('the writes to apply', () => a.node.status().applied >= 4);
    const meta = await a.node.snapshot();
    expect(a.taken.map((t) => t.conf)).toEqual([confOfVoters([1])]);
    await a.node.stop();
    expect(persistedSnapshot(path)).toEqual({ index: meta.index, term: meta.term, conf: confOfVoters([1]) });

    const b = start(path, [1, 2, 3]); // --peers that no longer match what the data says
    expect(b.node.status().conf).toEqual(confOfVoters([1]));
    expect([...a.fatal, ...b.fatal]).toEqual([]);
  });

  it('a snapshot captured while the core has not yet been told of an applied conf entry records that entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-node-conf-'));
    dirs.push(dir);
    const path = join(dir, 'raft.db');
    let during: Promise<SnapshotMeta> | undefined;
    let coreConfThen: ConfState | undefined;
    const a = start(path, [1], (e, node) => {
      if (e.type !== 'conf' || during) return;
      // Inside apply(): the core applies this entry's configuration only at advance().
      coreConfThen = a.core.confAt(e.index);
      during = node.snapshot();
    });
    await waitFor('node 1 to lead', () => a.node.status().role === 'leader');
    await waitFor('an entry of its term to commit', () => a.node.status().applied >= 1);
    expect(a.core.proposeConfChange({ changes: [{ type: 'addLearner', id: 2 }] })).toMatchObject({ ok: true });
    await waitFor('the snapshot taken during the apply step', () => during !== undefined);
    const meta = await during!;
    const withLearner = { ...confOfVoters([1]), learners: [2] };
    expect(coreConfThen).toEqual(confOfVoters([1])); // the window this covers
    expect(a.taken.map((t) => t.conf)).toEqual([withLearner]);
    await a.node.stop();
    expect(persistedSnapshot(path)).toEqual({ index: meta.index, term: meta.term, conf: withLearner });
    const b = start(path, [1]);
    expect(b.node.status().conf).toEqual(withLearner);
    expect([...a.fatal, ...b.fatal]).toEqual([]);
  });
});
