import { describe, expect, it } from 'vitest';
import { decodeCommand, encodeCommand, type Command, type WriteOp } from '../../src/server/command.js';
import { DEFAULT_SESSION_TTL_MS, KvStateMachine, MAX_VALUE_BYTES } from '../../src/server/state-machine.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const b = (s: string): Uint8Array => enc.encode(s);

interface Req {
  op: WriteOp;
  key: string | Uint8Array;
  value?: string;
  expected?: string;
  client?: number;
  seq: number;
  fi?: number;
  t?: number;
}

/** A command as it comes out of a log entry (decoded, so its bytes are views into the entry). */
function command(r: Req): Command {
  return decodeCommand(
    encodeCommand({
      op: r.op,
      clientId: r.client ?? 1,
      seq: r.seq,
      firstIncomplete: r.fi ?? r.seq,
      leaderTimeMs: r.t ?? 1000,
      key: typeof r.key === 'string' ? b(r.key) : r.key,
      value: b(r.value ?? ''),
      expected: b(r.expected ?? ''),
    }),
  );
}

function value(sm: KvStateMachine, key: string | Uint8Array): string | undefined {
  const v = sm.get(typeof key === 'string' ? b(key) : key);
  return v === undefined ? undefined : dec.decode(v);
}

describe('KvStateMachine operations', () => {
  it('refuses an append whose result would exceed the value limit, changes nothing, and answers a retry the same', () => {
    const sm = new KvStateMachine();
    const mib = 'x'.repeat(MAX_VALUE_BYTES);
    expect(sm.apply(command({ op: 'put', key: 'big', value: mib, seq: 1 }))).toEqual({ kind: 'ok' });
    expect(sm.apply(command({ op: 'append', key: 'big', value: 'y', seq: 2 }))).toEqual({ kind: 'tooLarge' });
    expect(sm.get(b('big'))!.length).toBe(MAX_VALUE_BYTES);
    expect(sm.apply(command({ op: 'append', key: 'big', value: 'y', seq: 2 }))).toEqual({ kind: 'tooLarge' });
    // Survives a snapshot round trip (the session remembers the refusal).
    const back = KvStateMachine.restore(sm.capture());
    expect(back.apply(command({ op: 'append', key: 'big', value: 'y', seq: 2 }))).toEqual({ kind: 'tooLarge' });
    // Up to the limit exactly is fine.
    expect(sm.apply(command({ op: 'append', key: 'new', value: mib, seq: 3 }))).toEqual({ kind: 'ok' });
    expect(sm.apply(command({ op: 'append', key: 'new', value: '', seq: 4 }))).toEqual({ kind: 'ok' });
  });

  it('appends never change values read earlier, and keys never share bytes', () => {
    const sm = new KvStateMachine();
    let expected = '';
    const seen: [Uint8Array, string][] = [];
    for (let seq = 1; seq <= 300; seq++) {
      const part = `<${seq}>`;
      sm.apply(command({ op: 'append', key: 'log', value: part, seq }));
      expected += part;
      if (seq % 37 === 0) seen.push([sm.get(b('log'))!, expected]);
    }
    expect(value(sm, 'log')).toBe(expected);
    for (const [view, then] of seen) expect(dec.decode(view)).toBe(then);
    sm.apply(command({ op: 'put', key: 'other', value: 'x', seq: 301 }));
    sm.apply(command({ op: 'append', key: 'other', value: 'y', seq: 302 }));
    sm.apply(command({ op: 'append', key: 'log', value: '!', seq: 303 }));
    expect(value(sm, 'other')).toBe('xy');
    expect(value(sm, 'log')).toBe(`${expected}!`);
  });

  it('put sets, and overwrites', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(command({ op: 'put', key: 'a', value: '1', seq: 1 }))).toEqual({ kind: 'ok' });
    expect(value(sm, 'a')).toBe('1');
    sm.apply(command({ op: 'put', key: 'a', value: '2', seq: 2 }));
    expect(value(sm, 'a')).toBe('2');
    expect(value(sm, 'b')).toBeUndefined();
    expect(sm.size).toBe(1);
  });

  it('append creates an absent key and concatenates onto a present one', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'append', key: 'a', value: 'x', seq: 1 }));
    expect(value(sm, 'a')).toBe('x');
    sm.apply(command({ op: 'append', key: 'a', value: 'yz', seq: 2 }));
    expect(value(sm, 'a')).toBe('xyz');
    sm.apply(command({ op: 'append', key: 'a', value: '', seq: 3 }));
    expect(value(sm, 'a')).toBe('xyz');
  });

  it('an empty value is present, not absent', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'put', key: 'a', value: '', seq: 1 }));
    expect(value(sm, 'a')).toBe('');
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: '', value: 'n', seq: 2 }))).toEqual({ kind: 'cas', swapped: true });
    expect(value(sm, 'a')).toBe('n');
  });

  it('delete reports whether the key existed', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'put', key: 'a', value: '1', seq: 1 }));
    expect(sm.apply(command({ op: 'delete', key: 'a', seq: 2 }))).toEqual({ kind: 'deleted', existed: true });
    expect(value(sm, 'a')).toBeUndefined();
    expect(sm.apply(command({ op: 'delete', key: 'a', seq: 3 }))).toEqual({ kind: 'deleted', existed: false });
    expect(sm.size).toBe(0);
  });

  it('cas swaps only when the current value equals expected; an absent key matches nothing', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: '', value: 'x', seq: 1 }))).toEqual({ kind: 'cas', swapped: false });
    expect(value(sm, 'a')).toBeUndefined();
    sm.apply(command({ op: 'put', key: 'a', value: 'old', seq: 2 }));
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'ol', value: 'x', seq: 3 }))).toEqual({ kind: 'cas', swapped: false });
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'old!', value: 'x', seq: 4 }))).toEqual({ kind: 'cas', swapped: false });
    expect(value(sm, 'a')).toBe('old');
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'old', value: 'new', seq: 5 }))).toEqual({ kind: 'cas', swapped: true });
    expect(value(sm, 'a')).toBe('new');
  });

  it('compares keys as bytes: no UTF-8 or latin1 conflation, trailing zeros matter', () => {
    const sm = new KvStateMachine();
    const keys = [
      new Uint8Array([0xff]),
      new Uint8Array([0xc3, 0xbf]), // "ÿ" in UTF-8, which is 0xff in latin1
      new Uint8Array([0x61]),
      new Uint8Array([0x61, 0x00]),
      new Uint8Array([0x00]),
      new Uint8Array([0xef, 0xbf, 0xbd]), // U+FFFD, what a lossy decode of 0xff gives
    ];
    keys.forEach((key, i) => sm.apply(command({ op: 'put', key, value: String(i), seq: i + 1 })));
    expect(sm.size).toBe(keys.length);
    keys.forEach((key, i) => expect(value(sm, key)).toBe(String(i)));
  });

  it('keeps its own copy of values: later changes to the entry buffer do not leak in', () => {
    const sm = new KvStateMachine();
    const entry = encodeCommand({
      op: 'put',
      clientId: 1,
      seq: 1,
      firstIncomplete: 1,
      leaderTimeMs: 0,
      key: b('k'),
      value: b('abc'),
      expected: new Uint8Array(0),
    });
    sm.apply(decodeCommand(entry));
    const appendEntry = encodeCommand({
      op: 'append',
      clientId: 1,
      seq: 2,
      firstIncomplete: 2,
      leaderTimeMs: 0,
      key: b('j'),
      value: b('def'),
      expected: new Uint8Array(0),
    });
    sm.apply(decodeCommand(appendEntry));
    entry.fill(0x21);
    appendEntry.fill(0x21);
    expect(value(sm, 'k')).toBe('abc');
    expect(value(sm, 'j')).toBe('def');
  });
});

