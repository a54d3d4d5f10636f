/**
 * kv-cli's and kv-bench's TLS options: --cacert, --cert, --key, or RAFTKV_CACERT, RAFTKV_CERT,
 * RAFTKV_KEY (a flag wins over its variable). The files are read and checked here, so that an
 * expired certificate or a key of another one is a usage error that names the file, not a failed
 * handshake retried until the deadline.
 */
import { CertificateError, readTlsFiles, type NamedFile } from '../tls-files.js';
import { UsageError } from './address.js';
import type { ClientTls } from './client.js';

export const TLS_OPTIONS = {
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
} as const;

export const TLS_HELP = `  --cacert FILE              TLS: the CA that signed the nodes' certificates (PEM; default: $RAFTKV_CACERT).
                             With it (or --cert) kv-cli connects over TLS
  --cert FILE, --key FILE    TLS: this client's certificate and key, for a cluster started with
                             --client-cert-auth (default: $RAFTKV_CERT, $RAFTKV_KEY)`;

/** The TLS of the command line and the environment, read and checked; undefined: plaintext. Throws UsageError. */
export function tlsFromFlags(values: { cacert?: string; cert?: string; key?: string }, env: NodeJS.ProcessEnv = process.env): ClientTls | undefined {
  const pick = (flag: 'cacert' | 'cert' | 'key', variable: string): NamedFile | undefined => {
    const v = values[flag] ?? (env[variable] !== undefined && env[variable] !== '' ? env[variable] : undefined);
    if (v === undefined) return undefined;
    const named = values[flag] !== undefined ? `--${flag}` : `$${variable}`;
    if (v.trim() === '') throw new UsageError(`${named} is empty: give a PEM file`);
    return { flag: named, path: v };
  };
  const ca = pick('cacert', 'RAFTKV_CACERT');
  const cert = pick('cert', 'RAFTKV_CERT');
  const key = pick('key', 'RAFTKV_KEY');
  if (!ca && !cert && !key) return undefined;
  try {
    const m = readTlsFiles({ ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
    return { ...(m.ca ? { ca: m.ca } : {}), ...(m.cert ? { cert: m.cert } : {}), ...(m.key ? { key: m.key } : {}) };
  } catch (e) {
    if (e instanceof CertificateError) throw new UsageError(e.message);
    throw e;
  }
}
