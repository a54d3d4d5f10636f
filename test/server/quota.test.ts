/**
 * The state's quota (kv-server --quota-bytes), end to end on a one-node cluster served over gRPC on
 * 127.0.0.1: writes that would take the state past it are refused as no-space (the SDK's
 * NoSpaceError, not retried; kv-cli exits 4 and says why), a delete is taken and makes room again.
 * kv-store.test.ts checks the accounting; this checks the flag, the refusal on the wire and the
 * client's reading of it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../src/client/cli-main.js';
import { systemClock } from '../../src/clock.js';
import { KvClient, NoSpaceError } from '../../src/index.js';
import { dataDirDisk } from '../../src/server/disk.js';
import { defaultQuotaBytes } from '../../src/server/config.js';
import { parseArgs } from '../../src/server/flags.js';
import { grpcNetwork } from '../../src/server/grpc-network.js';
import { KvServer } from '../../src/server/kv-server.js';
import type { Logger } from '../../src/server/logger.js';
import { STATE_BYTES_PER_KEY } from '../../src/server/kv-store.js';
import { freePorts } from '../support/ports.js';

const QUOTA = 1024 * 1024;
const VALUE = Buffer.alloc(100_000, 7);

let server: KvServer;
let dataDir: string;
let endpoint: string;
let client: KvClient;

beforeAll(async () => {
  const [peer, port] = await freePorts(2);
  endpoint = `127.0.0.1:${port}`;
  dataDir = await mkdtemp(join(tmpdir(), 'raftkv-quota-'));
  const cfg = parseArgs(['--id', '1', '--peers', `1=127.0.0.1:${peer}`, '--client-addr', endpoint, '--data-dir', dataDir, '--quota-bytes', String(QUOTA), '--unsafe-no-fsync']);
  const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
  server = new KvServer(cfg, { clock: systemClock, disk: dataDirDisk(dataDir, { unsafeNoFsync: true }), network: grpcNetwork(), logger: quiet, seed: 1, onFatal: () => {} });
  await server.start();
  client = new KvClient({ endpoints: [endpoint], timeoutMs: 5000 });
});

afterAll(async () => {
  client?.close();
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it('refuses writes past --quota-bytes as no-space, at once and changing nothing; a delete makes room', async () => {
  const fits = Math.floor(QUOTA / (VALUE.length + 2 + STATE_BYTES_PER_KEY));
  for (let i = 0; i < fits; i++) await client.put(`k${String(i).padStart(2, '0')}`, VALUE);
  const started = Date.now();
  const refused = await client.put('one-more', VALUE).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(NoSpaceError);
  expect((refused as Error).message).toMatch(/no space: the state holds \d+ bytes .* past the quota of 1048576 bytes \(--quota-bytes\); delete keys to make room/);
  expect(Date.now() - started).toBeLessThan(1000); // not retried until the deadline
  expect(await client.get('one-more')).toBeUndefined();
  // An append grows the state too; a small write still fits in what is left.
  await expect(client.append('k00', VALUE)).rejects.toBeInstanceOf(NoSpaceError);
  await client.put('tiny', 'x');

  let stderr = '';
  const code = await main(['--endpoints', endpoint, 'put', 'one-more', 'v'.repeat(VALUE.length)], { out: () => {}, err: (t) => void (stderr += t) });
  expect([code, stderr]).toEqual([4, expect.stringMatching(/^kv-cli: refused: .*no space: .*--quota-bytes/)]);

  // Status says how full the state is, and kv-cli status shows it.
  const [st] = await client.status();
  expect(st).toMatchObject({ ok: true, status: { quotaBytes: QUOTA } });
  const used = st!.ok ? st!.status.quotaUsedBytes : 0;
  expect(used).toBeGreaterThan(QUOTA - VALUE.length - 200);
  expect(used).toBeLessThanOrEqual(QUOTA);
  let table = '';
  expect(await main(['--endpoints', endpoint, 'status'], { out: (t) => void (table += t.toString()), err: () => {} })).toBe(0);
  expect(table).toMatch(/STATE\/QUOTA\n.* \d+\.\d KiB \/ 1\.0 MiB \(9\d%\)\n/);

  expect(await client.delete('k00')).toBe(true);
  await client.put('one-more', VALUE);
  expect((await client.get('one-more'))?.length).toBe(VALUE.length);
});

it('--quota-bytes: a quarter of the heap limit by default, at most 2 GiB; from 1 MiB to half the heap limit when given', () => {
  const MiB = 1024 * 1024;
  expect(defaultQuotaBytes(4096 * MiB)).toBe(1024 * MiB);
  expect(defaultQuotaBytes(16384 * MiB)).toBe(2048 * MiB);
  const args = (...more: string[]) => ['--id', '1', '--peers', '1=127.0.0.1:7001', '--client-addr', '127.0.0.1:9001', '--data-dir', '/tmp/raftkv-quota-flags', ...more];
  expect(parseArgs(args()).quotaBytes).toBe(defaultQuotaBytes());
  expect(parseArgs(args('--quota-bytes', String(8 * MiB))).quotaBytes).toBe(8 * MiB);
  expect(() => parseArgs(args('--quota-bytes', '1000'))).toThrow(/--quota-bytes must be a whole number of bytes from 1048576/);
  expect(() => parseArgs(args('--quota-bytes', '1e9'))).toThrow(/--quota-bytes must be a whole number/);
  expect(() => parseArgs(args('--quota-bytes', String(2 ** 52)))).toThrow(/more than half of this process's heap limit .*--max-old-space-size/);
});
