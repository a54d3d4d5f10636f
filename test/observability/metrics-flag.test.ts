/** kv-server --metrics-addr: checked like the other addresses, and never one of the node's gRPC ports. */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/server/flags.js';

const BASE = ['--id', '1', '--peers', '1=127.0.0.1:7001,2=127.0.0.1:7002', '--client-addr', '127.0.0.1:9001', '--data-dir', '/tmp/raftkv-flag-test'];

describe('--metrics-addr', () => {
  it('is absent unless given, and kept as given', () => {
    expect(parseArgs(BASE).metricsAddr).toBeUndefined();
    expect(parseArgs([...BASE, '--metrics-addr', '127.0.0.1:9091']).metricsAddr).toBe('127.0.0.1:9091');
  });

  it('refuses what is not host:port, and the client or a peer address', () => {
    expect(() => parseArgs([...BASE, '--metrics-addr', 'http://x:1/'])).toThrow(/--metrics-addr: .* is not a host:port/);
    expect(() => parseArgs([...BASE, '--metrics-addr', '127.0.0.1:70000'])).toThrow(/--metrics-addr: .*port/);
    expect(() => parseArgs([...BASE, '--metrics-addr', '127.0.0.1:9001'])).toThrow(/--metrics-addr 127.0.0.1:9001 is also a client or peer address/);
    expect(() => parseArgs([...BASE, '--metrics-addr', '127.0.0.1:7002'])).toThrow(/is also a client or peer address/);
  });
});
