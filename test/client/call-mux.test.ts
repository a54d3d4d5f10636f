/**
 * The SDK's data calls on kv.proto's Calls stream (client/call-mux.ts), against small gRPC servers
 * scripted here: many calls on one stream in few frames, refusals that act as the unary ones do,
 * a broken stream whose calls are retried on a new one, an idle stream closed, and a node without
 * the stream served by unary calls.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { loadKvProto } from '../../src/kv-api.js';
import type { AnswerFrame } from '../../src/generated/raftkv/kv/AnswerFrame.js';
import type { CallFrame__Output } from '../../src/generated/raftkv/kv/CallFrame.js';
import type { Answer } from '../../src/generated/raftkv/kv/Answer.js';
import type { Call__Output } from '../../src/generated/raftkv/kv/Call.js';

type Stream = grpc.ServerDuplexStream<CallFrame__Output, AnswerFrame>;

interface Node {
  addr: string;
  server: grpc.Server;
  frames: number;
  streams: number;
  ended: number;
  unary: number;
}

const servers: grpc.Server[] = [];
const clients: KvClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.forceShutdown();
});

/** A node whose store is `data`; `answer` may answer a call otherwise (a refusal, or undefined to serve it); `stream`: false for a node without Calls. */
async function node(opts: { data?: Map<string, Buffer>; answer?: (c: Call__Output, n: Node) => Answer | 'break' | undefined; stream?: boolean } = {}): Promise<Node> {
  const data = opts.data ?? new Map<string, Buffer>();
  const server = new grpc.Server();
  const n: Node = { addr: '', server, frames: 0, streams: 0, ended: 0, unary: 0 };
  const serve = (c: Call__Output): Answer => {
    if (c.put) {
      data.set(c.put.key.toString(), c.put.value);
      return { id: c.id, put: {} };
    }
    const v = data.get(c.get!.key.toString());
    return { id: c.id, get: { found: v !== undefined, value: v ?? Buffer.alloc(0) } };
  };
  const handlers: grpc.UntypedServiceImplementation = {
    Put: (call: grpc.ServerUnaryCall<{ key: Buffer; value: Buffer }, object>, cb: grpc.sendUnaryData<object>) => {
      n.unary++;
      data.set(call.request.key.toString(), call.request.value);
      cb(null, {});
    },
    Get: (call: grpc.ServerUnaryCall<{ key: Buffer }, object>, cb: grpc.sendUnaryData<object>) => {
      n.unary++;
      const v = data.get(call.request.key.toString());
      cb(null, { found: v !== undefined, value: v ?? Buffer.alloc(0) });
    },
  };
  if (opts.stream !== false) {
    handlers['Calls'] = (call: Stream) => {
      n.streams++;
      call.on('data', (f: CallFrame__Output) => {
        n.frames++;
        const answers: Answer[] = [];
        for (const c of f.calls) {
          const a = opts.answer?.(c, n) ?? serve(c);
          if (a === 'break') return call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'stream broken by the test' });
          answers.push(a);
        }
        call.write({ answers });
      });
      call.on('end', () => {
        n.ended++;
        call.end();
      });
    };
  }
  server.addService(loadKvProto().Kv.service, handlers);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  servers.push(server);
  n.addr = `127.0.0.1:${port}`;
  return n;
}

function client(endpoints: string[]): KvClient {
  const c = new KvClient({ endpoints, timeoutMs: 3000, endpointRefreshMs: 0 });
  clients.push(c);
  return c;
}

