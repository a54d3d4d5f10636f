import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { nodeFileSystem, type FileSystem } from '../files.js';
import type { SnapshotMeta } from '../raft/core/types.js';
import { forkCluster, type Fork, type ForkResult, type ForkView } from '../raft/storage/sqlite-fork.js';
import { SqliteStorage } from '../raft/storage/sqlite.js';
import type { Storage } from '../raft/storage/storage.js';
import { SNAPSHOT_DIR } from './snapshotter.js';

/**
 * Where a node keeps its state, injected: a data dir on the real disk in kv-server, a disk that
 * loses unsynced writes at a crash in the simulator.
 */
export interface Disk {
  /**
   * Checks the node's Raft log and stable store without changing anything (a throw refuses the
   * start, and leaves the disk as it was) and tells what a start must know before it writes.
   */
  checkLog(ids: LogIds): LogToOpen;
  /** The node's files (its snapshots), relative to the data dir. */
  readonly files: FileSystem;
  /**
   * The backup kv-server --restore names (a path anywhere, not in the data dir), read whole: a
   * regular file of at most `maxBytes`, refused before it is read otherwise. Throws an Error that
   * names the file and says what is wrong. A disk without it cannot restore.
   */
  readBackup?(path: string, maxBytes: number): Promise<Uint8Array>;
  /**
   * kv-server --force-new-cluster: forks node `nodeId`'s log into a new cluster, in one durable
   * step: `decide` sees the log and returns what to append (a conf entry) and the new cluster id,
   * or undefined for nothing (see raft/storage/sqlite-fork.ts). A disk without it cannot fork.
   */
  forkCluster?(nodeId: number, decide: (view: ForkView) => Fork | undefined): ForkResult;
}

/** Whose log it must be. */
export interface LogIds {
  clusterId: string;
  nodeId: number;
  /**
   * A log of another cluster is taken (its id is LogToOpen.clusterId): kv-server was not given a
   * cluster id, and the one the data dir holds is authoritative. `clusterId` may then be "" (not
   * known yet), which a fresh log cannot be created with.
   */
  adoptStoredClusterId?: boolean;
}

/** A log that passed its checks, not yet opened for writing. */
export interface LogToOpen {
  /** There is no log yet: open() creates it. */
  readonly fresh: boolean;
  /** The cluster the log belongs to, when the disk knows (absent: the one asked for). */
  readonly clusterId?: string;
  /** The snapshot the log was compacted into: a snapshot file must cover it. */
  readonly snapshot: SnapshotMeta | undefined;
  /** The clusters the log was forked from (--force-new-cluster): snapshot files written under them are this node's too. */
  readonly formerClusterIds?: readonly string[];
  /** Opens the log for writing (creating it if fresh). Throws if that fails. */
  open(): Storage;
}

export const DB_FILE = 'raft.db';

/** A data dir on the real disk: `raft.db` (SQLite) and `snap/`. */
export function dataDirDisk(dataDir: string, opts: { unsafeNoFsync: boolean }): Disk {
  return {
    files: nodeFileSystem(dataDir),
    forkCluster: (nodeId, decide) => forkCluster(nodePath.join(dataDir, DB_FILE), nodeId, decide),
    async readBackup(path, maxBytes) {
      const st = await fs.promises.stat(path).catch((e: NodeJS.ErrnoException) => {
        throw new Error(`--restore ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
      });
      if (!st.isFile()) throw new Error(`--restore ${path} is not a regular file`);
      if (st.size > maxBytes) throw new Error(`--restore ${path} is ${st.size} bytes, over the ${maxBytes}-byte limit of a backup: it is not one (or not whole)`);
      const bytes = await fs.promises.readFile(path).catch((e: Error) => {
        throw new Error(`--restore ${path}: cannot read it: ${e.message}`);
      });
      if (bytes.length > maxBytes) throw new Error(`--restore ${path} grew past the ${maxBytes}-byte limit while it was read`);
      return bytes;
    },
    checkLog(ids) {
      const path = nodePath.join(dataDir, DB_FILE);
      if (!fs.existsSync(path) && fs.existsSync(dataDir)) {
        const others = fs.readdirSync(dataDir).filter((f) => !f.startsWith(DB_FILE) && f !== SNAPSHOT_DIR);
        if (others.length > 0) {
          throw new Error(
            `${dataDir} is not empty but has no ${DB_FILE} (found ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}): ` +
              'refusing to start a new node in a directory that holds something else. Point --data-dir at an empty or new directory.',
          );
        }
      }
      const log = SqliteStorage.check(path, { ...ids, create: true, unsafeNoFsync: opts.unsafeNoFsync });
      return {
        fresh: log.fresh,
        clusterId: log.clusterId,
        snapshot: log.snapshot,
        formerClusterIds: log.formerClusterIds,
        open() {
          fs.mkdirSync(dataDir, { recursive: true });
          return log.open();
        },
      };
    },
  };
}