describe('KvStateMachine sessions (exactly once)', () => {
  it('a retried append is applied once and answers like the original', () => {
    const sm = new KvStateMachine();
    const first = sm.apply(command({ op: 'append', key: 'a', value: 'x', seq: 1 }));
    const retry = sm.apply(command({ op: 'append', key: 'a', value: 'x', seq: 1 }));
    expect(retry).toEqual(first);
    expect(value(sm, 'a')).toBe('x');
  });

  it('a cas retried after a later put still answers swapped=true, and does not swap again', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'put', key: 'a', value: 'old', client: 2, seq: 1 }));
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'old', value: 'new', seq: 1 }))).toEqual({ kind: 'cas', swapped: true });
    sm.apply(command({ op: 'put', key: 'a', value: 'old', client: 2, seq: 2 }));
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'old', value: 'new', seq: 1 }))).toEqual({ kind: 'cas', swapped: true });
    expect(value(sm, 'a')).toBe('old');
  });

  it('a failed cas retried after the key came to match still answers swapped=false', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'x', value: 'y', seq: 1 }))).toEqual({ kind: 'cas', swapped: false });
    sm.apply(command({ op: 'put', key: 'a', value: 'x', client: 2, seq: 1 }));
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'x', value: 'y', seq: 1 }))).toEqual({ kind: 'cas', swapped: false });
    expect(value(sm, 'a')).toBe('x');
  });

  it('a retried delete answers existed=true though the key is gone, and does not delete a later put', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'put', key: 'a', value: '1', client: 2, seq: 1 }));
    expect(sm.apply(command({ op: 'delete', key: 'a', seq: 1 }))).toEqual({ kind: 'deleted', existed: true });
    sm.apply(command({ op: 'put', key: 'a', value: '2', client: 2, seq: 2 }));
    expect(sm.apply(command({ op: 'delete', key: 'a', seq: 1 }))).toEqual({ kind: 'deleted', existed: true });
    expect(value(sm, 'a')).toBe('2');
  });

  it('a retried put does not overwrite a later put by another client', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'put', key: 'a', value: 'mine', seq: 1 }));
    sm.apply(command({ op: 'put', key: 'a', value: 'theirs', client: 2, seq: 1 }));
    sm.apply(command({ op: 'put', key: 'a', value: 'mine', seq: 1 }));
    expect(value(sm, 'a')).toBe('theirs');
  });

  it('sessions are per client: the same seq from another client is a different request', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'append', key: 'a', value: 'x', client: 1, seq: 1 }));
    sm.apply(command({ op: 'append', key: 'a', value: 'x', client: 2, seq: 1 }));
    sm.apply(command({ op: 'append', key: 'a', value: 'x', client: 2 ** 53 - 1, seq: 1 }));
    expect(value(sm, 'a')).toBe('xxx');
    expect(sm.sessionCount).toBe(3);
  });

  it('runs concurrent seqs within the window once each, in whatever order they commit', () => {
    const sm = new KvStateMachine();
    // Three writes in flight at once (first_incomplete 1), committed out of order, each retried.
    for (const seq of [3, 1, 3, 2, 1, 2, 3]) {
      expect(sm.apply(command({ op: 'append', key: 'a', value: String(seq), seq, fi: 1 }))).toEqual({ kind: 'ok' });
    }
    expect(value(sm, 'a')).toBe('312');
    // Results are kept per seq: a retried cas among them still gets its own answer.
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: '312', value: 'S', seq: 5, fi: 1 }))).toEqual({ kind: 'cas', swapped: true });
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'S', value: 'T', seq: 4, fi: 1 }))).toEqual({ kind: 'cas', swapped: true });
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: '312', value: 'S', seq: 5, fi: 1 }))).toEqual({ kind: 'cas', swapped: true });
    expect(sm.apply(command({ op: 'cas', key: 'a', expected: 'S', value: 'T', seq: 4, fi: 2 }))).toEqual({ kind: 'cas', swapped: true });
    expect(value(sm, 'a')).toBe('T');
  });

  it('forgets answers below first_incomplete, and never re-runs those requests', () => {
    const sm = new KvStateMachine();
    for (const seq of [1, 2, 3]) sm.apply(command({ op: 'append', key: 'a', value: String(seq), seq, fi: 1 }));
    // The client has all answers below 3: the server may drop them.
    sm.apply(command({ op: 'append', key: 'a', value: '4', seq: 4, fi: 4 }));
    expect(value(sm, 'a')).toBe('1234');
    // Late duplicates of trimmed requests (sent with their original first_incomplete) do nothing.
    for (const seq of [1, 2, 3]) {
      expect(sm.apply(command({ op: 'append', key: 'a', value: String(seq), seq, fi: 1 }))).toEqual({ kind: 'ok' });
    }
    // ...and a duplicate does not move first_incomplete back: seq 4 is still answered from the cache.
    sm.apply(command({ op: 'append', key: 'a', value: '4', seq: 4, fi: 4 }));
    sm.apply(command({ op: 'append', key: 'a', value: '5', seq: 5, fi: 4 }));
    sm.apply(command({ op: 'append', key: 'a', value: '5', seq: 5, fi: 5 }));
    expect(value(sm, 'a')).toBe('12345');
  });

  it('a request of an unknown session that is not its first gets sessionExpired and does nothing', () => {
    const sm = new KvStateMachine();
    expect(sm.apply(command({ op: 'put', key: 'a', value: '1', seq: 5, fi: 2 }))).toEqual({ kind: 'sessionExpired' });
    expect(value(sm, 'a')).toBeUndefined();
    expect(sm.sessionCount).toBe(0);
    // A first request (first_incomplete 1) starts a session, whatever its seq.
    expect(sm.apply(command({ op: 'put', key: 'a', value: '1', seq: 5, fi: 1 }))).toEqual({ kind: 'ok' });
    expect(value(sm, 'a')).toBe('1');
  });
});

