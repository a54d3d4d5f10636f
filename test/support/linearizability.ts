/**
 * Linearizability checker for raftkv client histories.
 *
 * The algorithm is the one used by porcupine (Anish Athalye's Go checker):
 *
 *  - P-compositionality: a history of a key-value store is linearizable iff the
 *    sub-history of every key is, so each key is checked on its own.
 *  - Wing & Gong's backtracking search with Lowe's just-in-time linearization:
 *    the per-key history is turned into a time-ordered, doubly linked list of
 *    call and return events. Walking the list, a call event is an operation
 *    that may be linearized now (if the model accepts it, it is "lifted": its
 *    call and return are unlinked and the walk restarts at the head). Reaching a
 *    return event means that operation's deadline has passed without it being
 *    linearized, so the search backtracks to the most recent choice.
 *  - Memoization: a configuration is (set of linearized operations, model
 *    state). The set is a bitset with an incrementally maintained hash; a
 *    configuration that was reached before is never explored again.
 *
 * Operations with an unknown outcome (the client gave up: `ret === Infinity`)
 * get a return event at +infinity. They can therefore be linearized at any
 * point after their call, and their output is not checked. "Never took
 * effect" needs no special case: the search can always linearize them last,
 * after every completed operation, where no one can observe them.
 * Equal timestamps are ordered call-before-return, i.e. operations that merely
 * touch (a.ret === b.call) count as concurrent: coarse clocks can only hide a
 * violation, never invent one.
 */

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export type KvOpName = 'get' | 'put' | 'append' | 'delete' | 'cas';

export interface KvInput {
  readonly op: KvOpName;
  readonly key: string;
  /** put / append: the value written or appended; cas: the new value. */
  readonly value?: string;
  /** cas: the value the key must currently hold (an absent key matches nothing). */
  readonly expected?: string;
}

/** Output of a get; `undefined` means the key was absent. */
export interface GetOutput {
  readonly value: string | undefined;
}
/** Output of put / append / delete. */
export type WriteOutput = Record<string, never>;
/** Output of cas: whether the swap happened. */
export interface CasOutput {
  readonly ok: boolean;
}
export type KvOutput = GetOutput | WriteOutput | CasOutput;

export interface Operation {
  readonly clientId: number;
  readonly input: KvInput;
  /** Ignored when `ret === Infinity` (outcome unknown). */
  readonly output: KvOutput;
  /** Invocation time. Any unit, but one clock for the whole history. */
  readonly call: number;
  /** Response time (>= call), or Infinity if no response was ever received. */
  readonly ret: number;
}

export interface CheckOptions {
  /** Give up after this long and answer `{ ok: 'unknown' }`. Default: no limit. */
  readonly timeoutMs?: number;
  /**
   * Give up after this many search steps and answer `{ ok: 'unknown' }`. Default: no limit.
   * Unlike a time limit, the same history always gets the same answer, on any machine and load:
   * what a seeded simulation needs to replay exactly.
   */
  readonly stepLimit?: number;
}

export type CheckResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly key: string; readonly counterexample: Operation[] }
  | { readonly ok: 'unknown'; readonly reason: string };

// ---------------------------------------------------------------------------
// Internal representation
// ---------------------------------------------------------------------------

const GET = 0;
const PUT = 1;
const APPEND = 2;
const DELETE = 3;
const CAS = 4;
type Kind = typeof GET | typeof PUT | typeof APPEND | typeof DELETE | typeof CAS;

const KIND_OF: Readonly<Record<KvOpName, Kind>> = { get: GET, put: PUT, append: APPEND, delete: DELETE, cas: CAS };

/** Model state of one key: its value, or undefined when absent. */
type State = string | undefined;

/** A validated operation of one key. `ret === Infinity` means pending. */
interface KeyOp {
  readonly kind: Kind;
  /** put/append: value; cas: new value. */
  readonly arg: string;
  /** cas only. */
  readonly expected: string;
  /** get only: the value read. */
  readonly outValue: State;
  /** cas only: the reported result. */
  readonly outOk: boolean;
  readonly call: number;
  readonly ret: number;
  /** The caller's operation, reported in counterexamples. */
  readonly source: Operation;
}

const REJECT: unique symbol = Symbol('reject');

/** The sequential specification of one key. */
function step(op: KeyOp, state: State): State | typeof REJECT {
  const pending = op.ret === Infinity;
  switch (op.kind) {
    case GET:
      return pending || op.outValue === state ? state : REJECT;
    case PUT:
      return op.arg;
    case APPEND:
      return state === undefined ? op.arg : state + op.arg;
    case DELETE:
      return undefined;
    case CAS: {
      const hit = state !== undefined && state === op.expected;
      if (!pending && hit !== op.outOk) return REJECT;
      return hit ? op.arg : state;
    }
  }
}

