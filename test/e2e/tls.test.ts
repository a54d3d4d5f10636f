/**
 * Mutual TLS end to end, on real kv-server processes (issue 13): a 3-node cluster with mutual TLS
 * on both ports stays linearizable under a workload and serves kv-cli; a member restarted with a
 * peer certificate of another CA is refused by its peers and never catches up; a client without
 * a certificate and a plaintext client are refused with an error that says why; a certificate
 * rotated with SIGHUP is the one new connections see (a bad rotation keeps the old); a bad
 * certificate at start refuses the start, naming the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClientTls } from '../../src/index.js';
import { checkLinearizable, formatCounterexample } from '../support/linearizability.js';
import { certDir, issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { cli, Cluster, ensureBuilt, freePorts, killAll, server, tempDir, waitFor } from './cluster.js';
import { Workload } from './workload.js';

let dir: string;
let ca: Ca;
let otherCa: Ca;
let clientCert: Issued;
let expired: Issued;
let cluster: Cluster | undefined;

beforeAll(async () => {
  await ensureBuilt();
  dir = certDir();
  ca = makeCa(dir, 'ca');
  otherCa = makeCa(dir, 'other-ca');
  clientCert = issue(ca, 'client');
  expired = issue(ca, 'expired', { dates: { start: '20200101000000Z', end: '20200102000000Z' } });
  // Each node has its own files, so that one of them can be rotated alone.
  for (const id of [1, 2, 3, 4]) {
    const n = issue(ca, `node-${id}`);
    fs.copyFileSync(n.cert, nodeFile(id, 'crt'));
    fs.copyFileSync(n.key, nodeFile(id, 'key'));
  }
}, 30_000);
afterAll(async () => {
  await cluster?.close();
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const nodeFile = (id: number, ext: 'crt' | 'key'): string => path.join(dir, `live-node-${id}.${ext}`);
const pem = (p: string): Buffer => fs.readFileSync(p);
const clientTls = (): ClientTls => ({ ca: pem(ca.cert), cert: pem(clientCert.cert), key: pem(clientCert.key) });
const cliTls = (): string[] => ['--cacert', ca.cert, '--cert', clientCert.cert, '--key', clientCert.key];

function tlsArgs(id: number, peer: { cert: string; key: string; ca: string } = { cert: nodeFile(id, 'crt'), key: nodeFile(id, 'key'), ca: ca.cert }): string[] {
  return [
    '--cert-file', nodeFile(id, 'crt'), '--key-file', nodeFile(id, 'key'), '--trusted-ca-file', ca.cert, '--client-cert-auth',
    '--peer-cert-file', peer.cert, '--peer-key-file', peer.key, '--peer-trusted-ca-file', peer.ca,
  ];
}

/** The serial number of the certificate a new TLS connection to `addr` is shown. */
function servedSerial(addr: string): Promise<string> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, ca: pem(ca.cert), cert: pem(clientCert.cert), key: pem(clientCert.key), ALPNProtocols: ['h2'] }, () => {
      resolve(socket.getPeerCertificate().serialNumber);
      socket.destroy();
    });
    socket.once('error', reject);
    socket.setTimeout(3000, () => socket.destroy(new Error(`no TLS handshake with ${addr} within 3 s`)));
  });
}

