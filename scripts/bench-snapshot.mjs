#!/usr/bin/env node
// `make bench-snapshot`: issue 5's snapshot benchmark (acceptance 3) on a fresh local cluster.
//
// 1. Starts a 3-node kv-server cluster on 127.0.0.1 in a temp dir with default flags (fsync on,
//    the default --snapshot-threshold and --snapshot-retain) and waits for a leader.
// 2. Writes BENCH_PUTS puts of 256-byte values over 10,000 8-byte keys with kv-bench (the
//    standard keys and values of bench-cluster.mjs), sampling each node's data dir and RSS.
// 3. Reports each node's data-dir size (raft.db, its -wal, snap/) against the live data (the sum
//    of key + value bytes over the keys that exist, read back through the SDK), and each node's
//    snapshot index and snapshot files.
// 4. Restart: SIGTERM a follower, start it again; the time from spawn to 'node started' in its
//    log, and to answering Status with appliedIndex >= the leader's commit at the restart.
// 5. Catch-up: SIGKILL the other follower, delete its data dir and replace it as an operator
//    does: remove it, start a new node (the next id) with --join, add it as a learner; the time
//    until its appliedIndex reaches the leader's commit, and the snapshot the leader sent it;
//    then promote it.
// 6. Stops every node by PID and deletes the temp dir, also on an error or Ctrl-C.
// Prints a table (stdout), or one JSON object with --json. Needs the build (npx tsc -p .).
//
// Environment (all optional):
//   BENCH_PUTS=1000000    puts to write        BENCH_CLIENTS=64   concurrent clients (kv-bench --clients)
//   BENCH_KEEP=DIR        copy the nodes' logs and data dirs (as the stopped nodes left them) to DIR
import {
  benchJs, envNumber, exited, indexJs, killAllNow, live, makeTempDir, memberCall, onInterrupt, readRssKb, removeTempDir, reporter, requireBuild,
  root, running, serverJs, sleep, startRaftkv, stopProcs, track,
} from './cluster-procs.mjs';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const snapshotterJs = path.join(root, 'build/src/server/snapshotter.js');
const KEYSPACE = 10_000;
const KEY_SIZE = 8;
const VALUE_SIZE = 256;
const CONNECTIONS = 3;
/** kv-bench must sustain at least this rate, or the load is cut short (a bound, not a target). */
const MIN_PUTS_PER_S = 100;
const RESTART_DEADLINE_MS = 60_000;
const CATCHUP_DEADLINE_MS = 180_000;
const SETTLE_DEADLINE_MS = 30_000;
const POLL_MS = 10;
const SAMPLE_MS = 1000;
const TARGET_RATIO = 3;
const TARGET_RESTART_MS = 2000;

const { say, fail } = reporter('bench-snapshot');
const PUTS = Math.round(envNumber('BENCH_PUTS', 1_000_000, fail));
const CLIENTS = Math.round(envNumber('BENCH_CLIENTS', 64, fail));
if (PUTS < 1 || CLIENTS < 1) fail('BENCH_PUTS and BENCH_CLIENTS must be >= 1');
const args = process.argv.slice(2);
for (const a of args) if (a !== '--json') fail(`unknown argument ${a} (usage: bench-snapshot.mjs [--json])`);
const JSON_OUT = args.includes('--json');
const KEEP = process.env.BENCH_KEEP ? path.resolve(process.env.BENCH_KEEP) : undefined;

requireBuild([serverJs, benchJs, indexJs, snapshotterJs], fail);
const { KvClient } = await import(indexJs);
const { DEFAULT_SNAPSHOT_THRESHOLD, DEFAULT_SNAPSHOT_RETAIN } = await import(snapshotterJs);

const isInterrupted = onInterrupt(say, (sig) => {
  // On Ctrl-C kv-bench gets SIGINT too (same process group); pass a SIGTERM on.
  if (sig === 'SIGTERM') for (const [pid, c] of live) if (c.isBench) try { process.kill(pid, 'SIGINT'); } catch { /* gone */ }
});
const checkInterrupted = () => {
  if (isInterrupted()) throw new Error('interrupted');
};

