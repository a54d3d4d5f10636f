/** kv-server warns, loudly, of a port bound beyond loopback without TLS; loopback stays quiet (the default). */
import { expect, it } from 'vitest';
import { plaintextWarnings } from '../../src/server/server-tls.js';

const files = { cert: { flag: '--cert-file', path: '/c' }, key: { flag: '--key-file', path: '/k' } };

it('a plaintext port on a non-loopback address is warned about; loopback, or TLS, is not', () => {
  expect(plaintextWarnings({ clientAddr: '127.0.0.1:9001', peerAddr: '127.0.0.1:7001' })).toEqual([]);
  expect(plaintextWarnings({ clientAddr: 'localhost:9001', peerAddr: '[::1]:7001' })).toEqual([]);
  const both = plaintextWarnings({ clientAddr: '0.0.0.0:9001', peerAddr: '10.0.0.5:7001' });
  expect(both).toHaveLength(2);
  expect(both[0]).toMatch(/^WARNING: the client port 0\.0\.0\.0:9001 .* no TLS/);
  expect(both[1]).toMatch(/^WARNING: the peer port 10\.0\.0\.5:7001 .* no TLS/);
  expect(
    plaintextWarnings({ clientAddr: '0.0.0.0:9001', peerAddr: '10.0.0.5:7001', clientTls: { files, clientCertAuth: false }, peerTls: { ...files, ca: files.cert } }),
  ).toEqual([]);
});
