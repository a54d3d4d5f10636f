/**
 * The SDK abandons an attempt for silence, not for slowness: a node that answers other calls of
 * the client while one call waits (an overloaded node queues calls) is alive, and resending the
 * call elsewhere would only add work (issue 11, overload). A node that answers nothing within the
 * attempt timeout is given up on, as before (a leader cut off from its clients).
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { ClusterOverloadedError, ClusterUnavailableError, KvClient } from '../../src/index.js';
import { loadKvProto, MD_LEADER } from '../../src/kv-api.js';
import { ROOT } from '../e2e/cluster.js';

let server: grpc.Server | undefined;
afterEach(() => {
  server?.forceShutdown();
  server = undefined;
});

let others: grpc.Server[] = [];
afterEach(() => {
  for (const s of others) s.forceShutdown();
  others = [];
});

/**
 * A fake node whose Get of key `slow` answers after `slowMs`, and of anything else at once;
 * `leader`: the address it names as the leader on every answer (a follower that forwarded).
 */
async function fakeNode(slowMs: number, leader?: () => string): Promise<{ addr: string; slowCalls: () => number; calls: () => number }> {
  let slowCalls = 0;
  let calls = 0;
  const s = new grpc.Server();
  if (server) others.push(s);
  else server = s;
  const get: grpc.handleUnaryCall<{ key: Buffer }, object> = (call, cb) => {
    calls++;
    const trailer = new grpc.Metadata();
    if (leader) trailer.set(MD_LEADER, leader());
    if (Buffer.from(call.request.key).toString() !== 'slow') return cb(null, { found: false }, trailer);
    slowCalls++;
    setTimeout(() => cb(null, { found: true, value: Buffer.from('v') }, trailer), slowMs);
  };
  s.addService(loadKvProto().Kv.service, { get } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { addr: `127.0.0.1:${port}`, slowCalls: () => slowCalls, calls: () => calls };
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

it('a call that runs out of time at a node answering other calls is an overload error, and the client stays with that node', async () => {
  const busy = await fakeNode(10_000);
  const other = await fakeNode(0, () => busy.addr); // a follower naming `busy` as the leader
  const kv = new KvClient({ endpoints: [busy.addr, other.addr], timeoutMs: 1_000, attemptTimeoutMs: 200 });
  try {
    // The client starts at either (in a random order) and settles on the leader.
    const deadline = Date.now() + 5_000;
    while (busy.calls() === 0 && Date.now() < deadline) await kv.get('fast');
    const followed = other.calls();
    let done = false;
    const slow = kv.get('slow').then(
      () => undefined,
      (e: unknown) => e as Error,
    ).finally(() => (done = true));
    while (!done) await kv.get('fast');
    const err = await slow;
    expect(err).toBeInstanceOf(ClusterOverloadedError);
    expect(err!.message).toMatch(/too busy/);
    const before = busy.calls();
    for (let i = 0; i < 5; i++) await kv.get('fast');
    expect([busy.calls() - before, other.calls()]).toEqual([5, followed]);
  } finally {
    kv.close();
  }
});

it('a client served through a follower goes to the leader the follower names once it is connected', async () => {
  const leader = await fakeNode(0);
  const follower = await fakeNode(0, () => leader.addr);
  const kv = new KvClient({ endpoints: [follower.addr], timeoutMs: 2_000 });
  try {
    const deadline = Date.now() + 5_000;
    while (leader.calls() === 0 && Date.now() < deadline) {
      await kv.get('fast');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(leader.calls()).toBeGreaterThan(0);
    const before = follower.calls();
    for (let i = 0; i < 5; i++) await kv.get('fast');
    expect(follower.calls()).toBe(before);
  } finally {
    kv.close();
  }
});

/**
 * A node in another process that answers every Get at once and prints its port: this process
 * can then be busy while the answer waits in its socket.
 */
function childNode(): Promise<{ addr: string; stop: () => void }> {
  const code = `
    const grpc = require('@grpc/grpc-js');
    const loader = require('@grpc/proto-loader');
    const pkg = grpc.loadPackageDefinition(loader.loadSync(${JSON.stringify(path.join(ROOT, 'proto/kv.proto'))}, { longs: Number, enums: String, defaults: true }));
    const server = new grpc.Server();
    server.addService(pkg.raftkv.kv.Kv.service, { get: (call, cb) => cb(null, { found: false }) });
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => console.log(e ? 'error ' + e.message : port));
    setTimeout(() => process.exit(0), 60000).unref();`;
  const child = spawn(process.execPath, ['-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').once('data', (line: string) => {
      const port = Number(line.trim());
      if (!Number.isInteger(port)) return reject(new Error(`child node: ${line}`));
      resolve({ addr: `127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') });
    });
    child.once('error', reject);
  });
}

it('an answer that arrived while this process was busy is read before the attempt timeout is looked at: no false silence', async () => {
  const node = await childNode();
  const other = await fakeNode(0, () => node.addr); // a follower naming the child as the leader: where a false silence would send the call
  const kv = new KvClient({ endpoints: [node.addr, other.addr], timeoutMs: 5_000, attemptTimeoutMs: 100 });
  const failed: string[] = [];
  try {
    // Connected to both, and settled on the child: until a call no longer goes through the follower.
    for (let i = 0, seen = -1; i < 50 && other.calls() !== seen; i++) {
      seen = other.calls();
      await kv.get('warm');
    }
    const before = other.calls();
    const call = kv.get('x').then(
      () => true,
      (e: unknown) => (failed.push(String(e)), false),
    );
    // Once the call is on the wire, busy from the check phase, so that the next phase with work
    // is the timers': the attempt timeout (overdue after the busy wait) comes due before the poll
    // phase reads the answer that arrived meanwhile.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = Date.now() + 300;
        while (Date.now() < until); // busy: the child answers meanwhile
        resolve();
      }),
    );
    const answered = await call;
    expect([answered, failed]).toEqual([true, []]);
    expect(other.calls()).toBe(before);
  } finally {
    kv.close();
    node.stop();
  }
});