// ---------------------------------------------------------------------------------------------
// Measuring a node.

/** Bytes under a data dir (recursively), split into raft.db, its -wal, snap/ and the rest. */
function dataDirSize(dir) {
  const out = { total: 0, db: 0, wal: 0, snap: 0, other: 0, snapFiles: 0 };
  const walk = (p) => {
    let st;
    try {
      st = fs.lstatSync(p);
    } catch {
      return 0; // removed meanwhile (a snapshot's temp file)
    }
    if (!st.isDirectory()) return st.size;
    let n = 0;
    for (const e of safeReaddir(p)) n += walk(path.join(p, e));
    return n;
  };
  for (const e of safeReaddir(dir)) {
    const bytes = walk(path.join(dir, e));
    out.total += bytes;
    if (e === 'raft.db') out.db += bytes;
    else if (e === 'raft.db-wal') out.wal += bytes;
    else if (e === 'snap') {
      out.snap += bytes;
      out.snapFiles = safeReaddir(path.join(dir, e)).length;
    } else out.other += bytes;
  }
  return out;
}

function safeReaddir(p) {
  try {
    return fs.readdirSync(p);
  } catch {
    return [];
  }
}

/** One node's Status over a new connection (so no reconnect backoff delays the answer), or undefined. */
async function nodeStatus(addr, timeoutMs = 1000) {
  const kv = new KvClient({ endpoints: [addr], timeoutMs, attemptTimeoutMs: timeoutMs });
  try {
    const [r] = await kv.status();
    return r.ok ? r.status : undefined;
  } finally {
    kv.close();
  }
}

/** The leader's Status, asked of every node; undefined if none answers as leader. */
async function leaderStatus(cluster) {
  const kv = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 2000 });
  try {
    return (await kv.status()).find((r) => r.ok && r.status.role === 'leader')?.status;
  } finally {
    kv.close();
  }
}

/** Polls `addr` until its appliedIndex reaches `index`; ms since `t0`, or undefined at the deadline. */
async function untilApplied(addr, index, t0, deadlineMs, proc) {
  const deadline = t0 + deadlineMs;
  while (Date.now() < deadline && running(proc)) {
    checkInterrupted();
    const s = await nodeStatus(addr, 500).catch(() => undefined);
    if (s && s.appliedIndex >= index) return Date.now() - t0;
    await sleep(POLL_MS);
  }
  return undefined;
}

const logSize = (file) => fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;

/** The lines a log gained since `offset`, with their timestamps (ms since the epoch). */
function logLinesSince(file, offset) {
  let text = '';
  try {
    text = fs.readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).map((line) => ({ line, t: Date.parse(line.slice(0, line.indexOf(' '))) }));
}

