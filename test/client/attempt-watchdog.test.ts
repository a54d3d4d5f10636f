/**
 * The SDK abandons an attempt for silence, not for slowness: a node that answers other calls of
 * the client while one call waits (an overloaded node queues calls) is alive, and resending the
 * call elsewhere would only add work (issue 11, overload). A node that answers nothing within the
 * attempt timeout is given up on, as before (a leader cut off from its clients).
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { ClusterUnavailableError, KvClient } from '../../src/index.js';
import { loadKvProto } from '../../src/kv-api.js';

let server: grpc.Server | undefined;
afterEach(() => server?.forceShutdown());

/** A fake node whose Get of key `slow` answers after `slowMs`, and of anything else at once. */
async function fakeNode(slowMs: number): Promise<{ addr: string; slowCalls: () => number }> {
  let slowCalls = 0;
  server = new grpc.Server();
  const get: grpc.handleUnaryCall<{ key: Buffer }, object> = (call, cb) => {
    if (Buffer.from(call.request.key).toString() !== 'slow') return cb(null, { found: false });
    slowCalls++;
    setTimeout(() => cb(null, { found: true, value: Buffer.from('v') }), slowMs);
  };
  server.addService(loadKvProto().Kv.service, { get } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server!.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { addr: `127.0.0.1:${port}`, slowCalls: () => slowCalls };
}

it('a call to a node that keeps answering other calls is waited for past the attempt timeout: sent once', async () => {
  const node = await fakeNode(700);
  const kv = new KvClient({ endpoints: [node.addr], timeoutMs: 5_000, attemptTimeoutMs: 200 });
  try {
    let done = false;
    const slow = kv.get('slow').finally(() => (done = true));
    while (!done) await kv.get('fast');
    expect(await slow).toBe('v');
    expect(node.slowCalls()).toBe(1);
  } finally {
    kv.close();
  }
});

it('a call to a node that answers nothing is abandoned after the attempt timeout, and says so', async () => {
  const node = await fakeNode(10_000);
  const kv = new KvClient({ endpoints: [node.addr], timeoutMs: 1_500, attemptTimeoutMs: 200 });
  try {
    const err = await kv.get('slow').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ClusterUnavailableError);
    // The last attempt may start too close to the deadline for a silence to be timed: then the deadline ends it.
    expect(err!.message).toMatch(/no answer from 127\.0\.0\.1:\d+ for 200 ms|Deadline exceeded/);
    expect(node.slowCalls()).toBeGreaterThan(1);
  } finally {
    kv.close();
  }
});
