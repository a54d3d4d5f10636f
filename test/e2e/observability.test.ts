/**
 * kv-server --metrics-addr and the gRPC probes, on a real 3-node cluster: /metrics moves with
 * the work done, /status shows the leader's view of its followers, grpc.health.v1 and reflection
 * answer on the client port, and /health turns unhealthy within about an election timeout when
 * the leader loses its quorum, and healthy again once the quorum is back.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { STATE_BYTES_PER_KEY } from '../../src/server/kv-store.js';
import { Cluster, ensureBuilt, freePorts, killAll, waitFor } from './cluster.js';

const ELECTION_TIMEOUT_MS = 300;
/** Beyond the election timeout: a check-quorum tick, the poll interval, and a loaded machine's scheduling. */
const MARGIN_MS = 500;

let cluster: Cluster;
let client: KvClient;
const metricsAddr = new Map<number, string>();

const require = createRequire(import.meta.url);
const healthProto = path.join(path.dirname(require.resolve('grpc-health-check')), '../../proto/health/v1/health.proto');
const reflectionProto = path.join(path.dirname(require.resolve('@grpc/reflection')), '../proto/grpc/reflection/v1/reflection.proto');

function startNode(id: number): void {
  cluster.start(id, ['--metrics-addr', metricsAddr.get(id)!]);
}

async function get(id: number, p: string): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://${metricsAddr.get(id)}${p}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

