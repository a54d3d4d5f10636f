import type { FileSystem, WritableFile } from '../../src/files.js';
import type { Rng } from '../../src/raft/core/types.js';
import type { FlushScheduler } from './sim-log.js';

/** A file's contents: what the node sees, what is on the platter, and the writes in between. */
interface Inode {
  data: Uint8Array;
  durable: Uint8Array;
  unsynced: { position: number; bytes: Uint8Array }[];
}

type DirOp = { name: string; inode: Inode | undefined };

/** A directory: its entries as seen and as on the platter, and the changes in between, in order. */
interface Dir {
  live: Map<string, Inode>;
  durable: Map<string, Inode>;
  unsynced: DirOp[];
}

const EMPTY = new Uint8Array(0);

/**
 * The files of one node on a disk with a volatile tier, for the snapshot files. A write is durable
 * once its file is synced; a creation, rename or removal once its directory is. A power loss
 * keeps, of what was not synced, a prefix of each directory's changes (a journal commits them in
 * order) and any subset of each file's writes (the page cache writes pages back in any order), so
 * a file renamed into place before it was synced can come back under its final name torn or empty.
 */
export class SimFiles {
  private readonly dirs = new Map<string, Dir>();

  /** The file system as one incarnation sees it; it dies with the incarnation's scheduler. */
  mount(scheduler: FlushScheduler & { alive(): boolean }): FileSystem {
    const live = (): void => {
      if (!scheduler.alive()) throw new Error('the disk is gone (the node crashed)');
    };
    const synced = (fn: () => void): Promise<void> =>
      new Promise((resolve) => {
        live();
        scheduler.after(scheduler.latency(), () => {
          fn();
          resolve();
        });
      });
    return {
      mkdir: async (dir) => {
        live();
        this.dir(dir, true);
      },
      list: async (dir) => {
        live();
        return [...(this.dir(dir, false)?.live.keys() ?? [])];
      },
      read: async (path) => {
        live();
        const inode = this.lookup(path);
        if (!inode) throw enoent(path);
        return inode.data;
      },
      create: async (path) => {
        live();
        const [d, name] = this.parent(path);
        if (d.live.has(name)) throw Object.assign(new Error(`EEXIST: ${path}`), { code: 'EEXIST' });
        const inode: Inode = { data: EMPTY, durable: EMPTY, unsynced: [] };
        d.live.set(name, inode);
        d.unsynced.push({ name, inode });
        return this.writable(inode, live, synced);
      },
      rename: async (from, to) => {
        live();
        const [d, fromName] = this.parent(from);
        const [d2, toName] = this.parent(to);
        if (d !== d2) throw new Error(`rename across directories: ${from} -> ${to}`);
        const inode = d.live.get(fromName);
        if (!inode) throw enoent(from);
        d.live.delete(fromName);
        d.live.set(toName, inode);
        d.unsynced.push({ name: fromName, inode: undefined }, { name: toName, inode });
      },
      remove: async (path) => {
        live();
        const [d, name] = this.parent(path);
        if (!d.live.delete(name)) return;
        d.unsynced.push({ name, inode: undefined });
      },
      syncDir: (dir) =>
        synced(() => {
          const d = this.dir(dir, false);
          if (!d) return;
          d.durable = new Map(d.live);
          d.unsynced = [];
        }),
    };
  }

  /** The contents of a file as the node sees it now (for the simulator's checks). */
  peek(path: string): Uint8Array | undefined {
    return this.lookup(path)?.data;
  }

  list(dir: string): string[] {
    return [...(this.dir(dir, false)?.live.keys() ?? [])];
  }

  /** The machine goes down: see the class comment for what a power loss keeps. */
  crash(kind: 'process' | 'power', rng: Rng): void {
    for (const d of this.dirs.values()) {
      const keep = kind === 'process' ? d.unsynced.length : rng.int(d.unsynced.length + 1);
      for (const op of d.unsynced.slice(0, keep)) {
        if (op.inode) d.durable.set(op.name, op.inode);
        else d.durable.delete(op.name);
      }
      d.unsynced = [];
      d.live = new Map(d.durable);
      for (const inode of d.live.values()) {
        if (kind === 'process') inode.durable = inode.data;
        else for (const w of inode.unsynced) if (rng.int(2) === 0) inode.durable = writeAt(inode.durable, w.position, w.bytes);
        inode.unsynced = [];
        inode.data = inode.durable;
      }
    }
  }

  private writable(inode: Inode, live: () => void, synced: (fn: () => void) => Promise<void>): WritableFile {
    return {
      write: async (bytes, position) => {
        live();
        const copy = bytes.slice();
        inode.data = writeAt(inode.data, position, copy);
        inode.unsynced.push({ position, bytes: copy });
      },
      sync: () =>
        synced(() => {
          inode.durable = inode.data;
          inode.unsynced = [];
        }),
      close: async () => live(),
    };
  }

  private dir(path: string, create: boolean): Dir | undefined {
    let d = this.dirs.get(path);
    if (!d && create) {
      // Creating a directory is durable at once here: raftkv never depends on it otherwise.
      d = { live: new Map(), durable: new Map(), unsynced: [] };
      this.dirs.set(path, d);
    }
    return d;
  }

  private parent(path: string): [Dir, string] {
    const slash = path.lastIndexOf('/');
    const d = this.dir(slash < 0 ? '' : path.slice(0, slash), false);
    if (!d) throw enoent(path);
    return [d, path.slice(slash + 1)];
  }

  private lookup(path: string): Inode | undefined {
    const slash = path.lastIndexOf('/');
    return this.dir(slash < 0 ? '' : path.slice(0, slash), false)?.live.get(path.slice(slash + 1));
  }
}

/** A new array: `base` with `bytes` written at `position` (zero-filled up to it if need be). Never changes `base`. */
function writeAt(base: Uint8Array, position: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.max(base.length, position + bytes.length));
  out.set(base);
  out.set(bytes, position);
  return out;
}

function enoent(path: string): Error {
  return Object.assign(new Error(`ENOENT: no such file: ${path}`), { code: 'ENOENT' });
}
