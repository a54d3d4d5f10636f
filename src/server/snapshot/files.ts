import type { Slicer } from '../../clock.js';
import type { FileSystem } from '../../files.js';
import type { SnapshotMeta } from '../../raft/core/types.js';
import type { CapturedState } from '../state-machine.js';
import { decodeSnapshot } from './decode.js';
import { encodeBody, header } from './encode.js';
import { DEFAULT_KEEP_SNAPSHOTS, SNAPSHOT_HEADER_BYTES, SnapshotError, type DecodedSnapshot, type SnapshotIds } from './format.js';

/**
 * Snapshot files in a directory of their own: `snap-<index, 20 digits>-<term>.snap`, written as a
 * temp file, fsynced, renamed into place, the directory fsynced. A file under its final name is
 * therefore complete on disk whatever happens to the machine: a reader that finds it damaged is
 * looking at a disk fault, not at a crash.
 */

const SNAP_NAME = /^snap-(\d{20})-(\d+)\.snap$/;
const TEMP_NAME = /^snap-.*\.tmp$/;

export function snapshotFileName(meta: SnapshotMeta): string {
  return `snap-${String(meta.index).padStart(20, '0')}-${meta.term}.snap`;
}

/** The snapshot files in `dir`, newest (highest index, then term) first. */
export async function listSnapshots(fs: FileSystem, dir: string): Promise<{ path: string; index: number; term: number }[]> {
  const out: { path: string; index: number; term: number }[] = [];
  for (const name of await fs.list(dir)) {
    const m = SNAP_NAME.exec(name);
    if (m) out.push({ path: `${dir}/${name}`, index: Number(m[1]), term: Number(m[2]) });
  }
  return out.sort((a, b) => b.index - a.index || b.term - a.term);
}

export interface WriteSnapshotOptions {
  /** How many snapshot files to keep, the new one included (default DEFAULT_KEEP_SNAPSHOTS). */
  keep?: number;
}

/**
 * Writes `state` as of `meta` to `dir` durably: a temp file, fsynced, renamed to
 * snapshotFileName(meta), the directory fsynced; then deletes all but the newest `keep`
 * snapshot files and any temp files left by a crash. Serializes in time slices, so the node
 * keeps serving; `state` must be a capture (it is read across many turns of the event loop).
 * Only one write may run at a time per directory (the Snapshotter takes one snapshot at a time).
 */
export async function writeSnapshot(
  fs: FileSystem,
  dir: string,
  meta: SnapshotMeta,
  state: CapturedState,
  ids: SnapshotIds,
  slicer: Slicer,
  options: WriteSnapshotOptions = {},
): Promise<{ path: string; bytes: number }> {
  const keep = options.keep ?? DEFAULT_KEEP_SNAPSHOTS;
  if (!Number.isSafeInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${String(keep)}`);
  await fs.mkdir(dir);
  const name = snapshotFileName(meta);
  const path = `${dir}/${name}`;
  const temp = `${path}.tmp`;
  await fs.remove(temp); // a leftover of a crash mid-write of this very snapshot
  let bytes: number;
  try {
    const file = await fs.create(temp);
    try {
      let at = SNAPSHOT_HEADER_BYTES;
      // One write in flight while the next chunk is encoded (two chunk buffers in turn).
      let inFlight: Promise<void> = Promise.resolve();
      const sink = async (chunk: Uint8Array): Promise<void> => {
        const pos = at;
        at += chunk.length;
        await inFlight;
        inFlight = file.write(chunk, pos);
        inFlight.catch(() => undefined); // seen by the next await of it, not unhandled meanwhile
      };
      const body = await encodeBody(meta, state, ids, sink, { buffers: 2, slicer }).finally(() => inFlight);
      await inFlight;
      await file.write(header(body.length, body.crc), 0);
      // The contents must be on disk before the name is: a rename that reaches the disk first
      // would leave a damaged file under the final name after a power loss.
      await file.sync();
      bytes = SNAPSHOT_HEADER_BYTES + body.length;
    } finally {
      await file.close();
    }
    await fs.rename(temp, path);
  } catch (e) {
    await fs.remove(temp).catch(() => undefined);
    throw e;
  }
  await fs.syncDir(dir);
  for (const old of (await listSnapshots(fs, dir)).slice(keep)) if (old.path !== path) await fs.remove(old.path);
  await removeLeftoverTemps(fs, dir);
  return { path, bytes };
}

/**
 * Removes the temp files of snapshot writes that did not finish (a crash mid-write). They are
 * never read, so only a start that goes ahead removes them, and every write.
 */
export async function removeLeftoverTemps(fs: FileSystem, dir: string, warn?: (message: string) => void): Promise<void> {
  for (const name of await fs.list(dir)) {
    if (!TEMP_NAME.test(name)) continue;
    await fs.remove(`${dir}/${name}`);
    warn?.(`snapshot: removed ${dir}/${name}, left by a snapshot write that did not finish`);
  }
}

export interface ReadSnapshotOptions {
  /** Receives a line for each snapshot file skipped (and why). */
  onWarning: (message: string) => void;
}

/**
 * The newest snapshot in `dir` that verifies, or undefined if there is none. Only reads: a damaged
 * or truncated file is skipped with a warning and left where it is (for inspection; a later write
 * of a newer snapshot deletes it with the other old ones), and the next older one is tried: never
 * wrong data. Temp files are not snapshots and are ignored (removeLeftoverTemps() removes them).
 * Undefined after skipping files means the state is not recoverable from here: the caller must
 * check its log still starts at index 1 before replaying it, and otherwise needs a snapshot from
 * the leader; likewise, after a fallback, its log must continue right after the returned
 * snapshot's index.
 * Throws SnapshotError for a snapshot of another cluster or node (WRONG_CLUSTER, WRONG_NODE),
 * of another format version (VERSION), or a file that cannot be read (IO).
 */
export async function readLatestSnapshot(
  fs: FileSystem,
  dir: string,
  ids: SnapshotIds,
  options: ReadSnapshotOptions,
): Promise<(DecodedSnapshot & { path: string }) | undefined> {
  const warn = options.onWarning;
  for (const f of await listSnapshots(fs, dir)) {
    let bytes: Uint8Array;
    try {
      bytes = await fs.read(f.path);
    } catch (e) {
      throw new SnapshotError('IO', `cannot read snapshot ${f.path}: ${(e as Error).message}`, f.path, { cause: e });
    }
    let decoded: DecodedSnapshot;
    try {
      decoded = decodeSnapshot(bytes, ids);
      if (decoded.meta.index !== f.index || decoded.meta.term !== f.term) {
        throw new SnapshotError(
          'CORRUPT',
          `it holds the state at index ${decoded.meta.index}, term ${decoded.meta.term}, which its name does not say`,
        );
      }
    } catch (e) {
      if (!(e instanceof SnapshotError)) throw e;
      if (e.code !== 'CORRUPT') throw new SnapshotError(e.code, `${f.path}: ${e.message}`, f.path, { cause: e });
      warn(`snapshot: skipping ${f.path}: ${e.message}; left as it is; trying an older snapshot`);
      continue;
    }
    return { ...decoded, path: f.path };
  }
  return undefined;
}
