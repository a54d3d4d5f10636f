/**
 * A node's disk as an ext4 image on a loop device, so that a test can cut its power: SIGKILL the
 * process, then at once copy the image file. The ext4 inside keeps unsynced writes in its own page
 * cache, above the loop device; the image file holds only what it wrote down to the device, which
 * is what an fsync forced out (plus whatever writeback happened to send). Unmounting the original
 * (and discarding it, with its page cache) and mounting the copy in its place replays the journal,
 * as a machine does after a power loss. kill -9 alone loses nothing that reached the page cache.
 *
 * Root only. Every image, mount and loop device made here is removed by removeDisks(), which
 * also runs at process exit and on SIGINT/SIGTERM/SIGHUP (unmounting lazily if a process still
 * holds the file system).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * commit=600: ext4 commits its journal when something forces it (an fsync) instead of every 5 s
 * as well, so no metadata that was not synced reaches the image by the timer, and the copy is not
 * taken while a timed commit is half written. noauto_da_alloc: a file renamed over another does
 * not get its data forced out with the rename (ext4's allowance for programs that forget to
 * fsync). Both make the worst case of a real power loss the usual case here; neither changes what
 * fsync guarantees.
 */
const MOUNT_OPTIONS = 'commit=600,noauto_da_alloc';

/** Mounted file systems by mountpoint, with their loop devices. */
const mounted = new Map<string, string>();
/** Directories holding images and mountpoints. */
const dirs = new Set<string>();

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

/** A new directory for images and mountpoints, removed by removeDisks(). */
export function diskDir(name: string): string {
  return ownDir(fs.mkdtempSync(path.join(os.tmpdir(), `raftkv-e2e-${name}-`)));
}

/** Makes removeDisks() remove `dir`, an existing directory, with the images and mounts in it. */
export function ownDir(dir: string): string {
  dirs.add(dir);
  watchForExit();
  return dir;
}

export class LoopDisk {
  private device: string | undefined;

  private constructor(
    readonly image: string,
    readonly mountpoint: string,
  ) {}

  /** A sparse image of `sizeMiB` in `dir`, formatted ext4 and mounted at `dir`/`name`. */
  static create(dir: string, name: string, sizeMiB: number): LoopDisk {
    const image = path.join(dir, `${name}.img`);
    fs.closeSync(fs.openSync(image, 'wx'));
    fs.truncateSync(image, sizeMiB * 1024 * 1024);
    // Inode tables and journal zeroed now, not by a kernel thread writing to the image during the test.
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
    const mountpoint = path.join(dir, name);
    fs.mkdirSync(mountpoint);
    const disk = new LoopDisk(image, mountpoint);
    disk.mount();
    return disk;
  }

  private mount(): void {
    const device = run('losetup', ['--find', '--show', this.image]).trim();
    this.device = device;
    mounted.set(this.mountpoint, device);
    try {
      run('mount', ['-t', 'ext4', '-o', MOUNT_OPTIONS, device, this.mountpoint]);
    } catch (e) {
      unmountQuietly(this.mountpoint);
      this.device = undefined;
      throw e;
    }
  }

  /** Unmounts and detaches the loop device (nothing may hold files in it). */
  unmount(): void {
    if (!this.device) return;
    run('umount', [this.mountpoint]);
    run('losetup', ['-d', this.device]);
    mounted.delete(this.mountpoint);
    this.device = undefined;
  }

  /** The image as the loop device holds it now, copied beside it. Call as soon as the writers died. */
  copy(): string {
    const copy = `${this.image}.cut`;
    run('cp', ['--sparse=always', this.image, copy]);
    return copy;
  }

  /** Discards the mounted file system, with all its page cache held, and mounts `copy` in its place. */
  replaceWith(copy: string): void {
    this.unmount(); // writes the lost page cache into the image that is thrown away
    fs.rmSync(this.image);
    fs.renameSync(copy, this.image);
    this.mount(); // ext4 replays its journal here
  }
}

/**
 * Cuts the power of `disks` at one moment: every image is copied before any is remounted. The
 * processes writing to them must already be dead.
 */
export function powerCut(disks: LoopDisk[]): void {
  const copies = disks.map((d) => d.copy());
  disks.forEach((d, i) => d.replaceWith(copies[i]!));
}

/**
 * The premise of powerCut on this machine: on a mounted image, file A is written and fsynced (and
 * its directory), file B only written; after a power cut A is whole and B is absent or empty.
 * Returns what was found, e.g. "A intact, B absent".
 */
export function checkPowerCutPremise(): { aIntact: boolean; b: 'absent' | 'empty' | 'present'; summary: string } {
  const dir = diskDir('power-cut-premise');
  try {
    return premiseOn(LoopDisk.create(dir, 'premise', 32));
  } finally {
    removeDisks(dir);
  }
}

