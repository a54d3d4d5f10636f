import { describe, expect, it } from 'vitest';
import {
  checkLinearizable,
  formatCounterexample,
  generateLinearizableHistory,
  HistoryRecorder,
  mulberry32,
  type CheckResult,
  type KvInput,
  type Operation,
} from './support/linearizability.js';

// --- builders ---------------------------------------------------------------

const U = Infinity; // "never returned"

function get(clientId: number, key: string, value: string | undefined, call: number, ret: number): Operation {
  return { clientId, input: { op: 'get', key }, output: { value }, call, ret };
}
function put(clientId: number, key: string, value: string, call: number, ret: number): Operation {
  return { clientId, input: { op: 'put', key, value }, output: {}, call, ret };
}
function append(clientId: number, key: string, value: string, call: number, ret: number): Operation {
  return { clientId, input: { op: 'append', key, value }, output: {}, call, ret };
}
function del(clientId: number, key: string, call: number, ret: number): Operation {
  return { clientId, input: { op: 'delete', key }, output: {}, call, ret };
}
function cas(
  clientId: number,
  key: string,
  expected: string,
  value: string,
  ok: boolean,
  call: number,
  ret: number,
): Operation {
  return { clientId, input: { op: 'cas', key, expected, value }, output: { ok }, call, ret };
}

function expectOk(history: Operation[]): void {
  const r = checkLinearizable(history);
  if (r.ok !== true) {
    throw new Error(`expected linearizable, got ${r.ok === false ? formatCounterexample(r) : r.reason}`);
  }
}

type Failure = Extract<CheckResult, { ok: false }>;

function expectViolation(history: Operation[], key: string): Failure {
  const r = checkLinearizable(history);
  expect(r.ok).toBe(false);
  const f = r as Failure;
  expect(f.key).toBe(key);
  expect(f.counterexample.length).toBeGreaterThan(0);
  for (const op of f.counterexample) {
    expect(op.input.key).toBe(key);
    expect(history).toContain(op); // the caller's own objects
  }
  // The counterexample must be a violation on its own.
  expect(checkLinearizable(f.counterexample).ok).toBe(false);
  return f;
}

// --- brute force reference ---------------------------------------------------

