/**
 * kv-server --metrics-addr: a small HTTP server for Prometheus, probes and people. GET (or HEAD)
 * only, no request body read, unknown paths 404; it answers from what the node holds, so a flood
 * of requests cannot reach Raft except through /health, whose concurrent calls share one round,
 * and /cluster, whose gatherings are shared and cached (cluster-view.ts).
 *
 *   /         the status page (static/status.html)   /livez   200 while the process serves HTTP
 *   /metrics  Prometheus text format                  /readyz  200 once serving and caught up
 *   /health   200 if a leader can commit              /cluster JSON: every member's own Status
 *   /status   JSON: this node's view, and on the leader each member's progress
 */
import * as http from 'node:http';
import type { ClusterView } from './cluster-view.js';
import type { Health, StatusReport } from './health.js';

export interface ObservabilitySource {
  metrics(): Promise<{ body: string; contentType: string }>;
  health(): Promise<Health>;
  ready(): Health;
  /** undefined while the node is starting. */
  status(): StatusReport | undefined;
  /** undefined while the node is starting. */
  cluster(): Promise<ClusterView | undefined>;
  /** The status page (static/status.html), served at /. */
  page: Buffer;
}

export interface ObservabilityListener {
  /** The address bound (host:port): with port 0, the port the system chose. */
  readonly address: string;
  close(): Promise<void>;
}

/** Bounds on what one client can hold open: probes and scrapes are short. */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
const MAX_HEADER_BYTES = 8192;

/** Binds `host:port` (loopback or any address the operator chose); rejects with a clear message if it cannot. */
export async function listenObservability(addr: string, source: ObservabilitySource): Promise<ObservabilityListener> {
  const { host, port } = splitAddress(addr);
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS }, (req, res) => {
    void answer(req, res, source).catch((e: unknown) => send(res, 500, `internal error: ${(e as Error).message}\n`));
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`cannot listen for metrics on ${addr} (port already in use?): ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  const address = typeof bound === 'object' && bound ? `${host.includes(':') ? `[${host}]` : host}:${bound.port}` : addr;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(req: http.IncomingMessage, res: http.ServerResponse, source: ObservabilitySource): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'only GET and HEAD\n');
  }
  // The path only; a query string (Prometheus adds none, probes may) is ignored.
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/':
      return send(res, 200, source.page, 'text/html; charset=utf-8', PAGE_HEADERS);
    case '/cluster': {
      const view = await source.cluster();
      if (!view) return send(res, 503, JSON.stringify({ starting: true }) + '\n', 'application/json');
      return send(res, 200, JSON.stringify(view) + '\n', 'application/json');
    }
    case '/metrics': {
      const m = await source.metrics();
      return send(res, 200, m.body, m.contentType);
    }
    case '/livez':
      return send(res, 200, 'ok\n');
    case '/readyz':
      return sendHealth(res, source.ready());
    case '/health':
      return sendHealth(res, await source.health(), true);
    case '/status': {
      const s = source.status();
      if (!s) return send(res, 503, JSON.stringify({ starting: true }) + '\n', 'application/json');
      return send(res, 200, JSON.stringify(s) + '\n', 'application/json');
    }
    default:
      return send(res, 404, 'not found: try /, /metrics, /health, /livez, /readyz, /status or /cluster\n');
  }
}

/** /health answers JSON as etcd's does ({"health":"true"}); /readyz a line, as Kubernetes' do. */
function sendHealth(res: http.ServerResponse, h: Health, json = false): void {
  const code = h.ok ? 200 : 503;
  if (json) send(res, code, JSON.stringify({ health: String(h.ok), reason: h.reason }) + '\n', 'application/json');
  else send(res, code, `${h.reason}\n`);
}

/**
 * The page runs only its own inline script and talks only to the node that served it; it may not
 * be framed by another site.
 */
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
};

function send(res: http.ServerResponse, code: number, body: string | Buffer, contentType = 'text/plain; charset=utf-8', headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** host:port as checked by config.ts (checkAddress); an IPv6 host comes in brackets. */
function splitAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(addr.slice(i + 1)) };
}
