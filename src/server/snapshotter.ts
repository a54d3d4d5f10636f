import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { SnapshotMeta } from '../raft/core/types.js';
import type { SnapshotStore } from '../raft/node.js';
import type { Storage } from '../raft/storage/storage.js';
import type { KvSnapshot, KvStore } from './kv-store.js';
import { decodeSnapshotAsync, readLatestSnapshot, snapshotFileName, writeSnapshot, type SnapshotIds } from './snapshot.js';

/** Default --snapshot-threshold: log entries applied since the last snapshot before the next. */
export const DEFAULT_SNAPSHOT_THRESHOLD = 10_000;
/** Default log entries kept behind a snapshot, so a follower a little behind catches up from the log. */
export const DEFAULT_SNAPSHOT_RETAIN = 1_000;

export interface SnapshotterOptions {
  /** The directory of snapshot files (nothing else may be kept there). */
  dir: string;
  ids: SnapshotIds;
  store: KvStore;
  /** Entries applied since the last snapshot that trigger the next; 0 = only on demand. */
  threshold: number;
  retain: number;
  log: (line: string) => void;
}

/** What compacting the node's log takes: RaftNode.compact. */
export type Compact = (snapshot: SnapshotMeta, retain: number) => boolean;

/**
 * kv-server's snapshots: takes them (every `threshold` applied entries, or on demand), writes
 * them as files, compacts the Raft log once a file is durable, serves them to lagging followers
 * and installs the leader's. The store is captured in one synchronous step; serializing and
 * writing happen in time slices while the node keeps serving.
 */
export class Snapshotter implements SnapshotStore {
  private taking: Promise<SnapshotMeta> | undefined;
  private lastIndex = 0;
  private compact: Compact | undefined;

  constructor(private readonly opts: SnapshotterOptions) {}

  /**
   * At startup, before the node: restores the store from the newest valid snapshot file and
   * makes the log agree with it. A crash between writing a snapshot file and recording it in the
   * log leaves the file ahead of the log; the file holds committed state only, so it wins.
   * Throws if the log was compacted past every valid snapshot file: this node's state is gone
   * and it must rejoin empty (README: "Replacing a node's data").
   */
  restore(storage: Storage): void {
    const { dir, ids, store } = this.opts;
    const persisted = storage.load();
    const recorded = persisted.snapshot;
    const file = readLatestSnapshot(dir, ids, { onWarning: this.opts.log });
    const fileIndex = file?.meta.index ?? 0;
    if (recorded && fileIndex < recorded.index) {
      throw new Error(
        `the log was compacted up to entry ${recorded.index}, but ${file ? `the newest valid snapshot in ${dir} is at ${fileIndex}` : `${dir} holds no valid snapshot`}: ` +
          'this data directory cannot be recovered; wipe it and let the node rejoin (README: "Replacing a node\'s data")',
      );
    }
    if (!file) return;
    const meta: SnapshotMeta = { index: file.meta.index, term: file.meta.term };
    if (!recorded || meta.index > recorded.index) {
      const first = persisted.entries[0]?.index ?? Infinity;
      const matching = persisted.entries[meta.index - first];
      if (matching?.term === meta.term) storage.compact(meta, 0);
      else storage.installSnapshot(meta);
      this.opts.log(`snapshot: the log now starts after snapshot ${meta.index}, written before a restart`);
    }
    store.restore({ meta, state: file.state });
    this.lastIndex = meta.index;
  }

  /** Connects the node's log, once the node exists. */
  attach(compact: Compact): void {
    this.compact = compact;
  }

  /** Called after entries are applied: starts a snapshot when the threshold is reached. */
  maybeSnapshot(): void {
    const { threshold, store } = this.opts;
    if (threshold > 0 && !this.taking && store.appliedIndex - this.lastIndex >= threshold) {
      this.take().catch((e: unknown) => this.opts.log(`snapshot failed: ${(e as Error).message}`));
    }
  }

  /** Takes a snapshot now (or joins the one being taken); resolves with what it covers. */
  take(): Promise<SnapshotMeta> {
    this.taking ??= this.write(this.opts.store.capture(), true).finally(() => (this.taking = undefined));
    return this.taking;
  }

  /** The latest snapshot's index, 0 if none. */
  get index(): number {
    return this.lastIndex;
  }

  // ---- SnapshotStore ------------------------------------------------------------------------

  read(meta: SnapshotMeta): Promise<Uint8Array> {
    // The file may have been replaced by a newer one meanwhile: the transfer fails and the
    // leader sends its latest instead.
    return fsp.readFile(nodePath.join(this.opts.dir, snapshotFileName(meta)));
  }

  async install(meta: SnapshotMeta, data: Uint8Array): Promise<void> {
    // Written by the leader: check the cluster, not the node.
    const decoded = await decodeSnapshotAsync(data, { clusterId: this.opts.ids.clusterId }, { inPlace: true });
    if (decoded.meta.index !== meta.index || decoded.meta.term !== meta.term) {
      throw new Error(`snapshot from the leader holds ${decoded.meta.index}/${decoded.meta.term}, not ${meta.index}/${meta.term}`);
    }
    const snap = { meta, state: decoded.state };
    await this.write(snap, false);
    this.opts.store.restore(snap);
  }

  /** The file first (durable), then the log may forget what the file covers. */
  private async write(snap: KvSnapshot, compact: boolean): Promise<SnapshotMeta> {
    const { meta, state } = snap;
    const started = performance.now();
    const { bytes } = await writeSnapshot(this.opts.dir, meta, state, this.opts.ids, { keep: 1 });
    if (meta.index > this.lastIndex) this.lastIndex = meta.index;
    if (compact) this.compact?.(meta, this.opts.retain);
    this.opts.log(
      `snapshot ${meta.index} (term ${meta.term}): ${state.keys.length} keys, ${bytes} bytes, ${(performance.now() - started).toFixed(0)} ms`,
    );
    return meta;
  }
}