/** Exhaustive linearizability check for one key; only for tiny histories. */
function bruteForce(history: readonly Operation[]): boolean {
  const n = history.length;
  const used = new Array<boolean>(n).fill(false);
  const apply = (op: Operation, s: string | undefined): { ok: boolean; s: string | undefined } => {
    const pending = op.ret === Infinity;
    switch (op.input.op) {
      case 'get':
        return { ok: pending || (op.output as { value?: string }).value === s, s };
      case 'put':
        return { ok: true, s: op.input.value };
      case 'append':
        return { ok: true, s: (s ?? '') + op.input.value! };
      case 'delete':
        return { ok: true, s: undefined };
      case 'cas': {
        const hit = s !== undefined && s === op.input.expected;
        return { ok: pending || hit === (op.output as { ok: boolean }).ok, s: hit ? op.input.value : s };
      }
    }
  };
  const rec = (s: string | undefined): boolean => {
    // Done when every completed op is placed; pending ones may be left out.
    if (history.every((o, i) => used[i] || o.ret === Infinity)) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      const o = history[i]!;
      // o may go next only if no unplaced op returned strictly before o was called.
      if (history.some((p, j) => !used[j] && j !== i && p.ret < o.call)) continue;
      const r = apply(o, s);
      if (!r.ok) continue;
      used[i] = true;
      const found = rec(r.s);
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return rec(undefined);
}

function randomHistory(rand: () => number, size: number): Operation[] {
  const values = ['a', 'b', 'ab'];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const ops: Operation[] = [];
  for (let i = 0; i < size; i++) {
    const call = Math.floor(rand() * 20);
    const ret = rand() < 0.15 ? U : call + Math.floor(rand() * 8);
    const kind = pick(['get', 'get', 'put', 'append', 'delete', 'cas'] as const);
    const client = i;
    switch (kind) {
      case 'get':
        ops.push(get(client, 'k', pick([undefined, ...values]), call, ret));
        break;
      case 'put':
        ops.push(put(client, 'k', pick(values), call, ret));
        break;
      case 'append':
        ops.push(append(client, 'k', pick(['a', 'b']), call, ret));
        break;
      case 'delete':
        ops.push(del(client, 'k', call, ret));
        break;
      case 'cas':
        ops.push(cas(client, 'k', pick(values), pick(values), rand() < 0.5, call, ret));
        break;
    }
  }
  return ops;
}

// --- linearizable histories ---------------------------------------------------

describe('linearizable histories', () => {
  it('accepts the empty history', () => {
    expectOk([]);
  });

  it('accepts a sequential single-client history using every operation', () => {
    expectOk([
      get(1, 'k', undefined, 0, 1),
      put(1, 'k', 'a', 2, 3),
      get(1, 'k', 'a', 4, 5),
      append(1, 'k', 'b', 6, 7),
      get(1, 'k', 'ab', 8, 9),
      cas(1, 'k', 'ab', 'c', true, 10, 11),
      cas(1, 'k', 'ab', 'd', false, 12, 13),
      get(1, 'k', 'c', 14, 15),
      del(1, 'k', 16, 17),
      get(1, 'k', undefined, 18, 19),
      append(1, 'k', 'x', 20, 21),
      get(1, 'k', 'x', 22, 23),
    ]);
  });

  it.each([
    ['a', 'a'],
    ['b', 'b'],
    ['a', 'b'],
  ])('accepts overlapping puts where either order works (reads %s then %s)', (first, second) => {
    expectOk([
      put(1, 'k', 'a', 0, 10),
      put(2, 'k', 'b', 5, 15),
      get(3, 'k', first, 8, 20),
      get(3, 'k', second, 21, 30),
    ]);
  });

  it.each(['old', 'new'])('accepts a get concurrent with a put returning the %s value', (which) => {
    expectOk([put(1, 'k', 'old', 0, 1), put(2, 'k', 'new', 10, 20), get(3, 'k', which, 12, 18)]);
  });

  it('accepts reads that see a concurrent put take effect between them', () => {
    expectOk([
      put(1, 'k', 'old', 0, 1),
      put(2, 'k', 'new', 10, 40),
      get(3, 'k', 'old', 11, 12),
      get(3, 'k', 'new', 13, 14),
      get(4, 'k', 'new', 15, 16),
    ]);
  });

  it('accepts cas success and failure', () => {
    expectOk([
      cas(1, 'k', 'a', 'b', false, 0, 1), // key absent: no match
      put(1, 'k', 'a', 2, 3),
      cas(2, 'k', 'a', 'b', true, 4, 5),
      cas(3, 'k', 'a', 'c', false, 6, 7),
      get(1, 'k', 'b', 8, 9),
    ]);
  });

  it('accepts concurrent cas operations where only one wins', () => {
    expectOk([
      put(1, 'k', 'a', 0, 1),
      cas(2, 'k', 'a', 'b', false, 2, 10),
      cas(3, 'k', 'a', 'c', true, 3, 9),
      get(1, 'k', 'c', 11, 12),
    ]);
  });

  it('treats operations that touch (ret === call) as concurrent', () => {
    expectOk([put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 5), get(2, 'k', 'a', 5, 6)]);
  });

  describe('operations with unknown outcome (ret = Infinity)', () => {
    it('may have taken effect', () => {
      expectOk([put(1, 'k', 'a', 0, 1), put(2, 'k', 'b', 2, U), get(3, 'k', 'b', 10, 11)]);
    });

    it('may not have taken effect', () => {
      expectOk([put(1, 'k', 'a', 0, 1), put(2, 'k', 'b', 2, U), get(3, 'k', 'a', 10, 11), get(3, 'k', 'a', 100, 101)]);
    });

    it('may take effect long after the client gave up', () => {
      expectOk([
        put(1, 'k', 'a', 0, 1),
        append(2, 'k', 'x', 2, U),
        get(3, 'k', 'a', 10, 11),
        put(3, 'k', 'b', 12, 13),
        get(3, 'k', 'bx', 100, 101),
      ]);
    });

    it('ignores the recorded output of an operation that never returned', () => {
      expectOk([put(1, 'k', 'a', 0, 1), get(2, 'k', 'garbage', 2, U), cas(2, 'k', 'zz', 'q', true, 3, U)]);
    });
  });

  it('accepts interleaved histories over several keys', () => {
    expectOk([
      put(1, 'x', '1', 0, 10),
      put(2, 'y', '2', 1, 11),
      get(3, 'x', '1', 5, 15),
      get(4, 'y', undefined, 2, 3),
      get(4, 'y', '2', 12, 13),
    ]);
  });
});

// --- non-linearizable histories -------------------------------------------------

