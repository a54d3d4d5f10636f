/**
 * kv-server on a data dir it may not use: one line that names the path and the permission
 * problem, exit 1, nothing created or changed. The server runs as an unprivileged user (root
 * ignores file modes, so under root the test runs it as uid/gid 65534).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, freePorts, SERVER_JS, sha256File, tempDir } from './cluster.js';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
let root: string;

beforeAll(async () => {
  await ensureBuilt();
  root = tempDir('access');
  fs.chmodSync(root, 0o755); // reachable by the unprivileged user
});

afterAll(() => {
  // Give back what the cases took away, so that a non-root run can delete it all.
  for (const f of fs.readdirSync(root, { recursive: true, encoding: 'utf8' })) fs.chmodSync(path.join(root, f), 0o755);
  fs.rmSync(root, { recursive: true, force: true });
});

/** Every path below `dir` with its mode and (for files) hash: "nothing changed" means this stays equal. */
function listing(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const p = path.join(dir, f);
    const st = fs.statSync(p);
    out[f] = `${(st.mode & 0o7777).toString(8)} ${st.isFile() ? sha256File(p) : 'dir'}`;
  }
  return out;
}

async function serve(dataDir: string): Promise<{ code: number | null; stderr: string }> {
  const [peer, client] = await freePorts(2);
  const args = ['--id', '1', '--peers', `1=127.0.0.1:${peer!}`, '--client-addr', `127.0.0.1:${client!}`, '--data-dir', dataDir];
  // Synchronous: nothing else runs in this file, and spawnSync is what can take a uid.
  const r = spawnSync(process.execPath, [SERVER_JS, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  return { code: r.status, stderr: r.stderr };
}

describe('data dir permissions', () => {
  it('refuses a data dir it may not reach, create, write or read: one line naming the path, exit 1, nothing changed', async () => {
    // 1. A parent directory that may not be searched (this used to print a stack trace).
    const closed = path.join(root, 'closed');
    fs.mkdirSync(path.join(closed, 'inner'), { recursive: true });
    // 2. A parent that may not be written: the data dir cannot be created.
    const readOnlyParent = path.join(root, 'read-only-parent');
    fs.mkdirSync(readOnlyParent);
    // 3. A data dir that may not be written.
    const readOnlyDir = path.join(root, 'read-only-dir');
    fs.mkdirSync(readOnlyDir);
    fs.writeFileSync(path.join(readOnlyDir, 'raft.db'), 'not opened');
    // 4. A writable data dir whose log file may not be written.
    const readOnlyLog = path.join(root, 'read-only-log');
    fs.mkdirSync(path.join(readOnlyLog, 'snap'), { recursive: true });
    fs.writeFileSync(path.join(readOnlyLog, 'raft.db'), 'not opened');
    fs.writeFileSync(path.join(readOnlyLog, 'snap', 'snapshot-1'), 'not read');
    // 5. A snapshot that may not be read.
    const unreadableSnap = path.join(root, 'unreadable-snap');
    fs.mkdirSync(path.join(unreadableSnap, 'snap'), { recursive: true });
    fs.writeFileSync(path.join(unreadableSnap, 'snap', 'snapshot-1'), 'not read');

    fs.chmodSync(readOnlyLog, 0o777);
    fs.chmodSync(path.join(readOnlyLog, 'snap'), 0o777);
    fs.chmodSync(path.join(readOnlyLog, 'raft.db'), 0o444);
    fs.chmodSync(path.join(readOnlyLog, 'snap', 'snapshot-1'), 0o444);
    fs.chmodSync(unreadableSnap, 0o777);
    fs.chmodSync(path.join(unreadableSnap, 'snap'), 0o777);
    fs.chmodSync(path.join(unreadableSnap, 'snap', 'snapshot-1'), 0o200);
    fs.chmodSync(readOnlyDir, 0o555);
    fs.chmodSync(readOnlyParent, 0o555);
    fs.chmodSync(closed, 0o600);

    const cases: [string, string, RegExp][] = [
      ['closed parent', path.join(closed, 'inner', 'node'), new RegExp(`cannot reach data dir .*: permission denied: .* may not search \\(x\\) ${closed}`)],
      ['read-only parent', path.join(readOnlyParent, 'node'), new RegExp(`cannot create data dir .*: permission denied: .* may not write ${readOnlyParent}`)],
      ['read-only data dir', readOnlyDir, new RegExp(`cannot use data dir ${readOnlyDir}: permission denied: .* may not read, write and search \\(rwx\\) ${readOnlyDir}`)],
      ['read-only log', readOnlyLog, new RegExp(`cannot use data dir ${readOnlyLog}: permission denied: .* may not read and write ${readOnlyLog}/raft.db`)],
      ['unreadable snapshot', unreadableSnap, new RegExp(`may not read ${unreadableSnap}/snap/snapshot-1; it is owned by uid \\d+, gid \\d+, mode 0200`)],
    ];
    fs.chmodSync(closed, 0o755);
    const before = listing(root);
    fs.chmodSync(closed, 0o600);
    for (const [name, dataDir, message] of cases) {
      const r = await serve(dataDir);
      expect(r.code, `${name}: ${r.stderr}`).toBe(1);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, name).toHaveLength(1);
      expect(lines[0], name).toMatch(/^kv-server: /);
      expect(lines[0], name).toMatch(message);
    }
    fs.chmodSync(closed, 0o755);
    expect(listing(root)).toEqual(before);
  });
});
