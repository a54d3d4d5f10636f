import type { BenchResult, LatencySummary } from './kv-bench.js';

/** kv-bench's report: the result of one run as text. */

export function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

function fmtLat(l: LatencySummary): string {
  const f = (v: number): string => `${v.toFixed(2)} ms`;
  return `p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  p99.9 ${f(l.p999)}  max ${f(l.max)}`;
}

export function formatResult(r: BenchResult): string {
  const what = r.op === 'mixed' ? `mixed ${Math.round(r.readRatio * 100)}/${Math.round((1 - r.readRatio) * 100)} (${r.readKind} reads)` : r.op === 'get' ? `${r.readKind} get` : 'put';
  const lines = [
    `kv-bench ${r.target} ${what}: ${r.clients} client(s) over ${r.connections} connection(s), ${r.elapsedS.toFixed(2)} s after ${r.warmupS} s warm-up`,
    `  ${r.description}`,
    `  keys ${r.keySize} B over ${r.keyspace.toLocaleString('en-US')}, values ${r.valueSize} B`,
    `  throughput  ${fmtInt(r.opsPerSec)} ops/s (${r.ops.toLocaleString('en-US')} ops)`,
    `  errors      ${r.errors}${r.errorSamples.map((s) => `\n    ${s.count} x ${s.message}`).join('')}`,
    `  latency     ${fmtLat(r.latencyMs)}  (mean ${r.latencyMs.mean.toFixed(2)} ms)`,
  ];
  if (r.readLatencyMs && r.writeLatencyMs) {
    lines.push(`  reads       ${fmtLat(r.readLatencyMs)}  (${r.reads})`, `  writes      ${fmtLat(r.writeLatencyMs)}  (${r.writes})`);
  }
  if (r.reads > 0) lines.push(`  misses      ${r.misses} of ${r.reads} reads found no value`);
  lines.push(`  loadgen CPU ${r.loadgenCpuCores.toFixed(2)} cores, ${r.loadgenCpuUsPerOp} µs/op, event-loop delay p99 ${r.loadgenLoopDelayMs.p99} ms, max ${r.loadgenLoopDelayMs.max} ms`);
  if (r.interrupted) lines.push('  (interrupted: partial result)');
  return lines.join('\n') + '\n';
}
