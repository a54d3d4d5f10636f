/**
 * The status page (GET / of --metrics-addr) in a real browser: headless Chromium, driven by
 * playwright-core, against a real 3-node cluster under a light load. The page, served by a
 * follower, shows 3 members and one leader (the one the cluster reports) and charts the load;
 * once the leader is killed it shows the new leader and the dead node within a few seconds. It
 * shows the serving node's state against its quota, as its /status says. A screenshot of each
 * state is saved in test-artifacts/.
 *
 * Needs Chromium (Debian's `chromium`; another with RAFTKV_CHROMIUM=PATH): skipped, with the
 * reason, without one, unless RAFTKV_REQUIRE_BROWSER=1 (.ci/run sets it, having installed it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { Cluster, ensureBuilt, freePorts, ROOT, waitFor } from './cluster.js';

const ELECTION_TIMEOUT_MS = 300;
/** "Within a few seconds": an election, the page's one-second refresh and the gathering's peer timeout, on a loaded machine. */
const SHOWN_WITHIN_MS = 6000;
const ARTIFACTS = path.join(ROOT, 'test-artifacts');

function findChromium(): string | undefined {
  const given = process.env['RAFTKV_CHROMIUM'];
  if (given) return given;
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim() || undefined;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const executable = findChromium();
if (!executable && process.env['RAFTKV_REQUIRE_BROWSER'] === '1') throw new Error('RAFTKV_REQUIRE_BROWSER=1 but no Chromium found: apt-get install -y chromium, or set RAFTKV_CHROMIUM');
const suite = executable ? describe : describe.skip;
if (!executable) console.warn('status-page.test.ts skipped: no Chromium (apt-get install -y chromium, or set RAFTKV_CHROMIUM=PATH)');

/** What the page shows of the members: [id, role, state] per row, from its data attributes. */
function shownMembers(page: Page): Promise<[number, string, string][]> {
  return page.$$eval('#members tr', (rows) =>
    rows.map((r) => {
      const d = (r as unknown as { dataset: Record<string, string | undefined> }).dataset;
      return [Number(d['memberId']), d['role'] ?? '', d['state'] ?? ''] as [number, string, string];
    }),
  );
}

suite('status page in a browser', () => {
  let cluster: Cluster;
  let browser: Browser;
  let client: KvClient;
  let stopLoad = false;
  let load: Promise<void> | undefined;
  const metricsAddr = new Map<number, string>();

  beforeAll(async () => {
    await ensureBuilt();
    mkdirSync(ARTIFACTS, { recursive: true });
    cluster = await Cluster.create('status-page', { electionTimeoutMs: ELECTION_TIMEOUT_MS });
    const ports = await freePorts(3);
    for (const n of cluster.nodes) metricsAddr.set(n.id, `127.0.0.1:${ports[n.id - 1]}`);
    for (const n of cluster.nodes) cluster.start(n.id, ['--metrics-addr', metricsAddr.get(n.id)!]);
    await cluster.waitForLeader();
    client = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 10_000 });
    // A light load for the charts, bounded: it stops with the test, or after 60 s.
    const until = Date.now() + 60_000;
    load = (async () => {
      for (let i = 0; !stopLoad && Date.now() < until; i++) {
        await client.put(`k${i % 100}`, `v${i}`).catch(() => undefined);
        await client.get(`k${i % 100}`).catch(() => undefined);
      }
    })();
    browser = await chromium.launch({ executablePath: executable, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    stopLoad = true;
    await load;
    client?.close();
    await browser?.close();
    await cluster?.close();
  });

  it('shows the members and the leader, then the new leader and the dead node after the leader is killed', async () => {
    const leader = await cluster.waitForLeader();
    const server = cluster.nodes.find((n) => n.id !== leader)!.id;
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://${metricsAddr.get(server)}/`);

    const shown = await waitFor('the page to show 3 members, one leader, and a chart', async () => {
      const rows = await shownMembers(page);
      const charted = (await page.textContent('#now-writes'))?.trim();
      return rows.length === 3 && rows.filter(([, role]) => role === 'leader').length === 1 && charted ? rows : undefined;
    }, 10_000);
    expect(shown.map(([id]) => id)).toEqual([1, 2, 3]);
    expect(shown.find(([, role]) => role === 'leader')![0]).toBe(leader);
    expect(shown.every(([, , state]) => state === 'up')).toBe(true);
    expect(await page.textContent('#leader')).toBe(`node ${leader}`);

    // The serving node's state against its quota, "13.4 KiB of 1.0 GiB (<1%)", as its /status says
    // (the state moves a little under the load: the used part within 5%).
    const quotaText = await waitFor('the page to show the state against the quota', async () => {
      const t = (await page.textContent('#quota'))?.trim();
      return t && t.includes(' of ') ? t : undefined;
    }, 5000);
    const res = await fetch(`http://${metricsAddr.get(server)}/status`, { signal: AbortSignal.timeout(5000) });
    const { node } = (await res.json()) as { node: { quotaBytes: number; quotaUsedBytes: number } };
    const m = /^(\d+(?:\.\d)?) (B|KiB|MiB) of (\d+\.\d) (MiB|GiB) \((<1|\d+)%\)$/.exec(quotaText);
    expect(m, quotaText).not.toBeNull();
    const shownBytes = (n: string, unit: string): number => Number(n) * 1024 ** ['B', 'KiB', 'MiB', 'GiB'].indexOf(unit);
    const off = (shown: number, actual: number): number => Math.abs(shown - actual) / actual;
    expect(off(shownBytes(m![3]!, m![4]!), node.quotaBytes)).toBeLessThan(0.05);
    expect(off(shownBytes(m![1]!, m![2]!), node.quotaUsedBytes)).toBeLessThan(0.05);
    const pct = (node.quotaUsedBytes / node.quotaBytes) * 100;
    expect(m![5]).toBe(pct < 1 ? '<1' : String(Math.round(pct)));
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });

    await cluster.stop(leader, 'SIGKILL');
    const killedAt = Date.now();
    const after = await waitFor('the page to show the killed leader down and a new leader', async () => {
      const rows = await shownMembers(page);
      const dead = rows.find(([id]) => id === leader);
      const next = rows.find(([, role]) => role === 'leader');
      return dead?.[2] === 'down' && next && next[0] !== leader ? rows : undefined;
    }, SHOWN_WITHIN_MS);
    const tookMs = Date.now() - killedAt;
    const newLeader = after.find(([, role]) => role === 'leader')![0];
    expect(newLeader).toBe(await cluster.waitForLeader(5000, leader));
    expect(await page.textContent('#leader')).toBe(`node ${newLeader}`);
    console.log(`status page: node ${leader} killed, the page showed it down and node ${newLeader} leading ${tookMs} ms later`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-leader-killed.png'), fullPage: true });

    // A narrow window (a phone): everything is still there, the table scrolls sideways.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-narrow.png'), fullPage: true });
    expect(await page.isVisible('#members')).toBe(true);
    expect(errors).toEqual([]);
  }, 60_000);
});