function asPending(op: KeyOp): KeyOp {
  return op.ret === Infinity ? op : { ...op, ret: Infinity };
}

function byCall(a: KeyOp, b: KeyOp): number {
  return a.call - b.call || a.ret - b.ret;
}

function describeOp(index: number): string {
  return `history[${index}]`;
}

function normalize(op: Operation, index: number): KeyOp {
  const where = describeOp(index);
  if (op === null || typeof op !== 'object') throw new TypeError(`${where}: not an object`);
  const { input, output, call, ret } = op;
  if (input === null || typeof input !== 'object') throw new TypeError(`${where}: missing input`);
  const kind = Object.hasOwn(KIND_OF, input.op) ? KIND_OF[input.op] : undefined;
  if (kind === undefined) throw new TypeError(`${where}: unknown op ${JSON.stringify(input.op)}`);
  if (typeof input.key !== 'string') throw new TypeError(`${where}: key must be a string`);
  if (typeof call !== 'number' || !Number.isFinite(call)) throw new TypeError(`${where}: call must be a finite number`);
  if (typeof ret !== 'number' || Number.isNaN(ret) || ret < call) {
    throw new TypeError(`${where}: ret must be a number >= call (or Infinity), got ${String(ret)}`);
  }
  const pending = ret === Infinity;
  let arg = '';
  let expected = '';
  if (kind === PUT || kind === APPEND || kind === CAS) {
    if (typeof input.value !== 'string') throw new TypeError(`${where}: ${input.op} needs a string value`);
    arg = input.value;
  }
  if (kind === CAS) {
    if (typeof input.expected !== 'string') throw new TypeError(`${where}: cas needs a string expected`);
    expected = input.expected;
  }
  let outValue: State;
  let outOk = false;
  if (!pending) {
    if (output === null || typeof output !== 'object') throw new TypeError(`${where}: missing output`);
    if (kind === GET) {
      // Lenient on purpose: JSON round trips drop `value: undefined`.
      const v = (output as Partial<GetOutput>).value;
      if (v !== undefined && typeof v !== 'string') throw new TypeError(`${where}: get output value must be a string or undefined`);
      outValue = v;
    } else if (kind === CAS) {
      const ok = (output as Partial<CasOutput>).ok;
      if (typeof ok !== 'boolean') throw new TypeError(`${where}: cas output needs a boolean ok`);
      outOk = ok;
    }
  }
  return { kind, arg, expected, outValue, outOk, call, ret, source: op };
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

/** Shared step counter and limits. The clock is read once every CLOCK_EVERY steps. */
interface Budget {
  steps: number;
  readonly stepLimit: number;
  readonly deadline: number;
}

const CLOCK_EVERY = 4096; // power of two

type SearchResult =
  | { readonly kind: 'ok' }
  /**
   * `prefix` is a non-linearizable history: every operation invoked before the
   * latest point the search ever got stuck at, with the ones still running at
   * that point turned into pending operations. `culprit` is the operation whose
   * return that point is; `prefix` without it is linearizable (see `searchKey`).
   */
  | { readonly kind: 'fail'; readonly prefix: KeyOp[]; readonly culprit: KeyOp }
  | { readonly kind: 'timeout' };

/** Small seeded PRNG (mulberry32) returning uint32. */
function mulberry32u(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Random per-operation words for the incremental (Zobrist-style) bitset hash. */
let zobrist = new Int32Array(0);
function zobristWords(n: number): Int32Array {
  if (zobrist.length < n) {
    const next = new Int32Array(Math.max(n, zobrist.length * 2, 1024));
    const rand = mulberry32u(0x5eed);
    for (let i = 0; i < next.length; i++) next[i] = rand() | 0;
    zobrist = next;
  }
  return zobrist;
}

function grown(a: Int32Array, min: number): Int32Array {
  const b = new Int32Array(Math.max(min, a.length * 2));
  b.set(a);
  return b;
}

const FULL = 0xffffffff;

/**
 * The set of linearized operations plus the memo of visited configurations
 * (set, state).
 *
 * Storing a copy of the whole bitset per configuration, as a naive memo does,
 * makes memory grow with (history length)^2 on long single-key histories.
 * The JIT search keeps the set close to a prefix of the history in call order:
 * every completed operation called long enough ago is linearized, nothing
 * called after the in-flight window is. So completed operations are numbered
 * in call order and the set is stored as (number of leading all-ones words,
 * the words up to the last non-zero one); operations that never returned can
 * be linearized at any time, so they get their own words at the end, stored
 * verbatim. This encoding is canonical, so comparing it is exact.
 *
 * There is one entry per distinct set, holding the states it was seen with
 * (concurrent writes can leave one set with many states). Entries live in
 * typed arrays and one word arena, chained per hash in an open-addressing
 * table, to keep the garbage collector out of the search.
 */
class Configurations {
  private readonly bits: Uint32Array;
  private readonly bitOf: Int32Array;
  private readonly z: Int32Array;
  /** Words [0, completedWords) hold completed operations, the rest pending ones. */
  private readonly completedWords: number;
  /** First completed-region word that is not all ones. */
  private low = 0;
  /** Last completed-region word that is not zero (-1: none). */
  private high = -1;
  private hash = 0;

  private mask: number;
  private slot = 0;
  private slotHash: Int32Array;
  /** First entry of the slot's chain, plus one (0: empty slot). */
  private slotHead: Int32Array;
  private slotsUsed = 0;

  private entryLow: Int32Array;
  private entryOffset: Int32Array;
  private entryLength: Int32Array;
  /** Next entry with the same hash, plus one (0: end of chain). */
  private entryNext: Int32Array;
  /** The first state seen with the entry's set, and any further ones. */
  private readonly entryState: State[] = [];
  private readonly entryMoreStates: (Set<State> | undefined)[] = [];
  private entries = 0;
  private arena: Uint32Array;
  private arenaUsed = 0;

  /** Operations 0..completed-1 (in call order) completed, the following `pending` ones did not. */
  constructor(completed: number, pending: number) {
    this.completedWords = (completed + 31) >>> 5;
    this.bits = new Uint32Array(this.completedWords + ((pending + 31) >>> 5));
    this.bitOf = new Int32Array(completed + pending);
    for (let i = 0; i < completed + pending; i++) {
      this.bitOf[i] = i < completed ? i : this.completedWords * 32 + (i - completed);
    }
    this.z = zobristWords(completed + pending);
    // Sized for a few configurations per operation; everything grows on demand.
    const expected = 4 * (completed + pending) + 16;
    let slots = 16;
    while (slots < 2 * expected) slots *= 2;
    this.mask = slots - 1;
    this.slotHash = new Int32Array(slots);
    this.slotHead = new Int32Array(slots);
    this.entryLow = new Int32Array(expected);
    this.entryOffset = new Int32Array(expected);
    this.entryLength = new Int32Array(expected);
    this.entryNext = new Int32Array(expected);
    this.arena = new Uint32Array(expected * 2);
  }

  set(op: number): void {
    const b = this.bitOf[op]!;
    const w = b >>> 5;
    this.bits[w] = this.bits[w]! | (1 << (b & 31));
    this.hash ^= this.z[op]!;
    if (w < this.completedWords) {
      if (w > this.high) this.high = w;
      while (this.low < this.completedWords && this.bits[this.low] === FULL) this.low++;
    }
  }

  clear(op: number): void {
    const b = this.bitOf[op]!;
    const w = b >>> 5;
    this.bits[w] = this.bits[w]! & ~(1 << (b & 31));
    this.hash ^= this.z[op]!;
    if (w < this.completedWords) {
      if (w < this.low) this.low = w;
      while (this.high >= 0 && this.bits[this.high] === 0) this.high--;
    }
  }

  /** Records (current set, state); returns false if that configuration was visited before. */
  visit(state: State): boolean {
    const e = this.findSet();
    if (e < 0) {
      this.insert(this.slot, state);
      return true;
    }
    if (this.entryState[e] === state) return false;
    let more = this.entryMoreStates[e];
    if (more === undefined) {
      more = new Set<State>();
      this.entryMoreStates[e] = more;
    } else if (more.has(state)) {
      return false;
    }
    more.add(state);
    return true;
  }

  /** The entry of the current set, or -1; either way leaves its hash slot in `slot`. */
  private findSet(): number {
    const { bits, low, completedWords } = this;
    const middle = Math.max(0, this.high - low + 1);
    const length = middle + bits.length - completedWords;
    let slot = Math.imul(this.hash, 0x9e3779b1) & this.mask;
    while (this.slotHead[slot] !== 0 && this.slotHash[slot] !== this.hash) slot = (slot + 1) & this.mask;
    this.slot = slot;
    for (let e = this.slotHead[slot]! - 1; e >= 0; e = this.entryNext[e]! - 1) {
      if (this.entryLow[e] !== low || this.entryLength[e] !== length) continue;
      const off = this.entryOffset[e]!;
      let same = true;
      for (let k = 0; k < length && same; k++) {
        same = this.arena[off + k] === bits[k < middle ? low + k : completedWords + k - middle];
      }
      if (same) return e;
    }
    return -1;
  }

  /** Stores the current set, first seen with `state`, in hash slot `slot`. */
  private insert(slot: number, state: State): void {
    const { bits, low, completedWords } = this;
    const middle = Math.max(0, this.high - low + 1);
    const length = middle + bits.length - completedWords;
    const e = this.entries++;
    if (e === this.entryLow.length) {
      this.entryLow = grown(this.entryLow, e + 1);
      this.entryOffset = grown(this.entryOffset, e + 1);
      this.entryLength = grown(this.entryLength, e + 1);
      this.entryNext = grown(this.entryNext, e + 1);
    }
    if (this.arenaUsed + length > this.arena.length) {
      const arena = new Uint32Array(Math.max(this.arena.length * 2, this.arenaUsed + length));
      arena.set(this.arena);
      this.arena = arena;
    }
    const off = this.arenaUsed;
    this.arena.set(bits.subarray(low, low + middle), off);
    this.arena.set(bits.subarray(completedWords), off + middle);
    this.arenaUsed += length;
    this.entryLow[e] = low;
    this.entryOffset[e] = off;
    this.entryLength[e] = length;
    this.entryState.push(state);
    this.entryMoreStates.push(undefined);
    if (this.slotHead[slot] === 0) {
      this.slotHash[slot] = this.hash;
      this.slotsUsed++;
    }
    this.entryNext[e] = this.slotHead[slot]!;
    this.slotHead[slot] = e + 1;
    if (this.slotsUsed * 2 > this.mask) this.rehash();
  }

  private rehash(): void {
    const oldHash = this.slotHash;
    const oldHead = this.slotHead;
    this.mask = this.mask * 2 + 1;
    this.slotHash = new Int32Array(this.mask + 1);
    this.slotHead = new Int32Array(this.mask + 1);
    for (let s = 0; s < oldHead.length; s++) {
      if (oldHead[s] === 0) continue;
      const h = oldHash[s]!;
      let slot = Math.imul(h, 0x9e3779b1) & this.mask;
      while (this.slotHead[slot] !== 0) slot = (slot + 1) & this.mask;
      this.slotHash[slot] = h;
      this.slotHead[slot] = oldHead[s]!;
    }
  }
}

/**
 * Decides whether one key's history is linearizable.
 *
 * On failure it also returns a non-linearizable prefix. Let p be the latest
 * event (in the sorted event order) at which the search ever hit an
 * unlinearized return, the return of operation X. If the history cut at p
 * (operations invoked at or before p; those returning after p become pending)
 * were linearizable, the search could follow that linearization past p and
 * would get stuck later, contradicting the choice of p. So that prefix is
 * non-linearizable. Conversely the path that reached p had linearized every
 * operation returning before p, without X: the prefix minus X is linearizable,
 * so X is the operation that breaks it. This costs nothing beyond the search.
 */
function searchKey(input: readonly KeyOp[], budget: Budget): SearchResult {
  // Completed operations in call order, then pending ones (see Configurations).
  // A pending get never constrains anything: drop it.
  const completed = input.filter((o) => o.ret !== Infinity).sort(byCall);
  const pending = input.filter((o) => o.ret === Infinity && o.kind !== GET);
  const ops = [...completed, ...pending];
  const n = ops.length;
  if (n === 0) return { kind: 'ok' };

  // Events 2i (call of op i) and 2i+1 (return of op i), sorted by time; at
  // equal times calls go first; remaining ties by event number.
  const order = Array.from({ length: 2 * n }, (_, e) => e);
  const timeOf = (e: number): number => {
    const o = ops[e >> 1]!;
    return e & 1 ? o.ret : o.call;
  };
  order.sort((a, b) => timeOf(a) - timeOf(b) || (a & 1) - (b & 1) || a - b);

  // Linked list over nodes 1..2n in sorted order; 0 = head, 2n+1 = tail.
  const head = 0;
  const tail = 2 * n + 1;
  const next = new Int32Array(2 * n + 2);
  const prev = new Int32Array(2 * n + 2);
  const nodeOp = new Int32Array(2 * n + 2);
  const isCall = new Uint8Array(2 * n + 2);
  const retNode = new Int32Array(2 * n + 2); // call node -> its return node
  const callPos = new Int32Array(n);
  const retPos = new Int32Array(n);
  for (let pos = 1; pos <= 2 * n; pos++) {
    const e = order[pos - 1]!;
    const i = e >> 1;
    nodeOp[pos] = i;
    if (e & 1) {
      retPos[i] = pos;
    } else {
      isCall[pos] = 1;
      callPos[i] = pos;
    }
  }
  for (let i = 0; i < n; i++) retNode[callPos[i]!] = retPos[i]!;
  for (let pos = 0; pos <= tail; pos++) {
    next[pos] = pos + 1;
    prev[pos] = pos - 1;
  }

  const linearized = new Configurations(completed.length, pending.length);
  const stackNode = new Int32Array(n);
  const stackState: State[] = new Array<State>(n);
  let depth = 0;
  let state: State = undefined;
  let stuckAt = 0;
  let steps = budget.steps;

  let node = next[head]!;
  while (next[head] !== tail) {
    if ((++steps & (CLOCK_EVERY - 1)) === 0 && (steps >= budget.stepLimit || performance.now() > budget.deadline)) {
      budget.steps = steps;
      return { kind: 'timeout' };
    }
    if (isCall[node] === 1) {
      const i = nodeOp[node]!;
      const after = step(ops[i]!, state);
      if (after !== REJECT) {
        linearized.set(i);
        if (linearized.visit(after)) {
          stackNode[depth] = node;
          stackState[depth] = state;
          depth++;
          state = after;
          // Lift: unlink the call and its return.
          const r = retNode[node]!;
          next[prev[node]!] = next[node]!;
          prev[next[node]!] = prev[node]!;
          next[prev[r]!] = next[r]!;
          prev[next[r]!] = prev[r]!;
          node = next[head]!;
          continue;
        }
        linearized.clear(i);
      }
      node = next[node]!;
    } else {
      // A return whose operation is not linearized yet: backtrack.
      if (node > stuckAt) stuckAt = node;
      if (depth === 0) {
        budget.steps = steps;
        const prefix: KeyOp[] = [];
        for (let j = 0; j < n; j++) {
          if (callPos[j]! > stuckAt) continue;
          const o = ops[j]!;
          prefix.push(retPos[j]! > stuckAt ? asPending(o) : o);
        }
        return { kind: 'fail', prefix, culprit: ops[nodeOp[stuckAt]!]! };
      }
      depth--;
      node = stackNode[depth]!;
      state = stackState[depth];
      stackState[depth] = undefined;
      linearized.clear(nodeOp[node]!);
      // Unlift, in the reverse order of the lift.
      const r = retNode[node]!;
      next[prev[r]!] = r;
      prev[next[r]!] = r;
      next[prev[node]!] = node;
      prev[next[node]!] = node;
      node = next[node]!;
    }
  }
  budget.steps = steps;
  return { kind: 'ok' };
}

// ---------------------------------------------------------------------------
// Counterexample minimization
// ---------------------------------------------------------------------------

/** Search steps allowed for shrinking one counterexample (plus the overall deadline). */
const MINIMIZE_STEPS = 3_000_000;

/**
 * Earliest call time of the writers of each value, to answer "could some write
 * in this history have produced value v before operation o returned?".
 * Ignores multiplicity and ordering among writes: it is a plausibility test,
 * not a check.
 */
class Writers {
  /** put / cas (that swapped or may have): value -> earliest call. */
  private readonly exact = new Map<string, number>();
  private readonly exactLengths = new Set<number>();
  /** append: piece -> earliest call. */
  private readonly pieces = new Map<string, number>();
  private readonly pieceLengths = new Set<number>();
  private firstDelete = Infinity;
  /** Earliest return of any write: before it, the key is certainly still absent. */
  private firstWriteReturn = Infinity;

  constructor(ops: readonly KeyOp[]) {
    for (const o of ops) {
      if (o.kind === PUT || (o.kind === CAS && (o.outOk || o.ret === Infinity))) {
        this.exact.set(o.arg, Math.min(o.call, this.exact.get(o.arg) ?? Infinity));
        this.exactLengths.add(o.arg.length);
      } else if (o.kind === APPEND && o.arg !== '') {
        this.pieces.set(o.arg, Math.min(o.call, this.pieces.get(o.arg) ?? Infinity));
        this.pieceLengths.add(o.arg.length);
      } else if (o.kind === DELETE) {
        this.firstDelete = Math.min(this.firstDelete, o.call);
        continue;
      } else {
        continue;
      }
      this.firstWriteReturn = Math.min(this.firstWriteReturn, o.ret);
    }
  }

  /**
   * Whether `op`'s observation (a get's value, a successful cas's expected
   * value) can be explained: an absent key by a delete or the initial state,
   * a value by a put/cas of it, optionally followed by appended pieces (or by
   * appended pieces alone); each writer invoked before `op` returned.
   * Operations that observe nothing are trivially grounded.
   */
  grounded(op: KeyOp): boolean {
    if (op.ret === Infinity) return true;
    let v: State;
    if (op.kind === GET) v = op.outValue;
    else if (op.kind === CAS && op.outOk) v = op.expected;
    else return true;
    if (v === undefined) return this.firstDelete < op.ret || this.firstWriteReturn >= op.call;
    if (v === '') return true;
    const before = op.ret;
    if ((this.exact.get(v) ?? Infinity) < before) return true;
    const reach = new Uint8Array(v.length + 1);
    reach[0] = 1;
    for (let i = 1; i <= v.length; i++) {
      if (this.exactLengths.has(i) && (this.exact.get(v.slice(0, i)) ?? Infinity) < before) {
        reach[i] = 1;
        continue;
      }
      for (const len of this.pieceLengths) {
        if (len <= i && reach[i - len] === 1 && (this.pieces.get(v.slice(i - len, i)) ?? Infinity) < before) {
          reach[i] = 1;
          break;
        }
      }
    }
    return reach[v.length] === 1;
  }
}

/**
 * Shrinks the failing prefix of one key while keeping it a faithful picture of
 * the violation the search found. Every candidate must satisfy:
 *
 *  1. it is still not linearizable (re-checked by the search; when that
 *     search fails, the candidate is replaced by its own failing prefix);
 *  2. it still contains the culprit X, and without X it is linearizable, so
 *     the removal did not create some other, unrelated violation (e.g.
 *     dropping a delete so that an earlier read of an absent key fails);
 *  3. it is grounded: every observation that some write explained before
 *     shrinking is still explained by a write invoked before the observer
 *     returned. Without this, a lost write {put a; put b; get -> a} would
 *     shrink to {put b; get -> a}, which fails only because nobody wrote "a".
 *     Candidates are made grounded by also dropping the observers that lost
 *     their writer, so a write leaves together with the reads of its value.
 *
 * Violations are almost always local, so the first phase looks for the
 * smallest suffix (in call order: the last 1, 2, 4, ... operations before X)
 * that passes; this keeps the cost proportional to the size of the answer,
 * not of the history. The second phase is delta debugging on what remains:
 * chunks of halving size, tried from the end backwards, then single
 * operations until none can go. A step budget and the deadline can cut this
 * short on huge histories; the result then still satisfies 1-3.
 */
function minimize(start: readonly KeyOp[], culprit: KeyOp, deadline: number): KeyOp[] {
  const budget: Budget = { steps: 0, stepLimit: MINIMIZE_STEPS, deadline };
  const initial = new Writers(start);
  const pinned = new Set<Operation>();
  for (const o of start) if (initial.grounded(o)) pinned.add(o.source);

  /** `ops` plus the culprit, minus observers left unexplained; undefined if the culprit is one. */
  const ground = (ops: readonly KeyOp[]): KeyOp[] | undefined => {
    let cur = [...ops, culprit];
    for (;;) {
      const writers = new Writers(cur);
      const kept = cur.filter((o) => !pinned.has(o.source) || writers.grounded(o));
      if (kept.length === cur.length) return cur;
      if (!kept.includes(culprit)) return undefined;
      cur = kept;
    }
  };

  /**
   * Checks 1 and 2 for a candidate (without the culprit). Returns the
   * operations to keep besides the culprit, undefined if the candidate does
   * not qualify, or 'stop' when the budget ran out.
   */
  const attempt = (without: readonly KeyOp[]): KeyOp[] | undefined | 'stop' => {
    // Grounding is work too: charge it, and look at the clock once per attempt.
    budget.steps += without.length;
    if (budget.steps >= budget.stepLimit || performance.now() > deadline) return 'stop';
    const grounded = ground(without);
    if (grounded === undefined) return undefined;
    const r = searchKey(grounded, budget);
    if (r.kind === 'timeout') return 'stop';
    if (r.kind === 'ok') return undefined;
    const others = grounded.filter((o) => o !== culprit);
    const check = searchKey(others, budget);
    if (check.kind === 'timeout') return 'stop';
    if (check.kind === 'fail') return undefined;
    // The candidate's own failing prefix still has the culprit (a violation
    // without it would be a violation of `others`, a prefix of which is
    // linearizable) and satisfies 2; use it if it is grounded as well.
    const prefixOthers = r.prefix.filter((o) => o.source !== culprit.source);
    if (prefixOthers.length < others.length && prefixOthers.length === r.prefix.length - 1) {
      const regrounded = ground(prefixOthers);
      if (regrounded !== undefined && regrounded.length === r.prefix.length) return prefixOthers;
    }
    return others;
  };

  // `rest`: the counterexample without the culprit, in call order.
  let rest = start.filter((o) => o !== culprit).sort(byCall);

  // Phase 1: the shortest suffix of `rest` that works.
  for (let k = 1; k < rest.length; k *= 2) {
    const r = attempt(rest.slice(rest.length - k));
    if (r === 'stop') return [...rest, culprit].sort(byCall);
    if (r !== undefined) {
      rest = r.sort(byCall);
      break;
    }
  }

  // Phase 2: delta debugging.
  let chunk = 1;
  while (chunk * 2 <= rest.length / 2) chunk *= 2;
  for (;;) {
    let changed = false;
    let end = rest.length;
    while (end > 0) {
      const from = Math.max(0, end - chunk);
      const r = attempt([...rest.slice(0, from), ...rest.slice(end)]);
      if (r === 'stop') return [...rest, culprit].sort(byCall);
      if (r !== undefined) {
        // Ops before `from` keep their positions unless r cut them off.
        rest = r.sort(byCall);
        changed = true;
        end = Math.min(from, rest.length);
        continue;
      }
      end = from;
    }
    if (chunk > 1) chunk >>= 1;
    else if (!changed) break;
  }
  return [...rest, culprit].sort(byCall);
}

// ---------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------

/**
 * Checks a KV history for linearizability, one key at a time (smallest key
 * histories first).
 *
 * On failure the result names the first bad key found and a counterexample:
 * a subset of that key's operations, in call order, that is non-linearizable
 * on its own (with its recorded times and outputs). It starts as the failing
 * prefix found by the search and is then shrunk as described at `minimize`:
 * typically the few writes and reads that show the violation, e.g.
 * `put a; put b; get -> a` for a lost write. When the step budget of the
 * shrinking runs out it is smaller but not necessarily minimal.
 *
 * `{ ok: 'unknown' }` is returned when `timeoutMs` expires or `stepLimit` is reached before an answer.
 *
 * Cost: roughly linear in the history for the usual mostly-sequential
 * histories (the in-flight window per key is what matters). Operations with an
 * unknown outcome are the expensive part, as in porcupine: each stays a
 * candidate from its call to the end, so proving a violation means trying the
 * subsets of them that could have taken effect before it. A few per key are
 * cheap; dozens on one key before a violation can take exponential time, which
 * is what `timeoutMs` and `stepLimit` are for.
 */
export function checkLinearizable(history: readonly Operation[], opts: CheckOptions = {}): CheckResult {
  const timeoutMs = opts.timeoutMs ?? Infinity;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(`timeoutMs must be a non-negative number, got ${String(timeoutMs)}`);
  }
  const started = performance.now();
  const deadline = started + timeoutMs;

  const byKey = new Map<string, KeyOp[]>();
  history.forEach((op, index) => {
    const k = normalize(op, index);
    const list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, [k]);
    else list.push(k);
  });
  const keys = [...byKey.keys()].sort((a, b) => byKey.get(a)!.length - byKey.get(b)!.length || (a < b ? -1 : a > b ? 1 : 0));

  const budget: Budget = { steps: 0, stepLimit: opts.stepLimit ?? Infinity, deadline };
  for (const [done, key] of keys.entries()) {
    const ops = byKey.get(key)!;
    const before = budget.steps;
    const r = searchKey(ops, budget);
    if (r.kind === 'timeout') {
      return {
        ok: 'unknown',
        reason:
          `gave up after ${Math.round(performance.now() - started)} ms and ${budget.steps} search steps (limits: ${timeoutMs} ms, ${opts.stepLimit ?? Infinity} steps): ` +
          `${done} of ${keys.length} keys checked, key ${JSON.stringify(key)} (${ops.length} ops) ` +
          `unfinished after ${budget.steps - before} search steps`,
      };
    }
    if (r.kind === 'fail') {
      const counterexample = minimize(r.prefix, r.culprit, deadline).map((o) => o.source);
      return { ok: false, key, counterexample };
    }
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function show(v: string | undefined): string {
  return v === undefined ? '<absent>' : JSON.stringify(v);
}

function describeCall(input: KvInput): string {
  const k = JSON.stringify(input.key);
  switch (input.op) {
    case 'get':
    case 'delete':
      return `${input.op}(${k})`;
    case 'put':
    case 'append':
      return `${input.op}(${k}, ${show(input.value)})`;
    case 'cas':
      return `cas(${k}, expected ${show(input.expected)}, new ${show(input.value)})`;
  }
}

function describeResult(op: Operation): string {
  if (op.ret === Infinity) return '? (no response)';
  switch (op.input.op) {
    case 'get':
      return show((op.output as Partial<GetOutput>).value);
    case 'cas':
      return (op.output as Partial<CasOutput>).ok === true ? 'ok (swapped)' : 'failed (not swapped)';
    default:
      return 'ok';
  }
}

/**
 * Renders a counterexample (or any list of operations), one line per
 * operation in call order: client, call, result, and the call..return interval.
 */
export function formatCounterexample(
  failure: { readonly key: string; readonly counterexample: readonly Operation[] } | readonly Operation[],
): string {
  const ops = [...('counterexample' in failure ? failure.counterexample : failure)].sort(
    (a, b) => a.call - b.call || a.ret - b.ret,
  );
  const rows = ops.map((op) => [
    `client ${op.clientId}`,
    describeCall(op.input),
    `-> ${describeResult(op)}`,
    `[${op.call} .. ${op.ret === Infinity ? '∞' : op.ret}]`,
  ]);
  const widths = [0, 1, 2].map((c) => Math.max(0, ...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => '  ' + r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell)).join('  '));
  const title =
    'counterexample' in failure
      ? `not linearizable: key ${JSON.stringify(failure.key)}, ${ops.length} operation(s):`
      : `${ops.length} operation(s):`;
  return [title, ...lines].join('\n');
}

// ---------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------

/** Collects operations as clients invoke and complete them. */
export class HistoryRecorder {
  private readonly ops: { clientId: number; input: KvInput; call: number; output?: KvOutput; ret?: number }[] = [];

  /** Records an invocation and returns its id for `complete`. */
  invoke(clientId: number, input: KvInput, now: number): number {
    this.ops.push({ clientId, input: { ...input }, call: now });
    return this.ops.length - 1;
  }

  /** Records the response of invocation `id`. */
  complete(id: number, output: KvOutput, now: number): void {
    const op = this.ops[id];
    if (op === undefined) throw new RangeError(`unknown operation id ${id}`);
    if (op.ret !== undefined) throw new Error(`operation ${id} already completed`);
    if (!(now >= op.call)) throw new RangeError(`operation ${id} completed at ${now}, before its call at ${op.call}`);
    op.output = { ...output };
    op.ret = now;
  }

  /** The history so far; operations never completed have `ret: Infinity` (outcome unknown). */
  operations(): Operation[] {
    return this.ops.map((o) => ({
      clientId: o.clientId,
      input: o.input,
      output: o.output ?? {},
      call: o.call,
      ret: o.ret ?? Infinity,
    }));
  }
}

// ---------------------------------------------------------------------------
// Synthetic histories (shared by the tests and the benchmark)
// ---------------------------------------------------------------------------

/** mulberry32: a tiny deterministic PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  const next = mulberry32u(seed);
  return () => next() / 4294967296;
}

export interface GenerateOptions {
  readonly ops: number;
  readonly keys: number;
  readonly clients: number;
  readonly seed: number;
  /** Fraction of operations that never get a response (ret = Infinity); half of those took effect. Default 0. */
  readonly unknownRate?: number;
}

