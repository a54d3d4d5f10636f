/**
 * Leader failure with real processes: kill -9 of the leader during SDK calls, restart, data
 * intact; and exactly-once appends across repeated leader kills (the SDK retries with the same
 * session and seq; the state machine answers a duplicate from its session table).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { cli, Cluster, ensureBuilt, killAll, waitFor } from './cluster.js';

let cluster: Cluster;
let client: KvClient;

beforeAll(async () => {
  await ensureBuilt();
  cluster = await Cluster.create('failover');
  cluster.startAll();
  await cluster.waitForLeader();
  client = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  await cluster?.close();
  await killAll();
});

interface CallRecord {
  start: number;
  end: number;
  ok: boolean;
  error?: string;
}

describe('leader failure', () => {
  it('kill -9 of the leader during SDK calls: the calls complete on the new leader; restart; data intact', async () => {
    const data = new Map<string, string>();
    for (let i = 0; i < 30; i++) data.set(`pre${i}`, `v${i}`);
    await Promise.all([...data].map(([k, v]) => client.put(k, v)));

    // A writer that keeps one call in flight at all times.
    const calls: CallRecord[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const rec: CallRecord = { start: Date.now(), end: 0, ok: false };
        calls.push(rec);
        try {
          await client.put(`w${i}`, `x${i}`);
          data.set(`w${i}`, `x${i}`);
          rec.ok = true;
        } catch (e) {
          rec.error = String(e);
        }
        rec.end = Date.now();
      }
    })();
    await waitFor('the writer to get going', () => calls.filter((c) => c.ok).length >= 10);

    const oldLeader = await cluster.waitForLeader();
    const inflight = client.put('during', 'kill');
    const killedAt = Date.now();
    await cluster.stop(oldLeader, 'SIGKILL');
    await expect(inflight).resolves.toBeUndefined();
    data.set('during', 'kill');

    // The writer goes on against the new leader.
    await waitFor('writes after the kill', () => calls.filter((c) => c.ok && c.start > killedAt).length >= 10, 15_000);
    stop = true;
    await writer;
    expect(calls.filter((c) => !c.ok).map((c) => c.error)).toEqual([]);
    const spanning = calls.filter((c) => c.start <= killedAt && c.end >= killedAt);
    expect(spanning.length).toBeGreaterThan(0);

    const newLeader = await cluster.waitForLeader(15_000);
    expect(newLeader).not.toBe(oldLeader);

    cluster.start(oldLeader);
    await cluster.waitCaughtUp();
    const keys = [...data.keys()];
    const values = await Promise.all(keys.map((k) => client.get(k)));
    expect(Object.fromEntries(keys.map((k, i) => [k, values[i]]))).toEqual(Object.fromEntries(data));

    const r = await cli(['--endpoints', cluster.endpoints.join(','), 'status']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/unreachable/);
    const rows = r.stdout.trim().split('\n').slice(1);
    expect(rows).toHaveLength(3);
    expect(rows.filter((l) => /\sleader\s/.test(l))).toHaveLength(1);
    for (const n of cluster.nodes) expect(r.stdout).toContain(n.clientAddr);
  });

  it('a retried write is applied once: appends across repeated leader kills and restarts', async () => {
    const workers = 3;
    const appended: string[][] = Array.from({ length: workers }, () => []);
    const failures: string[] = [];
    const kills: number[] = [];
    /** Appends that were in flight across a kill: they were retried on another node. */
    let spanning = 0;
    let stop = false;
    const run = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const token = `${i},`;
        const start = Date.now();
        try {
          await client.append(`log${w}`, token);
          appended[w]!.push(token);
          if (kills.some((k) => start <= k && k <= Date.now())) spanning++;
        } catch (e) {
          failures.push(`worker ${w} append ${i}: ${String(e)}`);
          return;
        }
      }
    };
    const running = Array.from({ length: workers }, (_, w) => run(w));
    const total = (): number => appended.reduce((n, a) => n + a.length, 0);

    for (let round = 0; round < 3; round++) {
      const before = total();
      await waitFor('appends before the kill', () => total() >= before + 10 || failures.length > 0, 15_000);
      const leader = await cluster.waitForLeader();
      kills.push(Date.now());
      await cluster.stop(leader, 'SIGKILL');
      const afterKill = total();
      await waitFor('appends on the new leader', () => total() >= afterKill + 10 || failures.length > 0, 15_000);
      cluster.start(leader);
      await cluster.waitCaughtUp();
    }
    stop = true;
    await Promise.all(running);
    expect(failures).toEqual([]);
    expect(spanning).toBeGreaterThan(0);

    for (let w = 0; w < workers; w++) {
      expect(appended[w]!.length).toBeGreaterThan(10);
      // Each append exactly once, in order: a duplicate or a loss would show here.
      expect(await client.get(`log${w}`)).toBe(appended[w]!.join(''));
    }
  });
});