describe('KvStateMachine session expiry', () => {
  const TTL = 10 * 60_000;

  it('expires an idle session by leader-stamped time; its next request gets sessionExpired', () => {
    const sm = new KvStateMachine(TTL);
    sm.apply(command({ op: 'append', key: 'a', value: 'x', client: 1, seq: 1, t: 0 }));
    // Another client keeps the cluster busy past client 1's TTL.
    sm.apply(command({ op: 'put', key: 'b', value: '1', client: 2, seq: 1, t: TTL }));
    expect(sm.sessionCount).toBe(2);
    sm.apply(command({ op: 'put', key: 'b', value: '2', client: 2, seq: 2, t: TTL + 60_001 }));
    expect(sm.sessionCount).toBe(1);
    // Client 1 retries seq 1 having not seen its answer: the server can no longer tell.
    expect(sm.apply(command({ op: 'append', key: 'a', value: 'x', client: 1, seq: 2, fi: 2, t: TTL + 60_002 }))).toEqual({
      kind: 'sessionExpired',
    });
    expect(value(sm, 'a')).toBe('x');
  });

  it('keeps a session that stays active', () => {
    const sm = new KvStateMachine(TTL);
    for (let i = 1; i <= 40; i++) sm.apply(command({ op: 'append', key: 'a', value: '.', seq: i, t: i * 60_000 }));
    expect(sm.sessionCount).toBe(1);
    expect(sm.apply(command({ op: 'append', key: 'a', value: '.', seq: 41, fi: 41, t: 41 * 60_000 }))).toEqual({ kind: 'ok' });
  });

  it('uses the default TTL of an hour', () => {
    const sm = new KvStateMachine();
    sm.apply(command({ op: 'put', key: 'a', value: 'x', client: 1, seq: 1, t: 0 }));
    sm.apply(command({ op: 'put', key: 'a', value: 'y', client: 2, seq: 1, t: DEFAULT_SESSION_TTL_MS }));
    expect(sm.sessionCount).toBe(2);
    sm.apply(command({ op: 'put', key: 'a', value: 'z', client: 2, seq: 2, t: DEFAULT_SESSION_TTL_MS + 120_000 }));
    expect(sm.sessionCount).toBe(1);
  });

  it('is deterministic: replicas agree however their own clocks and leader clocks wander', () => {
    // Leader-stamped times that go backwards (a new leader with a slower clock) and jump.
    const times = [0, 5, 3, 70_000, 69_000, TTL + 1, TTL - 50_000, TTL + 200_000, 2 * TTL, 2 * TTL + 61_000];
    const cmds: Command[] = [];
    let seq = 0;
    for (const [i, t] of times.entries()) {
      const client = 1 + (i % 3);
      seq++;
      cmds.push(command({ op: 'append', key: `k${i % 2}`, value: String(i), client, seq, fi: i < 3 ? 1 : seq, t }));
    }
    const run = (): unknown[] => {
      const sm = new KvStateMachine(TTL);
      const results = cmds.map((c) => sm.apply(c));
      return [results, sm.sessionCount, value(sm, 'k0'), value(sm, 'k1')];
    };
    const a = run();
    expect(run()).toEqual(a);
  });

  it('a leader clock that goes backwards neither revives nor prematurely expires sessions', () => {
    const sm = new KvStateMachine(TTL);
    sm.apply(command({ op: 'put', key: 'a', value: '1', client: 1, seq: 1, t: 0 }));
    sm.apply(command({ op: 'put', key: 'a', value: '2', client: 2, seq: 1, t: TTL + 120_000 }));
    expect(sm.sessionCount).toBe(1);
    // A lagging leader stamps an old time: client 1 is still gone.
    expect(sm.apply(command({ op: 'put', key: 'a', value: '3', client: 1, seq: 2, fi: 2, t: 10 }))).toEqual({
      kind: 'sessionExpired',
    });
  });
});

