/**
 * What a stopped node's data dir says its key-value state is: the newest snapshot, with the
 * committed log entries after it applied on top by the real state machine (sessions included, so
 * a retried write counts once, as it did in the node). Reads the files directly, not through the
 * node, so that the check does not trust what it checks.
 */
import * as path from 'node:path';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { decodeCommand } from '../../src/server/command.js';
import { readLatestSnapshot } from '../../src/server/snapshot.js';
import { KvStateMachine } from '../../src/server/state-machine.js';

export interface DiskState {
  readonly commit: number;
  readonly snapshotIndex: number;
  /** Committed entries replayed on top of the snapshot. */
  readonly replayed: number;
  readonly sm: KvStateMachine;
}

export function replayDataDir(dataDir: string, nodeId: number, clusterId: string): DiskState {
  const storage = SqliteStorage.open(path.join(dataDir, 'raft.db'), { clusterId, nodeId, create: false });
  let persisted;
  try {
    persisted = storage.load();
  } finally {
    storage.close();
  }
  const commit = persisted.hardState.commit;
  const snap = readLatestSnapshot(path.join(dataDir, 'snap'), { clusterId, nodeId });
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
