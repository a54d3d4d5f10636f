import { describe, expect, it } from 'vitest';
import type { Entry, NodeId } from '../../src/raft/core/types.js';
import type { ReplicatedLog } from '../../src/raft/replicated-log.js';
import { encodeCommand } from '../../src/server/command.js';
import { DEFAULT_ADMISSION, KvStore, STATE_BYTES_PER_KEY, type KvError, type WriteRequest } from '../../src/server/kv-store.js';
import type { WriteResult } from '../../src/server/state-machine.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);

/**
 * A ReplicatedLog that records what the store asks of it. Nothing commits by itself: tests
 * commit entries with `applyUpTo` (this node's own proposals, or anything they construct).
 */
class FakeLog implements ReplicatedLog {
  leading = true;
  leader: NodeId = 1;
  term = 1;
  readonly proposed: Entry[] = [];
  readonly readCtxs: number[] = [];
  /** The log as this node will apply it; starts equal to what it proposed. */
  readonly entries: Entry[] = [];
  applied = 0;

  propose(data: Uint8Array): { index: number; term: number } | undefined {
    if (!this.leading) return undefined;
    const e: Entry = { index: this.entries.length + 1, term: this.term, type: 'normal', data: data.slice() };
    this.proposed.push(e);
    this.entries.push(e);
    return { index: e.index, term: e.term };
  }

  readIndex(ctx: number): boolean {
    if (!this.leading) return false;
    this.readCtxs.push(ctx);
    return true;
  }

  leaderId(): NodeId {
    return this.leader;
  }

  /** Another leader's entry replaces ours at `index` (and everything after it). */
  overwrite(index: number, e: Omit<Entry, 'index'>): void {
    this.entries.length = index - 1;
    this.entries.push({ ...e, index });
  }

  noop(): void {
    this.entries.push({ index: this.entries.length + 1, term: this.term, type: 'noop', data: new Uint8Array(0) });
  }

  applyUpTo(store: KvStore, index: number): void {
    while (this.applied < index) {
      const e = this.entries[this.applied];
      if (!e) throw new Error(`no entry at ${this.applied + 1}`);
      store.applied(e);
      this.applied++;
    }
  }
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: KvError };

/** Collects callback outcomes; `done` must be called at most once per request. */
class Outcomes<T> {
  readonly got: Outcome<T>[] = [];
  calls = 0;
  cb = (o: Outcome<T>): void => {
    this.calls++;
    this.got.push(o);
  };
  get last(): Outcome<T> | undefined {
    return this.got[this.got.length - 1];
  }
}

let nextClient = 1;
function req(over: Partial<WriteRequest> = {}): WriteRequest {
  return { op: 'put', clientId: nextClient++, seq: 1, firstIncomplete: 1, key: b('k'), value: b('v'), ...over };
}

function setup(now = (): number => 1000): { log: FakeLog; store: KvStore } {
  const log = new FakeLog();
  return { log, store: new KvStore(now) };
}

function readValue(o: Outcome<Uint8Array | undefined> | undefined): string | undefined | 'pending' {
  if (!o) return 'pending';
  if (!o.ok) throw new Error(`read failed: ${JSON.stringify(o.error)}`);
  return o.value === undefined ? undefined : dec.decode(o.value);
}