const waitFor = async (what: string, cond: () => boolean, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

it('sends the calls made together on one stream, in few frames, and answers each', async () => {
  const n = await node();
  const kv = client([n.addr]);
  await Promise.all(Array.from({ length: 200 }, (_, i) => kv.put(`k${i}`, `v${i}`)));
  const got = await Promise.all(Array.from({ length: 200 }, (_, i) => kv.get(`k${i}`)));
  expect(got).toEqual(Array.from({ length: 200 }, (_, i) => `v${i}`));
  expect(n.unary).toBe(0);
  expect(n.streams).toBe(1);
  expect(n.frames).toBeLessThanOrEqual(6);
});

it('a refusal on the stream acts as the unary one does: the client follows the leader it names', async () => {
  const leader = await node();
  const follower = await node({ answer: (c) => ({ id: c.id, refusal: { code: grpc.status.FAILED_PRECONDITION, reason: 'not-leader', leaderAddr: leader.addr, details: 'not the leader' } }) });
  const kv = client([follower.addr]);
  await kv.put('a', '1');
  expect(await kv.get('a')).toBe('1');
  expect(follower.frames).toBe(1);
  expect(leader.frames).toBeGreaterThanOrEqual(1);
});

it('a follower too busy forwarding names the leader, and the client goes there at once', async () => {
  const leader = await node();
  const follower = await node({
    answer: (c) => ({ id: c.id, refusal: { code: grpc.status.RESOURCE_EXHAUSTED, reason: 'overloaded', leaderAddr: leader.addr, details: '1024 calls are being forwarded to the leader' } }),
  });
  const kv = client([follower.addr]);
  // Without following the hint, the client would stay, retrying after pauses, and fail at its deadline.
  await kv.put('a', '1');
  expect([follower.frames, leader.frames]).toEqual([1, 1]);
});

it('a stream that breaks fails its calls as unanswered; they are retried on a new stream', async () => {
  let broken = false;
  const n = await node({
    answer: () => {
      if (broken) return undefined;
      broken = true;
      return 'break';
    },
  });
  // Attempts that would wait 2.5 s for a silent node: the retry must come from the stream's failure.
  const kv = new KvClient({ endpoints: [n.addr], timeoutMs: 5000, attemptTimeoutMs: 2500, endpointRefreshMs: 0 });
  clients.push(kv);
  const started = Date.now();
  await Promise.all(Array.from({ length: 10 }, (_, i) => kv.put(`k${i}`, 'v')));
  expect(Date.now() - started).toBeLessThan(2000);
  expect(await kv.get('k9')).toBe('v');
  expect(n.streams).toBe(2);
});

it('a node that keeps its stream alive with empty frames is waited for, past the silence watchdog', async () => {
  // A busy node (a deep queue) answers after 1.5 s, sending empty frames meanwhile as kv-server
  // does; a client that took it for silent would send the call again.
  let received = 0;
  const server = new grpc.Server();
  servers.push(server);
  server.addService(loadKvProto().Kv.service, {
    Calls: (call: Stream) => {
      call.on('data', (f: CallFrame__Output) => {
        received += f.calls.length;
        const alive = setInterval(() => call.write({ answers: [] }), 100);
        setTimeout(() => {
          clearInterval(alive);
          call.write({ answers: f.calls.map((c) => ({ id: c.id, put: {} })) });
        }, 1500);
      });
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  // Default attempt timer: 1 s of silence before the first answer.
  const kv = client([`127.0.0.1:${port}`]);
  await kv.put('a', '1');
  expect(received).toBe(1);
});

it('closes a stream that has no call for a moment, and opens another for the next call', async () => {
  const n = await node();
  const kv = client([n.addr]);
  await kv.put('a', '1');
  await waitFor('the idle stream to end', () => n.ended === 1);
  expect(await kv.get('a')).toBe('1');
  expect(n.streams).toBe(2);
});

it('a node without the stream (an older version) is served by unary calls', async () => {
  const n = await node({ stream: false });
  const kv = client([n.addr]);
  await Promise.all(Array.from({ length: 20 }, (_, i) => kv.put(`k${i}`, 'v')));
  expect(await kv.get('k3')).toBe('v');
  expect(n.unary).toBe(21);
});

it("transport: 'unary' makes every data call a unary one", async () => {
  const n = await node();
  const kv = new KvClient({ endpoints: [n.addr], timeoutMs: 3000, endpointRefreshMs: 0, transport: 'unary' });
  clients.push(kv);
  await kv.put('a', '1');
  expect(await kv.get('a')).toBe('1');
  expect([n.unary, n.streams]).toEqual([2, 0]);
});
