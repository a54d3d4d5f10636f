#!/usr/bin/env node
// `make run`: a local 3-node raftkv cluster on 127.0.0.1 (peers 7001-7003, clients 9001-9003,
// data in ./data/1..3, reused by the next run). Checks that its ports are free first (a second
// `make run` fails at once and says why), forwards the nodes' logs prefixed by node, waits for a
// leader, prints how to use kv-cli, and on Ctrl-C (SIGINT/SIGTERM) stops every node by PID and
// exits, leaving no process behind; it exits 1 if no leader comes or every node dies. Needs the
// build (npx tsc -p .). Each node serves /metrics, /health, /livez, /readyz and /status over HTTP
// on 127.0.0.1:9091-9093 (--metrics-addr). Elsewhere: RAFTKV_PEER_PORT=7101 RAFTKV_CLIENT_PORT=9101
// RAFTKV_METRICS_PORT=9191 RAFTKV_DATA=data2 (the first of the three ports of each kind, and the data dir).
// RAFTKV_TLS=1 (make run TLS=1): mutual TLS on both ports, with a throwaway CA and certificates made
// by openssl in DATA/certs.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { makeCerts } from './make-certs.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverJs = path.join(root, 'build/src/server/main.js');
const indexJs = path.join(root, 'build/src/index.js');
const N = 3;
const HOST = '127.0.0.1';
const say = (line) => process.stdout.write(`[run] ${line}\n`);
const fail = (line) => {
  process.stderr.write(`[run] ${line}\n`);
  process.exit(1);
};

/** The first of N consecutive ports, from the environment or the default. */
function basePort(name, dflt) {
  const text = process.env[name];
  if (text === undefined || text === '') return dflt;
  const port = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port + N - 1 <= 65535)) fail(`${name} must be a port from 1 to ${65535 - N + 1}, got ${JSON.stringify(text)}`);
  return port;
}
const peerPort = basePort('RAFTKV_PEER_PORT', 7001);
const clientPort = basePort('RAFTKV_CLIENT_PORT', 9001);
const metricsPort = basePort('RAFTKV_METRICS_PORT', 9091);
for (const [a, b] of [[['RAFTKV_PEER_PORT', peerPort], ['RAFTKV_CLIENT_PORT', clientPort]], [['RAFTKV_PEER_PORT', peerPort], ['RAFTKV_METRICS_PORT', metricsPort]], [['RAFTKV_CLIENT_PORT', clientPort], ['RAFTKV_METRICS_PORT', metricsPort]]]) {
  if (Math.abs(a[1] - b[1]) < N) fail(`${a[0]} (${a[1]}) and ${b[0]} (${b[1]}) overlap`);
}
const ids = Array.from({ length: N }, (_, i) => i + 1);
const peerAddr = (id) => `${HOST}:${peerPort + id - 1}`;
const clientAddr = (id) => `${HOST}:${clientPort + id - 1}`;
const metricsAddr = (id) => `${HOST}:${metricsPort + id - 1}`;
const peers = ids.map((id) => `${id}=${peerAddr(id)}`).join(',');
const clientPeers = ids.map((id) => `${id}=${clientAddr(id)}`).join(',');
const endpoints = ids.map(clientAddr).join(',');
const dataRoot = path.resolve(root, process.env['RAFTKV_DATA'] || 'data');
const dataShown = `./${path.relative(process.cwd(), dataRoot) || '.'}`;
const LEADER_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 8_000;

const TLS = process.env['RAFTKV_TLS'] === '1';
let certs;
if (TLS) {
  try {
    certs = makeCerts(path.join(dataRoot, 'certs'), N);
  } catch (e) {
    fail(`cannot make the certificates for TLS: ${e.message}`);
  }
}
/** A node's TLS flags: its certificate on both ports, clients and peers checked against the CA. */
const tlsArgs = (id) =>
  TLS
    ? [
        '--cert-file', certs.node(id).cert, '--key-file', certs.node(id).key, '--trusted-ca-file', certs.ca, '--client-cert-auth',
        '--peer-cert-file', certs.node(id).cert, '--peer-key-file', certs.node(id).key, '--peer-trusted-ca-file', certs.ca,
      ]
    : [];

