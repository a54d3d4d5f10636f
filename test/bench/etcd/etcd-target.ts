/**
 * kv-bench's etcd driver (`kv-bench --target etcd`), dev-only: a minimal grpc-js client of etcd
 * v3's KV.Put and KV.Range over test/bench/etcd/etcd-kv.proto, the same grpc-js and proto-loader
 * raftkv's KvClient uses. Each connection is its own channel (local subchannel pool), like one
 * KvClient each. By default every connection goes to the leader (found with Maintenance.Status),
 * as KvClient does; `spread` puts connection i on endpoint i mod n instead (followers forward).
 * A failed call is not retried: kv-bench counts it as an error.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { BenchTarget, EtcdTargetOptions } from '../../../src/tools/kv-bench.js';

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;

interface KvClientStub extends grpc.Client {
  Put(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<unknown>): grpc.ClientUnaryCall;
  Range(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<{ kvs: unknown[]; count: string }>): grpc.ClientUnaryCall;
}

interface StatusResponse {
  header: { memberId: string; raftTerm: string } | null;
  version: string;
  leader: string;
}

interface MaintenanceStub extends grpc.Client {
  Status(req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<StatusResponse>): grpc.ClientUnaryCall;
}

interface EtcdPackage {
  etcdserverpb: { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor };
}

/** etcd-kv.proto beside the source, from test/bench/etcd/ (vitest) or build/test/bench/etcd/ (tsc output). */
function protoFile(): string {
  for (const rel of ['./etcd-kv.proto', '../../../../test/bench/etcd/etcd-kv.proto']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error(`etcd-kv.proto not found (looked relative to ${import.meta.url})`);
}

let pkg: EtcdPackage | undefined;
function load(): EtcdPackage {
  // 64-bit ids (member ids are random uint64) as strings: numbers would lose precision.
  pkg ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(protoFile(), { keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: false }),
  ) as unknown as EtcdPackage;
  return pkg;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 8 * 1024 * 1024,
  'grpc.enable_retries': 0,
  // One connection per channel, closed by close().
  'grpc.use_local_subchannel_pool': 1,
};

function status(endpoint: string, timeoutMs: number): Promise<StatusResponse> {
  const c = new (load().etcdserverpb.Maintenance)(endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as MaintenanceStub;
  return new Promise<StatusResponse>((resolve, reject) => {
    c.Status({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      c.close();
      if (err) reject(err);
      else resolve(res!);
    });
  });
}

/** The endpoint of the member that a majority of the reachable members name as leader. */
export async function findEtcdLeader(endpoints: string[], timeoutMs = 2000): Promise<{ endpoint: string; version: string } | undefined> {
  const rows = await Promise.all(endpoints.map((e) => status(e, timeoutMs).then((s) => ({ e, s }), () => undefined)));
  const votes = new Map<string, number>();
  for (const r of rows) if (r && r.s.leader !== '0') votes.set(r.s.leader, (votes.get(r.s.leader) ?? 0) + 1);
  for (const r of rows) {
    if (r && r.s.header && r.s.header.memberId === r.s.leader && (votes.get(r.s.leader) ?? 0) > endpoints.length / 2) {
      return { endpoint: r.e, version: r.s.version };
    }
  }
  return undefined;
}

class EtcdTarget implements BenchTarget {
  readonly name = 'etcd' as const;
  readonly connections: number;
  readonly description: string;
  private readonly clients: KvClientStub[];

  constructor(
    addrs: string[],
    private readonly timeoutMs: number,
    private readonly serializable: boolean,
    how: string,
  ) {
    const KV = load().etcdserverpb.KV;
    this.clients = addrs.map((a) => new KV(a, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as KvClientStub);
    this.connections = addrs.length;
    this.description = `etcd ${how}: ${addrs.length} grpc-js connection(s) to ${[...new Set(addrs)].join(',')}, ${serializable ? 'serializable' : 'linearizable'} Range`;
  }

  put(conn: number, key: Buffer, value: Buffer): Promise<void> {
    const c = this.clients[conn]!;
    return new Promise<void>((resolve, reject) => {
      c.Put({ key, value }, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err) => (err ? reject(err) : resolve()));
    });
  }

  get(conn: number, key: Buffer): Promise<boolean> {
    const c = this.clients[conn]!;
    return new Promise<boolean>((resolve, reject) => {
      c.Range({ key, serializable: this.serializable }, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        err ? reject(err) : resolve((res?.kvs.length ?? 0) > 0),
      );
    });
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

export async function createEtcdTarget(o: EtcdTargetOptions): Promise<BenchTarget> {
  if (o.spread) {
    const addrs = Array.from({ length: o.connections }, (_, i) => o.endpoints[i % o.endpoints.length]!);
    return new EtcdTarget(addrs, o.timeoutMs, o.serializable, 'spread over the members');
  }
  const deadline = Date.now() + Math.max(o.timeoutMs, 5000);
  for (;;) {
    const leader = await findEtcdLeader(o.endpoints);
    if (leader) {
      return new EtcdTarget(Array.from({ length: o.connections }, () => leader.endpoint), o.timeoutMs, o.serializable, `${leader.version} leader`);
    }
    if (Date.now() > deadline) throw new Error(`no etcd leader found at ${o.endpoints.join(',')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
