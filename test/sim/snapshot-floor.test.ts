/**
 * kv-server's snapshot floor, through the whole server (KvServer, the composition root, on the
 * simulator): a snapshot due by --snapshot-threshold waits until the log applied since the last
 * one holds SNAPSHOT_LOG_PER_STATE_BYTE bytes per byte of that snapshot (kv-server.ts hands the Raft node
 * `logPerStateByte` and `lastSnapshotBytes: () => snapshotter.lastBytes`). snapshot-policy.test.ts
 * checks the policy function; this checks that kv-server wires it in, with the snapshot sizes its
 * Snapshotter really wrote: without that wiring a large state would be written out again every
 * --snapshot-threshold entries, however small they are.
 */
import { expect, it } from 'vitest';
import { SNAPSHOT_LOG_PER_STATE_BYTE } from '../../src/server/kv-server.js';
import { SNAPSHOT_DIR } from '../../src/server/snapshotter.js';
import { SimCluster, type SimNode } from './cluster.js';

/** --snapshot-threshold: entries applied since the last snapshot before the next is due. */
const THRESHOLD = 20;
/** The first snapshot's state: a few large values, written in fewer entries than the threshold. */
const BIG_KEYS = 12;
const BIG_VALUE_BYTES = 8 * 1024;
/** A Raft entry of a put holds the command's 42-byte header, the key and the value (command.ts). */
const COMMAND_HEADER_BYTES = 42;
/** The client session of the test's puts (the simulator's own commands use client 1). */
const CLIENT_ID = 77;
/** Virtual ms any one wait may take before the test fails. */
const WAIT_LIMIT_MS = 5_000;

it('kv-server defers a snapshot due by entry count until the log since the last one holds its share of that snapshot\'s bytes', async () => {
  const sim = await SimCluster.create({ nodes: 3, seed: 11, snapshots: { entries: THRESHOLD, retain: 2 } });
  let seed = 1;
  /** Values that do not compress, so that the snapshot is as large as the state (no compression today, but the test should not depend on it). */
  const value = (bytes: number): Buffer => {
    const b = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    return b;
  };

  const waitFor = async (what: string, cond: () => boolean): Promise<void> => {
    const deadline = sim.now + WAIT_LIMIT_MS;
    while (!cond()) {
      if (sim.now >= deadline) throw new Error(`${what}: not within ${WAIT_LIMIT_MS} virtual ms\n${sim.recentTrace().join('\n')}`);
      await sim.sleep(5);
    }
  };
  const leader = (): SimNode | undefined => sim.nodes.find((n) => n.server?.raft.status().role === 'leader');
  await waitFor('a leader', () => leader() !== undefined);

  /** Bytes of entry data of the test's puts, by log index (the only entries after the election's). */
  const entryBytes = new Map<number, number>();
  let seq = 0;
  /** Puts through the leader's client API and waits until every node has applied it; returns its index. */
  const put = async (key: string, v: Buffer): Promise<number> => {
    const node = leader()!;
    seq++;
    let answer: { error: unknown } | undefined;
    node.server!.service.put(
      { session: { clientId: CLIENT_ID, seq, firstIncomplete: seq }, key: Buffer.from(key), value: v, expected: Buffer.alloc(0) },
      (error) => (answer = { error }),
    );
    // Proposed at once (no write waits here): the leader's last entry is this put.
    const index = node.server!.raft.status().lastIndex;
    entryBytes.set(index, COMMAND_HEADER_BYTES + key.length + v.length);
    await waitFor(`put ${key}`, () => answer !== undefined);
    if (answer!.error) throw new Error(`put ${key} refused: ${JSON.stringify(answer!.error)}`);
    await waitFor(`put ${key} applied everywhere`, () => sim.nodes.every((n) => n.server!.store.appliedIndex >= index));
    return index;
  };
  const snapshotIndex = (n: SimNode): number => n.server!.service.statusNow().snapshotIndex;
  /** The node's snapshot file (the Snapshotter keeps one): its size is what lastSnapshotBytes reports. */
  const snapshotBytes = (n: SimNode): number => {
    const names = n.disk.files.list(SNAPSHOT_DIR).filter((f) => f.endsWith('.snap'));
    expect(names).toHaveLength(1);
    return n.disk.files.peek(`${SNAPSHOT_DIR}/${names[0]}`)!.length;
  };
  /** Bytes of entry data in (from, to]. */
  const bytesBetween = (from: number, to: number): number => {
    let sum = 0;
    for (const [i, b] of entryBytes) if (i > from && i <= to) sum += b;
    return sum;
  };

  // A large state in fewer entries than the threshold, then small puts up to the threshold: the
  // first snapshot is due by count alone (no snapshot yet, so no floor) and holds the large state.
  for (let i = 0; i < BIG_KEYS; i++) await put(`big-${i}`, value(BIG_VALUE_BYTES));
  let last = 0;
  for (let i = 0; leader()!.server!.raft.status().lastIndex < THRESHOLD; i++) last = await put(`small-${i}`, value(100));
  await waitFor('the first snapshot on every node', () => sim.nodes.every((n) => n.snapshotsTaken === 1));
  const first = new Map(sim.nodes.map((n) => [n, { index: snapshotIndex(n), bytes: snapshotBytes(n), floor: SNAPSHOT_LOG_PER_STATE_BYTE * snapshotBytes(n) }]));
  for (const f of first.values()) expect(f.bytes).toBeGreaterThan(BIG_KEYS * BIG_VALUE_BYTES);

  // Three thresholds' worth of small puts: due by count three times over, but far fewer bytes
  // than the floor. No node may take another.
  for (let i = 0; i < 3 * THRESHOLD; i++) last = await put(`small-after-${i}`, value(100));
  await sim.sleep(500);
  for (const n of sim.nodes) {
    const f = first.get(n)!;
    expect(last - f.index).toBeGreaterThanOrEqual(3 * THRESHOLD - 1);
    expect(bytesBetween(f.index, last)).toBeLessThan(f.floor / 4);
    expect(n.snapshotsTaken, `n${n.id} took a snapshot after ${last - f.index} entries of ${bytesBetween(f.index, last)} bytes, below the floor of ${f.floor} (its last snapshot: ${f.bytes})`).toBe(1);
  }

  // Larger puts until every node's log since its snapshot reaches the floor: then each takes one
  // more, not before.
  const reached = (): boolean => sim.nodes.every((n) => bytesBetween(first.get(n)!.index, last) >= first.get(n)!.floor);
  for (let i = 0; !reached(); i++) {
    last = await put(`medium-${i}`, value(2048));
    for (const n of sim.nodes) {
      const f = first.get(n)!;
      if (n.snapshotsTaken > 1) expect(bytesBetween(f.index, snapshotIndex(n)), `n${n.id}'s second snapshot came early`).toBeGreaterThanOrEqual(f.floor);
    }
  }
  await waitFor('a second snapshot on every node, once the log since the first reaches the floor', () => sim.nodes.every((n) => n.snapshotsTaken === 2));
  for (const n of sim.nodes) {
    const f = first.get(n)!;
    expect(bytesBetween(f.index, snapshotIndex(n))).toBeGreaterThanOrEqual(f.floor);
  }
});
