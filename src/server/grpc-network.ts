import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { service as healthService } from 'grpc-health-check';
import { PROTO_OPTIONS, protoPath } from '../proto.js';
import { DATA_METHODS } from '../data-methods.js';
import type { Health } from './health.js';
import { DEFAULT_LIMITS, loadKvProto, maxMessageBytes, MD_ERROR, MD_LEADER, type KvLimits, type MemberListResponse, type StatusResponse } from '../kv-api.js';
import type { NodeId } from '../raft/core/types.js';
import { CLUSTER_MISMATCH, MD_CLUSTER } from '../raft/transport/call-metadata.js';
import { GrpcTransport, loadRaftProto } from '../raft/transport/grpc.js';
import { callDeadline } from '../raft/transport/forwarding.js';
import type { BackupChunk } from '../generated/raftkv/kv/BackupChunk.js';
import type { AnswerFrame } from '../generated/raftkv/kv/AnswerFrame.js';
import type { CallFrame__Output } from '../generated/raftkv/kv/CallFrame.js';
import { CallStream } from './call-stream.js';
import type { BackupSink } from './backup.js';
import type { ForwardedCall, ForwardedMethod, ForwardedReply, KvService, Reply, ServiceError } from './kv-service.js';
import type { ClientListener, Network, PeerTransport } from './network.js';
import { channelCredentials, serverCredentials } from '../tls-credentials.js';
import type { ServerTls } from './server-tls.js';

/** How long the look at a new member's addresses waits for an answer: an operator waits on it. */
const PROBE_TIMEOUT_MS = 1000;

/** The methods of proto/kv.proto and the KvService method that serves each. */
const METHODS = {
  Get: 'get',
  Put: 'put',
  Append: 'append',
  Delete: 'delete',
  CompareAndSwap: 'compareAndSwap',
  Status: 'status',
  Snapshot: 'snapshot',
  MemberList: 'memberList',
  MemberAdd: 'memberAdd',
  MemberPromote: 'memberPromote',
  MemberRemove: 'memberRemove',
  LeaderTransfer: 'leaderTransfer',
} as const satisfies Record<string, keyof KvService>;

/** Hears each client call once answered: kv.proto's method name, the gRPC status code's name, seconds taken. */
export type CallListener = (method: string, code: string, seconds: number) => void;

/** The credentials of each port, and of this node's own calls to others' ports. */
interface Credentials {
  clientServer: grpc.ServerCredentials;
  /** To other nodes' client ports (--join, the look at a new member): this node's client-port certificate and CA. */
  clientChannel: grpc.ChannelCredentials;
  peer?: { server: grpc.ServerCredentials; channel: grpc.ChannelCredentials };
  peerChannel: grpc.ChannelCredentials;
}

function credentialsOf(tls: ServerTls): Credentials {
  const peer = tls.peer ? { server: serverCredentials(tls.peer, true), channel: channelCredentials(tls.peer) } : undefined;
  return {
    clientServer: tls.client ? serverCredentials(tls.client.tls, tls.client.clientCertAuth) : grpc.ServerCredentials.createInsecure(),
    clientChannel: tls.client ? channelCredentials(tls.client.tls) : grpc.credentials.createInsecure(),
    ...(peer ? { peer } : {}),
    peerChannel: peer?.channel ?? grpc.credentials.createInsecure(),
  };
}

/**
 * kv-server's network: gRPC for the peers (GrpcTransport) and for clients (proto/kv.proto, with
 * grpc.health.v1 and server reflection beside it); TLS where `tls` says. `onCall`: metrics of client calls.
 */
