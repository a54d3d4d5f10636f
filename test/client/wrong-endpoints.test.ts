/**
 * A client pointed at the wrong place says so: a name that does not resolve, or a server that does
 * not speak gRPC, fails the call at once with a message naming the endpoint, instead of retrying
 * until the deadline; nothing listening (a cluster that may still be starting) is retried until the
 * deadline, and the error then says no endpoint ever answered.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ClusterUnavailableError, KvClient } from '../../src/index.js';
import { freePorts } from '../support/ports.js';

let web: http.Server;
let webAddr = '';
beforeAll(async () => {
  web = http.createServer((_req, res) => res.end('not grpc'));
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webAddr = `127.0.0.1:${(web.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => web.close(() => resolve())));

async function failure(endpoints: string[], timeoutMs: number): Promise<{ ms: number; error: Error }> {
  const kv = new KvClient({ endpoints, timeoutMs });
  const t0 = Date.now();
  try {
    await kv.get('k');
    throw new Error('the call succeeded');
  } catch (e) {
    return { ms: Date.now() - t0, error: e as Error };
  } finally {
    kv.close();
  }
}

it('an HTTP/1 server and an unresolvable name: refused at once, naming each endpoint', async () => {
  const r = await failure([webAddr, 'no-such-host.invalid:9001'], 10_000);
  expect(r.error).toBeInstanceOf(ClusterUnavailableError);
  expect(r.error.message).toMatch(/no endpoint is a raftkv node/);
  expect(r.error.message).toContain(webAddr);
  expect(r.error.message).toContain('no-such-host.invalid:9001');
  expect(r.ms).toBeLessThan(5_000);
});

it('nothing listening: retried until the deadline, then says no endpoint ever answered', async () => {
  const [port] = await freePorts(1);
  const r = await failure([`127.0.0.1:${port}`], 1_500);
  expect(r.error).toBeInstanceOf(ClusterUnavailableError);
  expect(r.error.message).toMatch(/no endpoint ever answered: is the cluster up/);
  expect(r.ms).toBeGreaterThanOrEqual(1_000);
});
