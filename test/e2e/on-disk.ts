/**
 * A stopped node's data dir, read directly (not through the node, so that a check does not trust
 * what it checks): its log and stable state, and its newest snapshot. replayDataDir() goes on to
 * the key-value state it holds: the snapshot with the committed entries after it applied by the
 * real state machine (sessions included, so a retried write counts once, as it did in the node).
 */
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/files.js';
import type { PersistedState } from '../../src/raft/storage/storage.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { decodeCommand } from '../../src/server/command.js';
import type { DecodedSnapshot } from '../../src/server/snapshot/format.js';
import { readLatestSnapshot } from '../../src/server/snapshot/files.js';
import { KvStateMachine } from '../../src/server/state-machine.js';

export interface DataDir {
  persisted: PersistedState;
  snapshot: DecodedSnapshot | undefined;
  /** Snapshot files found damaged (a crash must never leave one). */
  damaged: string[];
}

export async function readDataDir(dataDir: string, nodeId: number, clusterId: string): Promise<DataDir> {
  const storage = SqliteStorage.open(path.join(dataDir, 'raft.db'), { clusterId, nodeId, create: false });
  let persisted;
  try {
    persisted = storage.load();
  } finally {
    storage.close();
  }
  const damaged: string[] = [];
  const onWarning = (m: string): void => void (/skipping/.test(m) && damaged.push(m));
  const snapshot = await readLatestSnapshot(nodeFileSystem(dataDir), 'snap', { clusterId, nodeId }, { onWarning });
  return { persisted, snapshot, damaged };
}

export interface DiskState {
  readonly commit: number;
  readonly snapshotIndex: number;
  /** Committed entries replayed on top of the snapshot. */
  readonly replayed: number;
  readonly sm: KvStateMachine;
}

export async function replayDataDir(dataDir: string, nodeId: number, clusterId: string): Promise<DiskState> {
  const { persisted, snapshot: snap, damaged } = await readDataDir(dataDir, nodeId, clusterId);
  if (damaged.length > 0) throw new Error(`node ${nodeId}: ${damaged.join('; ')}`);
  const commit = persisted.hardState.commit;
  const snapshotIndex = snap?.meta.index ?? 0;
  const sm = snap ? KvStateMachine.restore(snap.state) : new KvStateMachine();
  const first = persisted.entries[0]?.index ?? commit + 1;
  if (first > snapshotIndex + 1 && commit > snapshotIndex) {
    throw new Error(`node ${nodeId}: its log starts at ${first}, after its snapshot at ${snapshotIndex}: entries are missing`);
  }
  let replayed = 0;
  for (const e of persisted.entries) {
    if (e.index <= snapshotIndex || e.index > commit) continue;
    if (e.type === 'normal') sm.apply(decodeCommand(e.data));
    replayed++;
  }
  return { commit, snapshotIndex, replayed, sm };
}

/** The value of `key` in a replayed state, as text. */
export function diskValue(state: DiskState, key: string): string | undefined {
  const v = state.sm.get(new TextEncoder().encode(key));
  return v === undefined ? undefined : new TextDecoder().decode(v);
}