describe('a 3-node cluster with mutual TLS on both ports', () => {
  it('passes a linearizability workload, and kv-cli works with --cacert --cert --key and with RAFTKV_CACERT etc.', { timeout: 30_000 }, async () => {
    const c = (cluster = await Cluster.create('tls', { clientTls: clientTls() }));
    for (const n of c.nodes) c.start(n.id, tlsArgs(n.id));
    await c.waitForLeader();
    const w = new Workload({ endpoints: c.endpoints, seed: 13, registerClients: 6, readerEndpoints: [], keys: 3, ledgerWriters: 2, timeoutMs: [5000, 5000], thinkMs: 5, tls: clientTls() });
    w.start();
    await waitFor('300 acknowledged writes over TLS', () => w.ackedWrites >= 300, 15_000);
    await w.stop();
    const { lost } = await w.readBack();
    expect(lost).toEqual([]);
    const result = checkLinearizable(w.history.operations(), { timeoutMs: 10_000 });
    if (result.ok === false) expect.fail(formatCounterexample(result));
    expect(result.ok).toBe(true);

    const endpoints = ['--endpoints', c.endpoints.join(',')];
    expect((await cli([...endpoints, ...cliTls(), 'put', 'tls-key', 'over-tls'])).code).toBe(0);
    const env = { ...process.env, RAFTKV_ENDPOINTS: c.endpoints.join(','), RAFTKV_CACERT: ca.cert, RAFTKV_CERT: clientCert.cert, RAFTKV_KEY: clientCert.key };
    const got = await cli(['get', 'tls-key'], { env });
    expect(got.stdout).toBe('over-tls\n');
    expect(got.stderr, 'no warning about an IP address as the TLS server name').toBe('');
  });

  it('refuses a client without a certificate, and a plaintext client, saying why; kv-cli refuses an expired certificate naming the file', { timeout: 20_000 }, async () => {
    const c = cluster!;
    const endpoints = ['--endpoints', c.endpoints.join(','), '--timeout', '2000'];
    const noCert = await cli([...endpoints, '--cacert', ca.cert, 'get', 'tls-key']);
    expect(noCert.code).toBe(3);
    expect(noCert.stderr).toMatch(/requires a client certificate/);
    const plain = await cli([...endpoints, 'get', 'tls-key']);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/if its client port has TLS, connect with TLS/);
    const old = await cli([...endpoints, '--cacert', ca.cert, '--cert', expired.cert, '--key', expired.key, 'get', 'tls-key']);
    expect(old.code).toBe(2);
    expect(old.stderr).toContain(`--cert ${expired.cert}: the certificate expired on`);
  });

  it('a member restarted with a peer certificate of another CA is refused by its peers and never catches up; with the right one it does', { timeout: 30_000 }, async () => {
    const c = cluster!;
    const rogue = issue(otherCa, 'rogue');
    await c.stop(3);
    const logFrom = c.node(3).log.length;
    c.start(3, tlsArgs(3, { cert: rogue.cert, key: rogue.key, ca: otherCa.cert }));
    await waitFor("node 3's log to say its peers' certificates are refused", () => /not reachable yet.*(self-signed certificate|unable to verify|certificate)/.test(c.node(3).log.slice(logFrom)), 10_000);
    const endpoints = ['--endpoints', c.endpoints.slice(0, 2).join(','), ...cliTls()];
    expect((await cli([...endpoints, 'put', 'while-rogue', 'x'])).code).toBe(0);
    const node3 = await cli(['--endpoints', c.node(3).clientAddr, ...cliTls(), '--json', 'status']);
    const row = JSON.parse(node3.stdout)[0];
    expect(row.status.leaderId, `node 3 should know no leader: ${node3.stdout}`).toBe(0);
    await c.stop(3);
    c.start(3, tlsArgs(3));
    await c.waitCaughtUp();
  });

  it('a certificate rotated with SIGHUP is the one new connections see; a rotation to a bad one keeps the old', { timeout: 20_000 }, async () => {
    const c = cluster!;
    const n1 = c.node(1);
    const before = await servedSerial(n1.clientAddr);
    const next = issue(ca, 'node-1-next', { serial: 0x4242 });
    fs.copyFileSync(next.cert, nodeFile(1, 'crt'));
    fs.copyFileSync(next.key, nodeFile(1, 'key'));
    const logFrom = n1.log.length;
    process.kill(n1.proc!.pid!, 'SIGHUP');
    await waitFor('both ports to reload', () => (n1.log.slice(logFrom).match(/certificates reloaded/g) ?? []).length === 2, 5000);
    expect(before).not.toBe('4242');
    expect(await servedSerial(n1.clientAddr)).toBe('4242');
    expect(await servedSerial(n1.peerAddr)).toBe('4242');

    fs.copyFileSync(expired.cert, nodeFile(1, 'crt'));
    fs.copyFileSync(expired.key, nodeFile(1, 'key'));
    const badFrom = n1.log.length;
    process.kill(n1.proc!.pid!, 'SIGHUP');
    await waitFor('the bad rotation to be refused', () => /certificates not reloaded.*expired/.test(n1.log.slice(badFrom)), 5000);
    expect(await servedSerial(n1.clientAddr)).toBe('4242');
    expect((await cli(['--endpoints', n1.clientAddr, ...cliTls(), 'get', 'tls-key'])).stdout).toBe('over-tls\n');
  });
});

describe('membership over TLS', () => {
  it('a node started with --join asks the cluster over TLS, is added by kv-cli and catches up', { timeout: 30_000 }, async () => {
    const c = cluster!;
    const n4 = await c.addNode();
    expect(n4.id).toBe(4);
    c.start(4, tlsArgs(4));
    const add = await cli(['--endpoints', c.endpoints.slice(0, 3).join(','), ...cliTls(), 'member', 'add', '4', n4.peerAddr, '--client-addr', n4.clientAddr, '--learner']);
    expect(add.code, add.stderr).toBe(0);
    await c.waitCaughtUp();
  });
});

describe('kv-server at start', () => {
  async function start(extra: string[]): Promise<{ code: number | null; stderr: string }> {
    const [peer, client] = await freePorts(2);
    const data = tempDir('tls-start');
    try {
      return await server(['--id', '1', '--peers', `1=127.0.0.1:${peer}`, '--client-addr', `127.0.0.1:${client}`, '--data-dir', path.join(data, 'd'), ...extra]);
    } finally {
      fs.rmSync(data, { recursive: true, force: true });
    }
  }

  it('refuses an expired certificate, a key of another certificate, and a peer certificate the peer CA did not sign: exit 1, naming the file', { timeout: 20_000 }, async () => {
    const good = issue(ca, 'start-good');
    const r1 = await start(['--cert-file', expired.cert, '--key-file', expired.key]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain(`--cert-file ${expired.cert}: the certificate expired on`);
    const r2 = await start(['--cert-file', good.cert, '--key-file', clientCert.key]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`--key-file ${clientCert.key} is not the private key of the certificate in --cert-file ${good.cert}`);
    const rogue = issue(otherCa, 'start-rogue');
    const r3 = await start(['--peer-cert-file', rogue.cert, '--peer-key-file', rogue.key, '--peer-trusted-ca-file', ca.cert]);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain(`--peer-cert-file ${rogue.cert} is not signed by the CA in --peer-trusted-ca-file ${ca.cert}`);
    for (const r of [r1, r2, r3]) expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('refuses TLS flags that do not go together: exit 2', { timeout: 20_000 }, async () => {
    const r1 = await start(['--cert-file', clientCert.cert]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain('needs both --cert-file and --key-file');
    const r2 = await start(['--peer-cert-file', clientCert.cert, '--peer-key-file', clientCert.key]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('--peer-trusted-ca-file');
  });
});