describe('KvStore writes', () => {
  it('completes a write when the entry at its index is applied, not before', () => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req({ key: b('a'), value: b('1') }), out.cb);
    expect(log.proposed).toHaveLength(1);
    expect(out.calls).toBe(0);
    log.applyUpTo(store, 1);
    expect(out.got).toEqual([{ ok: true, value: { kind: 'ok' } }]);
    expect(dec.decode(store.sm.get(b('a')))).toBe('1');
  });

  it('stamps the proposal with the leader clock and the request session', () => {
    let now = 5;
    const { log, store } = setup(() => now);
    now = 1234.5;
    store.write(log, req({ op: 'cas', clientId: 2 ** 53 - 1, seq: 9, firstIncomplete: 4, key: b('a'), value: b('n'), expected: b('o') }), () => {});
    const expected = encodeCommand({
      op: 'cas',
      clientId: 2 ** 53 - 1,
      seq: 9,
      firstIncomplete: 4,
      leaderTimeMs: 1234.5,
      key: b('a'),
      value: b('n'),
      expected: b('o'),
    });
    expect([...log.proposed[0]!.data]).toEqual([...expected]);
  });

  it('completes writes out of proposal order as their indexes apply, each with its own result', () => {
    const { log, store } = setup();
    const a = new Outcomes<WriteResult>();
    const c = new Outcomes<WriteResult>();
    const d = new Outcomes<WriteResult>();
    store.write(log, req({ key: b('x'), value: b('1') }), a.cb);
    store.write(log, req({ op: 'cas', key: b('x'), value: b('2'), expected: b('1') }), c.cb);
    store.write(log, req({ op: 'delete', key: b('y') }), d.cb);
    log.applyUpTo(store, 3);
    expect(a.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(c.last).toEqual({ ok: true, value: { kind: 'cas', swapped: true } });
    expect(d.last).toEqual({ ok: true, value: { kind: 'deleted', existed: false } });
  });

  it('a different entry at its index means the write was lost with leadership: notLeader', () => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req({ clientId: 10, seq: 1, key: b('a'), value: b('mine') }), out.cb);
    log.leader = 3;
    log.overwrite(1, {
      term: 2,
      type: 'normal',
      data: encodeCommand({
        op: 'put',
        clientId: 11,
        seq: 1,
        firstIncomplete: 1,
        leaderTimeMs: 0,
        key: b('a'),
        value: b('theirs'),
        expected: new Uint8Array(0),
      }),
    });
    log.applyUpTo(store, 1);
    expect(out.got).toEqual([{ ok: false, error: { code: 'notLeader', leaderId: 3 } }]);
    expect(dec.decode(store.sm.get(b('a')))).toBe('theirs');
  });

  it('the same client with another seq at its index is still someone else’s entry', () => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req({ clientId: 10, seq: 2, firstIncomplete: 1, key: b('a') }), out.cb);
    log.overwrite(1, {
      term: 2,
      type: 'normal',
      data: encodeCommand({
        op: 'put',
        clientId: 10,
        seq: 1,
        firstIncomplete: 1,
        leaderTimeMs: 0,
        key: b('a'),
        value: b('x'),
        expected: new Uint8Array(0),
      }),
    });
    log.applyUpTo(store, 1);
    expect(out.last).toMatchObject({ ok: false, error: { code: 'notLeader' } });
  });

  it('a no-op at its index (a new leader’s) fails the write with notLeader', () => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req(), out.cb);
    log.overwrite(1, { term: 2, type: 'noop', data: new Uint8Array(0) });
    log.leader = 2;
    log.applyUpTo(store, 1);
    expect(out.got).toEqual([{ ok: false, error: { code: 'notLeader', leaderId: 2 } }]);
  });

  it('answers a retry (same client and seq, proposed again) with the original result, applying once', () => {
    const { log, store } = setup();
    const first = new Outcomes<WriteResult>();
    const retry = new Outcomes<WriteResult>();
    const r = req({ op: 'append', clientId: 42, seq: 1, key: b('a'), value: b('x') });
    store.write(log, r, first.cb);
    store.write(log, r, retry.cb);
    expect(log.proposed).toHaveLength(2);
    log.applyUpTo(store, 2);
    expect(first.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(retry.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(dec.decode(store.sm.get(b('a')))).toBe('x');
  });

  it('an append that would make a value over the limit fails as invalidArgument, and the value stays readable', () => {
    const { log, store } = setup();
    const big = new Uint8Array(1024 * 1024);
    const put = new Outcomes<WriteResult>();
    store.write(log, req({ key: b('k'), value: big }), put.cb);
    const append = new Outcomes<WriteResult>();
    store.write(log, req({ op: 'append', key: b('k'), value: big }), append.cb);
    log.applyUpTo(store, 2);
    expect(put.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(append.last).toMatchObject({ ok: false, error: { code: 'invalidArgument', message: expect.stringMatching(/larger than the limit of 1048576 bytes; nothing was appended/) } });
    expect(store.sm.get(b('k'))!.length).toBe(big.length);
  });

  it('proposes at most maxPendingWrites writes (and so many bytes) at once; more wait in a bounded queue, in order; beyond it they are refused as overloaded', () => {
    const log = new FakeLog();
    let now = 0;
    const admission = { maxPendingWrites: 2, maxPendingWriteBytes: 1000, maxQueuedWrites: 2, maxQueuedWriteBytes: 3000, maxQueueWaitMs: 100, maxPendingReads: 1, maxStateBytes: 0 };
    const store = new KvStore(() => now, undefined, undefined, admission);
    const outs = [0, 1, 2, 3, 4].map(() => new Outcomes<WriteResult>());
    outs.forEach((o, i) => store.write(log, req({ seq: i + 1 }), o.cb));
    expect(log.proposed).toHaveLength(2);
    expect(outs[2]!.got).toEqual([]);
    expect(outs[3]!.got).toEqual([]);
    expect(outs[4]!.last).toMatchObject({ ok: false, error: { code: 'overloaded', message: expect.stringMatching(/2 writes are in flight \(the limit is 2\), and 2 more .* wait for a turn/) } });
    // Applied writes make room: the queue goes first, in arrival order.
    log.applyUpTo(store, 1);
    expect(log.proposed).toHaveLength(3);
    now = 60;
    const late = new Outcomes<WriteResult>();
    store.write(log, req({ seq: 9 }), late.cb);
    expect(log.proposed).toHaveLength(3);
    log.applyUpTo(store, 2);
    expect(log.proposed).toHaveLength(4);
    // One that waited past maxQueueWaitMs is refused when its turn comes, proposing nothing.
    now = 161;
    log.applyUpTo(store, 3);
    expect(log.proposed).toHaveLength(4);
    expect(late.last).toMatchObject({ ok: false, error: { code: 'overloaded', message: expect.stringMatching(/waited 101 ms for a turn/) } });
    log.applyUpTo(store, 4);
    expect(outs.slice(0, 4).map((o) => o.last?.ok)).toEqual([true, true, true, true]);
    // Bytes count too: one big write fills the quota, the next waits.
    const big = new Outcomes<WriteResult>();
    store.write(log, req({ seq: 10, value: new Uint8Array(2000) }), big.cb);
    expect(log.proposed).toHaveLength(5);
    const after = new Outcomes<WriteResult>();
    store.write(log, req({ seq: 11, value: new Uint8Array(2000) }), after.cb);
    expect(log.proposed).toHaveLength(5);
    const tooBig = new Outcomes<WriteResult>();
    store.write(log, req({ seq: 12, value: new Uint8Array(2000) }), tooBig.cb);
    expect(tooBig.last).toMatchObject({ ok: false, error: { code: 'overloaded', message: expect.stringMatching(/bytes of writes are in flight.*wait for a turn/) } });
    // Leadership lost: queued writes fail with the in-flight ones (and are forwarded by the service).
    store.leadershipLost(3);
    expect(after.last).toEqual({ ok: false, error: { code: 'notLeader', leaderId: 3 } });
    // Reads likewise.
    const r1 = new Outcomes<Uint8Array | undefined>();
    const r2 = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('k'), r1.cb);
    store.read(log, b('k'), r2.cb);
    expect(log.readCtxs).toHaveLength(1);
    expect(r2.last).toMatchObject({ ok: false, error: { code: 'overloaded' } });
  });

  it('refuses a put, append or compare-and-swap that would take the state past its quota, counting writes in flight; a delete frees room and is never refused; a retry of a write applied or in flight is never refused', () => {
    const log = new FakeLog();
    // Room for two keys of 1 + 100 bytes (each counted with STATE_BYTES_PER_KEY), not three.
    const one = 1 + 100 + STATE_BYTES_PER_KEY;
    const store = new KvStore(() => 0, undefined, undefined, { ...DEFAULT_ADMISSION, maxStateBytes: 2 * one + 10 });
    const v = new Uint8Array(100);
    const a = new Outcomes<WriteResult>();
    const bb = new Outcomes<WriteResult>();
    const writeA = req({ key: b('a'), value: v });
    const writeB = req({ key: b('b'), value: v });
    store.write(log, writeA, a.cb);
    store.write(log, writeB, bb.cb);
    // Both in flight, not applied yet: they count already.
    for (const op of ['put', 'append', 'cas'] as const) {
      const third = new Outcomes<WriteResult>();
      store.write(log, req({ op, key: b('c'), value: v, ...(op === 'cas' ? { expected: b('') } : {}) }), third.cb);
      expect(third.last).toMatchObject({ ok: false, error: { code: 'noSpace', message: expect.stringContaining(`past the quota of ${2 * one + 10} bytes (--quota-bytes); delete keys`) } });
    }
    // A retry of B while it is in flight is proposed again (the session answers it once applied).
    const retryB = new Outcomes<WriteResult>();
    store.write(log, writeB, retryB.cb);
    expect(log.proposed).toHaveLength(3);
    log.applyUpTo(store, 3);
    expect(retryB.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(store.stateBytes()).toBe(2 * one);
    const refused = new Outcomes<WriteResult>();
    store.write(log, req({ key: b('c'), value: v }), refused.cb);
    expect(refused.last).toMatchObject({ ok: false, error: { code: 'noSpace' } });
    // A retry of A, applied already, at the quota: answered as the first time, not refused.
    const retryA = new Outcomes<WriteResult>();
    store.write(log, writeA, retryA.cb);
    log.applyUpTo(store, 4);
    expect(retryA.last).toEqual({ ok: true, value: { kind: 'ok' } });
    // A delete is taken even at the quota, and once applied the room is there again.
    const del = new Outcomes<WriteResult>();
    store.write(log, req({ op: 'delete', key: b('a') }), del.cb);
    log.applyUpTo(store, 5);
    expect(del.last).toEqual({ ok: true, value: { kind: 'deleted', existed: true } });
    const again = new Outcomes<WriteResult>();
    store.write(log, req({ key: b('c'), value: v }), again.cb);
    log.applyUpTo(store, 6);
    expect(again.last).toEqual({ ok: true, value: { kind: 'ok' } });
  });

  it("refuses at once a write that would get its turn only after its caller's deadline, and never proposes one whose caller gave up", () => {
    const log = new FakeLog();
    let now = 0;
    const admission = { maxPendingWrites: 1, maxPendingWriteBytes: 1000, maxQueuedWrites: 10, maxQueuedWriteBytes: 3000, maxQueueWaitMs: 10_000, maxPendingReads: 1, maxStateBytes: 0 };
    const store = new KvStore(() => now, undefined, undefined, admission);
    const first = new Outcomes<WriteResult>();
    store.write(log, req({ deadline: 50 }), first.cb);
    // The queue is empty: a write waits for nothing yet, so even a close deadline is taken on.
    const queued = new Outcomes<WriteResult>();
    store.write(log, req({ deadline: 150 }), queued.cb);
    expect(queued.got).toEqual([]);
    // 100 ms later the head has waited 100 ms: one with 50 ms left is refused at once, one with 500 waits.
    now = 100;
    const hopeless = new Outcomes<WriteResult>();
    store.write(log, req({ deadline: 150 }), hopeless.cb);
    expect(hopeless.last).toMatchObject({ ok: false, error: { code: 'overloaded', message: 'writes wait about 100 ms for a turn here, and this call has 50 ms left' } });
    const patient = new Outcomes<WriteResult>();
    store.write(log, req({ deadline: 500 }), patient.cb);
    expect(patient.got).toEqual([]);
    // The turn comes at 200 ms, past the second's deadline: it is refused and the next one proposed.
    now = 200;
    log.applyUpTo(store, 1);
    expect(queued.last).toMatchObject({ ok: false, error: { code: 'overloaded', message: expect.stringMatching(/past its caller's deadline/) } });
    expect(log.proposed).toHaveLength(2);
    // The queue is empty again: a newcomer expects no wait beyond the writes in flight.
    const next = new Outcomes<WriteResult>();
    store.write(log, req({ deadline: 210 }), next.cb);
    expect(next.got).toEqual([]);
    log.applyUpTo(store, 2);
    expect(patient.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(log.proposed).toHaveLength(3);
  });

  it('maps an expired session to sessionExpired', () => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req({ clientId: 77, seq: 3, firstIncomplete: 2 }), out.cb);
    log.applyUpTo(store, 1);
    expect(out.got).toEqual([{ ok: false, error: { code: 'sessionExpired' } }]);
  });

  it('refuses writes when not leader, with the leader hint, proposing nothing', () => {
    const { log, store } = setup();
    log.leading = false;
    log.leader = 4;
    const out = new Outcomes<WriteResult>();
    store.write(log, req(), out.cb);
    expect(out.got).toEqual([{ ok: false, error: { code: 'notLeader', leaderId: 4 } }]);
    expect(log.proposed).toHaveLength(0);
  });

  it('leadershipLost fails pending writes and reads with notLeader and the new leader', () => {
    const { log, store } = setup();
    const w1 = new Outcomes<WriteResult>();
    const w2 = new Outcomes<WriteResult>();
    const r1 = new Outcomes<Uint8Array | undefined>();
    store.write(log, req(), w1.cb);
    store.write(log, req(), w2.cb);
    store.read(log, b('k'), r1.cb);
    store.leadershipLost(5);
    for (const o of [w1, w2, r1]) expect(o.got).toEqual([{ ok: false, error: { code: 'notLeader', leaderId: 5 } }]);
    // The entries may still commit under the next leader: applying them answers nobody twice.
    log.applyUpTo(store, 2);
    store.readConfirmed({ ctx: log.readCtxs[0]!, index: 1 });
    for (const o of [w1, w2, r1]) expect(o.calls).toBe(1);
    expect(dec.decode(store.sm.get(b('k')))).toBe('v');
  });

  it('close fails everything in flight with shuttingDown and refuses later requests', () => {
    const { log, store } = setup();
    const w = new Outcomes<WriteResult>();
    const r = new Outcomes<Uint8Array | undefined>();
    const confirmed = new Outcomes<Uint8Array | undefined>();
    store.write(log, req(), w.cb);
    store.read(log, b('k'), r.cb);
    store.read(log, b('k'), confirmed.cb);
    store.readConfirmed({ ctx: log.readCtxs[1]!, index: 1 });
    store.close();
    for (const o of [w, r, confirmed]) expect(o.got).toEqual([{ ok: false, error: { code: 'shuttingDown' } }]);
    const later = new Outcomes<WriteResult>();
    store.write(log, req(), later.cb);
    expect(later.got).toEqual([{ ok: false, error: { code: 'shuttingDown' } }]);
    expect(log.proposed).toHaveLength(1);
    const laterRead = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('k'), laterRead.cb);
    expect(laterRead.got).toEqual([{ ok: false, error: { code: 'shuttingDown' } }]);
    expect(log.readCtxs).toHaveLength(2);
  });
});

describe('KvStore reads', () => {
  it('answers only after the read is confirmed AND the state machine has applied its index', () => {
    const { log, store } = setup();
    for (const v of ['1', '2', '3', '4', '5']) store.write(log, req({ key: b('a'), value: b(v) }), () => {});
    log.applyUpTo(store, 3);
    const r = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('a'), r.cb);
    expect(log.readCtxs).toHaveLength(1);
    log.applyUpTo(store, 4);
    expect(r.calls).toBe(0); // applied, but not confirmed
    store.readConfirmed({ ctx: log.readCtxs[0]!, index: 5 });
    expect(r.calls).toBe(0); // confirmed at 5, only 4 applied
    log.applyUpTo(store, 5);
    expect(readValue(r.last)).toBe('5');
    expect(r.calls).toBe(1);
  });

  it('answers at once when confirmed at an index already applied', () => {
    const { log, store } = setup();
    store.write(log, req({ key: b('a'), value: b('1') }), () => {});
    log.applyUpTo(store, 1);
    const r = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('a'), r.cb);
    expect(r.calls).toBe(0);
    store.readConfirmed({ ctx: log.readCtxs[0]!, index: 1 });
    expect(readValue(r.last)).toBe('1');
  });

  it('reads an absent key as undefined, and binary keys exactly', () => {
    const { log, store } = setup();
    const key = new Uint8Array([0xff, 0x00, 0xfe]);
    store.write(log, req({ key, value: new Uint8Array([1, 2, 3]) }), () => {});
    log.applyUpTo(store, 1);
    const hit = new Outcomes<Uint8Array | undefined>();
    const miss = new Outcomes<Uint8Array | undefined>();
    store.read(log, key, hit.cb);
    store.read(log, new Uint8Array([0xff, 0x00]), miss.cb);
    store.readConfirmed({ ctx: log.readCtxs[0]!, index: 1 });
    store.readConfirmed({ ctx: log.readCtxs[1]!, index: 1 });
    expect(hit.last).toEqual({ ok: true, value: Buffer.from([1, 2, 3]) });
    expect(miss.last).toEqual({ ok: true, value: undefined });
  });

  it('answers confirmed reads in index order as the state machine catches up', () => {
    const { log, store } = setup();
    for (const v of ['1', '2', '3']) store.write(log, req({ key: b('a'), value: b(v) }), () => {});
    const order: string[] = [];
    const rs = [1, 2, 3].map((i) => {
      const o = new Outcomes<Uint8Array | undefined>();
      store.read(log, b('a'), (x) => {
        o.cb(x);
        order.push(`r${i}=${readValue(x)}`);
      });
      return o;
    });
    store.readConfirmed({ ctx: log.readCtxs[0]!, index: 1 });
    store.readConfirmed({ ctx: log.readCtxs[1]!, index: 3 });
    store.readConfirmed({ ctx: log.readCtxs[2]!, index: 3 });
    log.applyUpTo(store, 1);
    expect(order).toEqual(['r1=1']);
    log.applyUpTo(store, 3);
    expect(order).toEqual(['r1=1', 'r2=3', 'r3=3']);
    expect(rs.map((o) => o.calls)).toEqual([1, 1, 1]);
  });

  it('a confirmed read survives loss of leadership (its index was current when confirmed)', () => {
    const { log, store } = setup();
    store.write(log, req({ key: b('a'), value: b('1') }), () => {});
    const r = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('a'), r.cb);
    store.readConfirmed({ ctx: log.readCtxs[0]!, index: 1 });
    store.leadershipLost(2);
    expect(r.calls).toBe(0);
    log.applyUpTo(store, 1);
    expect(readValue(r.last)).toBe('1');
  });

  it('ignores a confirmation for an unknown context', () => {
    const { log, store } = setup();
    const r = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('a'), r.cb);
    store.readConfirmed({ ctx: log.readCtxs[0]! + 100, index: 0 });
    expect(r.calls).toBe(0);
  });

  it('refuses reads when not leader, with the leader hint', () => {
    const { log, store } = setup();
    log.leading = false;
    log.leader = 3;
    const r = new Outcomes<Uint8Array | undefined>();
    store.read(log, b('a'), r.cb);
    expect(r.got).toEqual([{ ok: false, error: { code: 'notLeader', leaderId: 3 } }]);
  });

  it('a serializable read answers at once from what is applied, leader or not, without a ReadIndex round; a bad key is refused', () => {
    const { log, store } = setup();
    const w = new Outcomes<unknown>();
    store.write(log, req({ key: b('k'), value: b('v1') }), w.cb);
    const before = new Outcomes<Uint8Array | undefined>();
    store.localRead(b('k'), before.cb);
    expect(readValue(before.got[0])).toBeUndefined(); // proposed, not applied: not seen (possibly stale)
    log.applyUpTo(store, 1);
    log.leading = false;
    log.leader = 0; // no leader at all
    const after = new Outcomes<Uint8Array | undefined>();
    store.localRead(b('k'), after.cb);
    expect(readValue(after.got[0])).toBe('v1');
    expect(log.readCtxs).toEqual([]);
    const bad = new Outcomes<Uint8Array | undefined>();
    store.localRead(new Uint8Array(0), bad.cb);
    expect(bad.got[0]).toMatchObject({ ok: false, error: { code: 'invalidArgument' } });
  });

  it('uses fresh, increasing read contexts', () => {
    const { log, store } = setup();
    for (let i = 0; i < 5; i++) store.read(log, b('a'), () => {});
    expect(log.readCtxs).toEqual([...log.readCtxs].sort((x, y) => x - y));
    expect(new Set(log.readCtxs).size).toBe(5);
    expect(log.readCtxs[0]).toBeGreaterThan(0);
  });

  it('never writes to the log: 1000 gets leave the log length unchanged', () => {
    const { log, store } = setup();
    store.write(log, req({ key: b('a'), value: b('1') }), () => {});
    log.applyUpTo(store, 1);
    const before = log.entries.length;
    let answered = 0;
    for (let i = 0; i < 1000; i++) {
      store.read(log, b(i % 2 ? 'a' : 'b'), (o) => {
        if (o.ok) answered++;
      });
    }
    for (const ctx of log.readCtxs) store.readConfirmed({ ctx, index: 1 });
    expect(answered).toBe(1000);
    expect(log.readCtxs).toHaveLength(1000);
    expect(log.proposed).toHaveLength(1);
    expect(log.entries).toHaveLength(before);
  });
});