/** ms from `t0` to the first line since `offset` that matches `re`, and its match. */
function logged(file, offset, re, t0) {
  for (const { line, t } of logLinesSince(file, offset)) {
    const m = re.exec(line);
    if (m) return { ms: Number.isFinite(t) ? t - t0 : undefined, m };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The load: kv-bench --total.

function runLoad(cluster, samples) {
  const maxS = Math.max(600, Math.ceil(PUTS / MIN_PUTS_PER_S));
  const benchArgs = [
    benchJs, '--endpoints', cluster.endpoints.join(','), '--op', 'put', '--total', String(PUTS), '--duration', String(maxS), '--warmup', '0',
    '--clients', String(CLIENTS), '--connections', String(CONNECTIONS), '--keyspace', String(KEYSPACE), '--key-size', String(KEY_SIZE),
    '--value-size', String(VALUE_SIZE), '--json', '--progress', 'lines', '--interval', PUTS >= 200_000 ? '10' : '2',
  ];
  const child = track(spawn(process.execPath, benchArgs, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }));
  child.isBench = true;
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const sample = () => {
    for (const n of cluster.nodes) {
      const s = samples[n.id];
      s.peakDirBytes = Math.max(s.peakDirBytes, dataDirSize(n.dataDir).total);
      s.maxRssKb = Math.max(s.maxRssKb, readRssKb(n.proc.pid) ?? 0);
    }
  };
  const sampler = setInterval(sample, SAMPLE_MS);
  const killer = setTimeout(() => {
    say(`kv-bench (pid ${child.pid}) overran: SIGKILL`);
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
  }, (maxS + 60) * 1000);
  return exited(child).then(async ({ code, signal }) => {
    clearInterval(sampler);
    clearTimeout(killer);
    sample();
    await new Promise((r) => (child.stdout.readableEnded ? r() : child.stdout.once('end', r)));
    try {
      return JSON.parse(out.trim().split('\n').pop() ?? '');
    } catch {
      throw new Error(`kv-bench failed (${signal ?? `exit ${code}`}): ${out.slice(0, 500)}`);
    }
  });
}

/** Waits until every node has applied the leader's commit index (bounded). */
async function settle(cluster) {
  const deadline = Date.now() + SETTLE_DEADLINE_MS;
  while (Date.now() < deadline) {
    checkInterrupted();
    const l = await leaderStatus(cluster);
    if (l) {
      const all = await Promise.all(cluster.nodes.map((n) => nodeStatus(n.clientAddr).catch(() => undefined)));
      if (all.every((s) => s && s.appliedIndex >= l.commitIndex)) return;
    }
    await sleep(100);
  }
  say(`not every node applied the leader's commit within ${SETTLE_DEADLINE_MS} ms; measuring anyway`);
}

/** Reads every key back through the SDK: the live data is the sum of key + value bytes. */
async function liveData(cluster) {
  const kv = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 10_000 });
  let keys = 0;
  let bytes = 0;
  let next = 0;
  try {
    const worker = async () => {
      while (next < KEYSPACE) {
        checkInterrupted();
        // kv-bench's keys: zero-padded decimal, KEY_SIZE bytes.
        const key = String(next++).padStart(KEY_SIZE, '0');
        const v = await kv.getBytes(key);
        if (v !== undefined) {
          keys++;
          bytes += key.length + v.length;
        }
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
  } finally {
    kv.close();
  }
  return { keys, bytes };
}

async function nodeReport(cluster, n) {
  const s = await nodeStatus(n.clientAddr).catch(() => undefined);
  return { id: n.id, role: s?.role ?? 'down', appliedIndex: s?.appliedIndex, lastLogIndex: s?.lastLogIndex, snapshotIndex: s?.snapshotIndex, size: dataDirSize(n.dataDir) };
}

// ---------------------------------------------------------------------------------------------
// Restart and catch-up.

/** SIGTERM (clean stop) and start `id` again; times to 'node started' and to catching up. */
async function restartFollower(cluster, id) {
  const n = cluster.nodes[id - 1];
  say(`restart: SIGTERM node ${id} (pid ${n.proc.pid})`);
  const tStop = Date.now();
  const [stopped] = await stopProcs([n.proc], say);
  const stopMs = Date.now() - tStop;
  const sizeAtRestart = dataDirSize(n.dataDir);
  const leader = await leaderStatus(cluster);
  if (!leader) throw new Error('restart: no leader answers');
  const offset = logSize(n.logFile);
  const t0 = Date.now();
  const proc = cluster.start(id);
  const readyMs = await untilApplied(n.clientAddr, leader.commitIndex, t0, RESTART_DEADLINE_MS, proc);
  const booted = logged(n.logFile, offset, / INFO {2}starting /, t0);
  const started = logged(n.logFile, offset, / INFO {2}node started /, t0);
  const restored = logged(n.logFile, offset, /restored snapshot .*\bindex=(\d+)/, t0);
  const result = {
    node: id,
    stop: stopped.signal ?? `exit ${stopped.code}`,
    stopMs,
    commitAtRestart: leader.commitIndex,
    dataDirBytes: sizeAtRestart.total,
    startingMs: booted?.ms,
    nodeStartedMs: started?.ms,
    restoredSnapshot: restored ? Number(restored.m[1]) : undefined,
    readyMs,
  };
  say(`restart: node ${id} ${readyMs === undefined ? `did not catch up within ${RESTART_DEADLINE_MS} ms` : `applied ${leader.commitIndex} after ${readyMs} ms`}` +
    `; 'node started' after ${started?.ms ?? '?'} ms`);
  if (readyMs === undefined) say(`node ${id}'s log:\n${cluster.tailLogs()}`);
  return result;
}

/**
 * SIGKILL `id` and wipe its data dir; replace it with a new node (remove `id`, start the new one
 * with --join, add it as a learner); time until the new node holds the leader's commit.
 */
async function replaceWiped(cluster, id) {
  const old = cluster.nodes[id - 1];
  say(`catch-up: SIGKILL node ${id} (pid ${old.proc.pid}), wipe ${old.dataDir}, remove it and add a new node in its place`);
  process.kill(old.proc.pid, 'SIGKILL');
  await exited(old.proc);
  fs.rmSync(old.dataDir, { recursive: true, force: true });
  old.removed = true;
  const live = () => cluster.nodes.filter((o) => !o.removed).map((o) => o.clientAddr);
  // A node restarted just now may not have been heard from again yet: no live quorum for a moment.
  for (const deadline = Date.now() + 10_000; ; await sleep(200)) {
    const removed = await memberCall(live(), 'MemberRemove', { id, force: false }).then(() => true, (e) => {
      if (Date.now() > deadline || !/no live quorum/.test(e.details ?? '')) throw e;
      return false;
    });
    if (removed) break;
  }
  const leader = await leaderStatus(cluster);
  if (!leader) throw new Error('catch-up: no leader answers');
  // Whoever leads when the node comes in sends the snapshot: leadership may have moved since.
  const others = cluster.nodes.filter((o) => !o.removed).map((o) => ({ file: o.logFile, offset: logSize(o.logFile) }));
  const t0 = Date.now();
  const n = await cluster.join();
  const offset = 0;
  const proc = n.proc;
  await memberCall(live().filter((a) => a !== n.clientAddr), 'MemberAdd', { id: n.id, peerAddr: n.peerAddr, clientAddr: n.clientAddr, learner: true });
  const caughtUpMs = await untilApplied(n.clientAddr, leader.commitIndex, t0, CATCHUP_DEADLINE_MS, proc);
  const started = logged(n.logFile, offset, / INFO {2}node started /, t0);
  const installed = logged(n.logFile, offset, /installed snapshot (\d+) from the leader/, t0);
  const sentRe = new RegExp(`sent snapshot (\\d+) \\((\\d+) bytes\\) to node ${n.id}\\b`);
  const sent = others
    .flatMap((o) => logLinesSince(o.file, o.offset))
    .map((l) => sentRe.exec(l.line))
    .filter(Boolean)
    .map((m) => ({ index: Number(m[1]), bytes: Number(m[2]) }));
  const result = {
    node: n.id,
    replaced: id,
    commitAtRestart: leader.commitIndex,
    nodeStartedMs: started?.ms,
    installedSnapshotMs: installed?.ms,
    installedSnapshot: installed ? Number(installed.m[1]) : undefined,
    snapshotsSent: sent,
    caughtUpMs,
    dataDirBytes: dataDirSize(n.dataDir).total,
  };
  if (caughtUpMs !== undefined) await memberCall(live(), 'MemberPromote', { id: n.id });
  say(`catch-up: node ${n.id} ${caughtUpMs === undefined ? `did not catch up within ${CATCHUP_DEADLINE_MS} ms` : `applied ${leader.commitIndex} after ${caughtUpMs} ms`}; ` +
    `leader sent ${sent.length ? sent.map((s) => `snapshot ${s.index} (${s.bytes} bytes)`).join(', ') : 'no snapshot'}`);
  if (caughtUpMs === undefined) say(`logs:\n${cluster.tailLogs()}`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The run.

const started = new Date();
const load0 = os.loadavg();
say(`${PUTS.toLocaleString('en-US')} puts, ${CLIENTS} clients; kv-server defaults --snapshot-threshold ${DEFAULT_SNAPSHOT_THRESHOLD} --snapshot-retain ${DEFAULT_SNAPSHOT_RETAIN}, fsync on`);
const dir = makeTempDir('kv-bench-snapshot-');
const report = { started, load0, puts: PUTS, clients: CLIENTS, snapshotThreshold: DEFAULT_SNAPSHOT_THRESHOLD, snapshotRetain: DEFAULT_SNAPSHOT_RETAIN };
let cluster;
let failed;
try {
  cluster = await startRaftkv({ dir, say, isInterrupted });
  say(`cluster in ${dir}: leader node ${cluster.leader}; ${cluster.nodes.map((n) => `node ${n.id} pid ${n.proc.pid}`).join(', ')}`);
  report.leader = cluster.leader;

  const samples = Object.fromEntries(cluster.nodes.map((n) => [n.id, { peakDirBytes: 0, maxRssKb: 0 }]));
  const load = await runLoad(cluster, samples);
  report.load = { ops: load.ops, errors: load.errors, elapsedS: load.elapsedS, opsPerSec: load.opsPerSec, latencyMs: load.latencyMs, interrupted: load.interrupted };
  say(`load: ${load.ops} puts in ${load.elapsedS.toFixed(1)} s (${Math.round(load.opsPerSec)}/s), ${load.errors} errors`);
  checkInterrupted();

  await settle(cluster);
  report.live = await liveData(cluster);
  report.afterLoad = [];
  for (const n of cluster.nodes) report.afterLoad.push({ ...(await nodeReport(cluster, n)), ...samples[n.id] });
  report.leaderCommit = (await leaderStatus(cluster))?.commitIndex;

  const leaderId = (await leaderStatus(cluster))?.nodeId ?? cluster.leader;
  const followers = cluster.nodes.map((n) => n.id).filter((id) => id !== leaderId);
  report.restart = await restartFollower(cluster, followers[0]);
  checkInterrupted();
  report.catchUp = await replaceWiped(cluster, followers[1]);
  report.atEnd = [];
  for (const n of cluster.nodes.filter((x) => !x.removed)) report.atEnd.push(await nodeReport(cluster, n));
} catch (e) {
  failed = e;
  if (!isInterrupted()) say(`failed: ${e.stack ?? e}${cluster ? `\n${cluster.tailLogs()}` : ''}`);
} finally {
  if (cluster) {
    const codes = await cluster.stop();
    say(`cluster stopped (${codes.map((c) => c.signal ?? `exit ${c.code}`).join(', ')})`);
  }
  if (KEEP) {
    fs.cpSync(dir, KEEP, { recursive: true });
    say(`logs and data dirs copied to ${KEEP}`);
  }
  removeTempDir(dir);
}
report.load1 = os.loadavg();

// ---------------------------------------------------------------------------------------------
// Report (stdout).

const fmt = (v) => (v === undefined || !Number.isFinite(v) ? '-' : Math.round(v).toLocaleString('en-US'));
const mib = (b) => (b === undefined ? '-' : `${(b / 2 ** 20).toFixed(2)} MiB`);
if (JSON_OUT) {
  process.stdout.write(JSON.stringify(report) + '\n');
} else if (report.afterLoad) {
  const out = [];
  const p = (s = '') => out.push(s);
  const cpus = os.cpus();
  const data = report.live;
  p(`## bench-snapshot: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`);
  p();
  p(
    `3-node cluster on 127.0.0.1, fsync on, --snapshot-threshold ${report.snapshotThreshold} --snapshot-retain ${report.snapshotRetain} (defaults). ` +
      `Load: ${fmt(report.load.ops)} puts (${report.load.errors} errors) of ${VALUE_SIZE}-byte values over ${fmt(KEYSPACE)} ${KEY_SIZE}-byte keys, ` +
      `${CLIENTS} clients: ${report.load.elapsedS.toFixed(0)} s, ${fmt(report.load.opsPerSec)} puts/s, p50 ${report.load.latencyMs.p50.toFixed(2)} / p99 ${report.load.latencyMs.p99.toFixed(2)} ms. ` +
      `Leader commit index ${fmt(report.leaderCommit)}. Load average ${load0.map((x) => x.toFixed(2)).join(' ')} before, ${report.load1.map((x) => x.toFixed(2)).join(' ')} after.`,
  );
  p();
  p(`Live data: ${fmt(data.keys)} keys, ${fmt(data.bytes)} bytes of key + value (${mib(data.bytes)}).`);
  p();
  p('| node (after the load) | data dir | × live | raft.db | -wal | snap/ (files) | snapshot index | applied | peak data dir | max RSS |');
  p('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of report.afterLoad) {
    p(
      `| ${r.id} (${r.role}) | ${mib(r.size.total)} | ${(r.size.total / data.bytes).toFixed(2)}× | ${mib(r.size.db)} | ${mib(r.size.wal)} | ` +
        `${mib(r.size.snap)} (${r.size.snapFiles}) | ${fmt(r.snapshotIndex)} | ${fmt(r.appliedIndex)} | ${mib(r.peakDirBytes)} (${(r.peakDirBytes / data.bytes).toFixed(2)}×) | ${fmt(r.maxRssKb / 1024)} MB |`,
    );
  }
  const ms = (v) => (v === undefined ? 'not reached' : `${fmt(v)} ms`);
  p();
  p('| | figure |');
  p('|---|---:|');
  if (report.restart) {
    const r = report.restart;
    p(`| restart: node ${r.node} (follower, ${mib(r.dataDirBytes)} data dir) stopped by SIGTERM | ${ms(r.stopMs)} (${r.stop}) |`);
    p(`| restart: spawn → 'starting' (Node up, modules loaded) | ${ms(r.startingMs)} |`);
    p(`| restart: spawn → 'node started' (restored snapshot ${fmt(r.restoredSnapshot)}) | ${ms(r.nodeStartedMs)} |`);
    p(`| **restart: spawn → Status appliedIndex ≥ leader commit ${fmt(r.commitAtRestart)}** (target < ${TARGET_RESTART_MS / 1000} s) | **${ms(r.readyMs)}** |`);
  }
  if (report.catchUp) {
    const c = report.catchUp;
    const sent = c.snapshotsSent.length ? c.snapshotsSent.map((s) => `${fmt(s.bytes)} B (snapshot ${fmt(s.index)})`).join(', ') : 'none logged';
    p(`| wiped follower ${c.replaced} replaced by node ${c.node} (--join, added as a learner): spawn → 'node started' | ${ms(c.nodeStartedMs)} |`);
    p(`| wiped follower: spawn → snapshot ${fmt(c.installedSnapshot)} installed | ${ms(c.installedSnapshotMs)} |`);
    p(`| **wiped follower: spawn → appliedIndex ≥ leader commit ${fmt(c.commitAtRestart)}** | **${ms(c.caughtUpMs)}** |`);
    p(`| wiped follower: snapshot bytes the leader sent | ${sent} |`);
  }
  if (report.atEnd) {
    p();
    p(`At the end: ${report.atEnd.map((r) => `node ${r.id} ${r.role}, ${mib(r.size.total)} (${(r.size.total / data.bytes).toFixed(2)}×), snapshot ${fmt(r.snapshotIndex)}, ${r.size.snapFiles} snapshot file(s)`).join('; ')}.`);
  }
  const worst = Math.max(...report.afterLoad.map((r) => r.size.total)) / data.bytes;
  p();
  p(`Targets: data dir < ${TARGET_RATIO}× live: ${worst < TARGET_RATIO ? 'met' : 'missed'} (largest ${worst.toFixed(2)}×); ` +
    `restart < ${TARGET_RESTART_MS / 1000} s: ${report.restart?.readyMs !== undefined && report.restart.readyMs < TARGET_RESTART_MS ? 'met' : 'missed'}.`);
  if (failed) p(`\n**Incomplete: ${isInterrupted() ? 'interrupted' : failed.message.split('\n')[0]}.**`);
  process.stdout.write(out.join('\n') + '\n');
}
if (live.size > 0) {
  say(`still running: ${[...live.keys()].join(', ')}; killing`);
  killAllNow();
}
process.exit(isInterrupted() ? 130 : failed ? 1 : 0);
