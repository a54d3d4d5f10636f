// Ad-hoc: N concurrent puts from one KvClient against a fresh cluster; report outcomes and terms.
import { makeTempDir, removeTempDir, reporter, startRaftkv, indexJs } from './cluster-procs.mjs';
const { say } = reporter('overload');
const N = Number(process.argv[2] ?? 20000);
const dir = makeTempDir('raftkv-overload-');
const c = await startRaftkv({ dir, say });
const { KvClient } = await import(indexJs);
const kv = new KvClient({ endpoints: c.endpoints, timeoutMs: 20000 });
const before = (await kv.status()).filter((r) => r.ok).map((r) => r.status.term);
const t0 = Date.now();
const errs = new Map();
let ok = 0;
await Promise.all(Array.from({ length: N }, (_, i) => kv.put(`k${i}`, 'v'.repeat(100)).then(() => ok++, (e) => errs.set(e.name + ': ' + String(e.message).slice(0, 80), (errs.get(e.name + ': ' + String(e.message).slice(0, 80)) ?? 0) + 1))));
const after = (await kv.status()).filter((r) => r.ok).map((r) => r.status.term);
say(`${N} puts: ${ok} ok in ${Date.now() - t0} ms; terms ${before} -> ${after}; errors ${JSON.stringify([...errs])}`);
kv.close();
await c.stop();
removeTempDir(dir);