describe('KvStateMachine byte count (raftkv_kv_bytes)', () => {
  /** What the count must equal: every key's and value's bytes, walked. */
  function walked(sm: KvStateMachine): number {
    const st = sm.capture();
    return st.keys.reduce((n, k, i) => n + k.length + st.values[i]!.length, 0);
  }

  it('follows puts, appends, overwrites, deletes and swaps, and a restore', () => {
    const sm = new KvStateMachine();
    const steps: Req[] = [
      { op: 'put', key: 'a', value: 'hello', seq: 1 },
      { op: 'put', key: 'bb', value: 'x', seq: 2 },
      { op: 'append', key: 'a', value: '!!', seq: 3 },
      { op: 'append', key: 'new', value: 'v', seq: 4 },
      { op: 'put', key: 'a', value: 'h', seq: 5 },
      { op: 'cas', key: 'bb', expected: 'x', value: 'longer', seq: 6 },
      { op: 'cas', key: 'bb', expected: 'nope', value: 'zzzzzzzz', seq: 7 },
      { op: 'delete', key: 'new', seq: 8 },
      { op: 'delete', key: 'absent', seq: 9 },
    ];
    for (const r of steps) {
      sm.apply(command(r));
      expect(sm.bytes, `after ${r.op} ${String(r.key)}`).toBe(walked(sm));
    }
    expect(sm.bytes).toBe('a'.length + 'h'.length + 'bb'.length + 'longer'.length);
    expect(KvStateMachine.restore(sm.capture()).bytes).toBe(sm.bytes);
  });
});
