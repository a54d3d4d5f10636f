#!/usr/bin/env node
// `make bench-overload`: graceful degradation under overload (issue 11, item 8). On a fresh local
// 3-node cluster: kv-bench put at the concurrency that saturates the cluster (BENCH_PEAK_CLIENTS,
// default 1024) measures the peak; then 10× those clients for BENCH_OVERLOAD_DURATION seconds
// (default 30) measure the goodput under overload. Prints both, their ratio, the leader changes
// (terms before and after) and every error kind. Nothing is left running, also on Ctrl-C.
//
// Environment: BENCH_PEAK_CLIENTS=1024  BENCH_PEAK_DURATION=10  BENCH_OVERLOAD_FACTOR=10
//              BENCH_OVERLOAD_DURATION=30  BENCH_WARMUP=1
import { benchJs, envNumber, exited, indexJs, makeTempDir, onInterrupt, removeTempDir, reporter, requireBuild, root, serverJs, startRaftkv, track } from './cluster-procs.mjs';
import { spawn } from 'node:child_process';

const { say, fail } = reporter('overload');
const num = (name, dflt) => envNumber(name, dflt, fail);
const PEAK_CLIENTS = Math.round(num('BENCH_PEAK_CLIENTS', 1024));
const PEAK_S = num('BENCH_PEAK_DURATION', 10);
const FACTOR = num('BENCH_OVERLOAD_FACTOR', 10);
const OVERLOAD_S = num('BENCH_OVERLOAD_DURATION', 30);
const WARMUP = num('BENCH_WARMUP', 1);
requireBuild([serverJs, benchJs, indexJs], fail);

/** One kv-bench run (a child process); its JSON result. */
async function bench(endpoints, clients, durationS, connections) {
  const args = [benchJs, '--endpoints', endpoints.join(','), '--op', 'put', '--clients', String(clients), '--connections', String(connections),
    '--duration', String(durationS), '--warmup', String(WARMUP), '--timeout', '5000', '--json', '--progress', 'none'];
  const child = track(spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), (WARMUP + durationS + 60) * 1000);
  const { code } = await exited(child);
  clearTimeout(killer);
  try {
    return JSON.parse(out.trim().split('\n').pop() ?? '');
  } catch {
    throw new Error(`kv-bench failed (exit ${code}): ${out.slice(0, 400)}`);
  }
}

async function terms(endpoints) {
  const { KvClient } = await import(indexJs);
  const kv = new KvClient({ endpoints, timeoutMs: 3000 });
  try {
    return (await kv.status()).map((r) => (r.ok ? `${r.status.nodeId}:${r.status.role[0]}${r.status.term}` : 'down')).join(' ');
  } finally {
    kv.close();
  }
}

const dir = makeTempDir('raftkv-overload-');
let cluster;
onInterrupt(say, () => removeTempDir(dir));
try {
  cluster = await startRaftkv({ dir, say });
  const before = await terms(cluster.endpoints);
  say(`peak: put, ${PEAK_CLIENTS} clients, ${PEAK_S} s`);
  const peak = await bench(cluster.endpoints, PEAK_CLIENTS, PEAK_S, 3);
  const mid = await terms(cluster.endpoints);
  const overloadClients = Math.round(PEAK_CLIENTS * FACTOR);
  say(`overload: put, ${overloadClients} clients, ${OVERLOAD_S} s`);
  const over = await bench(cluster.endpoints, overloadClients, OVERLOAD_S, 10);
  const after = await terms(cluster.endpoints);
  const row = (name, r) =>
    `| ${name} | ${r.clients} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.errors} | ${r.latencyMs.p50.toFixed(1)} / ${r.latencyMs.p99.toFixed(1)} / ${r.latencyMs.max.toFixed(0)} | ${r.loadgenCpuCores.toFixed(2)} cores, ${r.loadgenLoopDelayMs.p99} / ${r.loadgenLoopDelayMs.max} ms |`;
  console.log('| run | clients | puts/s (goodput) | failed | p50 / p99 / max ms | load generator: CPU, event-loop delay p99 / max |');
  console.log('|---|---:|---:|---:|---|---|');
  console.log(row('peak', peak));
  console.log(row(`overload (${FACTOR}×)`, over));
  console.log(`\ngoodput under overload: ${((100 * over.opsPerSec) / peak.opsPerSec).toFixed(0)}% of peak`);
  console.log(`terms (node:role term): before ${before}; after the peak run ${mid}; after overload ${after}`);
  // Overload errors (ClusterOverloadedError) against the rest: what the issue allows and what it does not.
  const busy = over.errorsByKind.ClusterOverloadedError ?? 0;
  console.log(`failed under overload: ${over.errors}: ${busy} overload errors (ClusterOverloadedError), ${over.errors - busy} others ${JSON.stringify(over.errorsByKind)}`);
  const kinds = [...peak.errorSamples, ...over.errorSamples].map((s) => `${s.count} × ${s.message}`);
  console.log(kinds.length ? `errors:\n  ${kinds.join('\n  ')}` : 'errors: none');
} finally {
  await cluster?.stop();
  removeTempDir(dir);
}
