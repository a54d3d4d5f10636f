import * as grpc from '@grpc/grpc-js';

/** A failure to connect at all (refused, no such host, not a gRPC server), as opposed to a node that answered or timed out. */
export function isConnectFailure(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && /No connection established|Name resolution failed/.test(err.details ?? '');
}

/** A name that does not resolve, or a server that does not speak gRPC: not a node that is down. */
export function isWrongPlace(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && /Name resolution failed|Protocol error/.test(err.details ?? '');
}

/** What went wrong, without gRPC's plumbing (resolution notes, per-phase timings). */
export function details(err: grpc.ServiceError): string {
  const d = err.details || err.message;
  return d.replace(/\s*Resolution note:[\s\S]*$/, '').replace(/,(name resolution|metadata filters|time to current attempt start|Waiting for LB pick)[^,]*/g, '');
}

/** `CODE: details`, as the SDK's messages quote a failed call. */
export function describeFailure(err: grpc.ServiceError): string {
  return `${grpc.status[err.code] ?? String(err.code)}: ${details(err)}`;
}
