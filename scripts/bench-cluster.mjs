#!/usr/bin/env node
// `make bench-kv`: the standard KV table of issue 6 against a fresh local cluster.
//
// For each target (raftkv; etcd too with BENCH_TARGETS=raftkv,etcd) and each round: starts a
// fresh 3-node cluster on 127.0.0.1 in a temp dir (free ports, fsync on: the default), waits for
// a leader, runs kv-bench (build/src/tools/kv-bench.js, one child process per workload) through
// the standard workloads, samples every server's RSS (VmRSS) and CPU time from /proc while they
// run, stops the cluster by PID (SIGTERM, SIGKILL after a deadline) and removes the temp dir.
// Prints one markdown table per target (and a side-by-side one for two targets). Nothing is
// left running, also on Ctrl-C or an error. Needs the build (npx tsc -p .).
//
// Environment (all optional):
//   BENCH_DURATION=8      seconds measured per workload      BENCH_WARMUP=1   warm-up seconds
//   BENCH_TARGETS=raftkv  comma list of raftkv, etcd          BENCH_ROUNDS=1   fresh clusters per target
//   BENCH_WORKLOADS=...   comma list of workload ids (put1,put16,put64,put256,get1,get64,mixed64,sget64)
//   BENCH_CPU_PROF=DIR    run the raftkv servers under node --cpu-prof, profiles kept in DIR
//   BENCH_JSON=FILE       also write every run's kv-bench JSON (and samples) to FILE
//   BENCH_TLS=1           raftkv with mutual TLS on both ports (certificates by openssl, scripts/make-certs.mjs)
//   BENCH_UNARY=1         raftkv's SDK with one unary gRPC call per operation instead of its default stream
//   BENCH_NODE_ARGS="..." node options for the raftkv servers (e.g. --heap-growing-percent=0 for V8's default)
import {
  benchJs, envNumber, exited, indexJs, killAllNow, live, makeTempDir, onInterrupt, readRssKb, removeTempDir, reporter, requireBuild, root,
  serverJs, sleep, startRaftkv as startRaftkvCluster, track,
} from './cluster-procs.mjs';
import { makeCerts } from './make-certs.mjs';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const etcdClusterMjs = path.join(root, 'test/bench/etcd/etcd-cluster.mjs');
const etcdTargetJs = path.join(root, 'build/test/bench/etcd/etcd-target.js');
const N = 3;
const LEADER_DEADLINE_MS = 30_000;
const SAMPLE_MS = 200;

const { say, fail } = reporter('bench');
const num = (name, dflt) => envNumber(name, dflt, fail);

const DURATION = num('BENCH_DURATION', 8);
const WARMUP = num('BENCH_WARMUP', 1);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 1)));
if (DURATION <= 0) fail('BENCH_DURATION must be > 0');
const TARGETS = (process.env.BENCH_TARGETS || 'raftkv').split(',').map((s) => s.trim()).filter(Boolean);
for (const t of TARGETS) if (t !== 'raftkv' && t !== 'etcd') fail(`BENCH_TARGETS: unknown target ${t} (raftkv, etcd)`);
const CPU_PROF = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
const TLS = process.env.BENCH_TLS === '1';
/** Node options for the raftkv servers (e.g. V8 heap flags), to compare a setting side by side. */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const UNARY = process.env.BENCH_UNARY === '1';
/** The certificates of the raftkv cluster being measured, with BENCH_TLS=1. */
let certs;
const JSON_OUT = process.env.BENCH_JSON ? path.resolve(process.env.BENCH_JSON) : undefined;

