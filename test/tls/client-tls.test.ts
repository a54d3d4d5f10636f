/**
 * The SDK over TLS against an in-process node (a Get that answers): it connects with the CA and,
 * for a port that asks for one, its certificate; every way of getting TLS wrong fails with an
 * error that says what is wrong, not only that the node is unreachable.
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterUnavailableError, KvClient, type ClientTls } from '../../src/index.js';
import { loadKvProto } from '../../src/kv-api.js';
import { ReloadableTls, serverCredentials } from '../../src/tls-credentials.js';
import { certDir, issue, makeCa, type Ca, type Issued } from '../support/certs.js';

let dir: string;
let ca: Ca;
let node: Issued;
let client: Issued;
let otherClient: Issued;
const servers: grpc.Server[] = [];

beforeAll(() => {
  dir = certDir();
  ca = makeCa(dir, 'ca');
  node = issue(ca, 'node');
  client = issue(ca, 'client');
  otherClient = issue(makeCa(dir, 'other-ca'), 'other-client');
});
afterAll(() => {
  for (const s of servers) s.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function fakeNode(creds: grpc.ServerCredentials): Promise<string> {
  const server = new grpc.Server();
  const get: grpc.handleUnaryCall<object, object> = (_call, cb) => cb(null, { found: true, value: Buffer.from('v') });
  server.addService(loadKvProto().Kv.service, { get } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))));
  servers.push(server);
  return `127.0.0.1:${port}`;
}

function mtlsNode(): Promise<string> {
  const files = { ca: { flag: '--trusted-ca-file', path: ca.cert }, cert: { flag: '--cert-file', path: node.cert }, key: { flag: '--key-file', path: node.key } };
  return fakeNode(serverCredentials(new ReloadableTls(files), true));
}

const pem = (p: string): Buffer => fs.readFileSync(p);
const withCert = (c: Issued): ClientTls => ({ ca: pem(ca.cert), cert: pem(c.cert), key: pem(c.key) });

/**
 * The error of a get; `fast`: a handshake that failed outright, which must fail the call at once
 * (well before its deadline), not be retried until the deadline.
 */
async function failure(endpoint: string, tls: ClientTls | undefined, fast = false): Promise<string> {
  const kv = new KvClient({ endpoints: [endpoint], timeoutMs: fast ? 5000 : 1500, ...(tls ? { tls } : {}) });
  const started = Date.now();
  try {
    await kv.get('k');
    return 'no error';
  } catch (e) {
    expect(e).toBeInstanceOf(ClusterUnavailableError);
    if (fast) expect(Date.now() - started, (e as Error).message).toBeLessThan(2500);
    return (e as Error).message;
  } finally {
    kv.close();
  }
}

describe('the SDK over TLS', () => {
  it('connects with the CA and its certificate', async () => {
    const kv = new KvClient({ endpoints: [await mtlsNode()], timeoutMs: 3000, tls: withCert(client) });
    try {
      expect(await kv.get('k')).toBe('v');
    } finally {
      kv.close();
    }
  });

  it('without a certificate, against a port that requires one: says a client certificate is required', async () => {
    expect(await failure(await mtlsNode(), { ca: pem(ca.cert) }, true)).toMatch(/requires a client certificate/);
  });

  it("with a certificate of another CA: says the node closed the TLS handshake", async () => {
    expect(await failure(await mtlsNode(), withCert(otherClient))).toMatch(/closed the connection in the TLS handshake/);
  });

  it('in plaintext, against a TLS port: says to connect with TLS', async () => {
    expect(await failure(await mtlsNode(), undefined)).toMatch(/if its client port has TLS, connect with TLS/);
  });

  it('over TLS, against a plaintext port: says the node does not speak TLS', async () => {
    expect(await failure(await fakeNode(grpc.ServerCredentials.createInsecure()), withCert(client), true)).toMatch(/does not speak TLS on this port/);
  });

  it("against a node whose certificate has expired: says so", async () => {
    const expired = issue(ca, 'expired', { dates: { start: '20200101000000Z', end: '20200102000000Z' } });
    const creds = grpc.ServerCredentials.createSsl(pem(ca.cert), [{ cert_chain: pem(expired.cert), private_key: pem(expired.key) }], false);
    expect(await failure(await fakeNode(creds), withCert(client), true)).toMatch(/certificate has expired/);
  });

  it('refuses a certificate without its key', () => {
    expect(() => new KvClient({ endpoints: ['127.0.0.1:1'], tls: { ca: pem(ca.cert), cert: pem(client.cert) } })).toThrow(/cert and key together/);
  });
});
