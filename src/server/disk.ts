import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { nodeFileSystem, type FileSystem } from '../files.js';
import { SqliteStorage } from '../raft/storage/sqlite.js';
import type { Storage } from '../raft/storage/storage.js';
import { SNAPSHOT_DIR } from './snapshotter.js';

/**
 * Where a node keeps its state, injected: a data dir on the real disk in kv-server, a disk that
 * loses unsynced writes at a crash in the simulator.
 */
export interface Disk {
  /** Opens the node's Raft log and stable store, creating it on first start. Throws if it is refused. */
  openLog(ids: { clusterId: string; nodeId: number }): { storage: Storage; created: boolean };
  /** The node's files (its snapshots), relative to the data dir. */
  readonly files: FileSystem;
}

export const DB_FILE = 'raft.db';

/** A data dir on the real disk: `raft.db` (SQLite) and `snap/`. */
export function dataDirDisk(dataDir: string, opts: { unsafeNoFsync: boolean }): Disk {
  return {
    files: nodeFileSystem(dataDir),
    openLog(ids) {
      const path = nodePath.join(dataDir, DB_FILE);
      const created = !fs.existsSync(path);
      if (created && fs.existsSync(dataDir)) {
        const others = fs.readdirSync(dataDir).filter((f) => !f.startsWith(DB_FILE) && f !== SNAPSHOT_DIR);
        if (others.length > 0) {
          throw new Error(
            `${dataDir} is not empty but has no ${DB_FILE} (found ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}): ` +
              'refusing to start a new node in a directory that holds something else. Point --data-dir at an empty or new directory.',
          );
        }
      }
      fs.mkdirSync(dataDir, { recursive: true });
      const storage = SqliteStorage.open(path, { ...ids, create: true, unsafeNoFsync: opts.unsafeNoFsync });
      return { storage, created };
    },
  };
}
