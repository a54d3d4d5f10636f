/**
 * Benchmark of the linearizability checker.
 *
 *   npx tsc -p . && node build/test/bench/linearizability-bench.js \
 *     [--ops=10000] [--keys=20] [--clients=10] [--seed=42] [--runs=11] [--timeout=60000]
 *
 * Generates a deterministic (seeded) history of clients driving a simulated
 * linearizable store, checks it, then injects one stale read and measures how
 * long finding (and shrinking) the counterexample takes. Done without and
 * with 1% of operations having an unknown outcome. Figures: the first (cold)
 * run, then the median and minimum of --runs further runs.
 */
import {
  checkLinearizable,
  formatCounterexample,
  generateLinearizableHistory,
  type CheckResult,
  type Operation,
} from '../support/linearizability.js';

function flag(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const v = Number(arg.slice(name.length + 3));
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad --${name}`);
  return v;
}

const ops = flag('ops', 10_000);
const keys = flag('keys', 20);
const clients = flag('clients', 10);
const seed = flag('seed', 42);
const runs = Math.max(1, flag('runs', 11));
const timeoutMs = flag('timeout', 60_000);

interface Measured {
  readonly result: CheckResult;
  readonly text: string;
}

/** Runs the checker once cold, then `runs` times (unless the cold run timed out). */
function measure(history: Operation[]): Measured {
  let t0 = performance.now();
  let result = checkLinearizable(history, { timeoutMs });
  const cold = performance.now() - t0;
  if (result.ok === 'unknown') return { result, text: `cold ${fmt(cold)} ms` };
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    result = checkLinearizable(history, { timeoutMs });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  return { result, text: `cold ${fmt(cold)} ms, median ${fmt(median)} ms, min ${fmt(times[0]!)} ms` };
}

/**
 * Makes a get in the middle of the history return a value that had been
 * overwritten before the get was invoked (p1 finished before p2 started, p2
 * finished before the get started). Written values are unique, so this is a
 * guaranteed violation.
 */
function injectStaleRead(history: Operation[]): { bad: Operation[]; stale: Operation } {
  for (let i = Math.floor(history.length / 2); i < history.length; i++) {
    const g = history[i]!;
    if (g.input.op !== 'get' || g.ret === Infinity) continue;
    const puts = history.filter((o) => o.input.key === g.input.key && o.input.op === 'put' && o.ret < g.call);
    for (let j = puts.length - 1; j >= 0; j--) {
      const p2 = puts[j]!;
      const p1 = puts.findLast((o) => o.ret < p2.call && o.input.value !== (g.output as { value?: string }).value);
      if (p1 === undefined) continue;
      const stale: Operation = { ...g, output: { value: p1.input.value } };
      return { bad: history.map((o) => (o === g ? stale : o)), stale };
    }
  }
  throw new Error('no place to inject a stale read');
}

function fmt(ms: number): string {
  return ms.toFixed(1);
}

function outcome(r: CheckResult): string {
  return r.ok === 'unknown' ? `ok=unknown (${r.reason})` : `ok=${r.ok}`;
}

console.log(`linearizability checker benchmark (node ${process.version}, ${runs} timed runs after a cold one)`);
for (const unknownRate of [0, 0.01]) {
  const history = generateLinearizableHistory({ ops, keys, clients, seed, unknownRate });
  const pending = history.filter((o) => o.ret === Infinity).length;
  const good = measure(history);
  console.log(
    `\nops=${history.length} keys=${keys} clients=${clients} seed=${seed} unknown-outcome ops=${pending}`,
  );
  console.log(`  linearizable history:  ${outcome(good.result)}  ${good.text}`);
  if (good.result.ok === false) throw new Error('the generated history must be linearizable');

  const { bad, stale } = injectStaleRead(history);
  const found = measure(bad);
  console.log(`  with one stale read:   ${outcome(found.result)}  ${found.text}`);
  if (found.result.ok === true) throw new Error('the stale read was not detected');
  if (found.result.ok === false) {
    const { key, counterexample } = found.result;
    console.log(
      `    key ${JSON.stringify(key)} (${bad.filter((o) => o.input.key === key).length} ops), ` +
        `counterexample of ${counterexample.length} ops, includes the stale read: ${counterexample.includes(stale)}`,
    );
    console.log(formatCounterexample(found.result).replace(/^/gm, '    '));
  }
}