/** The standard table of issue 6; `etcdOnly` rows run against etcd only. */
const ALL_WORKLOADS = [
  { id: 'put1', label: 'put, 1 client', args: ['--op', 'put', '--clients', '1'] },
  { id: 'put16', label: 'put, 16 clients', args: ['--op', 'put', '--clients', '16'] },
  { id: 'put64', label: 'put, 64 clients', args: ['--op', 'put', '--clients', '64'] },
  { id: 'put256', label: 'put, 256 clients', args: ['--op', 'put', '--clients', '256'] },
  { id: 'get1', label: 'linearizable get, 1 client', args: ['--op', 'get', '--clients', '1'] },
  { id: 'get64', label: 'linearizable get, 64 clients', args: ['--op', 'get', '--clients', '64'] },
  { id: 'sget64', label: 'serializable get, 64 clients', args: ['--op', 'get', '--clients', '64', '--serializable'] },
  { id: 'mixed64', label: 'mixed 90/10, 64 clients', args: ['--op', 'mixed', '--read-ratio', '0.9', '--clients', '64'] },
  // Issue 14's state at scale (not in the default set): 1,000,000 puts, 16-byte keys over 1,000,000, 100-byte values.
  {
    id: 'put1m',
    label: '1M puts over 1M keys, 64 clients',
    own: ['--op', 'put', '--clients', '64', '--key-size', '16', '--value-size', '100', '--keyspace', '1000000', '--connections', '3', '--total', '1000000', '--warmup', '0'],
    // kv-bench caps a --total run at 600 s.
    maxS: 600,
  },
];
const wanted = process.env.BENCH_WORKLOADS ? new Set(process.env.BENCH_WORKLOADS.split(',').map((s) => s.trim())) : new Set(ALL_WORKLOADS.filter((w) => !w.own).map((w) => w.id));
if (wanted) for (const id of wanted) if (!ALL_WORKLOADS.some((w) => w.id === id)) fail(`BENCH_WORKLOADS: unknown workload ${id}`);
const WORKLOADS = ALL_WORKLOADS.filter((w) => !wanted || wanted.has(w.id));
const COMMON = ['--key-size', '8', '--value-size', '256', '--keyspace', '10000', '--connections', '3', '--duration', String(DURATION), '--warmup', String(WARMUP)];

requireBuild([serverJs, benchJs, indexJs], fail);
let etcd;
if (TARGETS.includes('etcd')) {
  requireBuild([etcdTargetJs], fail);
  etcd = await import(etcdClusterMjs);
  if (!etcd.etcdVersion()) fail('BENCH_TARGETS has etcd, but there is no etcd binary: apt-get install etcd-server (or set ETCD_BIN)');
}

// Nothing we start outlives us (cluster-procs.mjs).
const isInterrupted = onInterrupt(say, (sig) => {
  // On Ctrl-C the current kv-bench child gets SIGINT too (same process group); pass a SIGTERM on.
  if (sig === 'SIGTERM') for (const [pid, c] of live) if (c.isBench) try { process.kill(pid, 'SIGINT'); } catch { /* gone */ }
});

// ---------------------------------------------------------------------------------------------
// /proc sampling: RSS and CPU time per server.

const CLK_TCK = 100; // Linux USER_HZ on every mainstream kernel build (getconf CLK_TCK)

/** utime + stime of `pid`, in seconds. */
function readCpuS(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15
  } catch {
    return undefined;
  }
}

/** CPU seconds the whole machine spent busy (all cores; /proc/stat, not idle or iowait). */
function readMachineBusyS() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + steal) / CLK_TCK;
  } catch {
    return NaN;
  }
}

class Sampler {
  constructor(servers) {
    this.servers = servers; // [{ name, pid }]
    this.maxRssKb = new Map(servers.map((s) => [s.name, 0]));
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.sample();
  }
  sample() {
    for (const s of this.servers) {
      const kb = readRssKb(s.pid);
      if (kb !== undefined && kb > this.maxRssKb.get(s.name)) this.maxRssKb.set(s.name, kb);
    }
  }
  cpu() {
    return this.servers.map((s) => readCpuS(s.pid) ?? 0);
  }
  stop() {
    clearInterval(this.timer);
    this.sample();
  }
}

