/**
 * The --metrics-addr HTTP server: each endpoint's status code and body, and what it refuses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterView } from '../../src/server/cluster-view.js';
import type { Health, StatusReport } from '../../src/server/health.js';
import { listenObservability, type ObservabilityListener, type ObservabilitySource } from '../../src/server/metrics-http.js';

let listener: ObservabilityListener | undefined;
afterEach(async () => {
  await listener?.close();
  listener = undefined;
});

const STATUS = { clusterId: 'c', node: { id: 1, role: 'leader' }, members: [] } as unknown as StatusReport;

async function serve(over: Partial<ObservabilitySource> = {}): Promise<string> {
  listener = await listenObservability('127.0.0.1:0', {
    metrics: async () => ({ body: 'raftkv_server_term 3\n', contentType: 'text/plain; version=0.0.4; charset=utf-8' }),
    health: async () => ({ ok: true, reason: 'ok' }),
    ready: () => ({ ok: true, reason: 'ok' }),
    status: () => STATUS,
    cluster: async () => undefined,
    page: Buffer.from('<!doctype html><title>raftkv</title>'),
    ...over,
  });
  return `http://${listener.address}`;
}

describe('metrics HTTP', () => {
  it('/metrics answers the registry in Prometheus text format', async () => {
    const r = await fetch(`${await serve()}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('version=0.0.4');
    expect(await r.text()).toBe('raftkv_server_term 3\n');
  });

  it('/health: 200 {"health":"true"} when healthy, 503 with the reason when not', async () => {
    let h: Health = { ok: true, reason: 'ok' };
    const base = await serve({ health: async () => h });
    const ok = await fetch(`${base}/health`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ health: 'true', reason: 'ok' });
    h = { ok: false, reason: 'no leader' };
    const bad = await fetch(`${base}/health`);
    expect(bad.status).toBe(503);
    expect(await bad.json()).toEqual({ health: 'false', reason: 'no leader' });
  });

  it('/readyz follows ready(); /livez is 200 while the process serves, even unready', async () => {
    const base = await serve({ ready: () => ({ ok: false, reason: 'starting' }), health: async () => ({ ok: false, reason: 'starting' }) });
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe('starting\n');
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });

  it('/status answers the report as JSON, and 503 while the node starts', async () => {
    let report: StatusReport | undefined = undefined;
    const base = await serve({ status: () => report });
    expect((await fetch(`${base}/status`)).status).toBe(503);
    report = STATUS;
    const r = await fetch(`${base}/status`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(await r.json()).toEqual(STATUS);
  });

  it('refuses what it does not serve: other methods 405, other paths 404; a query string is ignored', async () => {
    const base = await serve();
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x'.repeat(10_000) });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/../../etc/passwd`)).status).toBe(404);
    expect((await fetch(`${base}/livez?verbose`)).status).toBe(200);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('a failing source answers 500, and the server goes on serving', async () => {
    const base = await serve({ metrics: async () => Promise.reject(new Error('boom')) });
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(500);
    expect((await fetch(`${base}/livez`)).status).toBe(200);
  });

  it('a port in use: rejects naming the address', async () => {
    const base = await serve();
    const addr = base.replace('http://', '');
    await expect(listenObservability(addr, {} as ObservabilitySource)).rejects.toThrow(`cannot listen for metrics on ${addr}`);
  });

  it('/ serves the status page, locked to its own script and origin; /cluster its data, 503 while starting', async () => {
    let view: ClusterView | undefined = undefined;
    const base = await serve({ cluster: async () => view });
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(await page.text()).toContain('<title>raftkv</title>');
    expect((await fetch(`${base}/cluster`)).status).toBe(503);
    view = { at: 1, self: 1, clusterId: 'c', leaderChanges: 0, members: [] };
    const r = await fetch(`${base}/cluster`);
    expect([r.status, await r.json()]).toEqual([200, view]);
  });
});
