import { membersOf } from '../raft/core/conf.js';
import { decodeConfEntry } from '../raft/core/conf-codec.js';
import type { ReadState } from '../raft/core/read-index.js';
import type { Entry, NodeId, SnapshotMeta } from '../raft/core/types.js';
import type { ReadyHandler, ReplicatedLog } from '../raft/replicated-log.js';
import { DEFAULT_LIMITS, type KvLimits } from '../limits.js';
import { decodeCommand, encodeCommand, type WriteOp } from './command.js';
import { decodeMemberTable } from './members.js';
import { KvStateMachine, MAX_VALUE_BYTES, type CapturedState, type WriteResult } from './state-machine.js';

/** Why a request was not served; `notLeader` and `shuttingDown` are safe to retry elsewhere. */
export type KvError =
  | { code: 'notLeader'; leaderId: NodeId }
  | { code: 'invalidArgument'; message: string }
  | { code: 'sessionExpired' }
  | { code: 'shuttingDown' }
  /** More client work in flight than the node takes on: retry after a pause. */
  | { code: 'overloaded'; message: string }
  /** The state is at its quota (Admission.maxStateBytes): writes that add to it wait for deletes. */
  | { code: 'noSpace'; message: string };

/**
 * How much client work a node takes on at once. Beyond it a request is refused at once, before it
 * costs anything (retryable: the SDK backs off), so that a burst cannot grow the node's queues,
 * its Ready batches and its latency without bound, nor starve the heartbeats that keep it leader.
 * The defaults sit well above what saturates a cluster (a few hundred requests in flight).
 */
export interface Admission {
  /** Writes proposed and not yet applied: what a Ready batch and the log's unapplied tail can hold. */
  maxPendingWrites: number;
  /** Bytes of proposed commands not yet applied (a cap on uncommitted log, after etcd's MaxUncommittedEntriesSize). */
  maxPendingWriteBytes: number;
  /**
   * Writes waiting for a turn beyond those, in arrival order, and their bytes. Waiting costs
   * memory only, while a refusal costs a round trip and a retry: under overload a short queue
   * keeps the node's CPU on committing, and only what exceeds it is refused.
   */
  maxQueuedWrites: number;
  maxQueuedWriteBytes: number;
  /** A write that waited this long for a turn is refused when its turn comes: its caller has likely given up. */
  maxQueueWaitMs: number;
  maxPendingReads: number;
  /**
   * The quota on the state (etcd's --quota-backend-bytes), as stateBytes() counts it: a put, append
   * or compare-and-swap that would take the state and the writes in flight past it is refused as
   * noSpace, a delete never. The state lives in memory, and every replica applies every committed
   * write: without a bound, writes could grow it until every node ran out of heap at the same entry,
   * and again at each restart, replaying it. 0: no quota.
   */
  maxStateBytes: number;
}

export const DEFAULT_ADMISSION: Admission = {
  maxPendingWrites: 1024,
  maxPendingWriteBytes: 64 * 1024 * 1024,
  maxQueuedWrites: 8192,
  maxQueuedWriteBytes: 64 * 1024 * 1024,
  maxQueueWaitMs: 5000,
  maxPendingReads: 1024,
  maxStateBytes: 0,
};

/** What a key costs in memory beyond its bytes and its value's (map entry, two string headers, table slack), counted against the quota. */
export const STATE_BYTES_PER_KEY = 128;

export interface WriteRequest {
  op: WriteOp;
  clientId: number;
  seq: number;
  firstIncomplete: number;
  key: Uint8Array;
  value?: Uint8Array;
  expected?: Uint8Array;
  /**
   * When the caller gives up (the store's clock, ms), if it said: a write that would wait for a
   * turn past it is refused at once, and one whose caller has given up is not proposed.
   */
  deadline?: number;
}

/** The state machine as of one applied entry: what a snapshot holds. */
export interface KvSnapshot {
  readonly meta: SnapshotMeta;
  readonly state: CapturedState;
}

type Done<T> = (outcome: { ok: true; value: T } | { ok: false; error: KvError }) => void;

const EMPTY = new Uint8Array(0);

