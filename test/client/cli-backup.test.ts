/**
 * kv-cli backup's command line and its refusals that need no cluster: usage errors exit 2, and an
 * existing FILE is not replaced without --force (exit 2, the file untouched, no FILE.tmp).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { main } from '../../src/client/cli-main.js';
import { freePorts } from '../support/ports.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function kvCli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { out: (t) => void (stdout += t.toString()), err: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

it('usage errors: no FILE, two FILEs, flags of other commands', async () => {
  const ep = ['--endpoints', '127.0.0.1:1'];
  expect(await kvCli(...ep, 'backup')).toMatchObject({ code: 2, stderr: expect.stringMatching(/missing FILE: backup FILE \[--force\]/) });
  expect(await kvCli(...ep, 'backup', 'a', 'b')).toMatchObject({ code: 2, stderr: expect.stringMatching(/unexpected argument\(s\) "b"/) });
  expect(await kvCli(...ep, 'backup', 'a', '--hex')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--hex does not go with backup/) });
  expect(await kvCli(...ep, 'backup', '')).toMatchObject({ code: 2, stderr: expect.stringMatching(/FILE is empty/) });
});

it('an existing FILE is kept without --force: exit 2 before anything is sent', async () => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-cli-backup-'));
  dirs.push(dir);
  const file = nodePath.join(dir, 'b.snap');
  fs.writeFileSync(file, 'an older backup');
  const [port] = await freePorts(1);
  const r = await kvCli('--endpoints', `127.0.0.1:${port}`, '--timeout', '500', 'backup', file);
  expect(r).toMatchObject({ code: 2, stderr: expect.stringMatching(/backup failed: .*b\.snap exists: not overwriting it \(ask for overwrite: kv-cli backup --force\)/) });
  expect(fs.readFileSync(file, 'utf8')).toBe('an older backup');
  expect(fs.readdirSync(dir)).toEqual(['b.snap']);
  // With --force it goes ahead: nothing answers there, so it fails as unavailable (exit 3), and
  // still leaves the old file, and no FILE.tmp.
  const forced = await kvCli('--endpoints', `127.0.0.1:${port}`, '--timeout', '500', 'backup', file, '--force');
  expect(forced.code).toBe(3);
  expect(fs.readFileSync(file, 'utf8')).toBe('an older backup');
  expect(fs.readdirSync(dir)).toEqual(['b.snap']);
});
