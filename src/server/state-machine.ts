import type { Command } from './command.js';

/** What a write returned when it was applied; a retry gets the same answer. */
export type WriteResult =
  | { kind: 'ok' }
  | { kind: 'deleted'; existed: boolean }
  | { kind: 'cas'; swapped: boolean }
  /** The client's session was expired (or never seen) yet the request is not its first: outcome unknown. */
  | { kind: 'sessionExpired' };

/** Sessions idle for longer than this (by leader-stamped time) are forgotten. */
export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;

interface Session {
  /** Answers for seq ≥ the client's first incomplete request, by seq. */
  results: Map<number, WriteResult>;
  firstIncomplete: number;
  lastActiveMs: number;
}

/**
 * The replicated key-value map and its session table (Raft thesis §6.3). Deterministic: every
 * replica that applies the same commands in the same order holds the same state and returns the
 * same results. Keys are compared as bytes.
 */
export class KvStateMachine {
  private readonly data = new Map<string, Uint8Array>();
  private readonly sessions = new Map<number, Session>();
  /** The latest leader-stamped time seen: monotone even if leaders' clocks disagree. */
  private clockMs = 0;
  private lastExpiryMs = 0;

  constructor(private readonly sessionTtlMs = DEFAULT_SESSION_TTL_MS) {}

  get(key: Uint8Array): Uint8Array | undefined {
    return this.data.get(keyOf(key));
  }

  get size(): number {
    return this.data.size;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  apply(c: Command): WriteResult {
    this.clockMs = Math.max(this.clockMs, c.leaderTimeMs);
    this.expireSessions();
    let s = this.sessions.get(c.clientId);
    if (!s) {
      // A session starts with its first requests; anything later means we forgot it.
      if (c.firstIncomplete > 1) return { kind: 'sessionExpired' };
      s = { results: new Map(), firstIncomplete: 1, lastActiveMs: this.clockMs };
      this.sessions.set(c.clientId, s);
    }
    s.lastActiveMs = this.clockMs;
    if (c.firstIncomplete > s.firstIncomplete) {
      for (const seq of s.results.keys()) if (seq < c.firstIncomplete) s.results.delete(seq);
      s.firstIncomplete = c.firstIncomplete;
    }
    const done = s.results.get(c.seq);
    if (done) return done;
    // Below the window: the client already has this answer and will not look at this one.
    if (c.seq < s.firstIncomplete) return { kind: 'ok' };
    const result = this.execute(c);
    s.results.set(c.seq, result);
    return result;
  }

  private execute(c: Command): WriteResult {
    const k = keyOf(c.key);
    switch (c.op) {
      case 'put':
        this.data.set(k, copyBytes(c.value));
        return { kind: 'ok' };
      case 'append': {
        const old = this.data.get(k);
        this.data.set(k, old ? appendBytes(old, c.value) : copyBytes(c.value));
        return { kind: 'ok' };
      }
      case 'delete':
        return { kind: 'deleted', existed: this.data.delete(k) };
      case 'cas': {
        const cur = this.data.get(k);
        const swapped = cur !== undefined && bytesEqual(cur, c.expected);
        if (swapped) this.data.set(k, copyBytes(c.value));
        return { kind: 'cas', swapped };
      }
    }
  }

  /** At most once a minute of leader time, drop sessions idle longer than the TTL. */
  private expireSessions(): void {
    if (this.clockMs - this.lastExpiryMs < 60_000) return;
    this.lastExpiryMs = this.clockMs;
    for (const [id, s] of this.sessions) if (this.clockMs - s.lastActiveMs > this.sessionTtlMs) this.sessions.delete(id);
  }
}

/** Map keys: bytes as a latin1 string, one char per byte, so any byte sequence is a distinct key. */
function keyOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/**
 * A fresh, exact-size copy. Command fields are views into the log entry (with Buffer.slice they
 * would stay views), and a stored value must neither pin the entry nor share its bytes.
 */
function copyBytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

/**
 * Appends in amortized O(len(tail)): values that grow by appends live in buffers with doubling
 * spare room. Only bytes past the old length are written, so views handed out earlier (which end
 * at the old length) never change, and every buffer with spare room was allocated here.
 */
function appendBytes(old: Uint8Array, tail: Uint8Array): Uint8Array {
  const len = old.length + tail.length;
  if (old.byteOffset + len <= old.buffer.byteLength && spareRoom.has(old.buffer)) {
    const grown = new Uint8Array(old.buffer, old.byteOffset, len);
    grown.set(tail, old.length);
    return grown;
  }
  const buf = new Uint8Array(Math.max(len, 2 * old.length, 64));
  spareRoom.add(buf.buffer);
  buf.set(old);
  buf.set(tail, old.length);
  return buf.subarray(0, len);
}

/** Buffers allocated by appendBytes, the only ones whose room past a value's end may be used. */
const spareRoom = new WeakSet<ArrayBufferLike>();

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
