/**
 * Mutual TLS between peers (GrpcTransport with certificate credentials): members with
 * certificates of the peer CA exchange messages; a node whose certificate another CA signed is
 * refused in the TLS handshake, so that none of its messages reaches Raft (the handler), and the
 * refused node's log says why; a plaintext call to the peer port is refused the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Message, NodeId } from '../../src/raft/core/types.js';
import { GrpcTransport, loadRaftProto } from '../../src/raft/transport/grpc.js';
import { channelCredentials, ReloadableTls, serverCredentials } from '../../src/tls-credentials.js';
import { certDir, issue, makeCa, type Ca, type Issued } from '../support/certs.js';
import { freePorts } from '../support/ports.js';

const CLUSTER = 'tls-cluster';
let dir: string;
let ca: Ca;
let otherCa: Ca;
let member: Issued;
let rogue: Issued;
const open: GrpcTransport[] = [];

beforeAll(() => {
  dir = certDir();
  ca = makeCa(dir, 'ca');
  otherCa = makeCa(dir, 'other-ca');
  member = issue(ca, 'member');
  rogue = issue(otherCa, 'rogue');
});
afterEach(async () => void (await Promise.all(open.splice(0).map((t) => t.close()))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function heartbeat(from: NodeId, to: NodeId): Message {
  return { type: 'heartbeat', from, to, term: 1, index: 0, logTerm: 0, commit: 0, reject: false, rejectHint: 0, context: 0, entries: [] } as unknown as Message;
}

function credentials(cert: Issued, caFile: string): { server: grpc.ServerCredentials; channel: grpc.ChannelCredentials } {
  const tls = new ReloadableTls({
    ca: { flag: '--peer-trusted-ca-file', path: caFile },
    cert: { flag: '--peer-cert-file', path: cert.cert },
    key: { flag: '--peer-key-file', path: cert.key },
  });
  return { server: serverCredentials(tls, true), channel: channelCredentials(tls) };
}

async function node(self: NodeId, ports: number[], creds: ReturnType<typeof credentials>): Promise<{ t: GrpcTransport; got: Message[]; logs: string[] }> {
  const got: Message[] = [];
  const logs: string[] = [];
  const t = new GrpcTransport({
    clusterId: CLUSTER,
    self,
    listen: `127.0.0.1:${ports[self - 1]}`,
    peers: ports.map((p, i) => ({ id: i + 1, address: `127.0.0.1:${p}` })),
    logger: (l) => logs.push(l),
    credentials: creds,
  });
  open.push(t);
  t.onMessage((m) => got.push(m));
  await t.start();
  return { t, got, logs };
}

async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it("members with the peer CA's certificates exchange messages; a node with another CA's is refused in the handshake and none of its messages arrives", async () => {
  const ports = await freePorts(3);
  const a = await node(1, ports, credentials(member, ca.cert));
  const b = await node(2, ports, credentials(member, ca.cert));
  // Node 3 trusts both CAs, so that only its own certificate is wrong: node 1 is the one to refuse it.
  const both = path.join(dir, 'both-cas.crt');
  fs.writeFileSync(both, Buffer.concat([fs.readFileSync(ca.cert), fs.readFileSync(otherCa.cert)]));
  const c = await node(3, ports, credentials(rogue, both));
  b.t.send(heartbeat(2, 1));
  await waitFor(() => a.got.some((m) => m.from === 2), "node 2's heartbeat at node 1");
  // The rogue sends until it has logged its failure to connect to node 1 (node 2 refuses it too,
  // and may be the first it logs).
  const end = Date.now() + 5000;
  while (!c.logs.some((l) => /peer 1 .* is not reachable/.test(l)) && Date.now() < end) {
    c.t.send(heartbeat(3, 1));
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(c.logs.join('\n')).toMatch(/peer 1 .* is not reachable yet/);
  expect(a.got.filter((m) => m.from === 3)).toEqual([]);
});

it("a node that trusts only its own CA: its log says the peer's certificate is not one it trusts", async () => {
  const ports = await freePorts(2);
  const a = await node(1, ports, credentials(member, ca.cert));
  const c = await node(2, ports, credentials(rogue, otherCa.cert));
  const end = Date.now() + 5000;
  while (!c.logs.some((l) => /not reachable/.test(l)) && Date.now() < end) {
    c.t.send(heartbeat(2, 1));
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(c.logs.join('\n')).toMatch(/peer 1 .*not reachable yet.*(self-signed certificate|unable to verify)/);
  expect(a.got).toEqual([]);
});

it('a plaintext call to the peer port is refused before any message is read', async () => {
  const ports = await freePorts(1);
  const a = await node(1, ports, credentials(member, ca.cert));
  const client = new (loadRaftProto().raftkv.raft.Raft)(`127.0.0.1:${ports[0]}`, grpc.credentials.createInsecure());
  try {
    const err = await new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.Stream({ deadline: Date.now() + 2000 }, (e) => resolve(e));
      call.write({ clusterId: CLUSTER, messages: [] });
      call.end();
    });
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(a.got).toEqual([]);
  } finally {
    client.close();
  }
});
