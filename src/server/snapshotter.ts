import type { Clock } from '../clock.js';
import type { FileSystem } from '../files.js';
import type { ConfState } from '../raft/core/conf.js';
import type { SnapshotMeta } from '../raft/core/types.js';
import type { SnapshotStore } from '../raft/node.js';
import type { Storage } from '../raft/storage/storage.js';
import type { KvSnapshot, KvStore } from './kv-store.js';
import { decodeSnapshotAsync } from './snapshot/decode.js';
import { readLatestSnapshot, removeLeftoverTemps, snapshotFileName, writeSnapshot } from './snapshot/files.js';
import type { DecodedSnapshot, SnapshotIds } from './snapshot/format.js';

/** Default --snapshot-threshold: log entries applied since the last snapshot before the next. */
export const DEFAULT_SNAPSHOT_THRESHOLD = 10_000;
/** Default log entries kept behind a snapshot, so a follower a little behind catches up from the log. */
export const DEFAULT_SNAPSHOT_RETAIN = 1_000;
/** The directory of snapshot files, in the data dir. */
export const SNAPSHOT_DIR = 'snap';

/** A snapshot file read back at startup. */
export type SnapshotFile = DecodedSnapshot & { path: string };

export interface SnapshotterOptions {
  files: FileSystem;
  ids: SnapshotIds;
  store: KvStore;
  clock: Clock;
  /** Log entries kept behind a snapshot (--snapshot-retain), here when one is recorded at startup. */
  retain: number;
  log: (line: string) => void;
}

/**
 * kv-server's snapshots of its KvStore, as files in SNAPSHOT_DIR: takes them (the node decides
 * when), serves them to lagging followers and installs the leader's. The store is captured in one
 * synchronous step; serializing and writing happen in time slices while the node keeps serving.
 * One file is written at a time.
 */
export class Snapshotter implements SnapshotStore {
  /** The write in progress (or the last one): writes run one after another. */
  private writing: Promise<unknown> = Promise.resolve();
  private lastIndex = 0;
  /** Size of the latest snapshot file this process wrote (0: none yet), for raftkv_snapshot_size_bytes. */
  lastBytes = 0;

  constructor(private readonly opts: SnapshotterOptions) {}

  /**
   * At startup, before the log is opened for writing: the newest valid snapshot file. Only reads,
   * so a refusal leaves the data dir as it was. Throws if the log was compacted (up to `recorded`)
   * past every valid snapshot file: this node's state is gone, and it must be replaced by a new
   * member (README: "Replacing a node's data").
   */
  async latest(recorded: SnapshotMeta | undefined): Promise<SnapshotFile | undefined> {
    const { files, ids } = this.opts;
    const file = await readLatestSnapshot(files, SNAPSHOT_DIR, ids, { onWarning: this.opts.log });
    const fileIndex = file?.meta.index ?? 0;
    if (recorded && fileIndex < recorded.index) {
      throw new Error(
        `the log was compacted up to entry ${recorded.index}, but ${file ? `the newest valid snapshot in ${SNAPSHOT_DIR}/ is at ${fileIndex}` : `${SNAPSHOT_DIR}/ holds no valid snapshot`}: ` +
          'this data directory cannot be recovered: replace the node (remove it, add a new one; README: "Replacing a node\'s data"), ' +
          'or, if the cluster has lost its quorum, use kv-server --force-new-cluster on a surviving member or --restore from a backup (README: "Disaster recovery")',
      );
    }
    return file;
  }

  /**
   * Then, with the log open: restores the store from `file` (latest()'s) and makes the log agree
   * with it. A crash between writing a snapshot file and recording it in the log leaves the file
   * ahead of the log; the file holds committed state only, so it wins, its configuration with it
   * (a file without one, from before cluster membership, records none: the node then starts
   * from its --peers). Removes the temp files of a snapshot write that did not finish.
   */
  async restore(storage: Storage, file: SnapshotFile | undefined): Promise<void> {
    const { files, store } = this.opts;
    await removeLeftoverTemps(files, SNAPSHOT_DIR, this.opts.log);
    if (!file) return;
    const persisted = storage.load();
    const recorded = persisted.snapshot;
    const { index, term, conf } = file.meta;
    const meta: SnapshotMeta = conf ? { index, term, conf } : { index, term };
    if (!recorded || meta.index > recorded.index) {
      const first = persisted.entries[0]?.index ?? Infinity;
      const matching = persisted.entries[meta.index - first];
      if (matching?.term === meta.term) storage.compact(meta, Math.max(meta.index - this.opts.retain, 0));
      else storage.installSnapshot(meta);
      this.opts.log(`snapshot: the log now starts after snapshot ${meta.index}, written before a restart`);
      const hs = persisted.hardState;
      if (hs.term < meta.term) {
        // The node's term is behind its log's (a data dir kv-server --restore made holds term 0;
        // a crash may also fall between installing a leader's snapshot and saving the term that
        // came with it). It takes the snapshot's term, with no vote (as a message of that term
        // would bring it): a leader it elects must not append entries below its log's last term.
        storage.save({ term: meta.term, vote: 0, commit: hs.commit }, []);
        await storage.sync();
      }
    }
    store.restore({ meta, state: file.state });
    this.lastIndex = meta.index;
  }

  /** The latest snapshot's index, 0 if none. */
  get index(): number {
    return this.lastIndex;
  }

  // ---- SnapshotStore ------------------------------------------------------------------------

  take(confAt: (index: number) => ConfState): Promise<SnapshotMeta> {
    const { meta, state } = this.opts.store.capture();
    return this.write({ meta: { ...meta, conf: confAt(meta.index) }, state });
  }

  read(meta: SnapshotMeta): Promise<Uint8Array> {
    // The file may have been replaced by a newer one meanwhile: the transfer fails and the
    // leader sends its latest instead.
    return this.opts.files.read(`${SNAPSHOT_DIR}/${snapshotFileName(meta)}`);
  }

  async install(meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    // Written by the leader: check the cluster, not the node.
    const decoded = await decodeSnapshotAsync(data, { clusterId: this.opts.ids.clusterId }, this.opts.clock.slicer());
    if (decoded.meta.index !== meta.index || decoded.meta.term !== meta.term) {
      throw new Error(`snapshot from the leader holds ${decoded.meta.index}/${decoded.meta.term}, not ${meta.index}/${meta.term}`);
    }
    // The file we keep records meta.conf, the configuration the node adopted with this snapshot
    // (it came in the snap message), whatever the leader's file says.
    const snap = { meta, state: decoded.state };
    await this.write(snap);
    this.opts.store.restore(snap);
  }

  /** Makes `snap` durable as a file, after any write in progress. */
  private write(snap: KvSnapshot): Promise<SnapshotMeta> {
    const run = async (): Promise<SnapshotMeta> => {
      const { meta, state } = snap;
      // A newer snapshot (installed from the leader) became durable while this one waited.
      if (meta.index <= this.lastIndex) return meta;
      const { files, ids, clock } = this.opts;
      const started = clock.now();
      const { bytes } = await writeSnapshot(files, SNAPSHOT_DIR, meta, state, ids, clock.slicer(), { keep: 1 });
      this.lastIndex = meta.index;
      this.lastBytes = bytes;
      this.opts.log(
        `snapshot ${meta.index} (term ${meta.term}): ${state.keys.length} keys, ${bytes} bytes, ${(clock.now() - started).toFixed(0)} ms`,
      );
      return meta;
    };
    const done = this.writing.then(run, run);
    this.writing = done.catch(() => undefined);
    return done;
  }
}
