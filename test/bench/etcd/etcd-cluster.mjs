#!/usr/bin/env node
// A local 3-member etcd cluster on 127.0.0.1 for kv-bench --target etcd (dev-only; needs the
// `etcd` binary: apt-get install etcd-server, etcd 3.4). Default settings (fsync on), data in a
// temp dir, free ports. Imported by scripts/bench-cluster.mjs (startEtcdCluster), or run alone:
//
//   node test/bench/etcd/etcd-cluster.mjs     # starts it, prints the endpoints; Ctrl-C stops it
//
// Every member is stopped by PID (SIGTERM, then SIGKILL after a deadline) and the temp dir removed.
import { freePorts } from '../../../build/test/support/ports.js';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const STOP_DEADLINE_MS = 8000;


/** The etcd binary and its version line, or undefined if there is none. */
export function etcdVersion(bin = process.env.ETCD_BIN || 'etcd') {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { bin, version: out.split('\n')[0].trim() };
  } catch {
    return undefined;
  }
}

/**
 * Starts `size` etcd members in `dir` (created if missing). Returns { endpoints, members, stop }:
 * members are { name, pid, child, logFile, exited }; stop() ends each by PID, waits and resolves
 * every member's { code, signal }.
 */
export async function startEtcdCluster({ dir, size = 3, bin = process.env.ETCD_BIN || 'etcd' } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const ports = await freePorts(2 * size);
  const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
  const peerUrl = (i) => `http://127.0.0.1:${ports[i]}`;
  const clientUrl = (i) => `http://127.0.0.1:${ports[size + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  const token = `kv-bench-${randomBytes(4).toString('hex')}`;
  const members = names.map((name, i) => {
    const logFile = path.join(dir, `${name}.log`);
    const out = fs.openSync(logFile, 'a');
    const args = [
      '--name', name,
      '--data-dir', path.join(dir, name),
      '--listen-peer-urls', peerUrl(i),
      '--initial-advertise-peer-urls', peerUrl(i),
      '--listen-client-urls', clientUrl(i),
      '--advertise-client-urls', clientUrl(i),
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', token,
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
    ];
    const child = spawn(bin, args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.on('error', () => {});
    return { name, pid: child.pid, child, logFile, exited, endpoint: clientUrl(i).slice('http://'.length) };
  });
  const running = (m) => m.child.exitCode === null && m.child.signalCode === null;
  async function stop() {
    for (const m of members) if (running(m) && m.pid !== undefined) try { process.kill(m.pid, 'SIGTERM'); } catch { /* gone */ }
    const all = Promise.all(members.map((m) => m.exited));
    const late = await Promise.race([all.then(() => false), new Promise((r) => setTimeout(r, STOP_DEADLINE_MS, true))]);
    if (late) for (const m of members) if (running(m) && m.pid !== undefined) try { process.kill(m.pid, 'SIGKILL'); } catch { /* gone */ }
    return all;
  }
  function tailLogs(lines = 10) {
    return members
      .map((m) => `[${m.name}] ${fs.existsSync(m.logFile) ? fs.readFileSync(m.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n') : ''}`)
      .join('\n');
  }
  return { endpoints: members.map((m) => m.endpoint), members, stop, tailLogs };
}

// ---------------------------------------------------------------------------------------------
// Standalone: start, print, wait for Ctrl-C.

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const v = etcdVersion();
  if (!v) {
    process.stderr.write('etcd not found: apt-get install etcd-server (or set ETCD_BIN)\n');
    process.exit(1);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-bench-etcd-'));
  const cluster = await startEtcdCluster({ dir });
  let stopping = false;
  const stopAll = async (code) => {
    if (stopping) return;
    stopping = true;
    await cluster.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    process.stdout.write('[etcd] stopped, temp dir removed\n');
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  process.on('exit', () => {
    for (const m of cluster.members) if (m.child.exitCode === null && m.child.signalCode === null) try { process.kill(m.pid, 'SIGKILL'); } catch { /* gone */ }
  });
  for (const m of cluster.members) m.exited.then((r) => !stopping && (process.stdout.write(`[etcd] ${m.name} exited (${r.signal ?? r.code})\n${cluster.tailLogs()}\n`), void stopAll(1)));
  process.stdout.write(
    `[etcd] ${v.version}: 3 members (pids ${cluster.members.map((m) => m.pid).join(', ')}) in ${dir}\n` +
      `[etcd] endpoints ${cluster.endpoints.join(',')}\n` +
      `[etcd] try: node build/src/tools/kv-bench.js --target etcd --endpoints ${cluster.endpoints.join(',')} --op put --clients 16 --duration 5\n` +
      '[etcd] Ctrl-C stops it\n',
  );
}