function premiseOn(disk: LoopDisk): { aIntact: boolean; b: 'absent' | 'empty' | 'present'; summary: string } {
  const a = randomBytes(256 * 1024);
  const b = randomBytes(256 * 1024);
  const sub = path.join(disk.mountpoint, 'd');
  fs.mkdirSync(sub);
  withFile(path.join(sub, 'A'), 'wx', (fd) => {
    fs.writeSync(fd, a);
    fs.fsyncSync(fd);
  });
  withFile(sub, 'r', fs.fsyncSync); // A's directory entry
  withFile(disk.mountpoint, 'r', fs.fsyncSync); // and its directory's
  withFile(path.join(sub, 'B'), 'wx', (fd) => fs.writeSync(fd, b));
  powerCut([disk]);
  const aNow = fs.existsSync(path.join(sub, 'A')) ? fs.readFileSync(path.join(sub, 'A')) : undefined;
  const bStat = fs.statSync(path.join(sub, 'B'), { throwIfNoEntry: false });
  const aIntact = aNow !== undefined && sha(aNow) === sha(a);
  const bState = bStat === undefined ? 'absent' : bStat.size === 0 ? 'empty' : 'present';
  const aText = aIntact ? 'intact' : aNow === undefined ? 'absent' : `damaged (${aNow.length} bytes)`;
  const summary = `A ${aText}, B ${bState === 'present' ? `present (${bStat!.size} bytes)` : bState}`;
  return { aIntact, b: bState, summary };
}

function withFile(p: string, flags: string, use: (fd: number) => void): void {
  const fd = fs.openSync(p, flags);
  try {
    use(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Why loop disks cannot be used here, or undefined if they can: needs Linux, root, and an ext4
 * image that mounts through a loop device (tried once, in a directory that is removed again).
 */
export function loopDisksUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `loop devices need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root to mount images through loop devices (run as root)';
  const dir = diskDir('loop-probe');
  try {
    LoopDisk.create(dir, 'probe', 16).unmount();
    return undefined;
  } catch (e) {
    return `cannot mount an ext4 image through a loop device: ${(e as Error).message}`;
  } finally {
    removeDisks(dir);
  }
}

/**
 * Unmounts every file system mounted in `dir` (default: in every directory of diskDir() or ownDir()),
 * detaches its loop device and deletes the directory. A file system still in use is unmounted
 * lazily (it goes when its last user does). Returns what could not be removed, empty when all went.
 */
export function removeDisks(dir?: string): string[] {
  const left: string[] = [];
  for (const d of dir === undefined ? [...dirs] : [dir]) {
    const inside = [...mounted.keys()].filter((m) => m.startsWith(d + path.sep));
    const stuck = inside.filter((m) => !unmountQuietly(m));
    if (stuck.length > 0) {
      left.push(`${stuck.join(', ')} still mounted, so ${d} is left`);
      continue;
    }
    try {
      fs.rmSync(d, { recursive: true, force: true });
      dirs.delete(d);
    } catch (e) {
      left.push(`${d}: ${(e as Error).message}`);
    }
  }
  return left;
}

/** What is still mounted from, or attached to a file in, `dir`: /proc/self/mounts and losetup rows. */
export function leftoversIn(dir: string): string[] {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((line) => (line.split(' ')[1] ?? '').startsWith(dir + path.sep));
  const loops = run('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE']).split('\n').filter((row) => row.includes(dir + path.sep));
  return [...mounts, ...loops].map((r) => r.trim());
}

function unmountQuietly(mountpoint: string): boolean {
  const device = mounted.get(mountpoint);
  let unmounted = false;
  for (const args of [[mountpoint], ['-l', mountpoint]]) {
    try {
      execFileSync('umount', args, { stdio: 'ignore' });
      unmounted = true;
      break;
    } catch {
      if (!isMounted(mountpoint)) {
        unmounted = true;
        break;
      }
    }
  }
  if (device) {
    try {
      // Detaches now, or (LOOP_CLR_FD on a device still open) as soon as its last user closes it.
      execFileSync('losetup', ['-d', device], { stdio: 'ignore' });
    } catch {
      // not attached (any more)
    }
  }
  if (unmounted) mounted.delete(mountpoint);
  return unmounted;
}

function isMounted(mountpoint: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === mountpoint);
}

let watching = false;

/** Cleans up at exit, and on the signals that would otherwise end the process without an exit event. */
function watchForExit(): void {
  if (watching) return;
  watching = true;
  process.on('exit', () => removeDisks());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      removeDisks();
      process.exit(128 + os.constants.signals[signal]);
    });
  }
}
