import type { Rng } from '../../src/raft/core/types.js';
import type { Disk } from '../../src/server/disk.js';
import type { SimClock } from './sim-clock.js';
import { SimFiles } from './sim-files.js';
import { SimLog, SimStorage } from './sim-log.js';

/**
 * One node's disk in the simulator, surviving the node's crashes: its Raft log (SimLog, in place
 * of SQLite) and its files (SimFiles), both with a volatile tier that a power loss takes away.
 * Every flush takes a drawn time: 0–20 ms, and now and then 200 ms, so that group commit,
 * pipelining and the order of durability points are exercised.
 */
export class SimDisk {
  readonly log = new SimLog();
  readonly files = new SimFiles();
  private ids: { clusterId: string; nodeId: number } | undefined;
  private storage: SimStorage | undefined;

  constructor(private readonly rng: Rng) {}

  /** The disk as the incarnation that runs on `clock` sees it: dead once that clock is. */
  attach(clock: SimClock): Disk {
    const scheduler = {
      after: (ms: number, fn: () => void) => clock.after(ms, fn),
      latency: () => this.latency(),
      alive: () => !clock.dead,
    };
    return {
      files: this.files.mount(scheduler),
      checkLog: (ids) => {
        // As the SQLite log: a cluster id that was not given (a node that joined) is the disk's.
        const mine = this.ids;
        if (mine && ((!ids.adoptStoredClusterId && mine.clusterId !== ids.clusterId) || mine.nodeId !== ids.nodeId)) {
          throw new Error(`the disk belongs to node ${mine.nodeId} of ${mine.clusterId}`);
        }
        const { snapshot } = this.log.view.load(); // with the checks SqliteStorage.check makes
        return {
          fresh: mine === undefined,
          ...(mine ? { clusterId: mine.clusterId } : {}),
          snapshot,
          open: () => {
            this.ids = mine ?? { clusterId: ids.clusterId, nodeId: ids.nodeId };
            this.storage = new SimStorage(this.log, scheduler);
            return this.storage;
          },
        };
      },
    };
  }

  /** The retained log's size, as the node sees it. */
  logBytes(): number {
    return this.log.view.bytes;
  }

  /** The machine goes down: a killed process keeps the page cache, a power loss loses it. */
  crash(kind: 'process' | 'power'): void {
    this.log.crash(kind, this.rng);
    this.files.crash(kind, this.rng);
  }

  /** The next flush takes `ms` (a disk that stalls: a test's fault). */
  stallNextFlush(ms: number): void {
    this.stall = ms;
  }

  private stall: number | undefined;

  /** fsync time: usually 0–20 ms, one flush in a hundred 200 ms. */
  private latency(): number {
    const stall = this.stall;
    this.stall = undefined;
    return stall ?? (this.rng.int(100) === 0 ? 200 : this.rng.int(21));
  }
}