const color = process.stdout.isTTY ? (n, s) => `\x1b[${[36, 33, 35, 32, 34][n % 5]}m${s}\x1b[0m` : (_n, s) => s;

if (!existsSync(serverJs)) fail(`${serverJs} not found: build first (npx tsc -p .)`);
const { KvClient } = await import(indexJs);
const { readFileSync } = await import('node:fs');
const clientTls = TLS ? { tls: { ca: readFileSync(certs.ca), cert: readFileSync(certs.client.cert), key: readFileSync(certs.client.key) } } : {};

/** Why `port` cannot be listened on (e.g. another `make run` has it), or undefined if it can. */
function portProblem(port) {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e) => resolve(e.code === 'EADDRINUSE' ? 'in use' : e.message));
    s.listen(port, HOST, () => s.close(() => resolve(undefined)));
  });
}

// Before anything starts: a cluster already on these ports (another `make run`) would answer
// our leader check, while our own nodes die on EADDRINUSE with its data dir open.
const taken = [];
for (const addr of [...ids.map(peerAddr), ...ids.map(clientAddr), ...ids.map(metricsAddr)]) {
  const why = await portProblem(Number(addr.split(':')[1]));
  if (why !== undefined) taken.push(`${addr} (${why})`);
}
if (taken.length > 0) {
  fail(
    `cannot start: ${taken.join(', ')}. Another \`make run\` (or another program) is using ${taken.length === 1 ? 'this port' : 'these ports'}: ` +
      'stop it first, or run on other ports with other data: make run RAFTKV_PEER_PORT=7101 RAFTKV_CLIENT_PORT=9101 RAFTKV_METRICS_PORT=9191 RAFTKV_DATA=data2',
  );
}

/** id -> { child, exited: Promise<{code, signal}>, running } */
const nodes = new Map();
let stopping = false;
let ready = false;

function start(id) {
  const dataDir = path.join(dataRoot, String(id));
  const args = [
    serverJs,
    '--id', String(id),
    '--peers', peers,
    '--client-addr', clientAddr(id),
    '--client-peers', clientPeers,
    '--data-dir', dataDir,
    ...tlsArgs(id),
    '--metrics-addr', metricsAddr(id),
    // Text: the nodes' lines are interleaved, prefixed, for a person (JSON is for a log pipeline).
    '--log-format', 'text',
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const node = { child, running: true, exited: undefined };
  const prefix = color(id, `[node ${id}]`);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix} ${line}\n`));
  }
  node.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      node.running = false;
      resolve({ code, signal });
      if (stopping) return;
      say(`node ${id} (pid ${child.pid}) exited unexpectedly: ${signal ?? `exit code ${code}`}`);
      if (!ready) {
        say('a node failed to start; stopping the cluster');
        void stop(1);
      } else if ([...nodes.values()].every((n) => !n.running)) {
        say('every node has exited');
        void stop(1);
      }
    });
  });
  child.on('error', (err) => say(`node ${id}: cannot start: ${err.message}`));
  nodes.set(id, node);
  say(`started node ${id} (pid ${child.pid}): peer ${peerAddr(id)}, client ${clientAddr(id)}, metrics http://${metricsAddr(id)}, data ${path.relative(root, dataDir) || '.'}`);
}

