import { describe, expect, it } from 'vitest';
import type { Answer } from '../../src/generated/raftkv/kv/Answer.js';
import type { Call__Output } from '../../src/generated/raftkv/kv/Call.js';
import { CallStream, FRAME_BYTES, MAX_STREAM_CALLS } from '../../src/server/call-stream.js';
import type { KvService, Reply, ServiceError } from '../../src/server/kv-service.js';

const STARTING: ServiceError = { code: 'UNAVAILABLE', reason: 'starting', details: 'the node is starting' };
const session = { clientId: 7, seq: 1, firstIncomplete: 1 };
const put = (id: number, value = Buffer.from('v')): Call__Output => ({ id, timeoutMs: 0, put: { session, key: Buffer.from('k'), value } });
const get = (id: number): Call__Output => ({ id, timeoutMs: 0, get: { key: Buffer.from('k'), serializable: false } });

/** A KvService that holds every call until the test answers it. */
class HeldService {
  readonly held: { method: string; req: unknown; reply: Reply<object>; deadline?: number }[] = [];
  get(req: unknown, reply: Reply<object>): void {
    this.held.push({ method: 'get', req, reply });
  }
  put(req: unknown, reply: Reply<object>, deadline?: number): void {
    this.held.push({ method: 'put', req, reply, deadline });
  }
}

function setup(o: { service?: HeldService | undefined; backlogged?: () => boolean } = {}) {
  const service = 'service' in o ? o.service : new HeldService();
  const frames: Answer[][] = [];
  const deferred: (() => void)[] = [];
  const timers: (() => void)[] = [];
  const answered: [string, string][] = [];
  const stream = new CallStream({
    service: () => service as unknown as KvService | undefined,
    starting: STARTING,
    send: (a) => void frames.push(a),
    backlogged: o.backlogged ?? (() => false),
    defer: (fn) => void deferred.push(fn),
    after: (_ms, fn) => void timers.push(fn),
    epochMs: () => 1_000_000,
    now: () => 0,
    onAnswered: (method, code) => void answered.push([method, code]),
  });
  const turn = (): void => {
    for (const fn of deferred.splice(0)) fn();
  };
  const progress = (): void => {
    for (const fn of timers.splice(0)) fn();
  };
  return { service: service!, stream, frames, turn, answered, progress };
}

