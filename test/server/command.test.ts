import { describe, expect, it } from 'vitest';
import { CommandDecodeError, decodeCommand, encodeCommand, type Command, type WriteOp } from '../../src/server/command.js';
import { seededRng } from '../../src/raft/core/rng.js';

const enc = new TextEncoder();

function cmd(over: Partial<Command> = {}): Command {
  return {
    op: 'put',
    clientId: 7,
    seq: 3,
    firstIncomplete: 2,
    leaderTimeMs: 1_700_000_000_123.5,
    key: enc.encode('k'),
    value: enc.encode('v'),
    expected: new Uint8Array(0),
    ...over,
  };
}

/** Every byte value once, in a scrambled order, and a few UTF-8-invalid sequences. */
function allBytes(): Uint8Array {
  const out = new Uint8Array(256 + 4);
  for (let i = 0; i < 256; i++) out[i] = (i * 167 + 13) & 0xff;
  out.set([0xc3, 0x28, 0xff, 0x00], 256);
  return out;
}

function roundTrip(c: Command): Command {
  return decodeCommand(encodeCommand(c));
}

function expectSame(got: Command, want: Command): void {
  expect(got.op).toBe(want.op);
  expect(got.clientId).toBe(want.clientId);
  expect(got.seq).toBe(want.seq);
  expect(got.firstIncomplete).toBe(want.firstIncomplete);
  expect(got.leaderTimeMs).toBe(want.leaderTimeMs);
  const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
  expect(same(got.key, want.key), 'key').toBe(true);
  expect(same(got.value, want.value), 'value').toBe(true);
  expect(same(got.expected, want.op === 'cas' ? want.expected : new Uint8Array(0)), 'expected').toBe(true);
}

describe('command codec', () => {
  it.each(['put', 'append', 'delete', 'cas'] as WriteOp[])('round-trips a %s', (op) => {
    const c = cmd({ op, expected: op === 'cas' ? enc.encode('old') : new Uint8Array(0) });
    expectSame(roundTrip(c), c);
  });

  it('round-trips binary keys, values and expected values holding every byte', () => {
    const c = cmd({ op: 'cas', key: allBytes(), value: allBytes().reverse(), expected: allBytes().subarray(100, 200) });
    expectSame(roundTrip(c), c);
  });

  it('round-trips empty values and an empty expected value', () => {
    for (const op of ['put', 'append', 'delete', 'cas'] as WriteOp[]) {
      const c = cmd({ op, value: new Uint8Array(0), expected: new Uint8Array(0) });
      expectSame(roundTrip(c), c);
    }
  });

  it('round-trips a 1 MiB value', () => {
    const big = new Uint8Array(1024 * 1024).map((_, i) => i * 31);
    const c = cmd({ op: 'append', value: big });
    expectSame(roundTrip(c), c);
  });

  it.each([1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52 + 12345, 2 ** 53 - 2, 2 ** 53 - 1])(
    'keeps clientId %d exact',
    (clientId) => {
      const c = cmd({ clientId, seq: 2 ** 53 - 1, firstIncomplete: 2 ** 53 - 7 });
      const d = roundTrip(c);
      expect(d.clientId).toBe(clientId);
      expect(d.seq).toBe(2 ** 53 - 1);
      expect(d.firstIncomplete).toBe(2 ** 53 - 7);
    },
  );

  it('decodes a command inside a larger buffer (non-zero byteOffset)', () => {
    const c = cmd({ op: 'cas', key: allBytes(), expected: enc.encode('e') });
    const bytes = encodeCommand(c);
    const framed = new Uint8Array(bytes.length + 11);
    framed.fill(0xee);
    framed.set(bytes, 5);
    expectSame(decodeCommand(framed.subarray(5, 5 + bytes.length)), c);
  });

  it('throws CommandDecodeError on every truncation of every op', () => {
    for (const op of ['put', 'append', 'delete', 'cas'] as WriteOp[]) {
      const bytes = encodeCommand(cmd({ op, key: enc.encode('key'), value: enc.encode('value'), expected: enc.encode('exp') }));
      for (let len = 0; len < bytes.length; len++) {
        expect(() => decodeCommand(bytes.subarray(0, len)), `${op} cut to ${len} of ${bytes.length} bytes`).toThrow(
          CommandDecodeError,
        );
      }
    }
  });

  it('throws CommandDecodeError on an unknown op or version', () => {
    const bytes = encodeCommand(cmd());
    const badOp = bytes.slice();
    badOp[0] = 4;
    expect(() => decodeCommand(badOp)).toThrow(CommandDecodeError);
    badOp[0] = 0xff;
    expect(() => decodeCommand(badOp)).toThrow(CommandDecodeError);
    const badVersion = bytes.slice();
    badVersion[1] = 2;
    expect(() => decodeCommand(badVersion)).toThrow(/version/);
  });

  it('throws CommandDecodeError on lengths that point past the end', () => {
    const bytes = encodeCommand(cmd({ key: enc.encode('abc'), value: enc.encode('xyz') }));
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const keyLenAt = 2 + 8 + 8 + 8 + 8;
    const longKey = bytes.slice();
    new DataView(longKey.buffer).setUint32(keyLenAt, 0xffffffff, true);
    expect(() => decodeCommand(longKey)).toThrow(CommandDecodeError);
    const longValue = bytes.slice();
    new DataView(longValue.buffer).setUint32(keyLenAt + 4 + v.getUint32(keyLenAt, true), 4, true);
    expect(() => decodeCommand(longValue)).toThrow(CommandDecodeError);
  });

  it('never throws anything but CommandDecodeError on random garbage', () => {
    const rng = seededRng(99);
    let decoded = 0;
    for (let n = 0; n < 5000; n++) {
      const buf = new Uint8Array(rng.int(80)).map(() => rng.int(256));
      // Make half of them look plausible so the length checks, not just the header, are hit.
      if (n % 2 === 0 && buf.length > 2) {
        buf[0] = rng.int(4);
        buf[1] = 1;
      }
      try {
        decodeCommand(buf);
        decoded++;
      } catch (e) {
        expect(e).toBeInstanceOf(CommandDecodeError);
      }
    }
    expect(decoded).toBeLessThan(5000);
  });
});
