import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';

/**
 * The file operations a node's snapshots need, with the durability points made explicit: a write
 * is durable once its file is synced, and a creation, rename or removal once its directory is.
 * kv-server uses the real file system; the simulator uses a disk that loses whatever was not
 * synced when it "loses power", so a missing fsync fails a test instead of a production restart.
 * Paths are relative to the node's data dir ('/'-separated).
 */
export interface FileSystem {
  /** Creates the directory (and its parents) if it is missing. */
  mkdir(dir: string): Promise<void>;
  /** The names in a directory; empty if it does not exist. */
  list(dir: string): Promise<string[]>;
  read(path: string): Promise<Uint8Array>;
  /** Creates a new, empty file for writing; fails if the path exists. */
  create(path: string): Promise<WritableFile>;
  /** Atomically replaces `to` (if it exists) by `from`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; nothing happens if it is missing. */
  remove(path: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  syncDir(dir: string): Promise<void>;
}

export interface WritableFile {
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Makes everything written so far durable (fsync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The real file system, below `root`. */
export function nodeFileSystem(root: string): FileSystem {
  const at = (p: string): string => nodePath.join(root, p);
  return {
    mkdir: async (dir) => void (await fsp.mkdir(at(dir), { recursive: true })),
    async list(dir) {
      try {
        return await fsp.readdir(at(dir));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
    },
    read: (path) => fsp.readFile(at(path)),
    async create(path) {
      const fh = await fsp.open(at(path), 'wx');
      return {
        async write(data, position) {
          for (let done = 0; done < data.length; ) {
            const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
            done += bytesWritten;
          }
        },
        sync: () => fh.sync(),
        close: () => fh.close(),
      };
    },
    rename: (from, to) => fsp.rename(at(from), at(to)),
    remove: (path) => fsp.rm(at(path), { force: true }),
    async syncDir(dir) {
      let fh: fsp.FileHandle | undefined;
      try {
        fh = await fsp.open(at(dir), 'r');
        await fh.sync();
      } catch (e) {
        // Some platforms cannot open or fsync a directory; there the rename is as durable as it gets.
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES') throw e;
      } finally {
        await fh?.close();
      }
    },
  };
}
