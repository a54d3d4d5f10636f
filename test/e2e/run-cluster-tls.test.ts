/**
 * `make run TLS=1` (scripts/run-cluster.mjs with RAFTKV_TLS=1): it makes a throwaway CA and
 * certificates with openssl, starts the cluster with mutual TLS on both ports, and the kv-cli
 * commands it prints work as printed; kv-cli without the certificates is refused.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { cli, ensureBuilt, ROOT, tempDir, waitFor } from './cluster.js';
import { freeRange } from '../support/ports.js';

const sh = promisify(execFile);
let dataDir: string | undefined;
let run: ChildProcess | undefined;
let exited: Promise<number | null> | undefined;

afterAll(async () => {
  if (run?.pid !== undefined && run.exitCode === null && run.signalCode === null) {
    process.kill(-run.pid, 'SIGKILL'); // the group this test started
    await exited;
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

it('make run TLS=1: the printed kv-cli commands work as printed; without certificates kv-cli is refused; Ctrl-C stops it', { timeout: 60_000 }, async () => {
  await ensureBuilt();
  dataDir = tempDir('run-tls');
  const peer = await freeRange(3);
  const client = await freeRange(3, [peer, peer + 1, peer + 2]);
  const env = { ...process.env, RAFTKV_TLS: '1', RAFTKV_PEER_PORT: String(peer), RAFTKV_CLIENT_PORT: String(client), RAFTKV_DATA: dataDir, RAFTKV_ENDPOINTS: '' };
  let output = '';
  run = spawn(process.execPath, [path.join(ROOT, 'scripts/run-cluster.mjs')], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  run.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
  run.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
  const proc = run;
  exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  await waitFor('make run to print its walkthrough', () => /Ctrl-C stops the cluster/.test(output) || proc.exitCode !== null, 30_000);
  expect(output, output).toMatch(/raftkv cluster ready: .*mutual TLS on both ports/);

  const lines = output.slice(output.indexOf('Try, in another terminal:')).split('\n').slice(1);
  const commands = lines.slice(0, lines.indexOf('')).map((l) => {
    const alt = /^\s*\(or: (export .+), then (.+)\)$/.exec(l);
    return alt ? `${alt[1]!}; ${alt[2]!}` : l.trim();
  });
  expect(commands.length).toBeGreaterThanOrEqual(7);
  for (const command of commands) {
    expect(command).toMatch(/--cacert|RAFTKV_CACERT/);
    const r = await sh('sh', ['-c', command], { cwd: ROOT, env: { ...process.env, RAFTKV_ENDPOINTS: '' } }).then(
      (ok) => ({ code: 0, ...ok }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(r.code, `${command}\n${r.stderr}`).toBe(0);
  }
  const endpoints = Array.from({ length: 3 }, (_, i) => `127.0.0.1:${client + i}`).join(',');
  const plain = await cli(['--endpoints', endpoints, '--timeout', '2000', 'status']);
  expect(plain.code).toBe(3);
  expect(plain.stdout + plain.stderr).toMatch(/connect with TLS/);

  process.kill(-proc.pid!, 'SIGINT');
  expect(await exited).toBe(0);
});