/**
 * The KV service's logic between clients and Raft, with no I/O and no clock of its own, so the
 * simulator drives the same code as kv-server. Writes go through the log and complete when their
 * entry is applied; reads take a ReadIndex round and are answered once the state machine has
 * caught up with it, without writing to the log.
 */
export class KvStore implements ReadyHandler {
  private machine: KvStateMachine;
  appliedIndex = 0;
  /** The term of the entry at appliedIndex. */
  appliedTerm = 0;
  private readonly writes = new Map<number, { clientId: number; seq: number; bytes: number; log: ReplicatedLog; done: Done<WriteResult> }>();
  private pendingWriteBytes = 0;
  /** Writes waiting for a turn (admission.maxQueuedWrites), oldest first from queueHead. */
  private queue: { log: ReplicatedLog; req: WriteRequest; done: Done<WriteResult>; bytes: number; at: number }[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  /** How long the last write to get a turn had waited for it (0 once the queue empties): what a newcomer can expect. */
  private lastWaitMs = 0;
  /** Reads waiting for their ReadIndex round; a barrier's has no key. */
  private readonly reads = new Map<number, { key: Uint8Array | undefined; done: Done<Uint8Array | undefined> }>();
  /** Confirmed reads waiting for the state machine to reach their index, in index order. */
  private readonly confirmed: { index: number; key: Uint8Array | undefined; done: Done<Uint8Array | undefined> }[] = [];
  private nextCtx = 1;
  private closed = false;
  /** Proposals that failed after reaching the log (lost with a leadership, or replaced): etcd's proposals_failed. */
  proposalsFailed = 0;

  /** `now`: the clock a leader stamps its writes with (ms since the epoch), for session expiry. */
  constructor(
    private readonly now: () => number,
    private readonly limits: KvLimits = DEFAULT_LIMITS,
    private readonly sessionTtlMs?: number,
    private readonly admission: Admission = DEFAULT_ADMISSION,
  ) {
    this.machine = new KvStateMachine(sessionTtlMs);
  }

  /** Writes proposed and not applied yet, and writes waiting for a turn. */
  get pendingProposals(): number {
    return this.writes.size + this.queue.length - this.queueHead;
  }

  /** The state machine; replaced by restore(). */
  get sm(): KvStateMachine {
    return this.machine;
  }

  /** The state as of the last applied entry, to serialize at leisure while this store goes on. */
  capture(): KvSnapshot {
    return { meta: { index: this.appliedIndex, term: this.appliedTerm }, state: this.sm.capture() };
  }

  /**
   * Replaces the whole state with a snapshot's (one installed from the leader, or the newest on
   * disk at restart). Writes waiting at an index the snapshot covers can no longer learn their
   * outcome here and fail as notLeader (a retry with the same session gets the original answer).
   */
  restore(snap: KvSnapshot): void {
    if (snap.meta.index < this.appliedIndex) {
      throw new RangeError(`snapshot at ${snap.meta.index} is older than the applied index ${this.appliedIndex}`);
    }
    this.machine = KvStateMachine.restore(snap.state, this.sessionTtlMs);
    this.appliedIndex = snap.meta.index;
    this.appliedTerm = snap.meta.term;
    for (const [index, w] of this.writes) {
      if (index > this.appliedIndex) continue;
      this.forget(index, w);
      this.proposalsFailed++;
      w.done({ ok: false, error: { code: 'notLeader', leaderId: w.log.leaderId() } });
    }
    this.admitQueued();
    this.answerConfirmedReads();
  }

  /** Proposes a write through `log` (this node's); `done` follows once it is applied here, or cannot be. */
  write(log: ReplicatedLog, req: WriteRequest, done: Done<WriteResult>): void {
    const invalid = this.validate(req.key, req.value, req.expected) ?? validateSession(req);
    if (invalid) return done({ ok: false, error: { code: 'invalidArgument', message: invalid } });
    if (this.closed) return done({ ok: false, error: { code: 'shuttingDown' } });
    const full = this.overQuota(req);
    if (full) return done({ ok: false, error: { code: 'noSpace', message: full } });
    if (this.writeBacklog() || this.queueHead < this.queue.length) return this.enqueue(log, req, done);
    this.propose(log, req, done);
  }

  /** The quota on the state (0: none). */
  get quotaBytes(): number {
    return this.admission.maxStateBytes;
  }

  /** Bytes of state the quota counts: keys and values, and STATE_BYTES_PER_KEY per key. */
  stateBytes(): number {
    return this.sm.bytes + this.sm.size * STATE_BYTES_PER_KEY;
  }

  /** Why `req` would take the state past its quota, if it would (deletes only free space). */
  private overQuota(req: WriteRequest): string | undefined {
    const quota = this.admission.maxStateBytes;
    if (quota === 0 || req.op === 'delete') return undefined;
    const used = this.stateBytes();
    const adds = req.key.length + (req.value?.length ?? 0) + STATE_BYTES_PER_KEY;
    if (used + this.pendingWriteBytes + this.queuedBytes + adds <= quota) return undefined;
    // A retry of a write applied already, or in flight here, adds nothing: it gets the first one's
    // answer, where a refusal would tell a client whose write was applied that it was not.
    if (this.sm.hasApplied(req.clientId, req.seq)) return undefined;
    for (const w of this.writes.values()) if (w.clientId === req.clientId && w.seq === req.seq) return undefined;
    return `the state holds ${used} bytes (keys and values, and ${STATE_BYTES_PER_KEY} per key) and writes in flight ${this.pendingWriteBytes + this.queuedBytes} more: this write would take it past the quota of ${quota} bytes (--quota-bytes); delete keys to make room`;
  }

  private propose(log: ReplicatedLog, req: WriteRequest, done: Done<WriteResult>): void {
    const data = encodeCommand({
      op: req.op,
      clientId: req.clientId,
      seq: req.seq,
      firstIncomplete: req.firstIncomplete,
      leaderTimeMs: this.now(),
      key: req.key,
      value: req.value ?? EMPTY,
      expected: req.expected ?? EMPTY,
    });
    const r = log.propose(data);
    if (!r) return done({ ok: false, error: { code: 'notLeader', leaderId: log.leaderId() } });
    this.writes.set(r.index, { clientId: req.clientId, seq: req.seq, bytes: data.length, log, done });
    this.pendingWriteBytes += data.length;
  }

  /** Why no more writes can be taken on now, if so. */
  private writeBacklog(): string | undefined {
    const a = this.admission;
    if (this.writes.size >= a.maxPendingWrites) return `${this.writes.size} writes are in flight (the limit is ${a.maxPendingWrites})`;
    if (this.pendingWriteBytes >= a.maxPendingWriteBytes) {
      return `${this.pendingWriteBytes} bytes of writes are in flight (the limit is ${a.maxPendingWriteBytes})`;
    }
    return undefined;
  }

  /** A write that finds the log's quota full waits for a turn, or is refused if the queue is full too. */
  private enqueue(log: ReplicatedLog, req: WriteRequest, done: Done<WriteResult>): void {
    const a = this.admission;
    const bytes = req.key.length + (req.value?.length ?? 0) + (req.expected?.length ?? 0);
    const queued = this.queue.length - this.queueHead;
    if (queued >= a.maxQueuedWrites || this.queuedBytes + bytes > a.maxQueuedWriteBytes) {
      const message = `${this.writeBacklog() ?? 'writes are waiting'}, and ${queued} more (${this.queuedBytes} bytes) wait for a turn (the limit is ${a.maxQueuedWrites}, ${a.maxQueuedWriteBytes} bytes)`;
      return done({ ok: false, error: { code: 'overloaded', message } });
    }
    // A write that would get its turn only after its caller gave up is refused now, when a retry
    // after a pause still has a chance, rather than held and then wasted (queueing theory's
    // sojourn time: a newcomer waits about as long as the write that just got its turn did).
    const now = this.now();
    const wait = queued === 0 ? 0 : Math.max(this.lastWaitMs, now - this.queue[this.queueHead]!.at);
    if (req.deadline !== undefined && now + wait >= req.deadline) {
      const message = `writes wait about ${Math.round(wait)} ms for a turn here, and this call has ${Math.max(0, Math.round(req.deadline - now))} ms left`;
      return done({ ok: false, error: { code: 'overloaded', message } });
    }
    this.queue.push({ log, req, done, bytes, at: now });
    this.queuedBytes += bytes;
  }

  /** Gives waiting writes the turns that finished writes freed. */
  private admitQueued(): void {
    while (this.queueHead < this.queue.length && !this.writeBacklog()) {
      const w = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as never;
      this.queuedBytes -= w.bytes;
      const now = this.now();
      const waited = now - w.at;
      this.lastWaitMs = waited;
      if (this.closed) w.done({ ok: false, error: { code: 'shuttingDown' } });
      else if (waited > this.admission.maxQueueWaitMs) {
        w.done({ ok: false, error: { code: 'overloaded', message: `the write waited ${waited} ms for a turn (the limit is ${this.admission.maxQueueWaitMs} ms)` } });
      } else if (w.req.deadline !== undefined && now >= w.req.deadline) {
        // Its caller has given up: committing it would take a turn from one that has not.
        w.done({ ok: false, error: { code: 'overloaded', message: `the write waited ${waited} ms for a turn, past its caller's deadline` } });
      } else this.propose(w.log, w.req, w.done);
    }
    if (this.queueHead === this.queue.length) {
      this.lastWaitMs = 0;
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private forget(index: number, w: { bytes: number }): void {
    this.writes.delete(index);
    this.pendingWriteBytes -= w.bytes;
  }

  /** A serializable read: what this store has applied, now. Any member, leader or not; possibly stale. */
  localRead(key: Uint8Array, done: Done<Uint8Array | undefined>): void {
    const invalid = this.validate(key);
    if (invalid) return done({ ok: false, error: { code: 'invalidArgument', message: invalid } });
    if (this.closed) return done({ ok: false, error: { code: 'shuttingDown' } });
    done({ ok: true, value: this.sm.get(key) });
  }

  /** A linearizable read through `log`'s ReadIndex (thesis §6.4): never writes to the log. */
  read(log: ReplicatedLog, key: Uint8Array, done: Done<Uint8Array | undefined>): void {
    const invalid = this.validate(key);
    if (invalid) return done({ ok: false, error: { code: 'invalidArgument', message: invalid } });
    this.confirm(log, key, done);
  }

  /**
   * Calls `done` once this store has applied every write committed before the call: the ReadIndex
   * round of a read, without the read. What a backup captures then holds every write acknowledged
   * before it began, and a leader that was deposed without knowing it refuses instead of handing
   * out its stale state. Refused as a read is (not leader, overloaded, shutting down).
   */
  barrier(log: ReplicatedLog, done: Done<undefined>): void {
    this.confirm(log, undefined, done as Done<Uint8Array | undefined>);
  }

  private confirm(log: ReplicatedLog, key: Uint8Array | undefined, done: Done<Uint8Array | undefined>): void {
    if (this.closed) return done({ ok: false, error: { code: 'shuttingDown' } });
    const pending = this.reads.size + this.confirmed.length;
    if (pending >= this.admission.maxPendingReads) {
      return done({ ok: false, error: { code: 'overloaded', message: `${pending} reads are in flight (the limit is ${this.admission.maxPendingReads})` } });
    }
    const ctx = this.nextCtx++;
    if (!log.readIndex(ctx)) return done({ ok: false, error: { code: 'notLeader', leaderId: log.leaderId() } });
    this.reads.set(ctx, { key, done });
  }

  // ---- ReadyHandler -------------------------------------------------------------------------

  applied(e: Entry): void {
    this.appliedIndex = e.index;
    this.appliedTerm = e.term;
    const waiting = this.writes.get(e.index);
    if (waiting) this.forget(e.index, waiting);
    if (e.type === 'normal') {
      const cmd = decodeCommand(e.data);
      const result = this.sm.apply(cmd);
      if (waiting) {
        if (cmd.clientId !== waiting.clientId || cmd.seq !== waiting.seq) {
          // Another leader's entry took this index: ours was lost with our leadership.
          this.proposalsFailed++;
          waiting.done({ ok: false, error: { code: 'notLeader', leaderId: waiting.log.leaderId() } });
        } else if (result.kind === 'sessionExpired') {
          waiting.done({ ok: false, error: { code: 'sessionExpired' } });
        } else if (result.kind === 'tooLarge') {
          const message = `the append would make the value larger than the limit of ${MAX_VALUE_BYTES} bytes; nothing was appended`;
          waiting.done({ ok: false, error: { code: 'invalidArgument', message } });
        } else {
          waiting.done({ ok: true, value: result });
        }
      }
    } else {
      if (e.type === 'conf') this.applyConf(e);
      waiting?.done({ ok: false, error: { code: 'notLeader', leaderId: waiting.log.leaderId() } });
    }
    if (waiting && this.queueHead < this.queue.length) this.admitQueued();
    this.answerConfirmedReads();
  }

  /**
   * A conf entry's context is the member table of its configuration (members.ts): from here on,
   * that is where the members are. One without a table (an empty context: not proposed by
   * kv-server), or whose table does not list exactly the configuration's members, leaves the
   * table as it was; every replica decides alike, so they still agree.
   */
  private applyConf(e: Entry): void {
    const d = decodeConfEntry(e.data);
    if (!d.ok || d.entry.context.length === 0) return;
    const t = decodeMemberTable(d.entry.context);
    if (!t.ok) return;
    const ids = membersOf(d.entry.conf);
    if (ids.length === t.table.members.length && ids.every((id, i) => t.table.members[i]!.id === id)) this.sm.setMembers(t.table);
  }

  private answerConfirmedReads(): void {
    while (this.confirmed.length > 0 && this.confirmed[0]!.index <= this.appliedIndex) {
      const r = this.confirmed.shift()!;
      r.done({ ok: true, value: r.key && this.sm.get(r.key) });
    }
  }

  readConfirmed(rs: ReadState): void {
    const r = this.reads.get(rs.ctx);
    if (!r) return;
    this.reads.delete(rs.ctx);
    if (rs.index <= this.appliedIndex) r.done({ ok: true, value: r.key && this.sm.get(r.key) });
    else this.confirmed.push({ index: rs.index, key: r.key, done: r.done });
  }

  leadershipLost(leaderId: NodeId): void {
    // Unconfirmed reads never will be; proposals may still commit under the next leader, and the
    // client's retry (same session and seq) then gets the original answer.
    this.failAll({ code: 'notLeader', leaderId });
  }

  /** Fails everything in flight; later requests are refused. */
  close(): void {
    this.closed = true;
    this.failAll({ code: 'shuttingDown' });
    for (const r of this.confirmed.splice(0)) r.done({ ok: false, error: { code: 'shuttingDown' } });
  }

  private failAll(error: KvError): void {
    this.proposalsFailed += this.writes.size;
    for (const w of this.writes.values()) w.done({ ok: false, error });
    this.writes.clear();
    this.pendingWriteBytes = 0;
    const queued = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    this.lastWaitMs = 0;
    for (const w of queued) w.done({ ok: false, error });
    for (const r of this.reads.values()) r.done({ ok: false, error });
    this.reads.clear();
  }

  private validate(key: Uint8Array, value?: Uint8Array, expected?: Uint8Array): string | undefined {
    if (key.length === 0) return 'key must not be empty';
    if (key.length > this.limits.maxKeyBytes) {
      return `key is ${key.length} bytes; the limit is ${this.limits.maxKeyBytes} bytes`;
    }
    for (const [what, v] of [['value', value], ['expected value', expected]] as const) {
      if (v && v.length > this.limits.maxValueBytes) {
        return `${what} is ${v.length} bytes; the limit is ${this.limits.maxValueBytes} bytes`;
      }
    }
    return undefined;
  }
}

function validateSession(req: WriteRequest): string | undefined {
  const ids: [string, number][] = [
    ['client_id', req.clientId],
    ['seq', req.seq],
    ['first_incomplete', req.firstIncomplete],
  ];
  for (const [name, v] of ids) {
    if (!Number.isSafeInteger(v) || v <= 0) return `session.${name} must be an integer in [1, 2^53), got ${String(v)}`;
  }
  if (req.firstIncomplete > req.seq) {
    return `session.first_incomplete (${req.firstIncomplete}) must not exceed session.seq (${req.seq})`;
  }
  return undefined;
}
