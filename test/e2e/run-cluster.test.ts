/**
 * `make run` (scripts/run-cluster.mjs) as a user meets it: the walkthrough it prints runs as
 * printed, a second run on the same ports fails at once without touching the first, and Ctrl-C
 * (SIGINT to the whole process group, as a terminal sends it) stops every node once, cleanly.
 * On free ports and a temp data dir, so that it runs beside a real `make run`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT, runNode, tempDir, waitFor } from './cluster.js';
import { freeRange } from '../support/ports.js';

const RUN_JS = path.join(ROOT, 'scripts/run-cluster.mjs');
const sh = promisify(execFile);

let dataDir: string;
let env: NodeJS.ProcessEnv;
let first: ChildProcess;
let output = '';
let exited: Promise<number | null>;

beforeAll(async () => {
  await ensureBuilt();
  dataDir = tempDir('run');
  const peer = await freeRange(3);
  const client = await freeRange(3, [peer, peer + 1, peer + 2]);
  const metrics = await freeRange(3, [peer, peer + 1, peer + 2, client, client + 1, client + 2]);
  env = {
    ...process.env,
    RAFTKV_PEER_PORT: String(peer),
    RAFTKV_CLIENT_PORT: String(client),
    RAFTKV_METRICS_PORT: String(metrics),
    RAFTKV_DATA: dataDir,
    RAFTKV_ENDPOINTS: '',
  };
  // Its own process group, like a shell job: Ctrl-C goes to the script and its nodes alike.
  first = spawn(process.execPath, [RUN_JS], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  first.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  first.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  exited = new Promise((resolve) => first.once('exit', (code) => resolve(code)));
  await waitFor('make run to print its walkthrough', () => /Ctrl-C stops the cluster/.test(output) || first.exitCode !== null, 30_000);
  expect(output, output).toMatch(/raftkv cluster ready/);
}, 60_000);

afterAll(async () => {
  if (first?.pid !== undefined && first.exitCode === null && first.signalCode === null) {
    process.kill(-first.pid, 'SIGKILL'); // the group this test started
    await exited;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('make run', () => {
  it('prints each node\'s metrics address, and curl of /metrics and /health there answers 200', async () => {
    const printed = [...output.matchAll(/curl (127\.0\.0\.1:\d+)\/metrics/g)].map((m) => m[1]!);
    expect(printed).toHaveLength(3);
    for (const addr of printed) {
      const m = await fetch(`http://${addr}/metrics`);
      expect(m.status).toBe(200);
      expect(await m.text()).toContain('raftkv_server_has_leader 1');
      await waitFor(`${addr}/health to answer 200`, async () => (await fetch(`http://${addr}/health`)).status === 200, 10_000);
    }
  });

  it('a second run while one runs: exit 1 at once, naming the ports in use; the first keeps running', async () => {
    const second = await runNode(RUN_JS, [], { env });
    expect(second.code, second.stdout + second.stderr).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`cannot start: 127\\.0\\.0\\.1:${env['RAFTKV_PEER_PORT']!} \\(in use\\), .*Another \`make run\``));
    expect(second.stdout).not.toMatch(/started node|cluster ready/);
    expect(first.exitCode).toBeNull();
  });

  it('the printed walkthrough runs as printed: every command exits 0, in order', async () => {
    const lines = output.slice(output.indexOf('Try, in another terminal:')).split('\n').slice(1);
    const commands = lines.slice(0, lines.indexOf('')).map((l) => {
      const alt = /^\s*\(or: (export \S+), then (.+)\)$/.exec(l);
      return alt ? `${alt[1]!}; ${alt[2]!}` : l.trim();
    });
    expect(commands.length).toBeGreaterThanOrEqual(7);
    for (const command of commands) {
      const r = await sh('sh', ['-c', command], { cwd: ROOT, env: { ...process.env, RAFTKV_ENDPOINTS: '' } }).then(
        (ok) => ({ code: 0, ...ok }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(r.code, `${command}\n${r.stderr}`).toBe(0);
    }
  });

  it('Ctrl-C stops every node once and exits 0', async () => {
    const before = output.length;
    process.kill(-first.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    const log = output.slice(before);
    for (const id of [1, 2, 3]) {
      expect(log.match(new RegExp(`\\[node ${id}\\] \\S+ INFO +shutting down node=${id} `, 'g')), log).toHaveLength(1);
      expect(log).toContain(`[run] node ${id} stopped (exit code 0)`);
    }
    expect(log).not.toMatch(/already shutting down|exited unexpectedly|ERROR/);
  });
});