async function stop(code) {
  if (stopping) return;
  stopping = true;
  say('stopping the cluster');
  for (const [id, n] of nodes) {
    if (n.running) {
      try {
        process.kill(n.child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    void id;
  }
  const all = Promise.all([...nodes.values()].map((n) => n.exited));
  const timeout = new Promise((resolve) => setTimeout(resolve, STOP_DEADLINE_MS, 'timeout'));
  if ((await Promise.race([all, timeout])) === 'timeout') {
    for (const [id, n] of nodes) {
      if (!n.running) continue;
      say(`node ${id} (pid ${n.child.pid}) did not stop within ${STOP_DEADLINE_MS} ms: killing it`);
      try {
        process.kill(n.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await all;
  }
  for (const [id, n] of nodes) {
    const r = await n.exited;
    say(`node ${id} stopped (${r.signal ?? `exit code ${r.code}`})`);
  }
  process.exit(code);
}

// Ctrl-C reaches the nodes too (same process group); they shut down on it, and we make sure.
process.on('SIGINT', () => {
  if (stopping) {
    for (const n of nodes.values()) if (n.running) try { process.kill(n.child.pid, 'SIGKILL'); } catch { /* gone */ }
    return;
  }
  void stop(0);
});
process.on('SIGTERM', () => void stop(0));
// Last resort (e.g. an exception here): never leave a node behind.
process.on('exit', () => {
  for (const n of nodes.values()) if (n.running) try { process.kill(n.child.pid, 'SIGKILL'); } catch { /* gone */ }
});

mkdirSync(dataRoot, { recursive: true });
say(existsSync(path.join(dataRoot, '1', 'raft.db')) ? `reusing ${dataShown}` : `new cluster in ${dataShown}`);
for (const id of ids) start(id);

// Wait for a leader that a majority agrees on.
const client = new KvClient({ endpoints, timeoutMs: 2000, ...clientTls });
const deadline = Date.now() + LEADER_DEADLINE_MS;
let leader;
while (!stopping && Date.now() < deadline) {
  const rows = await client.status();
  const votes = new Map();
  for (const r of rows) if (r.ok && r.status.leaderId !== 0) votes.set(r.status.leaderId, (votes.get(r.status.leaderId) ?? 0) + 1);
  const agreed = [...votes].find(([, n]) => n > N / 2);
  const row = agreed && rows.find((r) => r.ok && r.status.nodeId === agreed[0] && r.status.role === 'leader');
  if (row) {
    leader = row;
    break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
client.close();
if (stopping) await new Promise(() => {}); // stop() exits
if (!leader) {
  say(`no leader elected within ${LEADER_DEADLINE_MS} ms`);
  await stop(1);
}
ready = true;
const rel = (p) => path.relative(process.cwd(), p) || p;
const tlsFlags = TLS ? ` --cacert ${rel(certs.ca)} --cert ${rel(certs.client.cert)} --key ${rel(certs.client.key)}` : '';
const cli = `node ${rel(path.join(root, 'build/src/client/cli.js'))}${tlsFlags} --endpoints ${endpoints}`;
process.stdout.write(
  [
    '',
    `raftkv cluster ready: leader is node ${leader.status.nodeId} (term ${leader.status.term})${TLS ? ', mutual TLS on both ports' : ''}.`,
    `Client endpoints: ${endpoints}`,
    '',
    'Try, in another terminal:',
    `  ${cli} put hello world`,
    `  ${cli} get hello`,
    `  ${cli} append hello '!'`,
    `  ${cli} cas hello 'world!' there`,
    `  ${cli} get hello`,
    `  ${cli} status`,
    `  ${cli} del hello`,
    TLS
      ? `  (or: export RAFTKV_ENDPOINTS=${endpoints} RAFTKV_CACERT=${rel(certs.ca)} RAFTKV_CERT=${rel(certs.client.cert)} RAFTKV_KEY=${rel(certs.client.key)}, then ${cli.replace(/ --cacert .*$/, '')} status)`
      : `  (or: export RAFTKV_ENDPOINTS=${endpoints}, then ${cli.replace(/ --endpoints \S+$/, '')} status)`,
    '',
    'Metrics and health (HTTP), per node:',
    ...ids.map((id) => `  curl ${metricsAddr(id)}/metrics   curl ${metricsAddr(id)}/health   curl ${metricsAddr(id)}/status`),
    '',
    `Ctrl-C stops the cluster; data stays in ${dataShown} for the next run.`,
    '',
  ].join('\n') + '\n',
);