export function grpcNetwork(limits: KvLimits = DEFAULT_LIMITS, tls: ServerTls = {}, onCall?: CallListener): Network {
  const creds = credentialsOf(tls);
  return {
    peerTransport: (o) =>
      forwarding(
        new GrpcTransport({
          clusterId: o.clusterId,
          self: o.self,
          listen: o.listen,
          peers: o.peers,
          logger: o.log,
          ...(creds.peer ? { credentials: creds.peer } : {}),
        }),
      ),
    listenClients: (addr) => listenClients(addr, limits, creds.clientServer, onCall),
    probeMember: (member) => probeMember(member, PROBE_TIMEOUT_MS, creds),
    memberList: (addr, timeoutMs) => memberList(addr, timeoutMs, creds.clientChannel),
  };
}

async function listenClients(addr: string, limits: KvLimits, credentials: grpc.ServerCredentials, onCall: CallListener | undefined): Promise<ClientListener> {
  let service: KvService | undefined;
  let health: (() => Promise<Health>) | undefined;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(METHODS)) {
    const handler: grpc.handleUnaryCall<unknown, unknown> = (call, answer) => {
      const callback = onCall ? timed(name, answer, onCall) : answer;
      if (!service) return callback(toStatus(STARTING));
      const reply: Reply<unknown> = (err, res, leaderAddr) => {
        if (err) return callback(toStatus(err));
        if (!leaderAddr) return callback(null, res);
        // Served by forwarding to the leader: tell the client where the leader is.
        const trailer = new grpc.Metadata();
        trailer.set(MD_LEADER, leaderAddr);
        callback(null, res, trailer);
      };
      (service[method] as (req: unknown, reply: Reply<unknown>, deadline?: number) => void).call(service, call.request, reply, callDeadline(call));
    };
    handlers[name] = handler;
  }
  handlers['Calls'] = (call: grpc.ServerDuplexStream<CallFrame__Output, AnswerFrame>) => {
    const stream = new CallStream({
      service: () => service,
      starting: STARTING,
      send: (answers) => void call.write({ answers }),
      backlogged: () => call.writableLength >= MAX_UNSENT_FRAMES,
      defer: (fn) => void setImmediate(fn),
      after: (ms, fn) => void setTimeout(fn, ms),
      epochMs: () => Date.now(),
      now: () => performance.now(),
      ...(onCall ? { onAnswered: onCall } : {}),
    });
    call.on('data', (frame: CallFrame__Output) => stream.receive(frame.calls));
    // The client closed its side: end ours once every call it made is answered.
    call.on('end', () => stream.drained(() => call.end()));
    call.on('cancelled', () => stream.close());
    call.on('error', () => stream.close());
  };
  handlers['Backup'] = (call: grpc.ServerWritableStream<object, BackupChunk>) => {
    const fail = (e: ServiceError): void => void call.emit('error', toStatus(e));
    if (!service) return fail(STARTING);
    service.backup(call.request, streamSink(call), (err) => (err ? fail(err) : call.end()));
  };
  const server = new grpc.Server(kvServerOptions(limits));
  server.addService(loadKvProto().Kv.service, handlers);
  server.addService(healthService, healthHandlers(() => health));
  // Reflection, so that grpcurl lists and calls the API without kv.proto at hand.
  new ReflectionService(protoLoader.loadSync(protoPath('kv.proto'), PROTO_OPTIONS)).addToServer(server);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(addr, credentials, (err) => {
      if (err) reject(new Error(`cannot listen for clients on ${addr} (port already in use?): ${err.message}`));
      else resolve();
    });
  });
  return {
    serve: (s, h) => {
      service = s;
      health = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** Frames of answers a stream's client may leave unread before the node takes no more calls from it. */
const MAX_UNSENT_FRAMES = 64;

/** A unary callback that reports the call's outcome and duration first. */
function timed(method: string, callback: grpc.sendUnaryData<unknown>, onCall: CallListener): grpc.sendUnaryData<unknown> {
  const started = performance.now();
  return (err, ...rest) => {
    const code = err ? (grpc.status[err.code ?? grpc.status.UNKNOWN] ?? 'UNKNOWN') : 'OK';
    onCall(method, code, (performance.now() - started) / 1000);
    callback(err, ...rest);
  };
}

/** The services grpc.health.v1 answers for: the server as a whole ("") and the KV API. */
const HEALTH_SERVICES = new Set(['', 'raftkv.kv.Kv']);

/**
 * grpc.health.v1 (grpc-health-check's service definition): Check is SERVING when a leader exists
 * and can commit (the node's health(), a ReadIndex round), NOT_SERVING otherwise, also while the
 * node starts. Watch is UNIMPLEMENTED (allowed by the protocol; probes use Check): a stream would
 * need the node to re-check on its own, with no one asking.
 */
function healthHandlers(health: () => (() => Promise<Health>) | undefined): grpc.UntypedServiceImplementation {
  const status = async (): Promise<'SERVING' | 'NOT_SERVING'> => {
    const h = health();
    return h && (await h()).ok ? 'SERVING' : 'NOT_SERVING';
  };
  return {
    check: (call: grpc.ServerUnaryCall<{ service?: unknown }, object>, callback: grpc.sendUnaryData<object>) => {
      const name = typeof call.request.service === 'string' ? call.request.service : '';
      if (!HEALTH_SERVICES.has(name)) return callback({ code: grpc.status.NOT_FOUND, details: `no health status for service ${JSON.stringify(name.slice(0, 200))}` });
      void status().then((s) => callback(null, { status: s }));
    },
    watch: (call: grpc.ServerWritableStream<object, object>) => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'Watch is not served; call Check' });
    },
    list: (_call: grpc.ServerUnaryCall<object, object>, callback: grpc.sendUnaryData<object>) => {
      void status().then((s) => callback(null, { statuses: Object.fromEntries([...HEALTH_SERVICES].map((n) => [n, { status: s }])) }));
    },
  };
}

