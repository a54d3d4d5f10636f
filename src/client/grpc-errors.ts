import * as grpc from '@grpc/grpc-js';

/** A failure to connect at all (refused, no such host, not a gRPC server), as opposed to a node that answered or timed out. */
export function isConnectFailure(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && /No connection established|Name resolution failed/.test(err.details ?? '');
}

/** A name that does not resolve, or a server that does not speak gRPC: not a node that is down. */
export function isWrongPlace(err: grpc.ServiceError): boolean {
  return err.code === grpc.status.UNAVAILABLE && /Name resolution failed|Protocol error/.test(err.details ?? '');
}

/** OpenSSL's error line (code, library, function, source path): its reason is what a user can act on. */
const OPENSSL_ERROR = /(?:Error: )?[0-9A-F]{8,}:error:[0-9A-F]+:SSL routines:\w+:([^:\n]+):[^\n]*?(?:\n|$)/g;

/** What went wrong, without gRPC's plumbing (resolution notes, per-phase timings). */
export function details(err: grpc.ServiceError): string {
  const d = (err.details || err.message).replace(OPENSSL_ERROR, 'TLS: $1');
  return d.replace(/\s*Resolution note:[\s\S]*$/, '').replace(/,(name resolution|metadata filters|time to current attempt start|Waiting for LB pick)[^,]*/g, '');
}

/** `CODE: details`, as the SDK's messages quote a failed call. */
export function describeFailure(err: grpc.ServiceError): string {
  return `${grpc.status[err.code] ?? String(err.code)}: ${details(err)}`;
}

/**
 * What a failed connection says about TLS, in the user's terms, or undefined if nothing: grpc-js
 * reports a handshake that failed as "No connection established" with OpenSSL's words inside.
 * `definite`: the handshake itself failed (a misconfiguration, not a node that is down or busy).
 */
export function tlsProblem(err: grpc.ServiceError, tlsOn: boolean): { hint: string; definite: boolean } | undefined {
  if (err.code !== grpc.status.UNAVAILABLE) return undefined;
  const d = err.details ?? '';
  const definite = (hint: string): { hint: string; definite: boolean } => ({ hint, definite: true });
  if (/certificate required/.test(d)) return definite('the node requires a client certificate (--client-cert-auth): give one signed by its CA (kv-cli --cert and --key; the SDK\'s tls.cert and tls.key)');
  if (/wrong version number|packet length too long/.test(d)) return definite('the node does not speak TLS on this port: connect without TLS');
  if (/certificate has expired/.test(d)) return definite("the node's certificate has expired: renew it (kv-server re-reads its files on SIGHUP)");
  if (/self[- ]signed certificate|unable to (verify|get local issuer)|unknown ca|bad certificate/i.test(d)) {
    return definite("the node's certificate and this client's do not share a CA: check --cacert (the SDK's tls.ca) and the node's --trusted-ca-file");
  }
  if (/Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME/.test(d)) return definite("the node's certificate is not for this address (its subjectAltName): connect by a name it has, or set tls.serverName");
  if (/Failed to connect \(/.test(d)) {
    return {
      hint: tlsOn
        ? 'the node closed the connection in the TLS handshake: does it require a client certificate (--client-cert-auth) signed by another CA?'
        : 'the node closed the connection before speaking gRPC: if its client port has TLS, connect with TLS (kv-cli --cacert; the SDK\'s tls option)',
      definite: false,
    };
  }
  return undefined;
}
