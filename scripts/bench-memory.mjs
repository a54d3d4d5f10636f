#!/usr/bin/env node
// Where each node's memory goes under issue 14's state at scale: 1,000,000 puts of 100-byte values
// with 16-byte keys over 1,000,000 keys, 64 clients, on a fresh local 3-node cluster. Every 3 s,
// per node: RSS split by /proc/PID/smaps into malloc's main arena ([heap]), anonymous mappings (V8's
// heap pages, other arenas), and files (the node binary, libraries); and from /metrics, V8's heap
// (committed and used; old, new and large-object spaces), external memory (ArrayBuffers), the last
// log index, the snapshot index and the keys. Ends with kv-bench's figures and each node's peak RSS.
// Linux only (/proc). Needs the build (npx tsc -p .).
//
// Environment (all optional):
//   BENCH_PUTS=1000000        puts to write
//   BENCH_NODE_ARGS="..."     node options for the servers (e.g. --heap-growing-percent=0 for V8's default)
//   BENCH_SERVER_ARGS="..."   kv-server flags added for every node
//   BENCH_KEEP=DIR            copy the nodes' logs to DIR (e.g. with BENCH_NODE_ARGS=--trace-gc)
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { benchJs, envNumber, indexJs, makeTempDir, onInterrupt, readRssKb, removeTempDir, reporter, requireBuild, serverJs, sleep, startRaftkv } from './cluster-procs.mjs';
import { freePorts } from '../build/test/support/ports.js';

const { say, fail } = reporter('bench-memory');
const PUTS = envNumber('BENCH_PUTS', 1_000_000, fail);
const SAMPLE_MS = 3000;
const MAX_S = 600;
const words = (name) => (process.env[name] ?? '').split(/\s+/).filter(Boolean);
requireBuild([serverJs, benchJs, indexJs], fail);
onInterrupt(say);

const MB = 1024 * 1024;
/** RSS in MB by kind of mapping. */
function smaps(pid) {
  const out = { arena: 0, anon: 0, file: 0 };
  let kind = 'anon';
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const m = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) kind = m[1] === '[heap]' ? 'arena' : m[1] === '' || m[1].startsWith('[') ? 'anon' : 'file';
    else if (line.startsWith('Rss:')) out[kind] += Number(/(\d+)/.exec(line)[1]) * 1024;
  }
  return `arena ${Math.round(out.arena / MB)} anon ${Math.round(out.anon / MB)} files ${Math.round(out.file / MB)}`;
}
async function metrics(port) {
  const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const n = (re) => Number(re.exec(t)?.[1] ?? NaN);
  const mb = (re) => Math.round(n(re) / MB);
  const space = (s, what) => mb(new RegExp(`^nodejs_heap_space_size_${what}_bytes\\{space="${s}"\\} (\\S+)`, 'm'));
  return (
    `heap ${mb(/^nodejs_heap_size_total_bytes (\S+)/m)} (used ${mb(/^nodejs_heap_size_used_bytes (\S+)/m)}; old ${space('old', 'total')}/${space('old', 'used')}, ` +
    `new ${space('new', 'total')}, large ${space('large_object', 'total')}) external ${mb(/^nodejs_external_memory_bytes (\S+)/m)} | ` +
    `log ${n(/^raftkv_server_last_log_index (\S+)/m)} snapshot ${n(/^raftkv_server_snapshot_index (\S+)/m)} keys ${n(/^raftkv_kv_keys (\S+)/m)}`
  );
}

const dir = makeTempDir('kv-bench-memory');
const ports = await freePorts(3);
let cluster;
try {
  cluster = await startRaftkv({ dir, say, nodeArgs: () => words('BENCH_NODE_ARGS'), serverArgs: (id) => ['--metrics-addr', `127.0.0.1:${ports[id - 1]}`, ...words('BENCH_SERVER_ARGS')] });
  say(`leader ${cluster.leader}; ${PUTS} puts`);
  const args = ['--op', 'put', '--clients', '64', '--key-size', '16', '--value-size', '100', '--keyspace', '1000000', '--connections', '3', '--total', String(PUTS), '--warmup', '0'];
  const bench = spawn(process.execPath, [benchJs, '--endpoints', cluster.endpoints.join(','), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  bench.stdout.on('data', (d) => (out += d));
  let done = false;
  bench.on('exit', () => (done = true));
  const peak = new Map();
  const t0 = Date.now();
  while (!done && Date.now() - t0 < MAX_S * 1000) {
    await sleep(SAMPLE_MS);
    for (const node of cluster.nodes) {
      const rss = Math.round(readRssKb(node.proc.pid) / 1024);
      peak.set(node.id, Math.max(peak.get(node.id) ?? 0, rss));
      const who = `node ${node.id}${node.id === cluster.leader ? ' (leader)' : ''}`;
      console.log(`${Math.round((Date.now() - t0) / 1000)} s ${who}: RSS ${rss} MB = ${smaps(node.proc.pid)} | ${await metrics(ports[node.id - 1]).catch((e) => e.message)}`);
    }
  }
  if (!done) bench.kill('SIGINT');
  console.log(out.trim());
  console.log(`peak RSS: ${[...peak].map(([id, mb]) => `node ${id}${id === cluster.leader ? ' (leader)' : ''} ${mb} MB`).join(', ')}`);
} finally {
  await cluster?.stop();
  if (process.env.BENCH_KEEP) {
    fs.mkdirSync(process.env.BENCH_KEEP, { recursive: true });
    for (const node of cluster?.nodes ?? []) fs.copyFileSync(node.logFile, `${process.env.BENCH_KEEP}/node${node.id}.log`);
  }
  removeTempDir(dir);
}