describe('KvStore limits', () => {
  const big = (n: number): Uint8Array => new Uint8Array(n).fill(0x61);

  it.each([
    ['an empty key', { key: new Uint8Array(0) }, /key must not be empty/],
    ['a key over 4 KiB', { key: big(4097) }, /4096/],
    ['a value over 1 MiB', { value: big(1024 * 1024 + 1) }, /1048576/],
    ['a cas with an oversized value', { op: 'cas' as const, value: big(1024 * 1024 + 1), expected: b('x') }, /1048576/],
  ])('refuses %s with invalidArgument naming the limit, proposing nothing', (_, over, message) => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req(over), out.cb);
    expect(out.calls).toBe(1);
    const o = out.last!;
    expect(o.ok).toBe(false);
    if (o.ok) return;
    expect(o.error.code).toBe('invalidArgument');
    expect(o.error.code === 'invalidArgument' && o.error.message).toMatch(message);
    expect(log.proposed).toHaveLength(0);
  });

  it('accepts a key of exactly 4 KiB and a value of exactly 1 MiB', () => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req({ key: big(4096), value: big(1024 * 1024) }), out.cb);
    expect(out.calls).toBe(0);
    expect(log.proposed).toHaveLength(1);
    log.applyUpTo(store, 1);
    expect(out.last).toEqual({ ok: true, value: { kind: 'ok' } });
    expect(store.sm.get(big(4096))?.length).toBe(1024 * 1024);
  });

  it.each([
    ['an empty key', new Uint8Array(0), /empty/],
    ['a key over 4 KiB', big(4097), /4096/],
  ])('refuses a read of %s without a ReadIndex round', (_, key, message) => {
    const { log, store } = setup();
    const out = new Outcomes<Uint8Array | undefined>();
    store.read(log, key, out.cb);
    expect(out.last).toMatchObject({ ok: false, error: { code: 'invalidArgument', message } });
    expect(log.readCtxs).toHaveLength(0);
  });

  it('honours custom limits', () => {
    const log = new FakeLog();
    const store = new KvStore(() => 0, { maxKeyBytes: 2, maxValueBytes: 3 });
    const out = new Outcomes<WriteResult>();
    store.write(log, req({ key: b('abc') }), out.cb);
    store.write(log, req({ key: b('ab'), value: b('abcd') }), out.cb);
    store.write(log, req({ key: b('ab'), value: b('abc') }), out.cb);
    expect(out.got.map((o) => !o.ok && o.error.code === 'invalidArgument' && o.error.message)).toEqual([
      'key is 3 bytes; the limit is 2 bytes',
      'value is 4 bytes; the limit is 3 bytes',
    ]);
    expect(log.proposed).toHaveLength(1);
  });

  it.each([
    ['clientId 0', { clientId: 0 }],
    ['a fractional clientId', { clientId: 1.5 }],
    ['clientId past 2^53', { clientId: 2 ** 53 }],
    ['seq 0', { seq: 0, firstIncomplete: 0 }],
    ['first_incomplete 0', { seq: 1, firstIncomplete: 0 }],
    ['first_incomplete after seq', { seq: 2, firstIncomplete: 3 }],
    ['a NaN seq', { seq: NaN }],
  ])('refuses a session with %s', (_, over) => {
    const { log, store } = setup();
    const out = new Outcomes<WriteResult>();
    store.write(log, req(over), out.cb);
    expect(out.last).toMatchObject({ ok: false, error: { code: 'invalidArgument' } });
    expect(log.proposed).toHaveLength(0);
  });
});
