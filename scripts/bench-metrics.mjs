#!/usr/bin/env node
// The cost of --metrics-addr (issue 13): the standard put benchmark (64 clients, kv-bench) on a
// fresh local 3-node cluster without metrics and with them (every node scraped once a second,
// far more often than Prometheus' default 15 s), alternating, BENCH_ROUNDS rounds of each. Prints
// each run's puts/s and the medians. Nothing is left running. Needs the build (npx tsc -p .).
//   BENCH_ROUNDS=3  BENCH_DURATION=8  BENCH_CLIENTS=64  BENCH_SCRAPE_MS=1000 (0: metrics on, never scraped)
import { spawn } from 'node:child_process';
import { freePorts } from '../build/test/support/ports.js';
import { benchJs, envNumber, exited, killAllNow, makeTempDir, onInterrupt, removeTempDir, reporter, sleep, startRaftkv } from './cluster-procs.mjs';

const { say, fail } = reporter('bench-metrics');
const ROUNDS = Math.max(1, Math.round(envNumber('BENCH_ROUNDS', 3, fail)));
const DURATION = envNumber('BENCH_DURATION', 8, fail);
const CLIENTS = Math.round(envNumber('BENCH_CLIENTS', 64, fail));
const SCRAPE_MS = envNumber('BENCH_SCRAPE_MS', 1000, fail);
let interrupted = false;
onInterrupt(say, () => (interrupted = true));

async function run(metrics) {
  const dir = makeTempDir(metrics ? 'raftkv-bench-metrics-on-' : 'raftkv-bench-metrics-off-');
  const ports = metrics ? await freePorts(3) : [];
  const addr = (id) => `127.0.0.1:${ports[id - 1]}`;
  const cluster = await startRaftkv({ dir, say, serverArgs: (id) => (metrics ? ['--metrics-addr', addr(id)] : []), isInterrupted: () => interrupted });
  let scraping = metrics && SCRAPE_MS > 0;
  const scraper = (async () => {
    while (scraping) {
      await Promise.all([1, 2, 3].map((id) => fetch(`http://${addr(id)}/metrics`).then((r) => r.text()).catch(() => '')));
      await sleep(SCRAPE_MS);
    }
  })();
  try {
    const bench = spawn(process.execPath, [benchJs, '--endpoints', cluster.endpoints.join(','), '--op', 'put', '--clients', String(CLIENTS), '--duration', String(DURATION), '--warmup', '1', '--json', '--progress', 'none'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    bench.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    const { code } = await exited(bench);
    if (code !== 0) fail(`kv-bench exited ${code}`);
    return JSON.parse(out).opsPerSec;
  } finally {
    scraping = false;
    await scraper;
    await cluster.stop();
    removeTempDir(dir);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { off: [], on: [] };
try {
  for (let r = 0; r < ROUNDS && !interrupted; r++) {
    for (const mode of r % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      const ops = await run(mode === 'on');
      results[mode].push(ops);
      say(`round ${r + 1}, metrics ${mode}: ${ops} puts/s`);
    }
  }
} finally {
  killAllNow();
}
const off = median(results.off);
const on = median(results.on);
say(`put, ${CLIENTS} clients, ${DURATION} s: median ${off} puts/s without metrics, ${on} with (${(((on - off) / off) * 100).toFixed(1)}%)`);
say(`without: ${results.off.join(', ')}; with: ${results.on.join(', ')}`);
