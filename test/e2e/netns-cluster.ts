/**
 * A Cluster whose kv-servers run in a Netns's namespaces, and the bookkeeping of the tests that
 * use one: cleanups that also run when a test is cut short (afterAll), and the removal of the data
 * dirs that a killed earlier run left behind.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cluster, ROOT, SERVER_JS, waitFor, type ClusterOptions } from './cluster.js';
import { atExit, CLIENT_PORT, leftBehind, Netns, PEER_PORT } from './netns.js';

/** What a test set up and must take down again, newest first. */
export class Cleanups {
  private readonly fns: (() => Promise<void> | void)[] = [];

  push(...fns: (() => Promise<void> | void)[]): void {
    this.fns.push(...fns);
  }

  /** Runs every cleanup, newest first, even when one fails; then throws the first failure. */
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const c of this.fns.splice(0).reverse()) await Promise.resolve().then(c).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw errors[0];
  }

  /** Runs `body`, then the cleanups; a cleanup failure is thrown only if the body did not fail (it must not hide the test's own). */
  async after(body: () => Promise<void>): Promise<void> {
    const failure = await body().then(() => undefined, (e: unknown) => e ?? new Error('failed'));
    const cleanupFailure = await this.run().then(() => undefined, (e: unknown) => e ?? new Error('cleanup failed'));
    if (failure !== undefined) throw failure;
    if (cleanupFailure !== undefined) throw cleanupFailure;
  }
}

/** A new Netns (see Netns.create) that `cleanups` destroys, checking that nothing of it is left. */
export function createNetns(tag: string, size: number, cleanups: Cleanups): Netns {
  const net = Netns.create(tag, size);
  cleanups.push(() => {
    net.destroy();
    const left = net.leftovers();
    if (left.length > 0) throw new Error(`namespaces or links left behind: ${left.join(' ')}`);
  });
  return net;
}

/**
 * Starts a Cluster (for its status, wait and stop helpers) whose nodes live in `net`'s namespaces:
 * addresses on the namespaces' interfaces, each process started with `ip netns exec`. Its data
 * dir is named after `name` and the network (see removeLeftoverDirs); `cleanups` takes it down.
 */
export async function startNetnsCluster(net: Netns, name: string, opts: ClusterOptions, cleanups: Cleanups): Promise<Cluster> {
  const c = await Cluster.create(`${name}-${net.prefix}`, { ...opts, size: net.size });
  const removeDir = atExit(() => fs.rmSync(c.dir, { recursive: true, force: true }));
  cleanups.push(async () => {
    await c.close();
    removeDir();
  });
  for (const node of c.nodes) {
    node.peerAddr = `${net.nodeIp(node.id)}:${PEER_PORT}`;
    node.clientAddr = `${net.nodeIp(node.id)}:${CLIENT_PORT}`;
  }
  for (const node of c.nodes) {
    const proc = net.spawnIn(node.id, [process.execPath, SERVER_JS, ...c.args(node)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (node.log += d));
    node.proc = proc;
  }
  return c;
}

/** Data dirs of startNetnsCluster(…, `name`, …) runs that were killed (their PID is gone). */
export function removeLeftoverDirs(name: string): string[] {
  const removed: string[] = [];
  const pattern = new RegExp(`^raftkv-e2e-${name}-rkv(\\d+)[a-z]-`);
  for (const entry of fs.readdirSync(os.tmpdir())) {
    if (!leftBehind(entry, pattern)) continue;
    fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
    removed.push(entry);
  }
  return removed;
}

/** The term of `leader`, as it reports it. */
export async function leaderTerm(c: Cluster, leader: number): Promise<number> {
  return waitFor(`node ${leader}'s term`, async () => {
    const row = (await c.status()).find((r) => r.ok && r.status.nodeId === leader);
    return row?.ok ? row.status.term : undefined;
  });
}
