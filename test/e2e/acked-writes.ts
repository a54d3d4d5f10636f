/**
 * Acknowledged writes, for the crash tests: a writer that keeps puts in flight, each to a new key,
 * and records which ones the cluster acknowledged; then the places where every one of them must
 * still be. Through the cluster: each reads back with its value. On disk: what a stopped node left
 * in its data dir, read straight from its SQLite log and newest snapshot, must hold every
 * acknowledged write, and committed entries must agree across nodes (State Machine Safety, on
 * disk). A put of key `k` writes the value valueFor(k), so that a snapshot holding it can be told
 * from the key alone.
 */
import { KvClient } from '../../src/index.js';
import type { Entry } from '../../src/raft/core/types.js';
import { decodeCommand } from '../../src/server/command.js';
import { readDataDir } from './on-disk.js';
import { type Cluster, waitFor } from './cluster.js';

/** The value a writer puts under `key`. */
export const valueFor = (key: string): string => `v-${key}`;

/** `inFlight` puts at all times, each to a new key k0, k1, ... with valueFor(key), until stop(). */
export class AckedWriter {
  /** The keys whose put was acknowledged, in the order of the acknowledgements. */
  readonly acked: string[] = [];
  /** Puts whose outcome is unknown (the client gave up): neither required nor forbidden afterwards. */
  failed = 0;
  private next = 0;
  private stopping = false;
  private client: KvClient;
  /** Every client made, the current one last: those retired still finish their puts in flight. */
  private readonly clients: KvClient[] = [];
  private readonly loops: Promise<void>[];

  constructor(
    endpoints: string[],
    inFlight: number,
    private readonly timeoutMs = 20_000,
  ) {
    this.client = this.newClient(endpoints);
    this.loops = Array.from({ length: inFlight }, () => this.loop());
  }

  /** Puts from now on go to `endpoints` (the cluster's members changed). */
  retarget(endpoints: string[]): void {
    this.client = this.newClient(endpoints);
  }

  private newClient(endpoints: string[]): KvClient {
    const c = new KvClient({ endpoints, timeoutMs: this.timeoutMs });
    this.clients.push(c);
    return c;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const key = `k${this.next++}`;
      try {
        await this.client.put(key, valueFor(key));
        this.acked.push(key);
      } catch {
        this.failed++;
      }
    }
  }

  /** Lets the puts in flight finish (or give up), then closes the client. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
  }

  /** Stops at once (after a failure): the puts in flight fail and count as given up. */
  close(): void {
    this.stopping = true;
    for (const c of this.clients) c.close();
  }
}

/** The keys that do not read back as valueFor(key) through `client` (64 reads in flight). */
export async function unreadable(client: KvClient, keys: readonly string[]): Promise<string[]> {
  const wrong: string[] = [];
  for (let i = 0; i < keys.length; i += 64) {
    const batch = keys.slice(i, i + 64);
    const values = await Promise.all(batch.map((k) => client.get(k)));
    batch.forEach((k, j) => {
      if (values[j] !== valueFor(k)) wrong.push(k);
    });
  }
  return wrong;
}

/** The cluster's id, as a node reports it: the data files are opened with it. */
export function clusterIdOf(c: Cluster): Promise<string> {
  return waitFor('a node to report the cluster id', async () => {
    const row = (await c.status()).find((r) => r.ok);
    return row?.ok ? row.status.clusterId : undefined;
  });
}

export interface DurableState {
  id: number;
  /** Committed log entries by index (those at or below the persisted commit index). */
  committed: Map<number, Entry>;
  /** The newest snapshot's index, 0 without one. */
  snapshotIndex: number;
  snapshotState: Map<string, string>;
  /** The first index in the log (commit + 1 when the log is empty). */
  firstLogIndex: number;
  /** The keys put by a committed entry, or in the snapshot with the value valueFor(key). */
  keys: Set<string>;
  /** Snapshot files found damaged (a crash must never leave one). */
  damaged: string[];
}

/** Reads a stopped node's data dir (raft.db and snap/). */
export async function readDurableState(id: number, dataDir: string, clusterId: string): Promise<DurableState> {
  const { persisted, snapshot: snap, damaged } = await readDataDir(dataDir, id, clusterId);
  const { hardState, entries } = persisted;
  const snapshotState = new Map<string, string>();
  snap?.state.keys.forEach((k, i) => snapshotState.set(Buffer.from(k, 'latin1').toString(), Buffer.from(snap.state.values[i]!, 'latin1').toString()));
  const committed = new Map(entries.filter((e) => e.index <= hardState.commit).map((e) => [e.index, e]));
  const keys = new Set<string>();
  for (const e of committed.values()) if (e.type === 'normal') keys.add(new TextDecoder().decode(decodeCommand(e.data).key));
  for (const [k, v] of snapshotState) if (v === valueFor(k)) keys.add(k);
  return { id, committed, snapshotIndex: snap?.meta.index ?? 0, snapshotState, firstLogIndex: entries[0]?.index ?? hardState.commit + 1, keys, damaged };
}

/**
 * Everything wrong with a set of nodes' durable states, one line each: a gap between a snapshot
 * and the log after it, two nodes that hold different entries at one committed index, an
 * acknowledged key that a node holds neither in its committed log nor (with its value) in its
 * snapshot, a damaged snapshot file. Empty when all is well.
 */
export function durabilityViolations(nodes: DurableState[], acked: Iterable<string>): string[] {
  const problems: string[] = [];
  for (const n of nodes) {
    for (const w of n.damaged) problems.push(`node ${n.id}: ${w}`);
    if (n.firstLogIndex > n.snapshotIndex + 1) {
      problems.push(`node ${n.id}: its log starts at ${n.firstLogIndex}, after its snapshot at ${n.snapshotIndex}`);
    }
  }
  for (const a of nodes) {
    for (const b of nodes) {
      if (b.id <= a.id) continue;
      const differ = [...a.committed].filter(([index, e]) => {
        const other = b.committed.get(index);
        return other !== undefined && !sameEntry(e, other);
      });
      if (differ.length > 0) {
        problems.push(`node ${a.id} and node ${b.id} disagree at ${differ.length} committed index(es): ${firstFew(differ.map(([index]) => index))}`);
      }
    }
  }
  const ackedKeys = [...acked];
  for (const n of nodes) {
    const lost = ackedKeys.filter((k) => !n.keys.has(k));
    if (lost.length > 0) {
      problems.push(`node ${n.id} lost ${lost.length} acknowledged write(s): ${firstFew(lost)}`);
    }
  }
  return problems;
}

/** The acknowledged keys that no node holds durably (the writes the cluster as a whole lost). */
export function lostEverywhere(nodes: DurableState[], acked: Iterable<string>): string[] {
  return [...acked].filter((k) => !nodes.some((n) => n.keys.has(k)));
}

const firstFew = (items: readonly (string | number)[]): string => items.slice(0, 10).join(', ') + (items.length > 10 ? ', ...' : '');

function sameEntry(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.type === b.type && Buffer.from(a.data).equals(b.data);
}
