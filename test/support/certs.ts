/**
 * Throwaway certificates for tests, made with the openssl command line in a temp dir: a CA,
 * certificates it signs (for 127.0.0.1 and localhost), and an expired one. (The same commands as
 * scripts/make-certs.sh; the tests use their own copy to choose names, serials and dates.)
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface Ca {
  dir: string;
  name: string;
  cert: string;
  key: string;
}

export interface Issued {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A temp dir for certificates; remove it with fs.rmSync(dir, { recursive: true }). */
export function certDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'raftkv-certs-'));
}

export function makeCa(dir: string, name: string): Ca {
  const cert = path.join(dir, `${name}.crt`);
  const key = path.join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${name}`], dir);
  return { dir, name, cert, key };
}

/**
 * A certificate for 127.0.0.1 and localhost, usable by a server and a client (mutual TLS), signed
 * by `ca`. `dates` (openssl ca's YYYYMMDDHHMMSSZ) makes one valid in the past only.
 */
export function issue(ca: Ca, name: string, opts: { serial?: number; dates?: { start: string; end: string } } = {}): Issued {
  const dir = ca.dir;
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.crt`);
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
  const serial = String(opts.serial ?? Math.floor(Math.random() * 2 ** 31) + 1);
  if (!opts.dates) {
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', serial, '-days', '2', '-extfile', ext, '-out', cert], dir);
    return { cert, key };
  }
  // x509 -req cannot date a certificate in the past (OpenSSL 3.0); openssl ca can (-startdate/-enddate).
  const db = path.join(dir, `${name}.db`);
  fs.writeFileSync(db, '');
  // openssl ca reads the serial as hex of an even number of digits.
  const hex = Number(serial).toString(16);
  fs.writeFileSync(path.join(dir, `${name}.serial`), (hex.length % 2 === 1 ? '0' + hex : hex) + '\n');
  const conf = path.join(dir, `${name}.cnf`);
  fs.writeFileSync(
    conf,
    [
      '[ca]', 'default_ca=d', '[d]', `database=${db}`, `serial=${path.join(dir, `${name}.serial`)}`, `new_certs_dir=${dir}`,
      'default_md=sha256', 'policy=p', 'copy_extensions=none', 'unique_subject=no', '[p]', 'commonName=supplied',
      '[e]', 'subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth,clientAuth',
    ].join('\n') + '\n',
  );
  openssl(['ca', '-batch', '-config', conf, '-extensions', 'e', '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert,
    '-startdate', opts.dates.start, '-enddate', opts.dates.end, '-notext'], dir);
  return { cert, key };
}
