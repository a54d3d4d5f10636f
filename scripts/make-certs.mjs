// Throwaway certificates for `make run TLS=1`, made with the openssl command line: a CA, one
// certificate per node (subjectAltName IP:127.0.0.1 and DNS:localhost; for the peer port and the
// client port, as server and as client) and one for kv-cli. For a local cluster only: the CA's key
// lies beside them, unprotected. Run alone: node scripts/make-certs.mjs DIR [N]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const DAYS = '30';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args, cwd) {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const why = e.code === 'ENOENT' ? 'openssl is not installed (apt-get install openssl)' : String(e.stderr ?? e.message).trim();
    throw new Error(`openssl ${args[0]} failed: ${why}`);
  }
}

/**
 * The files of a CA, nodes 1..n and a client in `dir` (made unless all are there already):
 * { ca, node(id) → { cert, key }, client: { cert, key } }.
 */
export function makeCerts(dir, n = 3) {
  const file = (name, ext) => path.join(dir, `${name}.${ext}`);
  const names = [...Array.from({ length: n }, (_, i) => `node-${i + 1}`), 'client'];
  const out = {
    ca: file('ca', 'crt'),
    node: (id) => ({ cert: file(`node-${id}`, 'crt'), key: file(`node-${id}`, 'key') }),
    client: { cert: file('client', 'crt'), key: file('client', 'key') },
  };
  if ([out.ca, ...names.flatMap((m) => [file(m, 'crt'), file(m, 'key')])].every((f) => existsSync(f))) return out;
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', ...EC, '-keyout', file('ca', 'key'), '-out', out.ca, '-days', DAYS, '-subj', '/CN=raftkv make run CA'], dir);
  const ext = file('san', 'ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const [i, name] of names.entries()) {
    openssl(['req', ...EC, '-keyout', file(name, 'key'), '-out', file(name, 'csr'), '-subj', `/CN=raftkv ${name}`], dir);
    openssl(['x509', '-req', '-in', file(name, 'csr'), '-CA', out.ca, '-CAkey', file('ca', 'key'), '-set_serial', String(1000 + i), '-days', DAYS,
      '-extfile', ext, '-out', file(name, 'crt')], dir);
    rmSync(file(name, 'csr'));
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [dir, n] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: node scripts/make-certs.mjs DIR [N]\n');
    process.exit(2);
  }
  makeCerts(path.resolve(dir), n ? Number(n) : 3);
  process.stdout.write(`certificates in ${dir}: ca.crt, node-1..${n ?? 3}.crt/.key, client.crt/.key\n`);
}