describe('CallStream: the server end of kv.proto Calls', () => {
  it('serves each call as its unary RPC, and sends the answers ready in one turn in one frame', () => {
    const { service, stream, frames, turn, answered } = setup();
    stream.receive([put(1), get(2), { ...put(3), timeoutMs: 250 }]);
    expect(service.held.map((h) => h.method)).toEqual(['put', 'get', 'put']);
    // The deadline a call carries reaches the service as a time (ms since the epoch).
    expect(service.held.map((h) => h.deadline)).toEqual([undefined, undefined, 1_000_250]);
    service.held[1]!.reply(null, { found: true, value: Buffer.from('x') });
    service.held[0]!.reply(null, {}, '127.0.0.1:9001');
    expect(frames).toEqual([]);
    turn();
    expect(frames).toEqual([[{ id: 2, get: { found: true, value: Buffer.from('x') }, leaderAddr: '' }, { id: 1, put: {}, leaderAddr: '127.0.0.1:9001' }]]);
    service.held[2]!.reply({ code: 'FAILED_PRECONDITION', reason: 'not-leader', leaderAddr: '127.0.0.1:9002', details: 'not the leader' });
    turn();
    expect(frames[1]).toEqual([{ id: 3, refusal: { code: 9, details: 'not the leader', reason: 'not-leader', leaderAddr: '127.0.0.1:9002' } }]);
    expect(answered).toEqual([['Get', 'OK'], ['Put', 'OK'], ['Put', 'FAILED_PRECONDITION']]);
    expect(stream.pending).toBe(0);
  });

  it('refuses a malformed call on its own and serves the others of its frame', () => {
    const { service, stream, frames, turn } = setup();
    const both: Call__Output = { ...put(1), get: { key: Buffer.from('k'), serializable: false } };
    const none: Call__Output = { id: 2, timeoutMs: 0 };
    stream.receive([both, none, put(3), put(3), { ...put(4), id: -1 }, { ...put(5), id: 2 ** 60 }]);
    expect(service.held).toHaveLength(1);
    turn();
    expect(frames[0]!.map((a) => [a.id, a.refusal?.code, a.refusal?.details])).toEqual([
      [1, 3, 'a call must carry exactly one request; call 1 carries 2'],
      [2, 3, 'a call must carry exactly one request; call 2 carries 0'],
      [3, 3, 'call id 3 is already in flight on this stream'],
    ]);
  });

  it(`takes at most ${MAX_STREAM_CALLS} calls of a stream at once, and none while the client leaves its answers unread`, () => {
    let unread = false;
    const { service, stream, frames, turn } = setup({ backlogged: () => unread });
    stream.receive(Array.from({ length: MAX_STREAM_CALLS + 1 }, (_, i) => put(i + 1)));
    expect(service.held).toHaveLength(MAX_STREAM_CALLS);
    turn();
    expect(frames[0]).toEqual([
      { id: MAX_STREAM_CALLS + 1, refusal: { code: 8, reason: 'overloaded', leaderAddr: '', details: `${MAX_STREAM_CALLS} calls of this stream are in flight (the limit is ${MAX_STREAM_CALLS}); retry after a pause` } },
    ]);
    service.held[0]!.reply(null, {});
    unread = true;
    stream.receive([put(MAX_STREAM_CALLS + 2)]);
    turn();
    expect(frames[1]!.map((a) => a.refusal?.details ?? 'ok')).toEqual(['ok', "the answers to this stream's calls are not being read; retry after a pause"]);
  });

  it('sends an empty frame every PROGRESS_MS in which calls wait and nothing else went out', () => {
    const { service, stream, frames, turn, progress } = setup();
    stream.receive([put(1), put(2)]);
    progress();
    expect(frames).toEqual([[]]);
    service.held[0]!.reply(null, {});
    turn();
    progress();
    expect(frames).toEqual([[], [{ id: 1, put: {}, leaderAddr: '' }]]);
    progress();
    expect(frames).toHaveLength(3);
    service.held[1]!.reply(null, {});
    turn();
    progress();
    progress();
    expect(frames).toHaveLength(4);
  });

  it('splits answers into frames of about FRAME_BYTES', () => {
    const { service, stream, frames, turn } = setup();
    const n = 5;
    stream.receive(Array.from({ length: n }, (_, i) => get(i + 1)));
    const value = Buffer.alloc(FRAME_BYTES / 2);
    for (const h of service.held) h.reply(null, { found: true, value });
    turn();
    expect(frames.map((f) => f.length)).toEqual([1, 1, 1, 1, 1]);
    expect(frames.flat().map((a) => a.id)).toEqual([1, 2, 3, 4, 5]);
  });

  it('answers "starting" before the node serves; after close() drops what is still to come; drained() waits for every answer', () => {
    const early = setup({ service: undefined });
    early.stream.receive([put(1)]);
    early.turn();
    expect(early.frames[0]).toEqual([{ id: 1, refusal: { code: 14, reason: 'starting', details: 'the node is starting', leaderAddr: '' } }]);

    const { service, stream, frames, turn } = setup();
    stream.receive([put(1), put(2)]);
    let ended = false;
    stream.drained(() => (ended = true));
    service.held[0]!.reply(null, {});
    turn();
    expect(ended).toBe(false);
    service.held[1]!.reply(null, {});
    turn();
    expect(ended).toBe(true);
    stream.receive([put(3)]);
    stream.close();
    service.held[2]!.reply(null, {});
    turn();
    expect(frames.flat().map((a) => a.id)).toEqual([1, 2]);
  });
});