describe('non-linearizable histories', () => {
  it('rejects a stale read after a completed put', () => {
    const h = [put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 3), get(2, 'k', 'a', 4, 5)];
    const f = expectViolation(h, 'k');
    expect(f.counterexample).toHaveLength(3);
  });

  it('rejects a read of the initial (absent) value after a completed put', () => {
    const f = expectViolation([put(1, 'k', 'a', 0, 1), get(2, 'k', undefined, 2, 3)], 'k');
    expect(f.counterexample).toHaveLength(2);
  });

  it('rejects a lost write (a later get returns an older value)', () => {
    const h = [
      put(1, 'k', 'v1', 0, 5),
      get(2, 'k', 'v1', 6, 7),
      put(3, 'k', 'v2', 8, 12),
      get(1, 'k', 'v2', 13, 14),
      get(2, 'k', 'v1', 20, 25),
    ];
    expectViolation(h, 'k');
  });

  it('rejects a double-applied append', () => {
    const h = [put(1, 'k', '', 0, 1), append(2, 'k', 'x', 2, 10), get(3, 'k', 'xx', 11, 12)];
    const f = expectViolation(h, 'k');
    expect(f.counterexample).toContain(h[1]);
    expect(f.counterexample).toContain(h[2]);
  });

  it('rejects a double-applied append even when it never returned', () => {
    expectViolation([append(2, 'k', 'x', 2, U), get(3, 'k', 'xx', 11, 12)], 'k');
  });

  it('rejects a cas that reports ok while a later read shows the old value', () => {
    const h = [put(1, 'k', 'old', 0, 1), cas(2, 'k', 'old', 'new', true, 2, 3), get(3, 'k', 'old', 4, 5)];
    const f = expectViolation(h, 'k');
    expect(f.counterexample).toHaveLength(3);
  });

  it('rejects a cas that reports failure although the value matched', () => {
    expectViolation([put(1, 'k', 'a', 0, 1), cas(2, 'k', 'a', 'b', false, 2, 3)], 'k');
  });

  it('rejects a read of a value nobody wrote', () => {
    const f = expectViolation([put(1, 'k', 'a', 0, 1), get(2, 'k', 'zzz', 2, 3)], 'k');
    expect(f.counterexample).toEqual([expect.objectContaining({ output: { value: 'zzz' } })]);
  });

  it('rejects an unknown-outcome write that is observed and then undone', () => {
    const h = [put(1, 'k', 'a', 0, 1), put(2, 'k', 'b', 2, U), get(3, 'k', 'b', 10, 11), get(3, 'k', 'a', 12, 13)];
    const f = expectViolation(h, 'k');
    expect(f.counterexample).toContain(h[1]); // the writer of "b" stays in the counterexample
  });

  it('rejects a read that goes back in time between two clients', () => {
    const h = [
      put(1, 'k', 'a', 0, 1),
      put(2, 'k', 'b', 2, 50),
      get(3, 'k', 'b', 5, 6), // b has taken effect...
      get(4, 'k', 'a', 7, 8), // ...so a is gone for good
    ];
    expectViolation(h, 'k');
  });

  it('names the bad key in a multi-key history and keeps other keys out', () => {
    const h = [
      put(1, 'good', 'a', 0, 1),
      put(1, 'bad', 'x', 0, 1),
      get(2, 'good', 'a', 2, 3),
      put(1, 'bad', 'y', 4, 5),
      put(3, 'other', 'q', 4, 9),
      get(2, 'bad', 'x', 6, 7),
      get(3, 'other', 'q', 10, 11),
      get(2, 'good', 'a', 12, 13),
    ];
    const f = expectViolation(h, 'bad');
    expect(f.counterexample.map((o) => o.input.key)).toEqual(['bad', 'bad', 'bad']);
  });

  it('shrinks a stale read buried in a long generated history to a handful of operations', () => {
    const h = generateLinearizableHistory({ ops: 2000, keys: 2, clients: 5, seed: 7 });
    const { bad, stale } = injectStaleRead(h);
    const f = expectViolation(bad, stale.input.key);
    expect(f.counterexample).toContain(stale);
    expect(f.counterexample.length).toBeLessThanOrEqual(4);
  });

  it('finds a stale read among operations with unknown outcomes', () => {
    const h = generateLinearizableHistory({ ops: 2000, keys: 5, clients: 8, seed: 11, unknownRate: 0.02 });
    expect(checkLinearizable(h)).toEqual({ ok: true });
    const { bad, stale } = injectStaleRead(h);
    const f = expectViolation(bad, stale.input.key);
    expect(f.counterexample).toContain(stale);
    expect(f.counterexample.length).toBeLessThanOrEqual(6);
  });
});