// ---------------------------------------------------------------------------------------------
// Clusters. Each returns { endpoints, servers: [{ name, pid }], stop(), tailLogs() }.


function startRaftkv(dir) {
  if (CPU_PROF) fs.mkdirSync(CPU_PROF, { recursive: true });
  const nodeArgs = (id) => [...NODE_ARGS, ...(CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF, '--cpu-prof-name', `raftkv-node${id}-${Date.now()}.cpuprofile`] : [])];
  if (!TLS) return startRaftkvCluster({ dir, n: N, say, nodeArgs, isInterrupted, leaderDeadlineMs: LEADER_DEADLINE_MS });
  certs = makeCerts(path.join(dir, 'certs'), N);
  const serverArgs = (id) => [
    '--cert-file', certs.node(id).cert, '--key-file', certs.node(id).key, '--trusted-ca-file', certs.ca, '--client-cert-auth',
    '--peer-cert-file', certs.node(id).cert, '--peer-key-file', certs.node(id).key, '--peer-trusted-ca-file', certs.ca,
  ];
  const clientTls = { ca: fs.readFileSync(certs.ca), cert: fs.readFileSync(certs.client.cert), key: fs.readFileSync(certs.client.key) };
  return startRaftkvCluster({ dir, n: N, say, nodeArgs, serverArgs, clientTls, isInterrupted, leaderDeadlineMs: LEADER_DEADLINE_MS });
}

