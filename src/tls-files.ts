/**
 * Certificates and keys read from PEM files, checked before anything uses them: kv-server's
 * --cert-file/--peer-cert-file..., kv-cli's --cacert/--cert/--key. Every problem is one line that
 * names the flag and the file (an expired certificate, a key of another certificate, a file that
 * is no PEM), so that an operator never reads an OpenSSL error code from deep inside a handshake.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';

/** A certificate or key file could not be used; the message names the flag and the file. */
export class CertificateError extends Error {
  override name = 'CertificateError';
}

/** One file given on a command line, with the flag (or variable) that gave it, for messages. */
export interface NamedFile {
  flag: string;
  path: string;
}

/** Where one side of a TLS connection takes its material from. */
export interface TlsFiles {
  /**
   * The CA whose signature the other side's certificate must carry. Without it a client trusts the
   * system's CAs, and a server asks clients for no certificate.
   */
  ca?: NamedFile;
  /** This side's certificate and key: both or neither (a client without a certificate). */
  cert?: NamedFile;
  key?: NamedFile;
}

/** The checked PEM contents of a TlsFiles. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** The certificate's serial number (hex), for the log line that says which one is in use. */
  serial?: string;
  /** When the certificate expires. */
  validTo?: string;
}

/**
 * Reads and checks the files: readable, PEM, the certificates within their validity period, the
 * key the certificate's. `now` is injectable for tests. Throws CertificateError.
 */
export function readTlsFiles(files: TlsFiles, now: Date = new Date()): TlsMaterial {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    const [given, missing] = files.cert ? [files.cert.flag, keyFlagFor(files.cert.flag)] : [files.key!.flag, certFlagFor(files.key!.flag)];
    throw new CertificateError(`${given} needs ${missing} as well (a certificate and its private key go together)`);
  }
  let ca: Buffer | undefined;
  if (files.ca) {
    ca = readFile(files.ca);
    for (const c of parseCertificates(files.ca, ca)) checkValidity(files.ca, c, now);
  }
  if (!files.cert || !files.key) return ca ? { ca } : {};
  const cert = readFile(files.cert);
  const [leaf] = parseCertificates(files.cert, cert);
  checkValidity(files.cert, leaf!, now);
  const key = readFile(files.key);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new CertificateError(`${files.key.flag} ${files.key.path}: not a PEM private key, or one protected by a passphrase (${shortReason(e)})`);
  }
  if (!leaf!.checkPrivateKey(privateKey)) {
    throw new CertificateError(`${files.key.flag} ${files.key.path} is not the private key of the certificate in ${files.cert.flag} ${files.cert.path}`);
  }
  return { ...(ca ? { ca } : {}), cert, key, serial: leaf!.serialNumber, validTo: leaf!.validTo };
}

/**
 * Throws unless the certificate of `m` is signed by one of the CA certificates of `caOf`: a node's
 * peer certificate must be, since its peers check it against the same CA. Saying so at start beats
 * a cluster whose nodes refuse each other's handshakes with no word about why.
 */
export function checkSignedBy(cert: NamedFile, certPem: Buffer, ca: NamedFile, caPem: Buffer): void {
  const [leaf] = parseCertificates(cert, certPem);
  const signed = parseCertificates(ca, caPem).some((c) => leaf!.checkIssued(c) && leaf!.verify(c.publicKey));
  if (!signed) {
    throw new CertificateError(`${cert.flag} ${cert.path} is not signed by the CA in ${ca.flag} ${ca.path} (its issuer: ${oneLine(leaf!.issuer)})`);
  }
}

function readFile(f: NamedFile): Buffer {
  try {
    return fs.readFileSync(f.path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : shortReason(e);
    throw new CertificateError(`${f.flag} ${f.path}: cannot read it: ${why}`);
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM file (a CA file may hold several); at least one. */
function parseCertificates(f: NamedFile, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new CertificateError(`${f.flag} ${f.path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((b) => {
    try {
      return new X509Certificate(b);
    } catch (e) {
      throw new CertificateError(`${f.flag} ${f.path}: a certificate in it cannot be parsed (${shortReason(e)})`);
    }
  });
}

function checkValidity(f: NamedFile, c: X509Certificate, now: Date): void {
  if (new Date(c.validTo).getTime() < now.getTime()) {
    throw new CertificateError(`${f.flag} ${f.path}: the certificate expired on ${c.validTo} (subject ${oneLine(c.subject)})`);
  }
  if (new Date(c.validFrom).getTime() > now.getTime()) {
    throw new CertificateError(`${f.flag} ${f.path}: the certificate is not valid before ${c.validFrom} (is this machine's clock right?)`);
  }
}

function keyFlagFor(certFlag: string): string {
  return certFlag.replace(/cert-file$/, 'key-file').replace(/^--cert$/, '--key');
}
function certFlagFor(keyFlag: string): string {
  return keyFlag.replace(/key-file$/, 'cert-file').replace(/^--key$/, '--cert');
}
function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
function shortReason(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 200);
}
