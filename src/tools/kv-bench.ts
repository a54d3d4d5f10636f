#!/usr/bin/env node
/**
 * kv-bench: a closed-loop load generator for a running raftkv cluster (or, from a checkout, for
 * etcd: `--target etcd`, the reference of issue 6).
 *
 * C clients share `--connections` connections (KvClient instances, each its own channel to the
 * leader and its own session): client i uses connection i mod N and has one request in flight at
 * a time. After `--warmup` seconds the latency of every operation that starts and ends inside the
 * measured window goes into an HDR histogram (µs resolution, 3 significant digits). The run ends
 * after `--duration` seconds or `--total` operations (whichever comes first when both are given;
 * `--total` alone is capped at MAX_TOTAL_DURATION_S), and then waits for the calls in flight.
 *
 * Output: a summary on stdout (or one JSON object with `--json`); progress on stderr, an updating
 * line on a TTY and a plain line per `--interval` otherwise (`--progress none` to silence it).
 * Exit codes: 0 ok (errors, if any, are reported); 1 no operation succeeded; 2 usage error;
 * 130 interrupted (the partial result is printed).
 */
import { randomBytes } from 'node:crypto';
import { realpathSync, writeSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { resolveEndpoints, UsageError } from '../client/address.js';
import { KvClient, type ClientTls } from '../client/client.js';
import { tlsFromFlags } from '../client/cli-tls.js';
import { dropIpServerNameWarning } from '../quiet-warnings.js';
import { fmtInt, formatResult } from './bench-report.js';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;
/** Cap on a `--total` run without `--duration`, so that no run is unbounded in time. */
const MAX_TOTAL_DURATION_S = 600;
/** Pause of a client after a failed operation, so that a dead cluster is not hammered in a hot loop. */
const ERROR_PAUSE_MS = 20;
/** Highest latency the histogram tracks exactly (larger values are clamped): 120 s in µs. */
const HIGHEST_TRACKABLE_US = 120_000_000;

export type Op = 'put' | 'get' | 'mixed';
export type TargetName = 'raftkv' | 'etcd';

/** What kv-bench drives: one store behind `connections` connections. */
export interface BenchTarget {
  readonly name: TargetName;
  /** Number of connections; a client uses connection `i % connections`. */
  readonly connections: number;
  /** One line on what is driven and how (for the report). */
  readonly description: string;
  put(conn: number, key: Buffer, value: Buffer): Promise<void>;
  /** A read; resolves whether the key was found. */
  get(conn: number, key: Buffer): Promise<boolean>;
  close(): void;
}

/** Options of an etcd target (see test/bench/etcd/etcd-target.ts). */
export interface EtcdTargetOptions {
  endpoints: string[];
  connections: number;
  timeoutMs: number;
  /** Range with serializable=true (a local read on the member) instead of the linearizable default. */
  serializable: boolean;
  /** Spread the connections over all endpoints instead of putting all of them on the leader. */
  spread: boolean;
}

export interface BenchOptions {
  target: TargetName;
  endpoints: string[];
  op: Op;
  clients: number;
  connections: number;
  /** Seconds of measurement; undefined with `total` alone. */
  durationS: number | undefined;
  total: number | undefined;
  warmupS: number;
  keySize: number;
  valueSize: number;
  keyspace: number;
  readRatio: number;
  timeoutMs: number;
  serializable: boolean;
  /** raftkv only: unary gRPC calls instead of the SDK's default stream (KvClient's transport). */
  unary: boolean;
  spread: boolean;
  json: boolean;
  progress: 'auto' | 'bar' | 'lines' | 'none';
  /** TLS to the nodes (--cacert, --cert, --key or their RAFTKV_ variables, as kv-cli's); plaintext without. */
  tls?: ClientTls;
  intervalS: number;
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface BenchResult {
  target: TargetName;
  description: string;
  op: Op;
  readKind: 'linearizable' | 'serializable';
  clients: number;
  connections: number;
  keySize: number;
  valueSize: number;
  keyspace: number;
  readRatio: number;
  warmupS: number;
  /** The measured window, s. */
  elapsedS: number;
  /** Operations that succeeded inside the window. */
  ops: number;
  errors: number;
  opsPerSec: number;
  reads: number;
  writes: number;
  /** Reads that found no value. */
  misses: number;
  /** Latency in ms over every successful operation of the window. */
  latencyMs: LatencySummary;
  /** Per kind, for `--op mixed`. */
  readLatencyMs?: LatencySummary;
  writeLatencyMs?: LatencySummary;
  /** CPU the load generator used inside the window: cores busy, and µs per operation. */
  loadgenCpuCores: number;
  loadgenCpuUsPerOp: number;
  /**
   * How late the load generator's own event loop ran in the window (ms, p99 and max): above a few
   * ms, latencies include time the generator took to read answers, not only the cluster's.
   */
  loadgenLoopDelayMs: { p99: number; max: number };
  /** Up to 5 distinct error messages with counts. */
  errorSamples: { message: string; count: number }[];
  /** Every error counted by its class (the SDK's error names, e.g. ClusterOverloadedError). */
  errorsByKind: Record<string, number>;
  interrupted: boolean;
}


// ---------------------------------------------------------------------------------------------
// Flags.

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('kv-bench')
    .usage('$0 --endpoints HOST:PORT,... --op put|get|mixed [--clients C] [--duration S | --total N] [options]')
    .options({
      endpoints: { type: 'string', describe: 'client addresses of the nodes, comma-separated (default: $RAFTKV_ENDPOINTS)' },
      target: { choices: ['raftkv', 'etcd'] as const, default: 'raftkv' as const, describe: 'what to drive (etcd: dev-only, needs a checkout)' },
      op: { choices: ['put', 'get', 'mixed'] as const, default: 'put' as const, describe: 'workload' },
      clients: { type: 'number', default: 1, describe: 'concurrent clients, each with one request in flight' },
      connections: { type: 'number', default: 3, describe: 'connections (KvClient instances) the clients share' },
      duration: { type: 'number', describe: 'seconds to measure, after the warm-up (default 10 unless --total)' },
      total: { type: 'number', describe: `operations to measure, after the warm-up (capped at ${MAX_TOTAL_DURATION_S} s unless --duration)` },
      warmup: { type: 'number', default: 1, describe: 'seconds of load before measuring' },
      'key-size': { type: 'number', default: 8, describe: 'key length in bytes (zero-padded decimal)' },
      'value-size': { type: 'number', default: 256, describe: 'value length in bytes' },
      keyspace: { type: 'number', default: 10_000, describe: 'distinct keys, chosen uniformly at random' },
      'read-ratio': { type: 'number', default: 0.9, describe: 'share of reads for --op mixed' },
      timeout: { type: 'number', default: 5000, describe: 'deadline of one operation, retries included, in ms' },
      serializable: { type: 'boolean', default: false, describe: 'serializable (local, possibly stale) reads instead of linearizable ones' },
      unary: { type: 'boolean', default: false, describe: "raftkv only: one unary gRPC call per operation instead of the SDK's default stream" },
      spread: { type: 'boolean', default: false, describe: 'etcd only: spread connections over all endpoints instead of the leader' },
      json: { type: 'boolean', default: false, describe: 'print the result as one JSON object' },
      progress: { choices: ['auto', 'bar', 'lines', 'none'] as const, default: 'auto' as const, describe: 'progress on stderr (auto: a live line on a TTY, plain lines otherwise)' },
      interval: { type: 'number', default: 1, describe: 'seconds between progress updates' },
      cacert: { type: 'string', describe: "TLS: the CA that signed the nodes' certificates (default: $RAFTKV_CACERT)" },
      cert: { type: 'string', describe: "TLS: this client's certificate, for --client-cert-auth (default: $RAFTKV_CERT)" },
      key: { type: 'string', describe: "TLS: this client's key (default: $RAFTKV_KEY)" },
    })
    .example('$0 --endpoints 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 --op put --clients 64 --duration 8', '')
    .example('$0 --endpoints 127.0.0.1:9001 --op mixed --read-ratio 0.9 --clients 64 --total 100000 --json', '')
    .epilog('Exit codes: 0 ok; 1 no operation succeeded; 2 usage error; 130 interrupted (partial result printed).')
    .strict()
    .parserConfiguration({ 'duplicate-arguments-array': false })
    .wrap(Math.min(110, process.stderr.columns || 100))
    .fail((msg, err) => {
      throw new UsageError(msg ?? err?.message ?? 'bad arguments');
    });
}

function positiveInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new UsageError(`--${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function nonNegative(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new UsageError(`--${name} must be a number >= 0, got ${String(v)}`);
  return v;
}

export function parseArgs(argv: string[]): BenchOptions {
  const a = parser(argv).parseSync();
  if (a._.length > 0) throw new UsageError(`unexpected argument(s): ${a._.join(' ')}`);
  const endpoints = resolveEndpoints(a.endpoints);
  const total = a.total === undefined ? undefined : positiveInt('total', a.total);
  let durationS = a.duration === undefined ? undefined : nonNegative('duration', a.duration);
  if (durationS === 0) throw new UsageError('--duration must be > 0');
  if (durationS === undefined && total === undefined) durationS = 10;
  const keySize = positiveInt('key-size', a['key-size']);
  const keyspace = positiveInt('keyspace', a.keyspace);
  if (String(keyspace - 1).length > keySize) {
    throw new UsageError(`--key-size ${keySize} is too short for --keyspace ${keyspace} (keys are zero-padded decimal)`);
  }
  const readRatio = nonNegative('read-ratio', a['read-ratio']);
  if (readRatio > 1) throw new UsageError(`--read-ratio must be within 0..1, got ${readRatio}`);
  const intervalS = nonNegative('interval', a.interval);
  if (intervalS < 0.05) throw new UsageError('--interval must be at least 0.05 s');
  const target = a.target as TargetName;
  if (target !== 'etcd' && a.spread) throw new UsageError('--spread is for --target etcd');
  const tls = tlsFromFlags({ cacert: a.cacert, cert: a.cert, key: a.key });
  if (tls && target !== 'raftkv') throw new UsageError('--cacert, --cert and --key are for --target raftkv');
  return {
    ...(tls ? { tls } : {}),
    target,
    endpoints,
    op: a.op as Op,
    clients: positiveInt('clients', a.clients),
    connections: positiveInt('connections', a.connections),
    durationS,
    total,
    warmupS: nonNegative('warmup', a.warmup),
    keySize,
    valueSize: nonNegative('value-size', a['value-size']),
    keyspace,
    readRatio,
    timeoutMs: positiveInt('timeout', a.timeout),
    serializable: a.serializable === true,
    unary: a.unary === true,
    spread: a.spread === true,
    json: a.json === true,
    progress: a.progress as BenchOptions['progress'],
    intervalS,
  };
}

// ---------------------------------------------------------------------------------------------
// Targets.

class RaftkvTarget implements BenchTarget {
  readonly name = 'raftkv' as const;
  readonly description: string;
  private readonly kvs: KvClient[];

  constructor(endpoints: string[], readonly connections: number, timeoutMs: number, tls: ClientTls | undefined, private readonly serializable: boolean, unary: boolean) {
    const transport = unary ? 'unary' : 'stream';
    this.kvs = Array.from({ length: connections }, () => new KvClient({ endpoints, timeoutMs, transport, ...(tls ? { tls } : {}) }));
    const reads = serializable ? 'serializable reads (local)' : 'linearizable reads (ReadIndex)';
    this.description = `raftkv at ${endpoints.join(',')}${tls ? ' over TLS' : ''}: ${connections} KvClient(s), ${unary ? 'unary calls' : 'calls on a stream'}, ${reads}`;
  }

  put(conn: number, key: Buffer, value: Buffer): Promise<void> {
    return this.kvs[conn]!.put(key, value);
  }

  async get(conn: number, key: Buffer): Promise<boolean> {
    return (await this.kvs[conn]!.getBytes(key, { serializable: this.serializable })) !== undefined;
  }

  close(): void {
    for (const kv of this.kvs) kv.close();
  }
}

async function createTarget(o: BenchOptions): Promise<BenchTarget> {
  if (o.target === 'raftkv') return new RaftkvTarget(o.endpoints, o.connections, o.timeoutMs, o.tls, o.serializable, o.unary);
  // The etcd driver and its .proto live in test/bench/etcd/ (dev-only, not in the package).
  let mod: typeof import('../../test/bench/etcd/etcd-target.js');
  try {
    mod = await import('../../test/bench/etcd/etcd-target.js');
  } catch (e) {
    throw new UsageError(
      `--target etcd needs the dev-only driver in test/bench/etcd/ (run kv-bench from a built raftkv checkout): ${(e as Error).message}`,
    );
  }
  return mod.createEtcdTarget({
    endpoints: o.endpoints,
    connections: o.connections,
    timeoutMs: o.timeoutMs,
    serializable: o.serializable,
    spread: o.spread,
  });
}

// ---------------------------------------------------------------------------------------------
// The run.

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_TRACKABLE_US, numberOfSignificantValueDigits: 3 });
}

function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  if (h.totalCount === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
  // A percentile is the highest value equivalent to its bucket (within 0.1%): never above the max.
  const at = (p: number): number => ms(Math.min(h.getValueAtPercentile(p), h.maxValue));
  return { count: h.totalCount, mean: ms(h.mean), p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: ms(h.maxValue) };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Keys 0..keyspace-1 as zero-padded decimal of keySize bytes, built once. */
function makeKeys(keyspace: number, keySize: number): Buffer[] {
  return Array.from({ length: keyspace }, (_, i) => Buffer.from(String(i).padStart(keySize, '0'), 'latin1'));
}

/**
 * With KV_BENCH_MARK_FD=N, 'start' and 'end' lines go to file descriptor N when the measured window
 * opens and closes, so that a harness (scripts/bench-cluster.mjs) can sample the servers' CPU time
 * over exactly the window.
 */
function mark(what: 'start' | 'end'): void {
  const fd = Number(process.env['KV_BENCH_MARK_FD'] ?? '');
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, `${what}\n`);
  } catch {
    // no harness listening
  }
}

interface Progress {
  update(elapsedS: number, done: number): void;
  finish(): void;
}

export async function runBench(o: BenchOptions, target: BenchTarget, signal: { stop: boolean }): Promise<BenchResult> {
  const keys = makeKeys(o.keyspace, o.keySize);
  // One value per client (random bytes, not compressible); its content does not change.
  const values = Array.from({ length: o.clients }, () => randomBytes(o.valueSize));
  const all = newHistogram();
  const reads = o.op === 'mixed' ? newHistogram() : undefined;
  const writes = o.op === 'mixed' ? newHistogram() : undefined;
  let intervalHist = newHistogram(); // latencies of the current progress interval, warm-up included
  const progressOn = o.progress !== 'none';
  const errorCounts = new Map<string, number>();
  const errorKinds = new Map<string, number>();

  const t0 = performance.now();
  const measureFrom = t0 + o.warmupS * 1000;
  const capS = o.durationS ?? MAX_TOTAL_DURATION_S;
  const measureUntil = measureFrom + capS * 1000;
  let measuring = o.warmupS === 0;
  let endedAt: number | undefined; // when the last measured op ended (--total) or the window closed
  let completed = 0; // every operation that ended, warm-up included (for the progress rate)
  let ok = 0;
  let errors = 0;
  let nReads = 0;
  let nWrites = 0;
  let misses = 0;
  let cpuAtStart = measuring ? process.cpuUsage() : undefined;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  if (measuring) {
    mark('start');
    loopDelay.enable();
  }
  let cpuAtEnd: NodeJS.CpuUsage | undefined;
  let stopIssuing = false;

  /** Opens the window at the end of the warm-up, closes it on time (called by the clients and a timer). */
  const tick = (now: number): void => {
    if (signal.stop) stopIssuing = true;
    if (!measuring && now >= measureFrom) {
      measuring = true;
      cpuAtStart = process.cpuUsage();
      mark('start');
      loopDelay.enable();
    }
    if (measuring && now >= measureUntil) closeWindow(measureUntil);
  };
  const closeWindow = (now: number): void => {
    if (endedAt !== undefined) return;
    endedAt = now;
    cpuAtEnd = process.cpuUsage(cpuAtStart);
    loopDelay.disable();
    stopIssuing = true;
    mark('end');
  };

  /** Whether an operation that ends at `now` is measured: it ends inside the window. */
  const inWindow = (now: number): boolean => now >= measureFrom && now <= (endedAt ?? measureUntil);

  const clientLoop = async (i: number): Promise<void> => {
    const conn = i % target.connections;
    const value = values[i]!;
    for (;;) {
      const start = performance.now();
      tick(start);
      if (stopIssuing) return;
      // --total: stop starting operations once enough have ended (those in flight then are not counted).
      if (o.total !== undefined && ok + errors >= o.total) return;
      const key = keys[Math.floor(Math.random() * keys.length)]!;
      const isRead = o.op === 'get' || (o.op === 'mixed' && Math.random() < o.readRatio);
      let now: number;
      try {
        let found = true;
        if (isRead) found = await target.get(conn, key);
        else await target.put(conn, key, value);
        now = performance.now();
        completed++;
        const us = Math.max(1, Math.round((now - start) * 1000));
        if (progressOn) intervalHist.recordValue(us);
        // Throughput and latency count the operations that end inside the window.
        if (inWindow(now)) {
          all.recordValue(us);
          (isRead ? reads : writes)?.recordValue(us);
          ok++;
          if (isRead) {
            nReads++;
            if (!found) misses++;
          } else nWrites++;
          if (o.total !== undefined && ok + errors >= o.total) closeWindow(now);
        }
      } catch (e) {
        now = performance.now();
        completed++;
        if (inWindow(now)) {
          errors++;
          // Grouped by message, less the attempt count that KvClient's messages carry.
          const msg = String((e as Error).message ?? e).split('\n')[0]!.replace(/\(\d+ attempts/, '(N attempts').slice(0, 200);
          if (errorCounts.size < 20 || errorCounts.has(msg)) errorCounts.set(msg, (errorCounts.get(msg) ?? 0) + 1);
          const kind = e instanceof Error ? e.name : typeof e;
          errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
          if (o.total !== undefined && ok + errors >= o.total) closeWindow(now);
        }
        await sleep(ERROR_PAUSE_MS);
      }
    }
  };

  const progress = makeProgress(o, () => {
    const w = intervalHist;
    intervalHist = newHistogram();
    return w;
  }, () => ({ measured: ok, errors }));
  const timer =
    progress === undefined
      ? undefined
      : setInterval(() => {
          const now = performance.now();
          progress.update((now - t0) / 1000, completed);
        }, o.intervalS * 1000);
  // Opens and ends the window on time even when every client is in a slow call.
  const deadline = setInterval(() => tick(performance.now()), 10);

  try {
    await Promise.all(Array.from({ length: o.clients }, (_, i) => clientLoop(i)));
  } finally {
    if (timer) clearInterval(timer);
    clearInterval(deadline);
    progress?.finish();
  }
  const end = performance.now();
  if (measuring) closeWindow(Math.min(end, measureUntil));
  const elapsedS = measuring ? Math.max(1e-9, (endedAt! - measureFrom) / 1000) : 0;
  const cpu = cpuAtEnd ?? { user: 0, system: 0 };
  const cpuUs = cpu.user + cpu.system;
  const result: BenchResult = {
    target: target.name,
    description: target.description,
    op: o.op,
    readKind: o.serializable ? 'serializable' : 'linearizable',
    clients: o.clients,
    connections: target.connections,
    keySize: o.keySize,
    valueSize: o.valueSize,
    keyspace: o.keyspace,
    readRatio: o.op === 'mixed' ? o.readRatio : o.op === 'get' ? 1 : 0,
    warmupS: o.warmupS,
    elapsedS: round(elapsedS, 3),
    ops: ok,
    errors,
    opsPerSec: elapsedS > 0 ? round(ok / elapsedS, 1) : 0,
    reads: nReads,
    writes: nWrites,
    misses,
    latencyMs: summarize(all),
    loadgenCpuCores: elapsedS > 0 ? round(cpuUs / 1e6 / elapsedS, 3) : 0,
    loadgenCpuUsPerOp: ok > 0 ? Math.round(cpuUs / ok) : 0,
    loadgenLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
    errorSamples: [...errorCounts].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([message, count]) => ({ message, count })),
    errorsByKind: Object.fromEntries(errorKinds),
    interrupted: signal.stop,
  };
  if (reads && writes) {
    result.readLatencyMs = summarize(reads);
    result.writeLatencyMs = summarize(writes);
  }
  return result;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Progress on stderr.

function makeProgress(
  o: BenchOptions,
  takeWindow: () => hdr.Histogram,
  counts: () => { measured: number; errors: number },
): Progress | undefined {
  const tty = process.stderr.isTTY === true;
  const mode = o.progress === 'auto' ? (tty ? 'bar' : 'lines') : o.progress;
  if (mode === 'none') return undefined;
  const totalS = o.warmupS + (o.durationS ?? MAX_TOTAL_DURATION_S);
  let lastS = 0;
  let lastDone = 0;
  let drawn = false;
  return {
    update(elapsedS, done) {
      const w = takeWindow();
      const rate = (done - lastDone) / Math.max(1e-9, elapsedS - lastS);
      lastS = elapsedS;
      lastDone = done;
      const phase = elapsedS < o.warmupS ? 'warm-up' : 'measure';
      const p99 = w.totalCount > 0 ? `${(w.getValueAtPercentile(99) / 1000).toFixed(2)} ms` : '-';
      const c = counts();
      const countPart = o.total !== undefined && o.durationS === undefined ? `${c.measured}/${o.total} ops` : `${c.measured} ops`;
      const stats = `${fmtInt(rate)} ops/s  p99 ${p99}  measured ${countPart}  errors ${c.errors}`;
      if (mode === 'bar') {
        const width = 24;
        const frac = o.total !== undefined && o.durationS === undefined ? c.measured / o.total : Math.min(1, elapsedS / totalS);
        const filled = Math.round(Math.max(0, Math.min(1, frac)) * width);
        const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
        process.stderr.write(`\r\x1b[2K[${bar}] ${elapsedS.toFixed(1)}s ${phase}  ${stats}`);
        drawn = true;
      } else {
        process.stderr.write(`[kv-bench] ${elapsedS.toFixed(1)}s ${phase} ${o.op} c=${o.clients}: ${stats}\n`);
      }
    },
    finish() {
      if (drawn) process.stderr.write('\r\x1b[2K');
    },
  };
}

// ---------------------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kv-bench: ${e.message}\n(kv-bench --help for usage)\n`);
      return EXIT_USAGE;
    }
    throw e;
  }
  let target: BenchTarget;
  try {
    target = await createTarget(o);
  } catch (e) {
    process.stderr.write(`kv-bench: ${(e as Error).message}\n`);
    return e instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  }
  const signal = { stop: false };
  const onSignal = (): void => {
    if (signal.stop) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C: leave now
    signal.stop = true;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: BenchResult;
  try {
    result = await runBench(o, target, signal);
  } finally {
    target.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(o.json ? JSON.stringify(result) + '\n' : formatResult(result));
  if (result.interrupted) return EXIT_INTERRUPTED;
  return result.ops === 0 && (result.errors > 0 || result.elapsedS > 0) ? EXIT_FAILED : EXIT_OK;
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  dropIpServerNameWarning();
  main(hideBin(process.argv)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`kv-bench: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = EXIT_FAILED;
    },
  );
}
