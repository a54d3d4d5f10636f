/**
 * Runs scenarios under many seeds on worker threads.
 *   node build/test/sim/soak.js --seeds N [--scenario NAME[,NAME]] [--suite 2A,2B] [--from S] [--workers W]
 *   node build/test/sim/soak.js --scenario NAME --seed S      (replay one run, printing its trace on failure)
 * Prints one line per scenario and ends with "N passed, M failed"; exits 1 if anything failed.
 */
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { formatFailure, runScenario, type RunResult } from './run.js';
import { SCENARIOS } from './scenarios.js';

interface Job {
  scenario: string;
  seed: number;
}

if (!isMainThread) {
  for (const job of workerData as Job[]) {
    const r = await runScenario(job.scenario, job.seed);
    parentPort!.postMessage(r.ok ? { ...r, trace: undefined } : r);
  }
} else {
  main().then((code) => (process.exitCode = code));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '10' },
      seed: { type: 'string' },
      from: { type: 'string', default: '1' },
      scenario: { type: 'string' },
      suite: { type: 'string' },
      workers: { type: 'string', default: String(Math.max(1, availableParallelism())) },
    },
  });
  const names = selectScenarios(values.scenario, values.suite);
  if (values.seed !== undefined) return replay(names, Number(values.seed));

  const seeds = positiveInt('--seeds', values.seeds!);
  const from = positiveInt('--from', values.from!);
  const jobs: Job[] = [];
  for (const scenario of names) for (let s = from; s < from + seeds; s++) jobs.push({ scenario, seed: s });
  const workers = Math.min(positiveInt('--workers', values.workers!), jobs.length);
  console.log(`soak: ${names.length} scenarios × ${seeds} seeds (from ${from}) = ${jobs.length} runs on ${workers} workers`);

  const started = performance.now();
  const results = await runOnWorkers(jobs, workers);
  const wallS = (performance.now() - started) / 1000;

  let passed = 0;
  let failed = 0;
  for (const name of names) {
    const rs = results.filter((r) => r.scenario === name);
    const bad = rs.filter((r) => !r.ok);
    passed += rs.length - bad.length;
    failed += bad.length;
    const worstElect = Math.max(...rs.map((r) => r.worstElectionMs));
    const maxTerm = Math.max(...rs.map((r) => r.maxTerm));
    const medianTerm = median(rs.map((r) => r.maxTerm));
    const cpu = rs.reduce((a, r) => a + r.wallMs, 0) / 1000;
    const installs = rs.map((r) => r.snapshotsInstalled);
    const snapshots = rs.some((r) => r.snapshotsTaken > 0)
      ? `  snapshots installed per run: median ${median(installs)}, max ${Math.max(...installs)}, none in ${installs.filter((x) => x === 0).length}`
      : '';
    console.log(
      `${bad.length === 0 ? 'PASS' : 'FAIL'} ${name.padEnd(28)} ${String(rs.length - bad.length).padStart(5)}/${rs.length}` +
        `  worst-election ${String(worstElect).padStart(6)} ms  max-term ${String(maxTerm).padStart(4)} (median ${medianTerm})` +
        `  ${cpu.toFixed(1)} s${snapshots}`,
    );
    for (const r of bad.slice(0, 3)) console.log(indent(formatFailure(r)));
    if (bad.length > 3) console.log(`    … ${bad.length - 3} more failing seeds: ${bad.slice(3, 20).map((r) => r.seed).join(' ')}`);
  }
  console.log(`wall time ${wallS.toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

async function replay(names: string[], seed: number): Promise<number> {
  let failed = 0;
  for (const name of names) {
    const r = await runScenario(name, seed);
    if (r.ok) {
      console.log(
        `PASS ${name} seed=${seed} (${r.virtualMs} ms virtual, ${r.wallMs.toFixed(0)} ms wall, max term ${r.maxTerm}, ` +
          `${r.snapshotsTaken} snapshots taken, ${r.snapshotsInstalled} installed)`,
      );
    } else {
      failed++;
      console.log(formatFailure(r));
    }
  }
  console.log(`${names.length - failed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

/** Deals jobs round-robin, so every worker gets a mix of cheap and expensive scenarios. */
function runOnWorkers(jobs: Job[], workers: number): Promise<RunResult[]> {
  const results: RunResult[] = [];
  const shares: Job[][] = Array.from({ length: workers }, () => []);
  jobs.forEach((j, i) => shares[i % workers]!.push(j));
  return Promise.all(
    shares.map(
      (share) =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: share });
          w.on('message', (r: RunResult) => results.push(r));
          w.on('error', reject);
          w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`soak worker exited with ${code}`))));
        }),
    ),
  ).then(() => results);
}

function selectScenarios(scenario: string | undefined, suite: string | undefined): string[] {
  const wanted = scenario?.split(',');
  const suites = suite?.split(',');
  const unknown = wanted?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    process.exit(2);
  }
  return SCENARIOS.filter((s) => (!wanted || wanted.includes(s.name)) && (!suites || suites.includes(s.suite))).map((s) => s.name);
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${flag} needs a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
