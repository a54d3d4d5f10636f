/**
 * Certificate files are checked before use, and every problem names the flag and the file:
 * kv-server refuses to start on it, kv-cli refuses the command (the e2e tests run both).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSignedBy, readTlsFiles, type TlsFiles } from '../../src/tls-files.js';
import { certDir, issue, makeCa, type Ca, type Issued } from '../support/certs.js';

let dir: string;
let ca: Ca;
let otherCa: Ca;
let good: Issued;
let other: Issued;
let expired: Issued;
beforeAll(() => {
  dir = certDir();
  ca = makeCa(dir, 'ca');
  otherCa = makeCa(dir, 'other-ca');
  good = issue(ca, 'good');
  other = issue(otherCa, 'other');
  expired = issue(ca, 'expired', { dates: { start: '20200101000000Z', end: '20200102000000Z' } });
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const files = (cert: string, key: string, caPath = ca.cert): TlsFiles => ({
  ca: { flag: '--trusted-ca-file', path: caPath },
  cert: { flag: '--cert-file', path: cert },
  key: { flag: '--key-file', path: key },
});

describe('certificate files', () => {
  it('a CA, a certificate and its key are read', () => {
    const m = readTlsFiles(files(good.cert, good.key));
    expect(m.cert?.toString()).toContain('BEGIN CERTIFICATE');
    expect(m.serial).toMatch(/^[0-9A-F]+$/);
  });

  it('an expired certificate: named, with its date', () => {
    expect(() => readTlsFiles(files(expired.cert, expired.key))).toThrow(`--cert-file ${expired.cert}: the certificate expired on Jan  2 00:00:00 2020 GMT`);
  });

  it('a certificate not yet valid: named (a clock that is wrong)', () => {
    expect(() => readTlsFiles(files(good.cert, good.key), new Date('2000-01-01'))).toThrow(/not valid before/);
  });

  it("a key of another certificate: both files named", () => {
    expect(() => readTlsFiles(files(good.cert, other.key))).toThrow(`--key-file ${other.key} is not the private key of the certificate in --cert-file ${good.cert}`);
  });

  it('a file that is missing, or no PEM: named', () => {
    const missing = path.join(dir, 'missing.crt');
    expect(() => readTlsFiles(files(missing, good.key))).toThrow(`--cert-file ${missing}: cannot read it: no such file`);
    expect(() => readTlsFiles(files(good.key, good.key))).toThrow(`--cert-file ${good.key}: no PEM certificate in it`);
    expect(() => readTlsFiles(files(good.cert, good.cert))).toThrow(`--key-file ${good.cert}: not a PEM private key`);
    const garbled = path.join(dir, 'garbled.crt');
    fs.writeFileSync(garbled, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(() => readTlsFiles(files(garbled, good.key))).toThrow(`--cert-file ${garbled}: a certificate in it cannot be parsed`);
  });

  it('an expired CA: named', () => {
    expect(() => readTlsFiles(files(good.cert, good.key, expired.cert))).toThrow(`--trusted-ca-file ${expired.cert}: the certificate expired`);
  });

  it('a certificate without its key: refused', () => {
    expect(() => readTlsFiles({ cert: { flag: '--cert', path: good.cert } })).toThrow('--cert needs --key as well');
  });

  it("a peer certificate of another CA than the peers': refused, naming both", () => {
    const cert = { flag: '--peer-cert-file', path: other.cert };
    const caFile = { flag: '--peer-trusted-ca-file', path: ca.cert };
    expect(() => checkSignedBy(cert, fs.readFileSync(other.cert), caFile, fs.readFileSync(ca.cert))).toThrow(
      `--peer-cert-file ${other.cert} is not signed by the CA in --peer-trusted-ca-file ${ca.cert}`,
    );
    expect(() => checkSignedBy({ ...cert, path: good.cert }, fs.readFileSync(good.cert), caFile, fs.readFileSync(ca.cert))).not.toThrow();
  });
});
