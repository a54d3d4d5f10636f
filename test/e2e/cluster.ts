/**
 * Real-process helpers for the end-to-end tests: kv-server and kv-cli as child processes on
 * 127.0.0.1, free ports picked by binding port 0, data in a temp dir, every child killed by PID
 * at the end, and waits on conditions with deadlines.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KvClient, type ClientTls, type EndpointStatus } from '../../src/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SERVER_JS = path.join(ROOT, 'build/src/server/main.js');
export const CLI_JS = path.join(ROOT, 'build/src/client/cli.js');

// ---------------------------------------------------------------------------------------------
// The build: the children run the compiled JS.

function buildIsStale(): boolean {
  const src = path.join(ROOT, 'src');
  for (const js of [SERVER_JS, CLI_JS]) if (!fs.existsSync(js)) return true;
  const stack = [src];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) stack.push(p);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const js = path.join(ROOT, 'build', path.relative(ROOT, p)).replace(/\.ts$/, '.js');
        const built = fs.statSync(js, { throwIfNoEntry: false });
        if (!built || built.mtimeMs < fs.statSync(p).mtimeMs) return true;
      }
    }
  }
  return false;
}

/**
 * Builds (tsc) when build/ is missing or older than src/. Several test files may ask at once:
 * one builds under a lock directory, the others wait for it.
 */
export async function ensureBuilt(): Promise<void> {
  if (!buildIsStale()) return;
  const lock = path.join(os.tmpdir(), `raftkv-e2e-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120_000) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited too long for another test's build (lock ${lock})`);
      await sleep(200);
      if (!buildIsStale()) return;
    }
  }
  try {
    if (!buildIsStale()) return;
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', ROOT], { stdio: 'pipe' });
    } catch {
      // Type errors elsewhere still emit; what matters is that our entry points exist.
    }
    if (!fs.existsSync(SERVER_JS) || !fs.existsSync(CLI_JS)) throw new Error('build failed: run npx tsc -p .');
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Small tools.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

import { freePorts } from '../support/ports.js';
export { freePorts };

export function sha256File(p: string): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `raftkv-e2e-${prefix}-`));
}

// ---------------------------------------------------------------------------------------------
// Child processes: all of them are tracked, so that killAll() can end every one by PID.

const children = new Set<ChildProcess>();

