import type { Slicer } from '../clock.js';
import { DEFAULT_LIMITS } from '../limits.js';
import type { Command } from './command.js';
import type { MemberTable } from './members.js';

/**
 * The largest value the state machine holds. Part of the replicated state's rules, so the same on
 * every replica of every version: it is the default value limit, which requests are checked against too.
 */
export const MAX_VALUE_BYTES = DEFAULT_LIMITS.maxValueBytes;

/** What a write returned when it was applied; a retry gets the same answer. */
export type WriteResult =
  | { kind: 'ok' }
  | { kind: 'deleted'; existed: boolean }
  | { kind: 'cas'; swapped: boolean }
  /** The client's session was expired (or never seen) yet the request is not its first: outcome unknown. */
  | { kind: 'sessionExpired' }
  /** An append whose result would exceed MAX_VALUE_BYTES: refused, nothing changed. */
  | { kind: 'tooLarge' };

/** Sessions idle for longer than this (by leader-stamped time) are forgotten. */
export const DEFAULT_SESSION_TTL_MS = 60 * 60 * 1000;

interface Session {
  /** Answers for seq ≥ the client's first incomplete request, by seq. */
  results: Map<number, WriteResult>;
  firstIncomplete: number;
  lastActiveMs: number;
}

/** One client session as captured: its remembered answers by seq, in the table's order. */
export interface CapturedSession {
  readonly clientId: number;
  readonly firstIncomplete: number;
  readonly lastActiveMs: number;
  readonly results: readonly (readonly [seq: number, result: WriteResult])[];
}

/**
 * The whole state of a KvStateMachine at one instant (see capture()), and what restore() takes.
 * `keys[i]` holds `values[i]`; keys and values are latin1 strings, one char per byte (as the map
 * stores them), in the map's iteration order. Nothing here changes after capture: strings are
 * immutable, and the session parts are copies. Treat it as read-only.
 */
export interface CapturedState {
  readonly keys: readonly string[];
  readonly values: readonly string[];
  readonly sessions: readonly CapturedSession[];
  /** The latest leader-stamped time the machine had seen. */
  readonly clockMs: number;
  /** When (by clockMs) sessions were last expired: the next sweep is due a minute after. */
  readonly lastExpiryMs: number;
  /** The member table of the last conf entry applied; absent before the first (and in snapshots from before membership). */
  readonly table?: MemberTable;
}

/**
 * The replicated key-value map and its session table (Raft thesis §6.3). Deterministic: every
 * replica that applies the same commands in the same order holds the same state and returns the
 * same results. Keys are compared as bytes.
 *
 * Keys and values are kept as latin1 strings, one char per byte: a string lives in V8's heap
 * with a 16-byte header, where a Uint8Array of its own costs a view, an ArrayBuffer and a
 * backing store outside the heap (704 bytes per key of 16 bytes with a 100-byte value, against
 * 365 as strings: BENCHMARKS.md); an append is a concatenation (V8 joins the parts when read).
 */
export class KvStateMachine {
  private readonly data = new Map<string, string>();
  private readonly sessions = new Map<number, Session>();
  /** Bytes of keys and values held, kept as they change: a metric reads it without a walk of every key. */
  private dataBytes = 0;
  /** The latest leader-stamped time seen: monotone even if leaders' clocks disagree. */
  private clockMs = 0;
  private lastExpiryMs = 0;
  /** Where the members are (members.ts); replaced whole by each conf entry, never changed in place. */
  private table: MemberTable | undefined;

  constructor(private readonly sessionTtlMs = DEFAULT_SESSION_TTL_MS) {}

  /** The value of `key` as a new Buffer, or undefined. */
  get(key: Uint8Array): Uint8Array | undefined {
    const v = this.data.get(keyOf(key));
    return v === undefined ? undefined : Buffer.from(v, 'latin1');
  }

  get size(): number {
    return this.data.size;
  }

