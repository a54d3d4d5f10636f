import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { RaftNode } from '../../src/raft/node.js';
import { KvStore, type KvSnapshot } from '../../src/server/kv-store.js';
import { withMistake } from './mistakes.js';
import { formatFailure, runScenario, type RunResult } from './run.js';
import { SCENARIOS } from './scenarios.js';

/** Every 3A and 3B scenario under two fixed seeds (the soak runs many more: --suite 3A,3B). */
const SEEDS = [1, 2];

/** The lab's KV tests, without snapshots (3A) and with them (3B). */
const LAB_TESTS = {
  '3A': [
    'Basic',
    'Concurrent',
    'Unreliable',
    'UnreliableOneKey',
    'OnePartition',
    'ManyPartitionsOneClient',
    'ManyPartitionsManyClients',
    'PersistOneClient',
    'PersistConcurrent',
    'PersistConcurrentUnreliable',
    'PersistPartition',
    'PersistPartitionUnreliable',
    'PersistPartitionUnreliableLinearizable',
  ],
  '3B': [
    'SnapshotRPC',
    'SnapshotSize',
    'SnapshotRecover',
    'SnapshotRecoverManyClients',
    'SnapshotUnreliable',
    'SnapshotUnreliableRecover',
    'SnapshotUnreliableRecoverConcurrentPartition',
    'SnapshotUnreliableRecoverConcurrentPartitionLinearizable',
  ],
};

describe.each(['3A', '3B'] as const)('scenarios %s (KV over Raft, with linearizability checks)', (suite) => {
  const kv = SCENARIOS.filter((s) => s.suite === suite);

  it(`has the lab’s ${suite} tests`, () => {
    expect(kv.map((s) => s.name)).toEqual(LAB_TESTS[suite]);
  });

  for (const s of kv) {
    it.each(SEEDS)(`${s.name} seed %i`, async (seed) => {
      const r = await runScenario(s.name, seed);
      if (!r.ok) expect.fail(formatFailure(r));
    });
  }
});

describe('KV runs replay exactly', () => {
  it.each([
    ['PersistConcurrentUnreliable', 7],
    ['SnapshotUnreliableRecoverConcurrentPartition', 7],
  ])('%s seed %i', async (name, seed) => {
    const a = await runScenario(name, seed);
    const b = await runScenario(name, seed);
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
    if (name.startsWith('Snapshot')) expect(a.snapshotsInstalled).toBeGreaterThan(0);
  });
});

/**
 * The classic stale-read bug: a node answers a Get from its own state machine as soon as it
 * believes it leads, with no ReadIndex round to check that it still does. A leader cut off in a
 * minority keeps serving the values it had while the majority moves on.
 */
const staleReads = (fn: () => Promise<RunResult[]>): Promise<RunResult[]> =>
  withMistake(RaftNode.prototype, 'readIndex', () =>
    function (this: RaftNode, ctx: number): boolean {
      if (this.status().role !== 'leader') return false;
      const self = this as unknown as { handler: KvStore; clock: Clock };
      const index = self.handler.appliedIndex;
      // The store registers the read when readIndex returns: confirm it right after.
      self.clock.defer(() => self.handler.readConfirmed({ ctx, index }));
      return true;
    },
  fn);

/**
 * A state machine whose snapshots lose something on the way back in: `mangle` edits what
 * restore() gets. The simulator compares every restored state with its snapshot; without that
 * check, the scenarios still fail on these seeds (a lagging server missing keys; duplicate or
 * refused appends).
 */
const lossyRestore = (mangle: (snap: KvSnapshot, store: KvStore) => KvSnapshot | undefined) => (fn: () => Promise<RunResult[]>) =>
  withMistake(KvStore.prototype, 'restore', (restore) =>
    function (this: KvStore, snap: KvSnapshot): void {
      const s = mangle(snap, this);
      if (s) restore.call(this, s);
    },
  fn);

const runs = (name: string, seeds: number[]): Promise<RunResult[]> => Promise.all(seeds.map((seed) => runScenario(name, seed)));

describe('the snapshot scenarios can fail', () => {
  const failures = async (name: string, mistake: (fn: () => Promise<RunResult[]>) => Promise<RunResult[]>): Promise<string[]> => {
    const rs = await mistake(() => runs(name, [1, 2, 3]));
    return rs.filter((r) => !r.ok).map((r) => r.error!.split('\n')[0]!);
  };

  it('SnapshotRPC catches a server that ignores the snapshot it installs', async () => {
    const errors = await failures('SnapshotRPC', lossyRestore((snap, store) => (store.appliedIndex === 0 ? snap : undefined)));
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toMatch(/restored from snapshot \d+, holds another state than the snapshot/);
  });

  it('SnapshotUnreliableRecover catches a snapshot that loses the session table', async () => {
    const errors = await failures('SnapshotUnreliableRecover', lossyRestore((snap) => ({ ...snap, state: { ...snap.state, sessions: [] } })));
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toMatch(/holds another state than/);
  });
});

describe('the KV scenarios can fail', () => {
  it('OnePartition catches stale reads from a deposed leader, with a linearizability counterexample', async () => {
    // The deposed leader serves stale reads only until check-quorum makes it step down, so a
    // run catches it only when the minority's read arrives in that window: some seeds do.
    const seeds = Array.from({ length: 20 }, (_, i) => i + 1);
    const rs = await staleReads(() => runs('OnePartition', seeds));
    const caught = rs.filter((r) => !r.ok && /history is not linearizable/.test(r.error ?? ''));
    console.log(`stale reads caught in ${caught.length} of ${rs.length} runs`);
    expect(caught.length, rs.map((r) => `seed ${r.seed}: ${r.ok ? 'ok' : r.error?.split('\n')[0]}`).join('\n')).toBeGreaterThanOrEqual(5);
    // The counterexample is the stale read itself: a get returning the value overwritten by a put
    // that had already completed.
    for (const r of caught) {
      expect(r.error).toMatch(/put\("1", "14"\)\s+-> ok/);
      expect(r.error).toMatch(/get\("1"\)\s+-> "13"/);
    }
    // The same seeds with ReadIndex pass.
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = await runScenario('OnePartition', seed);
      if (!r.ok) expect.fail(formatFailure(r));
    }
  });
});
