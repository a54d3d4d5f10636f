import * as grpc from '@grpc/grpc-js';
import { DEFAULT_LIMITS, loadKvProto, maxMessageBytes, MD_ERROR, MD_LEADER, type KvLimits } from '../kv-api.js';
import { GrpcTransport } from '../raft/transport/grpc.js';
import type { KvService, Reply, ServiceError } from './kv-service.js';
import type { ClientListener, Network } from './network.js';

/** The methods of proto/kv.proto and the KvService method that serves each. */
const METHODS = {
  Get: 'get',
  Put: 'put',
  Append: 'append',
  Delete: 'delete',
  CompareAndSwap: 'compareAndSwap',
  Status: 'status',
  Snapshot: 'snapshot',
} as const satisfies Record<string, keyof KvService>;

/** kv-server's network: gRPC for the peers (GrpcTransport) and for clients (proto/kv.proto). */
export function grpcNetwork(limits: KvLimits = DEFAULT_LIMITS): Network {
  return {
    peerTransport: (o) => {
      const t = new GrpcTransport({ clusterId: o.clusterId, self: o.self, listen: o.listen, peers: o.peers, logger: o.log });
      return Object.assign(t, {
        forward: () => Promise.reject(new Error('this transport does not forward calls')),
        onForward: () => {},
      });
    },
    listenClients: (addr) => listenClients(addr, limits),
  };
}

async function listenClients(addr: string, limits: KvLimits): Promise<ClientListener> {
  let service: KvService | undefined;
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(METHODS)) {
    const handler: grpc.handleUnaryCall<unknown, unknown> = (call, callback) => {
      if (!service) return callback({ code: grpc.status.UNAVAILABLE, details: 'the node is starting', metadata: new grpc.Metadata() });
      const reply: Reply<unknown> = (err, res, leaderAddr) => {
        if (err) return callback(toStatus(err));
        if (!leaderAddr) return callback(null, res);
        // Served by forwarding to the leader: tell the client where the leader is.
        const trailer = new grpc.Metadata();
        trailer.set(MD_LEADER, leaderAddr);
        callback(null, res, trailer);
      };
      (service[method] as (req: unknown, reply: Reply<unknown>) => void).call(service, call.request, reply);
    };
    handlers[name] = handler;
  }
  const server = new grpc.Server(kvServerOptions(limits));
  server.addService(loadKvProto().Kv.service, handlers);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new Error(`cannot listen for clients on ${addr} (port already in use?): ${err.message}`));
      else resolve();
    });
  });
  return {
    serve: (s) => void (service = s),
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

function toStatus(e: ServiceError): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (e.reason) metadata.set(MD_ERROR, e.reason);
  if (e.leaderAddr) metadata.set(MD_LEADER, e.leaderAddr);
  return { code: grpc.status[e.code], details: e.details, metadata };
}

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
  };
}