  /** Bytes of the keys and values held (not counting the maps' own overhead). */
  get bytes(): number {
    return this.dataBytes;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The member table in force, undefined until a conf entry (or a snapshot) brought one. */
  get members(): MemberTable | undefined {
    return this.table;
  }

  /** A conf entry was applied: `table` is where the members of its configuration are. */
  setMembers(table: MemberTable): void {
    this.table = table;
  }

  /**
   * The whole state as it is now, for a snapshot: serialize it at leisure while this machine
   * goes on applying. O(keys) pointer copies (strings are immutable: no bytes are copied) plus a
   * copy of the session table.
   */
  capture(): CapturedState {
    const n = this.data.size;
    const keys = new Array<string>(n);
    const values = new Array<string>(n);
    let i = 0;
    // forEach into preallocated arrays: several times faster than copying into a new Map.
    this.data.forEach((v, k) => {
      keys[i] = k;
      values[i++] = v;
    });
    const sessions: CapturedSession[] = [];
    for (const [clientId, s] of this.sessions) {
      sessions.push({ clientId, firstIncomplete: s.firstIncomplete, lastActiveMs: s.lastActiveMs, results: [...s.results] });
    }
    const table = this.table;
    return Object.freeze({ keys, values, sessions, clockMs: this.clockMs, lastExpiryMs: this.lastExpiryMs, ...(table ? { table } : {}) });
  }

  /**
   * A machine identical to the one `state` was captured from: same get() answers, same answers
   * to retried writes, same session expiry (given the same TTL, which is configuration, not
   * state). Shares the (immutable) strings of `state`.
   */
  static restore(state: CapturedState, sessionTtlMs = DEFAULT_SESSION_TTL_MS): KvStateMachine {
    const sm = new KvStateMachine(sessionTtlMs);
    sm.restoreData(state, 0, undefined);
    sm.restoreRest(state);
    return sm;
  }

  /**
   * restore() in time slices, yielding to the event loop in between, for a node that keeps
   * serving while it installs a snapshot. `state` must not change meanwhile.
   */
  static async restoreAsync(state: CapturedState, slicer: Slicer, sessionTtlMs = DEFAULT_SESSION_TTL_MS): Promise<KvStateMachine> {
    const sm = new KvStateMachine(sessionTtlMs);
    for (let i = 0; ; ) {
      i = sm.restoreData(state, i, slicer);
      if (i === state.keys.length) break;
      await slicer.next();
    }
    sm.restoreRest(state);
    return sm;
  }

  /** Sets keys from `from` on until done or the slice expires; returns where it stopped. */
  private restoreData(state: CapturedState, from: number, slicer: Slicer | undefined): number {
    const { keys, values } = state;
    if (keys.length !== values.length) {
      throw new RangeError(`state has ${keys.length} keys but ${values.length} values`);
    }
    let i = from;
    while (i < keys.length) {
      const v = values[i]!;
      this.data.set(keys[i]!, v);
      this.dataBytes += keys[i]!.length + v.length;
      if ((++i & 1023) === 0 && slicer?.expired()) break;
    }
    if (i === keys.length && this.data.size !== keys.length) throw new RangeError('state lists a key more than once');
    return i;
  }

  private restoreRest(state: CapturedState): void {
    for (const c of state.sessions) {
      if (this.sessions.has(c.clientId)) throw new RangeError(`state lists session ${c.clientId} more than once`);
      this.sessions.set(c.clientId, {
        results: new Map(c.results),
        firstIncomplete: c.firstIncomplete,
        lastActiveMs: c.lastActiveMs,
      });
    }
    this.clockMs = state.clockMs;
    this.lastExpiryMs = state.lastExpiryMs;
    this.table = state.table;
  }

  /** Whether write `seq` of session `clientId` was applied: a retry of it changes nothing and gets the first answer. */
  hasApplied(clientId: number, seq: number): boolean {
    const s = this.sessions.get(clientId);
    return s !== undefined && (s.results.has(seq) || seq < s.firstIncomplete);
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
        this.set(k, stringOf(c.value));
        return { kind: 'ok' };
      case 'append': {
        const old = this.data.get(k);
        // The limit holds for what a value becomes, not only for what a request carries: a value
        // over it could never be read back (the response would exceed what clients accept).
        if ((old?.length ?? 0) + c.value.length > MAX_VALUE_BYTES) return { kind: 'tooLarge' };
        this.set(k, old === undefined ? stringOf(c.value) : old + stringOf(c.value));
        return { kind: 'ok' };
      }
      case 'delete': {
        const old = this.data.get(k);
        if (old !== undefined) this.dataBytes -= k.length + old.length;
        return { kind: 'deleted', existed: this.data.delete(k) };
      }
      case 'cas': {
        const cur = this.data.get(k);
        const swapped = cur !== undefined && cur === stringOf(c.expected);
        if (swapped) this.set(k, stringOf(c.value));
        return { kind: 'cas', swapped };
      }
    }
  }

  private set(k: string, v: string): void {
    const old = this.data.get(k);
    this.dataBytes += v.length - (old === undefined ? -k.length : old.length);
    this.data.set(k, v);
  }

  /** At most once a minute of leader time, drop sessions idle longer than the TTL. */
  private expireSessions(): void {
    if (this.clockMs - this.lastExpiryMs < 60_000) return;
    this.lastExpiryMs = this.clockMs;
    for (const [id, s] of this.sessions) if (this.clockMs - s.lastActiveMs > this.sessionTtlMs) this.sessions.delete(id);
  }
}

/** Map keys and values: bytes as a latin1 string, one char per byte, so any byte sequence is distinct. */
function keyOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/** A value as the map keeps it: a copy, so that it neither pins the log entry it came in nor shares its bytes. */
const stringOf = keyOf;