/** A sample's value in Prometheus text (`name{labels} value`), undefined if absent. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function healthCheck(id: number, service = ''): Promise<string> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProto, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, Function> } } };
  };
  const c = new pkg.grpc.health.v1.Health(cluster.node(id).clientAddr, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    c['Check']!({ service }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status)));
  }).finally(() => c.close());
}

function reflectionServices(id: number): Promise<string[]> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto)) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, Function> } } };
  };
  const c = new pkg.grpc.reflection.v1.ServerReflection(cluster.node(id).clientAddr, grpc.credentials.createInsecure());
  return new Promise<string[]>((resolve, reject) => {
    const call = c['ServerReflectionInfo']!({ deadline: Date.now() + 5000 }) as grpc.ClientDuplexStream<object, { listServicesResponse?: { service: { name: string }[] } }>;
    call.on('data', (r) => {
      resolve((r.listServicesResponse?.service ?? []).map((s: { name: string }) => s.name));
      call.end();
    });
    call.on('error', reject);
    call.write({ listServices: '' });
  }).finally(() => c.close());
}

beforeAll(async () => {
  await ensureBuilt();
  cluster = await Cluster.create('observability', { electionTimeoutMs: ELECTION_TIMEOUT_MS });
  const ports = await freePorts(3);
  for (const n of cluster.nodes) metricsAddr.set(n.id, `127.0.0.1:${ports[n.id - 1]}`);
  for (const n of cluster.nodes) startNode(n.id);
  await cluster.waitForLeader();
  client = new KvClient({ endpoints: cluster.endpoints, timeoutMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  await cluster?.close();
  await killAll();
});

describe('kv-server --metrics-addr', () => {
  it('/metrics on every node moves with the work done; /livez, /readyz and /status answer', async () => {
    const leader = await cluster.waitForLeader();
    const before = (await get(leader, '/metrics')).body;
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.put(`k${i}`, `value-${i}`)));
    await client.get('k1');
    await cluster.waitCaughtUp();
    for (const n of cluster.nodes) {
      const m = await get(n.id, '/metrics');
      expect(m.status).toBe(200);
      expect(m.type).toContain('text/plain');
      expect(sample(m.body, 'raftkv_server_has_leader')).toBe(1);
      expect(sample(m.body, 'raftkv_server_is_leader')).toBe(n.id === leader ? 1 : 0);
      expect(sample(m.body, 'raftkv_kv_keys')).toBeGreaterThanOrEqual(50);
      expect(sample(m.body, 'raftkv_server_proposals_applied_total')).toBeGreaterThanOrEqual(50);
      expect(m.body).toContain('raftkv_disk_wal_fsync_duration_seconds_count');
      expect(m.body).toContain('process_cpu_user_seconds_total');
      expect((await get(n.id, '/livez')).status).toBe(200);
      expect((await get(n.id, '/readyz')).status).toBe(200);
    }
    const after = (await get(leader, '/metrics')).body;
    expect(sample(after, 'raftkv_server_proposals_committed_total')!).toBeGreaterThan(sample(before, 'raftkv_server_proposals_committed_total')!);
    // The SDK's calls land where it sent them (a follower forwards them to the leader over the peer link).
    const all = await Promise.all(cluster.nodes.map(async (n) => (await get(n.id, '/metrics')).body));
    const puts = all.map((b) => Number(/raftkv_server_client_requests_total\{method="Put",code="OK"\} (\d+)/.exec(b)?.[1] ?? 0));
    expect(puts.reduce((a, b) => a + b)).toBe(50);
    expect(all.join('')).toMatch(/raftkv_server_client_request_duration_seconds_count\{method="Put"\} [1-9]/);
    expect(after).toMatch(/raftkv_network_peer_round_trip_time_seconds_count\{To="\d"\} [1-9]/);
    expect(after).toMatch(/raftkv_server_read_index_duration_seconds_count [1-9]/);
    const follower0 = cluster.nodes.find((n) => n.id !== leader)!.id;
    expect(sample(after, `raftkv_network_peer_sent_bytes_total{To="${follower0}"}`)).toBeGreaterThan(0);
    const followerMetrics = (await get(follower0, '/metrics')).body;
    expect(sample(followerMetrics, `raftkv_network_peer_received_bytes_total{From="${leader}"}`)).toBeGreaterThan(0);

    const status = JSON.parse((await get(leader, '/status')).body) as { node: { role: string; leaderId: number }; members: { id: number; match: number | null; lag: number | null }[] };
    expect(status.node).toMatchObject({ role: 'leader', leaderId: leader });
    expect(status.members.map((m) => m.id)).toEqual([1, 2, 3]);
    for (const m of status.members) expect(m.match).toBeGreaterThan(0);
    const follower = cluster.nodes.find((n) => n.id !== leader)!.id;
    const fs = JSON.parse((await get(follower, '/status')).body) as { node: { role: string }; members: { lag: number | null }[] };
    expect(fs.node.role).toBe('follower');
    expect(fs.members.every((m) => m.lag === null)).toBe(true);

    // Every node's /status carries its quota and its state as the quota counts it (the 50 keys and
    // values, and STATE_BYTES_PER_KEY a key): the same figures as its gRPC Status.
    const stateBytes = Array.from({ length: 50 }, (_, i) => `k${i}`.length + `value-${i}`.length + STATE_BYTES_PER_KEY).reduce((a, b) => a + b);
    const viaGrpc = new Map((await client.status()).flatMap((r) => (r.ok ? [[r.status.nodeId, r.status] as const] : [])));
    for (const n of cluster.nodes) {
      const { node } = JSON.parse((await get(n.id, '/status')).body) as { node: { quotaBytes: number; quotaUsedBytes: number } };
      expect(node.quotaUsedBytes).toBe(stateBytes);
      expect(node.quotaBytes).toBeGreaterThanOrEqual(1024 * 1024); // --quota-bytes' floor; the default is at most 2 GiB
      expect(node.quotaBytes).toBeLessThanOrEqual(2048 * 1024 * 1024);
      expect(viaGrpc.get(n.id)).toMatchObject({ quotaBytes: node.quotaBytes, quotaUsedBytes: node.quotaUsedBytes });
    }
  });

  it('grpc.health.v1 Check says SERVING on the client port, and reflection lists the Kv service', async () => {
    for (const n of cluster.nodes) {
      expect(await healthCheck(n.id)).toBe('SERVING');
      expect(await healthCheck(n.id, 'raftkv.kv.Kv')).toBe('SERVING');
    }
    await expect(healthCheck(1, 'no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await reflectionServices(1)).toContain('raftkv.kv.Kv');
  });

  it('a follower whose leader dies is unhealthy at once: its ReadIndex round cannot reach the leader, though it still names it', async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.nodes.find((n) => n.id !== leader)!.id;
    expect((await get(follower, '/health')).status).toBe(200);
    await cluster.stop(leader);
    const died = Date.now();
    await waitFor('/health on the follower to turn 503', async () => (await get(follower, '/health')).status === 503, 5000, 10);
    const tookMs = Date.now() - died;
    console.log(`/health on a follower turned 503 ${tookMs} ms after its leader died`);
    // Before the follower's election timeout (at least ELECTION_TIMEOUT_MS) could make it forget the leader.
    expect(tookMs).toBeLessThan(ELECTION_TIMEOUT_MS - 50);
    await waitFor('/health 200 under the new leader', async () => (await get(follower, '/health')).status === 200, 15_000, 50);
    startNode(leader);
    await cluster.waitForLeader();
  });

  it('/health turns 503 within an election timeout once the leader loses its quorum, and 200 once it is back', async () => {
    const leader = await cluster.waitForLeader();
    expect((await get(leader, '/health')).status).toBe(200);
    const followers = cluster.nodes.filter((n) => n.id !== leader).map((n) => n.id);
    await Promise.all(followers.map((id) => cluster.stop(id)));
    const lost = Date.now();
    const unhealthy = await waitFor('/health to turn 503', async () => {
      const r = await get(leader, '/health');
      return r.status === 503 ? r : undefined;
    }, 5000, 20);
    const tookMs = Date.now() - lost;
    console.log(`/health turned 503 ${tookMs} ms after the quorum was lost`);
    expect(JSON.parse(unhealthy.body)).toMatchObject({ health: 'false' });
    expect(tookMs).toBeLessThan(ELECTION_TIMEOUT_MS + MARGIN_MS);
    expect(await healthCheck(leader)).toBe('NOT_SERVING');
    expect((await get(leader, '/livez')).status).toBe(200);
    const down = (await get(leader, '/metrics')).body;
    expect(sample(down, `raftkv_network_peer_sent_failures_total{To="${followers[0]}"}`)).toBeGreaterThan(0);
    expect(sample(down, 'raftkv_server_has_leader')).toBe(0);

    for (const id of followers) startNode(id);
    await waitFor('/health to turn 200 again', async () => (await get(leader, '/health')).status === 200, 15_000, 50);
    await waitFor('grpc health SERVING again', async () => (await healthCheck(leader)) === 'SERVING', 15_000, 50);
  });
});