/**
 * Simulates clients driving a real linearizable store: each client issues
 * operations one after another with random latency and think time, so
 * operations of different clients overlap at random. Every operation takes
 * effect at a random instant inside its interval, and outputs are computed by
 * applying operations to a Map in that order. The result is therefore
 * linearizable by construction.
 *
 * Written values are unique: puts and cas write `p<n>`, appends add `.<n>`, so
 * no value can be produced twice (useful for injecting guaranteed violations).
 */
export function generateLinearizableHistory(opts: GenerateOptions): Operation[] {
  const rand = mulberry32(opts.seed);
  const unknownRate = opts.unknownRate ?? 0;
  interface Slot {
    clientId: number;
    call: number;
    ret: number;
    at: number;
    applies: boolean;
  }
  const clock = Array.from({ length: opts.clients }, () => rand() * 10);
  const slots: Slot[] = [];
  for (let n = 0; n < opts.ops; n++) {
    let c = 0;
    for (let j = 1; j < clock.length; j++) if (clock[j]! < clock[c]!) c = j;
    const call = clock[c]!;
    const latency = 1 + rand() * 60;
    const unknown = rand() < unknownRate;
    slots.push({
      clientId: c,
      call,
      ret: unknown ? Infinity : call + latency,
      at: call + rand() * latency,
      applies: !unknown || rand() < 0.5,
    });
    clock[c] = call + latency + rand() * 15;
  }

  const store = new Map<string, string>();
  const out: Operation[] = [];
  let counter = 0;
  for (const s of [...slots].sort((a, b) => a.at - b.at)) {
    const key = `k${Math.floor(rand() * opts.keys)}`;
    const cur = store.get(key);
    const dice = rand();
    let input: KvInput;
    let output: KvOutput;
    if (dice < 0.4) {
      input = { op: 'get', key };
      output = { value: cur };
    } else if (dice < 0.65) {
      input = { op: 'put', key, value: `p${counter++}` };
      output = {};
    } else if (dice < 0.8) {
      input = { op: 'append', key, value: `.${counter++}` };
      output = {};
    } else if (dice < 0.85) {
      input = { op: 'delete', key };
      output = {};
    } else {
      const expected = cur !== undefined && rand() < 0.6 ? cur : `p${Math.floor(rand() * (counter + 1))}`;
      input = { op: 'cas', key, expected, value: `p${counter++}` };
      output = { ok: cur !== undefined && cur === expected };
    }
    if (s.applies) {
      switch (input.op) {
        case 'put':
          store.set(key, input.value!);
          break;
        case 'append':
          store.set(key, (cur ?? '') + input.value!);
          break;
        case 'delete':
          store.delete(key);
          break;
        case 'cas':
          if ((output as CasOutput).ok) store.set(key, input.value!);
          break;
        case 'get':
          break;
      }
    }
    // Times are rounded to 0.01 for readable output; rounding is monotone, so
    // it can only turn precedence into a tie (concurrency), never invert it.
    const round = (t: number): number => Math.round(t * 100) / 100;
    out.push({ clientId: s.clientId, input, output: s.ret === Infinity ? {} : output, call: round(s.call), ret: round(s.ret) });
  }
  return out.sort((a, b) => a.call - b.call);
}
