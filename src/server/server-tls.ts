/**
 * kv-server's TLS: the certificates of its flags read and checked at start (a bad file refuses the
 * start, naming it), read again on SIGHUP (a rotation without a restart), and the warning for a
 * plaintext port bound beyond this machine.
 */
import { checkSignedBy, type TlsMaterial } from '../tls-files.js';
import { ReloadableTls } from '../tls-credentials.js';
import type { ServerConfig } from './config.js';
import type { Logger } from './logger.js';

export interface ServerTls {
  client?: { tls: ReloadableTls; clientCertAuth: boolean };
  peer?: ReloadableTls;
}

/** Reads the certificate files of the config; throws CertificateError naming the file. */
export function loadServerTls(cfg: Pick<ServerConfig, 'clientTls' | 'peerTls'>): ServerTls {
  const out: ServerTls = {};
  if (cfg.clientTls) out.client = { tls: new ReloadableTls(cfg.clientTls.files), clientCertAuth: cfg.clientTls.clientCertAuth };
  const peerFiles = cfg.peerTls;
  if (peerFiles) {
    // Peers check this node's certificate against the CA they share: one it did not sign would
    // be refused by every peer, so it is refused here, at start, with the reason.
    out.peer = new ReloadableTls(peerFiles, (m: TlsMaterial) => checkSignedBy(peerFiles.cert!, m.cert!, peerFiles.ca!, m.ca!));
  }
  return out;
}

/** Reads every certificate file again; a set that does not check is logged and the one in use kept. */
export function reloadServerTls(tls: ServerTls, log: Logger): void {
  const each: [string, ReloadableTls | undefined][] = [
    ['client', tls.client?.tls],
    ['peer', tls.peer],
  ];
  for (const [port, t] of each) {
    if (!t) continue;
    try {
      const m = t.reload();
      log.info('certificates reloaded; new connections use them', { port, serial: m.serial, valid_to: m.validTo });
    } catch (e) {
      log.error('certificates not reloaded; the ones in use are kept', { port, error: (e as Error).message });
    }
  }
}

/** One line per port bound beyond loopback without TLS: anyone who reaches it reads and writes the data. */
export function plaintextWarnings(cfg: Pick<ServerConfig, 'clientAddr' | 'peerAddr' | 'clientTls' | 'peerTls'>): string[] {
  const out: string[] = [];
  if (!cfg.clientTls && !isLoopback(cfg.clientAddr)) {
    out.push(`WARNING: the client port ${cfg.clientAddr} is not a loopback address and has no TLS: anyone who reaches it can read and write every key. Give --cert-file, --key-file (and --trusted-ca-file --client-cert-auth)`);
  }
  if (!cfg.peerTls && !isLoopback(cfg.peerAddr)) {
    out.push(`WARNING: the peer port ${cfg.peerAddr} is not a loopback address and has no TLS: anyone who reaches it can pose as a member. Give --peer-cert-file, --peer-key-file and --peer-trusted-ca-file`);
  }
  return out;
}

function isLoopback(addr: string): boolean {
  const host = addr.slice(0, addr.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