/**
 * A server stream as a backup's sink: send() waits while the stream's buffer is full (its
 * high-water mark, 16 messages), so a slow client slows the encoder rather than filling memory,
 * and rejects once the client has gone.
 */
function streamSink(call: grpc.ServerWritableStream<object, BackupChunk>): BackupSink {
  const gone = (): Error => new Error('the client cancelled the backup');
  return {
    send: (chunk) =>
      new Promise<void>((resolve, reject) => {
        if (call.cancelled || call.destroyed) return reject(gone());
        if (call.write(chunk)) return resolve();
        const settle = (ok: boolean): void => {
          call.off('drain', onDrain);
          call.off('cancelled', onGone);
          call.off('close', onGone);
          if (ok) resolve();
          else reject(gone());
        };
        const onDrain = (): void => settle(true);
        const onGone = (): void => settle(false);
        call.on('drain', onDrain);
        call.on('cancelled', onGone);
        call.on('close', onGone);
      }),
  };
}

/** The forwarded calls' names on the wire (kv.proto's), both ways. */
const WIRE_NAME: Record<ForwardedMethod, string> = DATA_METHODS;
const BY_WIRE_NAME = new Map(Object.entries(WIRE_NAME).map(([method, wire]) => [wire, method as ForwardedMethod]));