/**
 * Replaces the output of a get near the end of `history` with a value that was
 * overwritten before the get was invoked. Needs unique written values (the
 * generator guarantees them), which makes the result non-linearizable.
 */
function injectStaleRead(history: Operation[]): { bad: Operation[]; stale: Operation } {
  for (let i = Math.floor(history.length * 0.75); i < history.length; i++) {
    const g = history[i]!;
    if (g.input.op !== 'get' || g.ret === U) continue;
    const puts = history.filter((o) => o.input.key === g.input.key && o.input.op === 'put' && o.ret < g.call);
    for (const p2 of puts) {
      const p1 = puts.find((o) => o.ret < p2.call && o.input.value !== (g.output as { value?: string }).value);
      if (p1 === undefined) continue;
      const stale: Operation = { ...g, output: { value: p1.input.value } };
      return { bad: history.map((o) => (o === g ? stale : o)), stale };
    }
  }
  throw new Error('no place to inject a stale read');
}

// --- agreement with brute force -------------------------------------------------

describe('agreement with an exhaustive reference', () => {
  it('agrees on 3000 random small histories, and counterexamples are violations', () => {
    const rand = mulberry32(12345);
    let violations = 0;
    for (let t = 0; t < 3000; t++) {
      const h = randomHistory(rand, 1 + Math.floor(rand() * 7));
      const expected = bruteForce(h);
      const r = checkLinearizable(h);
      if (r.ok === 'unknown') throw new Error(r.reason);
      if (r.ok !== expected) {
        throw new Error(`case ${t}: checker says ${r.ok}, brute force ${expected}\n${formatCounterexample(h)}`);
      }
      if (r.ok === false) {
        violations++;
        expect(bruteForce(r.counterexample)).toBe(false);
        for (const op of r.counterexample) expect(h).toContain(op);
      }
    }
    // Both outcomes must be well represented for this to mean anything.
    expect(violations).toBeGreaterThan(300);
    expect(violations).toBeLessThan(2700);
  });

  it('accepts generated linearizable histories, including unknown outcomes', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const h = generateLinearizableHistory({ ops: 300, keys: 3, clients: 6, seed, unknownRate: 0.05 });
      expect(h.some((o) => o.ret === U)).toBe(true);
      expect(checkLinearizable(h)).toEqual({ ok: true });
    }
  });
});

// --- timeouts, validation, rendering, recording -----------------------------------

