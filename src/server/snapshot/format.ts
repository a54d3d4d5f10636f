import type { SnapshotMeta } from '../../raft/core/types.js';
import type { CapturedState } from '../state-machine.js';

/**
 * KV state machine snapshots: a captured state (KvStateMachine.capture()) as bytes and as files.
 *
 * Layout: a 24-byte header (src/snapshot-header.ts: magic, format version, body length, the
 * body's CRC-32C and the header's own), then the body: a protobuf raftkv.snapshot.Snapshot
 * (proto/snapshot.proto).
 * The body is encoded here by hand, streaming and in time slices, so that serializing a large
 * state never holds the event loop for more than a few milliseconds at a time. The same bytes
 * are a snapshot file and what a leader streams to a follower.
 *
 * Files: `snap-<index, 20 digits>-<term>.snap` in a directory of their own (no other file there
 * may start with `snap-`), written as `<name>.<pid>-<n>.tmp`, fsynced, renamed, and the
 * directory fsynced; the newest `keep` are kept. A reader only reads: it takes the newest file
 * that verifies and skips damaged ones with a warning, leaving them in place for inspection (a
 * later write deletes them with the other old files). Temp files left by a crash are removed by
 * the next write, or by a start that goes ahead.
 *
 * Modules: format (this: layout, ids, errors), encode, decode, files.
 */

export { MAGIC, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_BYTES } from '../../snapshot-header.js';
/** How many snapshot files writeSnapshot keeps by default (the new one and the one before). */
export const DEFAULT_KEEP_SNAPSHOTS = 2;

/** Who a snapshot belongs to. */
export interface SnapshotIds {
  clusterId: string;
  nodeId: number;
  /**
   * Reading only: the clusters this node's log was forked from (--force-new-cluster), whose
   * snapshot files are accepted as its own until a snapshot of its new cluster replaces them.
   */
  formerClusterIds?: readonly string[];
}

/** What a snapshot says about itself (its `conf` included, when it has one). */
export interface SnapshotInfo extends SnapshotMeta {
  readonly formatVersion: number;
  readonly clusterId: string;
  /** The node that wrote it (for bytes from InstallSnapshot: the leader). */
  readonly nodeId: number;
}

export interface DecodedSnapshot {
  readonly meta: SnapshotInfo;
  /** For KvStateMachine.restore(). Values are views into one buffer owned by the snapshot. */
  readonly state: CapturedState;
}

export type SnapshotErrorCode =
  /** Damaged or truncated: the bytes are not what was written. */
  | 'CORRUPT'
  /** Written by a raftkv with another format version. */
  | 'VERSION'
  | 'WRONG_CLUSTER'
  | 'WRONG_NODE'
  | 'IO';

export class SnapshotError extends Error {
  override name = 'SnapshotError';
  constructor(
    readonly code: SnapshotErrorCode,
    message: string,
    /** The file concerned, when there is one. */
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

// Field tags of proto/snapshot.proto.
export const T_FORMAT_VERSION = 1;
export const T_CLUSTER_ID = 2;
export const T_NODE_ID = 3;
export const T_LAST_INDEX = 4;
export const T_LAST_TERM = 5;
export const T_CLOCK_MS = 6;
export const T_LAST_EXPIRY_MS = 7;
export const T_KEY_COUNT = 8;
export const T_SESSIONS = 9;
export const T_PAIRS = 10;
/** The configuration as of the snapshot (a ConfState); absent in files of builds before membership, which still load. */
export const T_CONF = 11;
/** The member table (members.ts): one Member per member, and the removed ids; absent in older files. */
export const T_MEMBERS = 12;
export const T_REMOVED_IDS = 13;
export const TAG_PAIRS = (T_PAIRS << 3) | 2;
export const TAG_KEY = (1 << 3) | 2;
export const TAG_VALUE = (2 << 3) | 2;

export const RESULT_KIND = { ok: 0, deleted: 1, cas: 2, sessionExpired: 3, tooLarge: 4 } as const;
export const KIND_OF = ['ok', 'deleted', 'cas', 'sessionExpired', 'tooLarge'] as const;
