// Shared by the benchmark scripts that run real kv-server processes (bench-cluster.mjs,
// bench-snapshot.mjs): paths into the build, a registry of every child process and temp dir they
// start (so that nothing outlives them, also on Ctrl-C or an error), stopping by PID with a
// deadline, /proc readings, and a fresh raftkv cluster on free loopback ports.
import { freePorts } from '../build/test/support/ports.js';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const serverJs = path.join(root, 'build/src/server/main.js');
export const benchJs = path.join(root, 'build/src/tools/kv-bench.js');
export const indexJs = path.join(root, 'build/src/index.js');
const STOP_DEADLINE_MS = 10_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const exited = (c) =>
  c.exitCode !== null || c.signalCode !== null
    ? Promise.resolve({ code: c.exitCode, signal: c.signalCode })
    : new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));
export const running = (c) => c.exitCode === null && c.signalCode === null;

/** A `say` for stderr lines and a `fail` that says and exits 2 (a usage or setup error). */
export function reporter(tag) {
  const say = (line) => process.stderr.write(`[${tag}] ${line}\n`);
  const fail = (msg) => {
    say(msg);
    process.exit(2);
  };
  return { say, fail };
}

/** A number from the environment (>= 0), or `dflt` when unset. */
export function envNumber(name, dflt, fail) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) fail(`${name} must be a number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

/** Exits through `fail` unless every file of the build that a script needs is there. */
export function requireBuild(files, fail) {
  for (const f of files) if (!fs.existsSync(f)) fail(`${path.relative(root, f)} not found: build first (npx tsc -p .)`);
}

// ---------------------------------------------------------------------------------------------
// Everything we start, so that nothing outlives us.

/** Live child processes by PID. */
export const live = new Map();
const tempDirs = new Set();

export function track(child) {
  if (child.pid === undefined) return child;
  live.set(child.pid, child);
  child.once('exit', () => live.delete(child.pid));
  return child;
}

export function makeTempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export function killAllNow() {
  for (const [pid] of live) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (const d of tempDirs) try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
}

/**
 * Kills everything at exit, and on SIGINT/SIGTERM: the first signal calls `onFirst(signal)` (the
 * script stops after its current step and cleans up), a second one kills everything now.
 * Returns a function that tells whether a signal came.
 */
export function onInterrupt(say, onFirst = () => {}) {
  let interrupted = false;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      if (interrupted) {
        killAllNow();
        process.exit(130);
      }
      interrupted = true;
      say(`${sig}: stopping after the current step (again to kill everything now)`);
      onFirst(sig);
    });
  }
  return () => interrupted;
}

/** SIGTERM to each process still running, SIGKILL to those still there after the deadline. */
export async function stopProcs(procs, say, deadlineMs = STOP_DEADLINE_MS) {
  for (const p of procs) if (running(p)) try { process.kill(p.pid, 'SIGTERM'); } catch { /* gone */ }
  const all = Promise.all(procs.map(exited));
  const late = await Promise.race([all.then(() => false), sleep(deadlineMs).then(() => true)]);
  if (late) {
    for (const p of procs) {
      if (!running(p)) continue;
      say(`pid ${p.pid} did not stop within ${deadlineMs} ms: SIGKILL`);
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
  return all;
}

export function readRssKb(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function tail(file, lines = 12) {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// A raftkv cluster.

/**
 * Starts an `n`-node kv-server cluster on free loopback ports, data and logs (node<id>.log) in
 * `dir`, and waits for a leader every node follows. `nodeArgs(id)`: node options before the
 * script (e.g. --cpu-prof); `serverArgs(id)`: kv-server flags of its first start. Returns a cluster:
 *   endpoints, leader (node id), nodes: [{ id, dataDir, logFile, peerAddr, clientAddr, proc }],
 *   servers: [{ name, pid }] (as started), start(id, extraArgs) (spawns node `id` again, with
 *   the same flags plus `extraArgs`; its log is appended to), join() (spawns a new node, the next
 *   id on fresh ports, with --join: add it with MemberAdd), stop(), tailLogs(), waitForLeader().
 */
/**
 * Calls a membership RPC of proto/kv.proto (MemberAdd, MemberRemove, ...) on the leader among
 * `endpoints`, following leader hints and retrying until `deadlineMs`; rejects with the last error.
 */
export async function memberCall(endpoints, method, request, deadlineMs = 15_000) {
  const grpc = await import('@grpc/grpc-js');
  const { loadKvProto, MD_LEADER, MD_ERROR } = await import(path.join(root, 'build/src/kv-api.js'));
  const Kv = loadKvProto().Kv;
  const deadline = Date.now() + deadlineMs;
  let order = [...endpoints];
  for (;;) {
    let last;
    for (const ep of order) {
      const client = new Kv(ep, grpc.credentials.createInsecure());
      try {
        return await new Promise((resolve, reject) => client[method](request, { deadline: Date.now() + 3000 }, (e, r) => (e ? reject(e) : resolve(r))));
      } catch (e) {
        last = e;
        if (e.metadata?.get(MD_ERROR)[0] === 'conf-refused') throw e;
        const hint = e.metadata?.get(MD_LEADER)[0];
        if (hint) order = [String(hint), ...endpoints.filter((x) => x !== String(hint))];
      } finally {
        client.close();
      }
    }
    if (Date.now() > deadline) throw last;
    await sleep(100);
  }
}

export async function startRaftkv({ dir, n = 3, say, nodeArgs = () => [], serverArgs = () => [], clientTls, isInterrupted = () => false, leaderDeadlineMs = 30_000 }) {
  const { KvClient } = await import(indexJs);
  const ports = await freePorts(2 * n);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const peer = (id) => `127.0.0.1:${ports[id - 1]}`;
  const client = (id) => `127.0.0.1:${ports[n + id - 1]}`;
  const peers = ids.map((id) => `${id}=${peer(id)}`).join(',');
  const clientPeers = ids.map((id) => `${id}=${client(id)}`).join(',');
  const newNode = (id, peerAddr, clientAddr) => ({ id, dataDir: path.join(dir, String(id)), logFile: path.join(dir, `node${id}.log`), peerAddr, clientAddr, proc: undefined });
  const nodes = ids.map((id) => newNode(id, peer(id), client(id)));

  const start = (id, extraArgs = []) => {
    const node = nodes[id - 1];
    const out = fs.openSync(node.logFile, 'a');
    const membership = node.joins
      ? ['--peer-addr', node.peerAddr, '--join', nodes.filter((x) => x !== node && !x.removed).map((x) => x.clientAddr).join(',')]
      : ['--peers', peers, '--client-peers', clientPeers];
    // Text logs: people read node<id>.log, and bench-snapshot matches its lines.
    const args = [...nodeArgs(id), serverJs, '--id', String(id), ...membership, '--client-addr', node.clientAddr, '--data-dir', node.dataDir, '--log-format', 'text', ...serverArgs(id), ...extraArgs];
    node.proc = track(spawn(process.execPath, args, { cwd: root, stdio: ['ignore', out, out] }));
    fs.closeSync(out);
    return node.proc;
  };
  for (const id of ids) start(id, serverArgs(id));

  const endpoints = nodes.map((x) => x.clientAddr);
  const tailLogs = () => nodes.map((x) => `[node ${x.id}] ${tail(x.logFile)}`).join('\n');
  const procs = () => nodes.map((x) => x.proc);

  /** The id of a leader that every running node follows, or undefined at the deadline. */
  const waitForLeader = async (deadlineMs = leaderDeadlineMs) => {
    const kv = new KvClient({ endpoints, timeoutMs: 2000, ...(clientTls ? { tls: clientTls } : {}) });
    const deadline = Date.now() + deadlineMs;
    try {
      while (!isInterrupted() && Date.now() < deadline && procs().every(running)) {
        const ok = (await kv.status()).filter((r) => r.ok);
        const l = ok.find((r) => r.status.role === 'leader');
        if (l && ok.length === n && ok.every((r) => r.status.leaderId === l.status.nodeId && r.status.term === l.status.term)) return l.status.nodeId;
        await sleep(100);
      }
      return undefined;
    } finally {
      kv.close();
    }
  };

  const join = async () => {
    const [p, c] = await freePorts(2);
    const node = { ...newNode(nodes.length + 1, `127.0.0.1:${p}`, `127.0.0.1:${c}`), joins: true };
    nodes.push(node);
    start(node.id);
    return node;
  };

  const cluster = {
    endpoints,
    nodes,
    join,
    servers: nodes.map((x) => ({ name: `node ${x.id}`, pid: x.proc.pid })),
    start,
    stop: () => stopProcs(procs(), say),
    tailLogs,
    waitForLeader,
    leader: await waitForLeader(),
  };
  if (cluster.leader === undefined) {
    await cluster.stop();
    throw new Error(`raftkv: no leader within ${leaderDeadlineMs} ms\n${tailLogs()}`);
  }
  return cluster;
}