describe('timeout', () => {
  it("answers 'unknown' when the search does not finish in time", () => {
    // 12 concurrent appends and a read matching no order of them: the search
    // has to try every ordering (~10^9 configurations).
    const h: Operation[] = [];
    for (let i = 0; i < 12; i++) h.push(append(i, 'k', String.fromCharCode(97 + i), 0, 10));
    h.push(get(99, 'k', 'not-any-order', 20, 21));
    const started = performance.now();
    const r = checkLinearizable(h, { timeoutMs: 100 });
    expect(r.ok).toBe('unknown');
    expect((r as { reason: string }).reason).toMatch(/gave up after \d+ ms/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("answers 'unknown' after stepLimit search steps, the same on every run", () => {
    const h: Operation[] = [];
    for (let i = 0; i < 12; i++) h.push(append(i, 'k', String.fromCharCode(97 + i), 0, 10));
    h.push(get(99, 'k', 'not-any-order', 20, 21));
    const reasons = [1, 2].map(() => (checkLinearizable(h, { stepLimit: 100_000 }) as { reason: string }).reason.replace(/\d+ ms/, 'T ms'));
    expect(reasons[0]).toMatch(/and \d+ search steps \(limits: Infinity ms, 100000 steps\)/);
    expect(reasons[1]).toBe(reasons[0]);
  });

  it('still answers definitively when there is enough time', () => {
    expect(checkLinearizable([put(1, 'k', 'a', 0, 1)], { timeoutMs: 1000 })).toEqual({ ok: true });
  });
});

describe('validation', () => {
  it('rejects malformed operations', () => {
    expect(() => checkLinearizable([put(1, 'k', 'a', 5, 4)])).toThrow(/ret must be/);
    expect(() => checkLinearizable([put(1, 'k', 'a', NaN, 4)])).toThrow(/call must be/);
    const noValue: Operation = { clientId: 1, input: { op: 'put', key: 'k' }, output: {}, call: 0, ret: 1 };
    expect(() => checkLinearizable([noValue])).toThrow(/needs a string value/);
    const badCas: Operation = {
      clientId: 1,
      input: { op: 'cas', key: 'k', expected: 'a', value: 'b' },
      output: {},
      call: 0,
      ret: 1,
    };
    expect(() => checkLinearizable([badCas])).toThrow(/boolean ok/);
  });

  it('accepts a get output without a value property as "absent" (JSON round trip)', () => {
    const h = JSON.parse(JSON.stringify([get(1, 'k', undefined, 0, 1)])) as Operation[];
    expectOk(h);
  });
});

describe('formatCounterexample', () => {
  it('renders one line per operation with client, call, result and interval', () => {
    const h = [
      put(1, 'k', 'old', 0, 1),
      cas(2, 'k', 'old', 'new', true, 2, 3),
      get(3, 'k', 'old', 4, 5),
      append(4, 'k', 'x', 4, U),
    ];
    const r = checkLinearizable(h);
    expect(r.ok).toBe(false);
    const text = formatCounterexample(r as Failure);
    const lines = text.split('\n');
    expect(lines[0]).toContain('"k"');
    expect(lines).toHaveLength(1 + (r as Failure).counterexample.length);
    expect(text).toMatch(/client 1\s+put\("k", "old"\)\s+-> ok\s+\[0 \.\. 1\]/);
    expect(text).toMatch(/client 2\s+cas\("k", expected "old", new "new"\)\s+-> ok \(swapped\)\s+\[2 \.\. 3\]/);
    expect(text).toMatch(/client 3\s+get\("k"\)\s+-> "old"\s+\[4 \.\. 5\]/);
    expect(formatCounterexample([append(4, 'k', 'x', 4, U), get(5, 'k', undefined, 1, 2)])).toMatch(
      /get\("k"\)\s+-> <absent>.*\n.*append\("k", "x"\)\s+-> \? \(no response\)\s+\[4 \.\. ∞\]/,
    );
  });
});

describe('HistoryRecorder', () => {
  it('records invocations and completions; unfinished ones never return', () => {
    const rec = new HistoryRecorder();
    const input: KvInput = { op: 'put', key: 'k', value: 'a' };
    const a = rec.invoke(1, input, 0);
    const b = rec.invoke(2, { op: 'get', key: 'k' }, 1);
    const c = rec.invoke(3, { op: 'append', key: 'k', value: 'z' }, 2);
    rec.complete(b, { value: 'a' }, 3);
    rec.complete(a, {}, 4);
    expect(() => rec.complete(a, {}, 5)).toThrow(/already completed/);
    expect(() => rec.complete(42, {}, 5)).toThrow(/unknown operation/);
    const ops = rec.operations();
    expect(ops).toEqual([
      { clientId: 1, input, output: {}, call: 0, ret: 4 },
      { clientId: 2, input: { op: 'get', key: 'k' }, output: { value: 'a' }, call: 1, ret: 3 },
      { clientId: 3, input: { op: 'append', key: 'k', value: 'z' }, output: {}, call: 2, ret: Infinity },
    ]);
    expect(c).toBe(2);
    expectOk(ops);
  });

  it('drives a checker end to end with a buggy store', () => {
    const rec = new HistoryRecorder();
    // A "store" that forgets the second write.
    let stored: string | undefined;
    const w1 = rec.invoke(1, { op: 'put', key: 'k', value: 'one' }, 0);
    stored = 'one';
    rec.complete(w1, {}, 1);
    const w2 = rec.invoke(1, { op: 'put', key: 'k', value: 'two' }, 2);
    rec.complete(w2, {}, 3);
    const r1 = rec.invoke(2, { op: 'get', key: 'k' }, 4);
    rec.complete(r1, { value: stored }, 5);
    const r = checkLinearizable(rec.operations());
    expect(r).toMatchObject({ ok: false, key: 'k' });
  });
});

// --- performance -----------------------------------------------------------------

describe('performance', () => {
  it('checks 10,000 operations over 20 keys from 10 clients', { timeout: 30_000 }, () => {
    const h = generateLinearizableHistory({ ops: 10_000, keys: 20, clients: 10, seed: 42, unknownRate: 0.01 });
    expect(h).toHaveLength(10_000);
    expect(checkLinearizable(h, { timeoutMs: 25_000 })).toEqual({ ok: true });
  });
});
