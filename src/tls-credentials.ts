/**
 * gRPC credentials over checked TLS material (tls-files.ts), for the client port, the peer port and
 * the connections to them. A ReloadableTls hands its material to grpc-js as a certificate provider:
 * reload() (kv-server on SIGHUP) re-reads the files and, if they check, every connection made
 * after it, in and out, uses the new certificate; connections already open keep theirs.
 */
import * as grpc from '@grpc/grpc-js';
import type { experimental } from '@grpc/grpc-js';
import { readTlsFiles, type TlsFiles, type TlsMaterial } from './tls-files.js';

type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

export class ReloadableTls implements experimental.CertificateProvider {
  private current: TlsMaterial;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  /** Reads the files now (throws CertificateError); `check` adds checks of the caller's own. */
  constructor(
    readonly files: TlsFiles,
    private readonly check: (m: TlsMaterial) => void = () => undefined,
  ) {
    this.current = this.read();
  }

  get material(): TlsMaterial {
    return this.current;
  }

  /**
   * Reads the files again; throws CertificateError and keeps the material in use if they do not
   * check (a half-copied rotation must not take the node's TLS down).
   */
  reload(): TlsMaterial {
    const next = this.read();
    this.current = next;
    if (next.ca) for (const l of this.caListeners) l({ caCertificate: next.ca });
    if (next.cert && next.key) for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    return next;
  }

  private read(): TlsMaterial {
    const m = readTlsFiles(this.files);
    this.check(m);
    return m;
  }

  // grpc-js's CertificateProvider: a listener hears the current material, then each reload. Not
  // within add...Listener: grpc-js's server registers its watcher only after adding its listeners,
  // so an answer given at once would reach no server and the port would refuse every handshake.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    queueMicrotask(() => {
      const ca = this.current.ca;
      if (this.caListeners.has(listener)) listener(ca ? { caCertificate: ca } : null);
    });
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      const { cert, key } = this.current;
      if (this.identityListeners.has(listener)) listener(cert && key ? { certificate: cert, privateKey: key } : null);
    });
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

/**
 * Server credentials that present this side's certificate and, with `requireClientCert`, refuse
 * in the TLS handshake a client whose certificate the CA did not sign (or that has none), before
 * any call is read.
 */
export function serverCredentials(tls: ReloadableTls, requireClientCert: boolean): grpc.ServerCredentials {
  // grpc-js 1.14 names the parameters (ca, identity) but passes the first as the identity, the
  // second as the CA: the same provider serves both here; without a CA, no client is asked for one.
  return grpc.experimental.createCertificateProviderServerCredentials(tls, tls.files.ca ? tls : null, requireClientCert);
}

/**
 * Credentials for connections to a TLS port: the server's certificate must be signed by the CA
 * (the system's CAs without one); ours is shown if we have one.
 */
export function channelCredentials(tls: ReloadableTls): grpc.ChannelCredentials {
  if (!tls.files.ca) return staticChannelCredentials(tls.material);
  return grpc.experimental.createCertificateProviderChannelCredentials(tls, tls.material.cert ? tls : null);
}

/** Channel credentials from fixed PEM contents (the SDK's `tls` option). */
export function staticChannelCredentials(m: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined }): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(m.ca ?? null, m.key ?? null, m.cert ?? null);
}