function killChild(c: ChildProcess): void {
  if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kills every child process still running (afterAll, and on worker exit). */
export async function killAll(): Promise<void> {
  const running = [...children];
  for (const c of running) killChild(c);
  await Promise.all(running.map((c) => exited(c)));
}
process.on('exit', () => {
  for (const c of children) killChild(c);
});

function exited(c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve({ code: c.exitCode, signal: c.signalCode });
  return new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a node script to completion (killed after `timeoutMs`). */
export async function runNode(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [script, ...args], {
    cwd: ROOT,
    env: opts.env ?? { ...process.env, RAFTKV_ENDPOINTS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => killChild(child), opts.timeoutMs ?? 20_000);
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const r = await exited(child);
  await closed;
  clearTimeout(timer);
  children.delete(child);
  return { ...r, stdout, stderr, ms: Date.now() - started };
}

export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return runNode(CLI_JS, args, opts);
}

export function server(args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  // Text lines, as a person reads them: tests match messages (one e2e test checks the JSON default).
  return runNode(SERVER_JS, ['--log-format', 'text', ...args], opts);
}

// ---------------------------------------------------------------------------------------------
// A cluster of kv-server processes.

export interface Node {
  id: number;
  peerAddr: string;
  clientAddr: string;
  dataDir: string;
  proc: ChildProcess | undefined;
  /** Everything the current and past processes of this node wrote to stderr. */
  log: string;
  /** Started with --join (added to the running cluster), not from --peers. */
  joins: boolean;
  /** Removed from the cluster's membership: no longer one of its endpoints. */
  removed: boolean;
}

export interface ClusterOptions {
  size?: number;
  electionTimeoutMs?: number;
  heartbeatMs?: number;
  extraArgs?: string[];
  /** kv-server's --log-format; `auto` passes none (stderr is a pipe here: JSON). Default `text`. */
  logFormat?: 'auto' | 'text';
  /** Pass --client-peers, so that followers name the leader's client address (default true). */
  leaderHints?: boolean;
  /** TLS of the helper's own client (status, waits): for a cluster with TLS on its client port. */
  clientTls?: ClientTls;
}

export class Cluster {
  readonly nodes: Node[] = [];
  /** The nodes of --peers: what the nodes started from it were given, and are given again at each restart. */
  private readonly bootstrap: Node[];
  readonly dir: string;
  private readonly opts: ClusterOptions;
  private statusClient: KvClient | undefined;

  private constructor(dir: string, ports: number[], opts: ClusterOptions) {
    this.dir = dir;
    this.opts = opts;
    const n = opts.size ?? 3;
    for (let i = 0; i < n; i++) this.nodes.push(this.newNode(i + 1, ports[i]!, ports[n + i]!, false));
    this.bootstrap = [...this.nodes];
  }

  private newNode(id: number, peerPort: number, clientPort: number, joins: boolean): Node {
    const dataDir = path.join(this.dir, String(id));
    return { id, peerAddr: `127.0.0.1:${peerPort}`, clientAddr: `127.0.0.1:${clientPort}`, dataDir, proc: undefined, log: '', joins, removed: false };
  }

  /** A new node (the next id, ports of its own, an empty data dir) to be started with --join and added. */
  async addNode(): Promise<Node> {
    const [peer, client] = await freePorts(2);
    const node = this.newNode(Math.max(...this.nodes.map((n) => n.id)) + 1, peer!, client!, true);
    this.nodes.push(node);
    this.forgetStatusClient();
    return node;
  }

  /** Node `id` was removed from the membership: it is no longer one of the cluster's endpoints. */
  markRemoved(id: number): void {
    this.node(id).removed = true;
    this.forgetStatusClient();
  }

  /** The nodes not removed. */
  get members(): Node[] {
    return this.nodes.filter((n) => !n.removed);
  }

  private forgetStatusClient(): void {
    this.statusClient?.close();
    this.statusClient = undefined;
  }

  static async create(name: string, opts: ClusterOptions = {}): Promise<Cluster> {
    const n = opts.size ?? 3;
    return new Cluster(tempDir(name), await freePorts(2 * n), opts);
  }

  get endpoints(): string[] {
    return this.members.map((n) => n.clientAddr);
  }

  node(id: number): Node {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  args(node: Node): string[] {
    const others = this.members.filter((n) => n !== node);
    const membership = node.joins
      ? ['--peer-addr', node.peerAddr, '--join', others.map((n) => n.clientAddr).join(',')]
      : [
          '--peers', this.bootstrap.map((n) => `${n.id}=${n.peerAddr}`).join(','),
          ...(this.opts.leaderHints === false ? [] : ['--client-peers', this.bootstrap.map((n) => `${n.id}=${n.clientAddr}`).join(',')]),
        ];
    return [
      '--id', String(node.id),
      ...membership,
      '--client-addr', node.clientAddr,
      '--data-dir', node.dataDir,
      '--election-timeout', String(this.opts.electionTimeoutMs ?? 300),
      '--heartbeat', String(this.opts.heartbeatMs ?? 50),
      // Text lines, which the tests match messages in; kv-server.test checks the JSON default.
      ...(this.opts.logFormat === 'auto' ? [] : ['--log-format', 'text']),
      ...(this.opts.extraArgs ?? []),
    ];
  }

  /** Starts node `id`'s kv-server, with `extra` flags after the cluster's. */
  start(id: number, extra: string[] = []): ChildProcess {
    const node = this.node(id);
    if (node.proc && node.proc.exitCode === null && node.proc.signalCode === null) throw new Error(`node ${id} is running`);
    const proc = spawn(process.execPath, [SERVER_JS, ...this.args(node), ...extra], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (node.log += d));
    node.proc = proc;
    return proc;
  }

  startAll(): void {
    for (const n of this.nodes) this.start(n.id);
  }

  /** Sends `signal` to node `id` by PID and waits for it to exit. */
  async stop(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const proc = this.node(id).proc;
    if (!proc || proc.pid === undefined) throw new Error(`node ${id} was never started`);
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, signal);
    return exited(proc);
  }

  running(id: number): boolean {
    const p = this.node(id).proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  async status(): Promise<EndpointStatus[]> {
    this.statusClient ??= new KvClient({ endpoints: this.endpoints, timeoutMs: 1000, ...(this.opts.clientTls ? { tls: this.opts.clientTls } : {}) });
    return this.statusClient.status();
  }

  /** Waits until a running node leads and every other running member follows it; returns its id. */
  async waitForLeader(timeoutMs = 15_000, except?: number): Promise<number> {
    return waitFor(
      `a leader among ${this.members.filter((n) => this.running(n.id)).map((n) => n.id).join(',')}`,
      async () => {
        const rows = await this.status();
        const live = rows.filter((r): r is Extract<EndpointStatus, { ok: true }> => r.ok);
        const leader = live.find((r) => r.status.role === 'leader' && r.status.nodeId !== except);
        if (!leader) return undefined;
        const agree = live.filter((r) => r.status.leaderId === leader.status.nodeId && r.status.term === leader.status.term);
        const runningCount = this.members.filter((n) => this.running(n.id)).length;
        return agree.length === runningCount && agree.length === live.length ? leader.status.nodeId : undefined;
      },
      timeoutMs,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n--- node logs ---\n${this.tailLogs()}`);
    });
  }

  /** Waits until every node answers Status, follows one leader and has applied all it committed. */
  async waitCaughtUp(timeoutMs = 15_000): Promise<void> {
    await waitFor(
      'every node to answer and catch up',
      async () => {
        const rows = await this.status();
        if (!rows.every((r) => r.ok)) return false;
        const st = rows.map((r) => (r.ok ? r.status : undefined)!);
        const leader = st.find((s) => s.role === 'leader');
        if (!leader) return false;
        return st.every((s) => s.leaderId === leader.nodeId && s.appliedIndex >= leader.commitIndex);
      },
      timeoutMs,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${this.tailLogs()}`);
    });
  }

  tailLogs(lines = 15): string {
    return this.nodes.map((n) => `[node ${n.id}]\n${n.log.split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  async close(): Promise<void> {
    this.forgetStatusClient();
    const procs = this.nodes.map((n) => n.proc).filter((p): p is ChildProcess => p !== undefined);
    for (const p of procs) killChild(p);
    await Promise.all(procs.map((p) => exited(p)));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
