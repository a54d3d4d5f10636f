#!/usr/bin/env node
// The path of a put at 1 client, leg by leg (issue 14): a fresh 3-node cluster whose servers load
// scripts/trace/preload.mjs, TRACE_PUTS sequential puts (256-byte values) after 200 of warm-up,
// then each put's legs from the events every process stamped with the shared monotonic clock;
// prints the p50 of each leg in ms. TRACE_UNARY=1: the SDK's unary calls instead of its stream.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envNumber, indexJs, makeTempDir, removeTempDir, reporter, requireBuild, serverJs, startRaftkv } from '../cluster-procs.mjs';

const { say, fail } = reporter('trace');
const PUTS = Math.round(envNumber('TRACE_PUTS', 1000, fail));
const UNARY = process.env.TRACE_UNARY === '1';
requireBuild([serverJs, indexJs], fail);
const preload = path.join(path.dirname(fileURLToPath(import.meta.url)), 'preload.mjs');
const dir = makeTempDir('raftkv-trace-');
const traceDir = path.join(dir, 'trace');
fs.mkdirSync(traceDir);
process.env.RAFTKV_TRACE_DIR = traceDir;
const now = () => Number(process.hrtime.bigint() / 1000n);

const c = await startRaftkv({ dir, say, nodeArgs: () => ['--import', preload] });
const { KvClient } = await import(indexJs);
const kv = new KvClient({ endpoints: [c.nodes[c.leader - 1].clientAddr], transport: UNARY ? 'unary' : 'stream', endpointRefreshMs: 0 });
const value = Buffer.alloc(256, 7);
for (let i = 0; i < 200; i++) await kv.put(`w${i % 100}`, value);
const puts = [];
for (let i = 0; i < PUTS; i++) {
  const s = now();
  await kv.put(`k${i % 1000}`, value);
  puts.push([s, now()]);
}
kv.close();
const pids = new Map(c.servers.map((s, i) => [s.pid, i + 1]));
await c.stop();

const byNode = new Map();
for (const f of fs.readdirSync(traceDir)) byNode.set(pids.get(Number(f.replace('.json', ''))), JSON.parse(fs.readFileSync(path.join(traceDir, f), 'utf8')));
removeTempDir(dir);
const leader = byNode.get(c.leader);
/** The first event `name` of node `ev` at or after `t`, before `until`. */
const first = (ev, name, t, until, detail) => ev.find((e) => e[0] >= t && e[0] <= until && e[1] === name && (detail === undefined || e[2] === detail))?.[0];
const LEGS = ['client → leader\'s KV handler', 'leader: propose, send', 'hop to follower', 'follower: save', 'follower: fdatasync', 'hop back', 'leader: commit, apply', 'leader → client'];
const legs = LEGS.map(() => []);
let used = 0;
for (const [s, e] of puts) {
  const kvw = first(leader, 'kv-write', s, e);
  const sent = kvw && first(leader, 'send-app', kvw, e);
  const out = sent && first(leader, 'flush', sent, e);
  const resp = out && leader.find((x) => x[0] >= out && x[0] <= e && x[1] === 'recv-appresp');
  if (!resp) continue;
  const f = byNode.get(resp[2]);
  const recv = f && first(f, 'recv-app', out, e);
  const ss = recv && first(f, 'sync-start', recv, e);
  const se = ss && first(f, 'sync-end', ss, e);
  const applied = first(leader, 'apply', resp[0], e);
  if (!se || !applied) continue;
  const t = [s, kvw, out, recv, ss, se, resp[0], applied, e];
  const d = t.slice(1).map((x, i) => x - t[i]);
  if (d.some((x) => x < 0)) continue;
  d.forEach((x, i) => legs[i].push(x));
  used++;
}
const p50 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] / 1000;
const totals = puts.map(([s, e]) => e - s);
say(`${used} of ${PUTS} puts traced (${UNARY ? 'unary calls' : 'calls on the stream'}); p50 of each leg, ms:`);
console.log(`| ${LEGS.join(' | ')} | total |`);
console.log(`|${LEGS.map(() => '---:').join('|')}|---:|`);
console.log(`| ${legs.map((l) => p50(l).toFixed(2)).join(' | ')} | ${p50(totals).toFixed(2)} |`);