/** The gRPC transport, forwarding client calls as kv.proto messages (the transport sees only bytes). */
function forwarding(t: GrpcTransport): PeerTransport {
  const definition = (wire: string): grpc.MethodDefinition<object, object> =>
    loadKvProto().Kv.service[wire] as unknown as grpc.MethodDefinition<object, object>;
  let statusHandler: (() => StatusResponse) | undefined;
  return {
    start: () => t.start(),
    close: () => t.close(),
    send: (m) => t.send(m),
    onMessage: (h) => t.onMessage(h),
    sendSnapshot: (m, data) => t.sendSnapshot(m, data),
    onSnapshot: (h) => t.onSnapshot(h),
    setPeers: (peers) => t.setPeers(peers),
    stats: () => t.stats(),
    async forward(to, call, timeoutMs): Promise<ForwardedReply> {
      const wire = WIRE_NAME[call.method];
      const def = definition(wire);
      const reply = await t.forward(to, { method: wire, request: def.requestSerialize(call.request) }, timeoutMs);
      if (reply.refusal !== '') return { ok: false, error: parseRefusal(reply.refusal) };
      return { ok: true, response: def.responseDeserialize(Buffer.from(reply.response)) };
    },
    async peerStatus(to, timeoutMs): Promise<StatusResponse> {
      const def = definition('Status');
      const reply = await t.forward(to, { method: 'Status', request: def.requestSerialize({}) }, timeoutMs);
      if (reply.refusal !== '') throw new Error(parseRefusal(reply.refusal).details);
      return def.responseDeserialize(Buffer.from(reply.response)) as StatusResponse;
    },
    onPeerStatus(handler): void {
      statusHandler = handler;
    },
    onForward(handler): void {
      t.onForward(async ({ method: wire, request, deadline }, from) => {
        if (wire === 'Status') {
          if (!statusHandler) return { response: EMPTY, refusal: JSON.stringify({ code: 'UNAVAILABLE', details: 'the node is starting' }) };
          return { response: definition('Status').responseSerialize(statusHandler()), refusal: '' };
        }
        const method = BY_WIRE_NAME.get(wire);
        if (!method) throw new Error(`cannot forward ${wire}`);
        const def = definition(wire);
        const r = await handler({ method, request: def.requestDeserialize(Buffer.from(request)) as ForwardedCall['request'], ...(deadline !== undefined && { deadline }) }, from);
        return r.ok ? { response: def.responseSerialize(r.response), refusal: '' } : { response: EMPTY, refusal: JSON.stringify(r.error) };
      });
    },
  };
}

const EMPTY = Buffer.alloc(0);
const CODES = new Set(['INVALID_ARGUMENT', 'FAILED_PRECONDITION', 'UNAVAILABLE', 'RESOURCE_EXHAUSTED', 'INTERNAL', 'UNIMPLEMENTED']);
const REASONS = new Set(['not-leader', 'no-leader', 'session-expired', 'shutting-down', 'starting', 'overloaded', 'no-space', 'conf-refused', 'outcome-unknown']);

/** A refusal sent by a peer: checked, since it comes from the network. */
function parseRefusal(text: string): ServiceError {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (typeof o['code'] !== 'string' || !CODES.has(o['code']) || typeof o['details'] !== 'string') {
    return { code: 'INTERNAL', details: `the leader answered a forwarded call with a malformed refusal: ${text.slice(0, 200)}` };
  }
  const e: ServiceError = { code: o['code'] as ServiceError['code'], details: o['details'].slice(0, 4096) };
  if (typeof o['reason'] === 'string' && REASONS.has(o['reason'])) e.reason = o['reason'] as ServiceError['reason'];
  if (typeof o['leaderAddr'] === 'string' && o['leaderAddr'].length <= 512) e.leaderAddr = o['leaderAddr'];
  return e;
}

/**
 * What a node answers before it serves (its data dir is being checked, its snapshot restored): with
 * a reason, so that the SDK knows the node answered (and is worth trying again soon), rather than
 * taking it for unreachable.
 */
const STARTING: ServiceError = { code: 'UNAVAILABLE', reason: 'starting', details: 'the node is starting' };

function toStatus(e: ServiceError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (e.reason) metadata.set(MD_ERROR, e.reason);
  if (e.leaderAddr) metadata.set(MD_LEADER, e.leaderAddr);
  return { code: grpc.status[e.code], details: e.details, metadata };
}

/** How long a client connection may stay without a call before the server closes it. */
export const IDLE_CONNECTION_MS = 5 * 60_000;

/** grpc.Server options for the client API: explicit message limits (value limit plus headroom). */
export function kvServerOptions(limits: KvLimits = DEFAULT_LIMITS): grpc.ServerOptions {
  const max = maxMessageBytes(limits);
  return {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // Tolerate clients that ping idle channels rather than answering with GOAWAY.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    // A connection with no call for this long is closed (a client that comes back reconnects at
    // once): held-open idle connections must not pile up file descriptors.
    'grpc.max_connection_idle_ms': IDLE_CONNECTION_MS,
  };
}