async function startEtcd(dir) {
  const c = await etcd.startEtcdCluster({ dir, size: N });
  for (const m of c.members) track(m.child);
  const { findEtcdLeader } = await import(etcdTargetJs);
  const deadline = Date.now() + LEADER_DEADLINE_MS;
  let leader;
  while (!isInterrupted() && Date.now() < deadline && c.members.every((m) => m.child.exitCode === null)) {
    leader = await findEtcdLeader(c.endpoints, 1000);
    if (leader) break;
    await sleep(200);
  }
  const cluster = { endpoints: c.endpoints, servers: c.members.map((m) => ({ name: m.name, pid: m.pid })), stop: c.stop, tailLogs: c.tailLogs, leader: leader?.endpoint, version: leader?.version };
  if (!leader) {
    await c.stop();
    throw new Error(`etcd: no leader within ${LEADER_DEADLINE_MS} ms\n${c.tailLogs()}`);
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// One kv-bench run.

/**
 * Runs kv-bench once; resolves its JSON result plus `window`: the servers' CPU seconds and the
 * wall time between its 'start' and 'end' marks (fd 3), i.e. over exactly the measured window.
 */
function runBench(target, endpoints, w, sampler) {
  const tlsArgs = TLS && target === 'raftkv' ? ['--cacert', certs.ca, '--cert', certs.client.cert, '--key', certs.client.key] : [];
  if (UNARY && target === 'raftkv') tlsArgs.push('--unary');
  const args = [benchJs, '--target', target, '--endpoints', endpoints.join(','), ...(w.own ?? [...COMMON, ...w.args]), ...tlsArgs, '--json', '--progress', process.stderr.isTTY ? 'bar' : 'none'];
  const child = track(
    spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit', 'pipe'], env: { ...process.env, KV_BENCH_MARK_FD: '3' } }),
  );
  child.isBench = true;
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const marks = {};
  let markBuf = '';
  child.stdio[3].setEncoding('utf8').on('data', (d) => {
    markBuf += d;
    let nl;
    while ((nl = markBuf.indexOf('\n')) >= 0) {
      const m = markBuf.slice(0, nl).trim();
      markBuf = markBuf.slice(nl + 1);
      if (m === 'start' || m === 'end') marks[m] = { t: Date.now(), cpu: sampler.cpu(), machine: readMachineBusyS() };
    }
  });
  // Bound: warm-up + duration + the op timeout + slack.
  const killer = setTimeout(() => {
    say(`kv-bench (pid ${child.pid}) overran: SIGKILL`);
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
  }, ((w.maxS ?? WARMUP + DURATION) + 30) * 1000);
  return exited(child).then(async ({ code, signal }) => {
    clearTimeout(killer);
    await new Promise((r) => (child.stdout.readableEnded ? r() : child.stdout.once('end', r)));
    const line = out.trim().split('\n').pop() ?? '';
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      throw new Error(`kv-bench ${w.id} failed (${signal ?? `exit ${code}`}): ${out.slice(0, 500)}`);
    }
    const window =
      marks.start && marks.end
        ? {
            wallS: (marks.end.t - marks.start.t) / 1000,
            serverCpuS: marks.end.cpu.map((c, i) => c - marks.start.cpu[i]),
            machineBusyS: marks.end.machine - marks.start.machine,
          }
        : undefined;
    return { r, window };
  });
}

// ---------------------------------------------------------------------------------------------
// Rounds.

const results = []; // { target, round, workload, r, serverCpuS: number[], wallS }
const rssByTarget = new Map(); // target -> Map(server -> [max kB per round])
const versions = new Map();

async function runTarget(target, round) {
  const dir = makeTempDir(`kv-bench-${target}-`);
  let cluster;
  try {
    say(`${target} round ${round}: starting a 3-node cluster in ${dir}`);
    cluster = target === 'raftkv' ? await startRaftkv(dir) : await startEtcd(dir);
    versions.set(target, target === 'etcd' ? `etcd ${cluster.version}` : 'raftkv');
    say(`${target}: leader ${cluster.leader}; servers ${cluster.servers.map((s) => `${s.name}=pid ${s.pid}`).join(', ')}`);
    const sampler = new Sampler(cluster.servers);
    try {
      for (const w of WORKLOADS) {
        if (isInterrupted()) break;
        if (w.etcdOnly && target !== 'etcd') continue;
        loadSeen.push(os.loadavg()[0]);
        const { r, window } = await runBench(target, cluster.endpoints, w, sampler);
        // Without marks (an interrupted run), no server CPU figure.
        const serverCpuS = window?.serverCpuS ?? cluster.servers.map(() => NaN);
        const wallS = window?.wallS ?? NaN;
        // Cores busy with anything but this cluster and this kv-bench (other work on the machine).
        const otherCores = ((window?.machineBusyS ?? NaN) - sum(serverCpuS)) / wallS - r.loadgenCpuCores;
        results.push({ target, round, workload: w, r, serverCpuS, wallS, otherCores });
        say(
          `${target} ${w.label}: ${fmt(r.opsPerSec)} ops/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, ` +
            `errors ${r.errors}; loadgen ${r.loadgenCpuCores.toFixed(2)} cores, servers ${(sum(serverCpuS) / wallS).toFixed(2)} cores, ` +
            `other processes ${Math.max(0, otherCores).toFixed(2)} cores`,
        );
        for (const s of r.errorSamples ?? []) say(`  ${s.count} x ${s.message}`);
      }
    } finally {
      sampler.stop();
      const m = rssByTarget.get(target) ?? new Map();
      for (const [name, kb] of sampler.maxRssKb) m.set(name, [...(m.get(name) ?? []), kb]);
      rssByTarget.set(target, m);
    }
  } finally {
    if (cluster) {
      const codes = await cluster.stop();
      say(`${target}: cluster stopped (${codes.map((c) => c.signal ?? `exit ${c.code}`).join(', ')})`);
    }
    removeTempDir(dir);
  }
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

function fmt(v) {
  return Math.round(v).toLocaleString('en-US');
}

/**
 * This disk's fdatasync, where the clusters keep their data: 4 KiB appended and synced, `n` times;
 * p50 and p99 in ms. Disks differ several-fold between machines, so the figure goes beside the table.
 */
function fdatasyncMs(n = 300) {
  const dir = makeTempDir('kv-bench-fsync-');
  const fd = fs.openSync(path.join(dir, 'probe'), 'w');
  const block = Buffer.alloc(4096, 1);
  const ms = [];
  try {
    for (let i = 0; i < n; i++) {
      fs.writeSync(fd, block);
      const t = performance.now();
      fs.fdatasyncSync(fd);
      ms.push(performance.now() - t);
    }
  } finally {
    fs.closeSync(fd);
    removeTempDir(dir);
  }
  ms.sort((a, b) => a - b);
  return { p50: ms[Math.floor(n * 0.5)], p99: ms[Math.floor(n * 0.99)] };
}

const loadSeen = []; // 1-minute load average at the start of each run
const fsync0 = fdatasyncMs();
const load0 = os.loadavg();
const started = new Date();
try {
  for (let round = 1; round <= ROUNDS && !isInterrupted(); round++) {
    // Alternate the order, so that neither target always runs on a warmer (or busier) machine.
    const order = round % 2 === 1 ? TARGETS : [...TARGETS].reverse();
    for (const t of order) if (!isInterrupted()) await runTarget(t, round);
  }
} catch (e) {
  say(`failed: ${e.stack ?? e}`);
  killAllNow();
  process.exit(1);
}
const load1 = os.loadavg();
const fsync1 = fdatasyncMs();

// ---------------------------------------------------------------------------------------------
// Report (stdout).

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Per target and workload: the run with the median ops/s, and the min..max over rounds. */
function summary(target, w) {
  const runs = results.filter((x) => x.target === target && x.workload.id === w.id);
  if (runs.length === 0) return undefined;
  const sorted = [...runs].sort((a, b) => a.r.opsPerSec - b.r.opsPerSec);
  const med = sorted[Math.floor((sorted.length - 1) / 2)];
  const ops = runs.map((x) => x.r.opsPerSec);
  return {
    med,
    opsMedian: median(ops),
    min: Math.min(...ops),
    max: Math.max(...ops),
    errors: runs.reduce((a, x) => a + x.r.errors, 0),
    n: runs.length,
  };
}

const out = [];
const p = (s = '') => out.push(s);
const cpus = os.cpus();
p(`## kv-bench: ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'cpu'}, Node ${process.version}`);
p();
p(
  `3-node clusters on 127.0.0.1, fsync on; ${DURATION} s measured after ${WARMUP} s warm-up per workload; 8-byte keys over 10,000, ` +
    `256-byte values; 3 connections; ${ROUNDS} round(s)${ROUNDS > 1 ? ' (ops/s: median, min..max; latency of the median run)' : ''}. ` +
    `Load average (1/5/15 min) ${load0.map((x) => x.toFixed(2)).join(' ')} before, ${load1.map((x) => x.toFixed(2)).join(' ')} after; ` +
    `1-min load at the start of each run ${Math.min(...loadSeen).toFixed(2)}..${Math.max(...loadSeen).toFixed(2)}.`,
);
p(
  `This disk's fdatasync (4 KiB appended, ${os.tmpdir()}), p50 / p99: ${fsync0.p50.toFixed(3)} / ${fsync0.p99.toFixed(3)} ms before the runs, ` +
    `${fsync1.p50.toFixed(3)} / ${fsync1.p99.toFixed(3)} ms after.`,
);
if (isInterrupted()) p('\n**Interrupted: partial results.**');
for (const target of TARGETS) {
  p();
  p(`### ${target === 'etcd' ? versions.get('etcd') ?? 'etcd' : 'raftkv'}`);
  p();
  p('| workload | ops/s | p50 ms | p99 ms | errors |');
  p('|---|---:|---:|---:|---:|');
  for (const w of WORKLOADS) {
    const s = summary(target, w);
    if (!s) continue;
    const ops = s.n > 1 ? `${fmt(s.opsMedian)} (${fmt(s.min)}..${fmt(s.max)})` : fmt(s.opsMedian);
    p(`| ${w.label} | ${ops} | ${s.med.r.latencyMs.p50.toFixed(2)} | ${s.med.r.latencyMs.p99.toFixed(2)} | ${s.errors} |`);
  }
  const rss = rssByTarget.get(target);
  const mb = (kb) => (kb / 1024).toFixed(0);
  if (rss) {
    p(
      `\nMax RSS (VmRSS) during the runs: ${[...rss].map(([n, kbs]) => `${n} ${mb(Math.max(...kbs))} MB${kbs.length > 1 ? ` (per round ${kbs.map(mb).join(', ')})` : ''}`).join('; ')}.`,
    );
  }
}
if (TARGETS.length === 2 && TARGETS.includes('raftkv') && TARGETS.includes('etcd')) {
  p();
  p('### raftkv / etcd');
  p();
  p('| workload | raftkv ops/s | etcd ops/s | ratio | raftkv p50 / p99 ms | etcd p50 / p99 ms |');
  p('|---|---:|---:|---:|---:|---:|');
  for (const w of WORKLOADS) {
    const a = summary('raftkv', w);
    const b = summary('etcd', w);
    if (!a || !b) continue;
    const la = a.med.r.latencyMs;
    const lb = b.med.r.latencyMs;
    p(`| ${w.label} | ${fmt(a.opsMedian)} | ${fmt(b.opsMedian)} | ${(a.opsMedian / b.opsMedian).toFixed(2)}× | ${la.p50.toFixed(2)} / ${la.p99.toFixed(2)} | ${lb.p50.toFixed(2)} / ${lb.p99.toFixed(2)} |`);
  }
}
p();
p('### CPU over the measured window (median run): cores busy, and µs of CPU per operation');
p();
p('| target | workload | load generator | µs/op | servers (sum: each) | µs/op | other processes |');
p('|---|---|---:|---:|---:|---:|---:|');
for (const target of TARGETS) {
  for (const w of WORKLOADS) {
    const s = summary(target, w);
    if (!s) continue;
    const x = s.med;
    const serverS = sum(x.serverCpuS);
    p(
      `| ${target} | ${w.label} | ${x.r.loadgenCpuCores.toFixed(2)} | ${fmt(x.r.loadgenCpuUsPerOp)} | ${(serverS / x.wallS).toFixed(2)} ` +
        `(${x.serverCpuS.map((c) => (c / x.wallS).toFixed(2)).join(' + ')}) | ${x.r.ops > 0 && Number.isFinite(serverS) ? fmt((serverS * 1e6) / x.r.ops) : '-'} | ` +
        `${Number.isFinite(x.otherCores) ? Math.max(0, x.otherCores).toFixed(2) : '-'} |`,
    );
  }
}
p();
p('CPU times come from /proc (10 ms resolution). "Other processes": cores the rest of the machine kept busy during the window');
p('(/proc/stat less the servers and kv-bench); above ~0.1 the figures were taken on a shared machine.');
const others = results.map((x) => x.otherCores).filter(Number.isFinite);
if (others.length > 0) p(`\nOther processes over all runs: ${Math.max(0, Math.min(...others)).toFixed(2)}..${Math.max(...others).toFixed(2)} cores (median ${median(others).toFixed(2)}).`);
process.stdout.write(out.join('\n') + '\n');
if (JSON_OUT) {
  fs.writeFileSync(
    JSON_OUT,
    JSON.stringify({ started, load0, load1, loadSeen, rss: Object.fromEntries([...rssByTarget].map(([t, m]) => [t, Object.fromEntries(m)])), runs: results.map((x) => ({ ...x, workload: x.workload.id })) }, null, 1),
  );
  say(`runs written to ${JSON_OUT}`);
}
if (live.size > 0) {
  say(`still running: ${[...live.keys()].join(', ')}; killing`);
  killAllNow();
}
process.exit(isInterrupted() ? 130 : results.some((x) => x.r.ops === 0) ? 1 : 0);
