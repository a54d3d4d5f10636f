/**
 * kv-cli and the SDK against a real 3-node cluster: the operations and their exit codes, values
 * from files, stdin and hex, and bad input (usage errors exit 2, an unreachable cluster or one
 * without a leader exits 3).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterUnavailableError, InvalidArgumentError, KvClient } from '../../src/index.js';
import { cli, CLI_JS, Cluster, ensureBuilt, freePorts, killAll, tempDir, waitFor } from './cluster.js';

let cluster: Cluster;
let client: KvClient;
let ep: string;

beforeAll(async () => {
  await ensureBuilt();
  cluster = await Cluster.create('basic');
  cluster.startAll();
  await cluster.waitForLeader();
  ep = cluster.endpoints.join(',');
  client = new KvClient({ endpoints: cluster.endpoints });
});

afterAll(async () => {
  client?.close();
  await cluster?.close();
  await killAll();
});

const kv = (...args: string[]) => cli(['--endpoints', ep, ...args]);

describe('operations', () => {
  it('put/get/append/del/cas through kv-cli, with the documented exit codes', async () => {
    // Independent chains on different keys run side by side (each kv-cli run is a process start).
    const chainA = async (): Promise<void> => {
      let r = await kv('put', 'a', 'hello');
      expect([r.code, r.stdout, r.stderr]).toEqual([0, 'OK\n', '']);
      r = await kv('get', 'a');
      expect([r.code, r.stdout]).toEqual([0, 'hello\n']);
      expect((await kv('del', 'a')).code).toBe(0);
      r = await kv('del', 'a'); // missing key: 1
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not found/);
    };
    const chainB = async (): Promise<void> => {
      expect((await kv('put', 'b', 'hello')).code).toBe(0);
      expect((await kv('append', 'b', ', world')).code).toBe(0);
      // endpoints from the environment, --json
      const r = await cli(['get', 'b', '--json'], { env: { ...process.env, RAFTKV_ENDPOINTS: ep } });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ key: 'b', found: true, value: 'hello, world' });
      const missing = await kv('get', 'never-b', '--json');
      expect([missing.code, JSON.parse(missing.stdout)]).toEqual([1, { key: 'never-b', found: false }]);
    };
    const chainC = async (): Promise<void> => {
      expect((await kv('put', '007', '0123')).code).toBe(0); // number-like strings stay strings
      expect((await kv('cas', '007', '0123', 'bye')).code).toBe(0);
      const r = await kv('cas', '007', '0123', 'again'); // mismatch: 1, value unchanged
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cas not applied/);
      expect((await kv('get', '007')).stdout).toBe('bye\n');
    };
    const chainD = async (): Promise<void> => {
      const r = await kv('get', 'never-written'); // missing key: 1, nothing on stdout
      expect([r.code, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toMatch(/not found/);
      expect((await kv('cas', 'never-written', '', 'x')).code).toBe(1); // an absent key equals nothing
    };
    await Promise.all([chainA(), chainB(), chainC(), chainD()]);
  });

  it('the SDK sees what kv-cli wrote and the other way round', async () => {
    await client.put('sdk', 'v1');
    await client.append('sdk', '+v2');
    const [put, got] = await Promise.all([kv('put', 'shared', 'from-cli'), kv('get', 'sdk')]);
    expect(put.code).toBe(0);
    expect(got.stdout).toBe('v1+v2\n');
    expect(await client.get('shared')).toBe('from-cli');
    expect(await client.get('sdk')).toBe('v1+v2');
    expect(await client.get('nope')).toBeUndefined();

    expect(await client.cas('sdk', 'wrong', 'x')).toBe(false);
    expect(await client.cas('sdk', 'v1+v2', 'v3')).toBe(true);
    expect(await client.cas('absent', '', 'x')).toBe(false); // an absent key equals nothing
    expect(await client.get('sdk')).toBe('v3');

    expect(await client.delete('sdk')).toBe(true);
    expect(await client.delete('sdk')).toBe(false);
    expect(await client.get('sdk')).toBeUndefined();

    // bytes in, bytes out; UTF-8 strings
    const bin = Uint8Array.from([0, 255, 1, 254]);
    await client.put(Uint8Array.from([1, 2, 3]), bin);
    expect(await client.getBytes(Uint8Array.from([1, 2, 3]))).toEqual(Buffer.from(bin));
    await client.put('ключ', 'значение ✓');
    expect(await client.get('ключ')).toBe('значение ✓');
    expect((await kv('get', 'ключ')).stdout).toBe('значение ✓\n');
  });

  it('concurrent calls on one client are all applied', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.put(`c${i}`, String(i))));
    await Promise.all(Array.from({ length: 20 }, () => client.append('counter', 'x')));
    const got = await Promise.all(Array.from({ length: 50 }, (_, i) => client.get(`c${i}`)));
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    expect(await client.get('counter')).toBe('x'.repeat(20));
  });

  it('linearizable reads do not write to the log: 1000 gets leave every last log index unchanged', async () => {
    await client.put('read-me', 'x');
    await cluster.waitCaughtUp();
    const lastIndexes = async (): Promise<number[]> =>
      (await cluster.status()).map((r) => (r.ok ? r.status.lastLogIndex : -1));
    const before = await lastIndexes();
    for (let i = 0; i < 1000; i += 50) {
      const values = await Promise.all(Array.from({ length: 50 }, () => client.get('read-me')));
      expect(new Set(values)).toEqual(new Set(['x']));
    }
    expect(await lastIndexes()).toEqual(before);
  });

  it('status lists every node with one leader', async () => {
    const r = await kv('status');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+ADDRESS\s+ROLE\s+TERM\s+LEADER\s+COMMIT\s+APPLIED\s+STATE\/QUOTA$/);
    // The state against its quota (kv-server's default: a quarter of the heap limit, at most 2 GiB).
    expect(lines[1]).toMatch(/\s\d+(\.\d)? (B|KiB|MiB) \/ \d+\.\d (MiB|GiB) \(\d+%\)$/);
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => /\sleader\s/.test(l))).toHaveLength(1);
    for (const n of cluster.nodes) expect(r.stdout).toContain(n.clientAddr);
  });
});

describe('values', () => {
  it('a value that starts with "-" goes after --', async () => {
    const put = await kv('put', 'dash', '--', '-v');
    expect([put.code, put.stderr]).toEqual([0, '']);
    expect((await kv('get', 'dash')).stdout).toBe('-v\n');
    expect((await kv('append', '--', 'dash', '--x')).code).toBe(0);
    expect((await kv('cas', 'dash', '--', '-v--x', '-1')).code).toBe(0);
    expect(await client.get('dash')).toBe('-1');
  });

  it('--value-file FILE and --value-file - (stdin): bytes as they are, beyond what a command line can hold', async () => {
    const dir = tempDir('cli-values');
    try {
      // 200 KiB: more than one argument may be (128 KiB on Linux), and not UTF-8.
      const big = Buffer.alloc(200 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 256;
      const file = path.join(dir, 'big.bin');
      fs.writeFileSync(file, big);
      expect((await kv('put', 'from-file', '--value-file', file)).code).toBe(0);
      expect(await client.getBytes('from-file')).toEqual(big);

      const fromStdin = spawnSync(process.execPath, [CLI_JS, '--endpoints', ep, 'append', 'from-file', '--value-file', '-'], {
        input: Buffer.from('\n-tail\n'),
        timeout: 20_000,
      });
      expect(fromStdin.status, fromStdin.stderr.toString()).toBe(0);
      expect(await client.getBytes('from-file')).toEqual(Buffer.concat([big, Buffer.from('\n-tail\n')]));

      // cas with both values from files; an empty file is an empty value
      const empty = path.join(dir, 'empty');
      fs.writeFileSync(empty, '');
      const full = Buffer.concat([big, Buffer.from('\n-tail\n')]);
      fs.writeFileSync(path.join(dir, 'expected'), full);
      const cas = await kv('cas', 'from-file', '--expected-file', path.join(dir, 'expected'), '--value-file', empty);
      expect(cas.code, cas.stderr).toBe(0);
      expect(await client.getBytes('from-file')).toEqual(Buffer.alloc(0));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--json get gives a value that is not UTF-8 in base64; --hex takes and prints hex', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x0a, 0x41]);
    await client.put('binary', bytes);
    const asJson = await kv('--json', 'get', 'binary');
    expect(asJson.code).toBe(0);
    expect(JSON.parse(asJson.stdout)).toEqual({ key: 'binary', found: true, value_base64: bytes.toString('base64') });
    expect(Buffer.from(JSON.parse(asJson.stdout).value_base64, 'base64')).toEqual(bytes);

    expect((await kv('--hex', 'get', Buffer.from('binary').toString('hex'))).stdout).toBe('00fffe0a41\n');
    expect(JSON.parse((await kv('--hex', '--json', 'get', '62696e617279')).stdout)).toEqual({ key: '62696e617279', found: true, value_hex: '00fffe0a41' });

    // a binary key and value from hex
    expect((await kv('--hex', 'put', '00ff', 'c0ffee')).code).toBe(0);
    expect(await client.getBytes(Buffer.from([0x00, 0xff]))).toEqual(Buffer.from('c0ffee', 'hex'));
    expect((await kv('--hex', 'cas', '00ff', 'c0ffee', '')).code).toBe(0);
    expect(await client.getBytes(Buffer.from([0x00, 0xff]))).toEqual(Buffer.alloc(0));
  });
});

describe('bad input', () => {
  it('oversized key or value: exit 2 with the server message; InvalidArgumentError in the SDK', async () => {
    const [r1, r2] = await Promise.all([kv('put', 'k'.repeat(5000), 'v'), kv('get', 'k'.repeat(4097))]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(/key is 5000 bytes; the limit is 4096 bytes/);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/limit is 4096 bytes/);

    await expect(client.put('big', Buffer.alloc(1024 * 1024 + 1))).rejects.toThrow(InvalidArgumentError);
    await expect(client.put('big', Buffer.alloc(1024 * 1024 + 1))).rejects.toThrow(/limit is 1048576 bytes/);
    await expect(client.put('big', Buffer.alloc(8 * 1024 * 1024))).rejects.toThrow(InvalidArgumentError);
    // the limit itself is fine
    await client.put('big', Buffer.alloc(1024 * 1024, 7));
    expect((await client.getBytes('big'))?.length).toBe(1024 * 1024);
  });

  it('empty key: exit 2', async () => {
    const [r, g] = await Promise.all([kv('put', '', 'v'), kv('get', '')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/key must not be empty/);
    expect(g.code).toBe(2);
    await expect(client.get('')).rejects.toThrow(InvalidArgumentError);
  });

  it('usage errors: exit 2 with the reason and one line pointing to --help, not the whole help', async () => {
    const cases: [string[], RegExp][] = [
      [['--endpoints', ep, 'frobnicate', 'x'], /unknown command "frobnicate"/],
      [['--endpoints', ep, 'constructor'], /unknown command "constructor"/],
      [['--endpoints', ep], /give a command/],
      [['--endpoints', ep, 'put', 'onlykey'], /missing VALUE: put KEY VALUE \(or give --value-file FILE\)/],
      [['--endpoints', ep, 'get', 'a', 'b'], /unexpected argument\(s\) "b": get KEY/],
      [['--endpoints', 'localhost', 'get', 'a'], /bad endpoint/],
      [['--endpoints', '127.0.0.1:99999', 'get', 'a'], /bad endpoint/],
      [['--endpoints', ',', 'get', 'a'], /no endpoints/],
      [['get', 'a'], /no endpoints/],
      [['--endpoints', ep, '--timeout', 'soon', 'get', 'a'], /--timeout must be a whole number of milliseconds from 1 to 3600000, got "soon"/],
      [['--endpoints', ep, '--timeout', '0', 'get', 'a'], /--timeout must be .* got "0"/],
      [['--endpoints', ep, '--timeout', '1e10', 'get', 'a'], /--timeout must be .* got "1e10"/],
      [['--endpoints', ep, '--timeout', '3600001', 'get', 'a'], /--timeout must be .* got "3600001"/],
      [['--endpoints', ep, '--timeout=-5', 'get', 'a'], /--timeout must be .* got "-5"/],
      [['--endpoints', ep, '--timeout'], /--timeout <value>' argument missing/],
      [['--endpoints', ep, '--bogus', 'get', 'a'], /unknown option --bogus/],
      [['--endpoints', ep, 'put', 'k', '-v'], /unknown option -v .*goes after "--", as in: kv-cli put KEY -- -v/],
      [['--endpoints', ep, 'get', 'k', '--value-file', 'f'], /--value-file does not go with get/],
      [['--endpoints', ep, 'put', 'k', 'v', '--value-file', 'f'], /unexpected argument\(s\) "v": put KEY/],
      [['--endpoints', ep, 'cas', 'k', '--value-file', '-', '--expected-file', '-'], /cannot both read stdin/],
      [['--endpoints', ep, 'put', 'k', '--value-file', '/no/such/file'], /--value-file \/no\/such\/file: cannot read it: no such file/],
      [['--endpoints', ep, 'put', 'k', '--value-file', '/'], /--value-file \/: cannot read it: it is a directory/],
      [['--endpoints', ep, '--hex', 'put', 'zz', '00'], /--hex: KEY "zz" is not hex/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      expect(r.code, `kv-cli ${args.join(' ')}: ${r.stderr}`).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, `kv-cli ${args.join(' ')}`).toHaveLength(2);
      expect(lines[0]).toMatch(/^kv-cli: /);
      expect(lines[0]).toMatch(message);
      expect(lines[1]).toBe('Run kv-cli --help for usage.');
      expect(r.stdout).toBe('');
    });
    const help = await cli(['--help']);
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toMatch(/^Usage: kv-cli/);
    for (const option of ['--value-file', '--expected-file', '--hex', '--json', '--timeout', '--endpoints']) expect(help.stdout).toContain(option);
  });

  it('a value over the limit from a file is refused before it is sent: exit 2', async () => {
    const dir = tempDir('cli-big');
    try {
      const file = path.join(dir, 'big');
      fs.writeFileSync(file, Buffer.alloc(1024 * 1024 + 1, 1));
      const r = await kv('put', 'big-file', '--value-file', file);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/the value is over the limit of 1048576 bytes/);
      expect(await client.get('big-file')).toBeUndefined();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('status without a leader (2 of 3 nodes down): exit 3, and says so', async () => {
    const lonely = await Cluster.create('noleader', { size: 3 });
    try {
      lonely.start(1); // one node of three can never be elected
      await waitFor('node 1 to answer Status', async () => (await lonely.status())[0]?.ok);
      const r = await cli(['--endpoints', lonely.endpoints.join(','), 'status']);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toMatch(/no leader: 1 of 3 nodes answered, and none of them leads in term \d+/);
      expect(r.stdout.match(/unreachable/g)).toHaveLength(2);
    } finally {
      await lonely.close();
    }
  });

  it('unreachable cluster: exit 3 within the deadline; ClusterUnavailableError in the SDK', async () => {
    const ports = await freePorts(2); // nothing listens there
    const dead = ports.map((p) => `127.0.0.1:${p}`).join(',');
    const [r, s] = await Promise.all([
      cli(['--endpoints', dead, '--timeout', '1000', 'put', 'k', 'v']),
      cli(['--endpoints', dead, 'status']),
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cluster unavailable/);
    expect(r.ms).toBeLessThan(1000 + 3000); // the deadline plus process start-up
    expect(s.code).toBe(3);
    expect(s.stdout).toMatch(/unreachable/);

    const c = new KvClient({ endpoints: dead, timeoutMs: 500 });
    const t0 = Date.now();
    await expect(c.get('k')).rejects.toThrow(ClusterUnavailableError);
    expect(Date.now() - t0).toBeLessThan(1500);
    c.close();
  });
});