// ---------------------------------------------------------------------------------------------
// kv-server's own calls to other nodes, outside Raft: the membership a node started with --join
// asks its cluster for, and the look at a new member's addresses before it is added.

/** Calls `method` of the client API at `addr`; rejects with the gRPC error, or after `timeoutMs`. */
function callKv<Res>(addr: string, method: 'Status' | 'MemberList', timeoutMs: number, creds: grpc.ChannelCredentials): Promise<Res> {
  const client = new (loadKvProto().Kv)(addr, creds);
  return new Promise<Res>((resolve, reject) => {
    const call = (client as unknown as Record<string, (req: object, opts: grpc.CallOptions, cb: grpc.requestCallback<Res>) => void>)[method]!;
    call.call(client, {}, { deadline: Date.now() + timeoutMs }, (err, res) => (err || !res ? reject(err ?? new Error('empty answer')) : resolve(res)));
  }).finally(() => client.close());
}

/** The membership as the node at client address `addr` has applied it. */
function memberList(addr: string, timeoutMs: number, creds: grpc.ChannelCredentials): Promise<MemberListResponse> {
  return callKv<MemberListResponse>(addr, 'MemberList', timeoutMs, creds);
}

/**
 * What answers at a new member's addresses: a reason to refuse adding it (a node of another
 * cluster, or another node of this one), or undefined, also when nothing answers (the node may
 * not be started yet) or something that is no raftkv node does. Looks within `timeoutMs`.
 */
async function probeMember(
  o: { clusterId: string; id: NodeId; peerAddr: string; clientAddr: string },
  timeoutMs: number,
  creds: Credentials,
): Promise<string | undefined> {
  const [peerStatus, clientStatus, peerRaft] = await Promise.all([
    statusAt(o.peerAddr, timeoutMs, creds.peerChannel),
    statusAt(o.clientAddr, timeoutMs, creds.clientChannel),
    raftClusterCheck(o.peerAddr, o.clusterId, timeoutMs, creds.peerChannel),
  ]);
  for (const [addr, st] of [
    [o.peerAddr, peerStatus],
    [o.clientAddr, clientStatus],
  ] as const) {
    if (!st) continue;
    if (st.clusterId !== o.clusterId) return `${addr} answers as node ${st.nodeId} of another cluster, ${JSON.stringify(st.clusterId)}`;
    if (st.nodeId !== o.id) return `${addr} answers as node ${st.nodeId} of this cluster`;
  }
  return peerRaft;
}

async function statusAt(addr: string, timeoutMs: number, creds: grpc.ChannelCredentials): Promise<StatusResponse | undefined> {
  return callKv<StatusResponse>(addr, 'Status', timeoutMs, creds).catch(() => undefined);
}

/**
 * Whether the Raft port at `addr` belongs to another cluster: our transport refuses a call
 * announcing another cluster before anything else (a call of no known method, to learn only that).
 */
function raftClusterCheck(addr: string, clusterId: string, timeoutMs: number, creds: grpc.ChannelCredentials): Promise<string | undefined> {
  const client = new (loadRaftProto().raftkv.raft.Raft)(addr, creds);
  const md = new grpc.Metadata();
  md.set(MD_CLUSTER, clusterId);
  return new Promise<string | undefined>((resolve) => {
    client.Forward({ clusterId, from: 0, method: '', request: Buffer.alloc(0) }, md, { deadline: Date.now() + timeoutMs }, (err) => {
      const other = err?.code === grpc.status.FAILED_PRECONDITION && err.details.startsWith(CLUSTER_MISMATCH);
      resolve(other ? `${addr} is the peer port of a node of another cluster (${err.details})` : undefined);
    });
  }).finally(() => client.close());
}
