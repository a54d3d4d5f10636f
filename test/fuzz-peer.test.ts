/**
 * Hostile peers against live nodes (issue 11): a 3-node cluster of RaftNodes over GrpcTransport
 * and SqliteStorage in this process, on 127.0.0.1, under a light writer, while a rogue gRPC
 * client sends forged and mutated peer messages and snapshot transfers (test/support/rogue-peer.ts).
 * Afterwards every node still runs, no term grew by more than real elections would raise it,
 * the cluster has a leader and commits, every acknowledged write is still there on every node,
 * and every data dir opens.
 *
 * Seeded and replayable: the seed is printed, and RAFTKV_FUZZ_SEED=<seed> makes the same choices
 * again (targets, defects, sizes, garbage). The real messages it mutates come from the live
 * cluster, whose timing is real, so their contents may differ between runs.
 * RAFTKV_FUZZ_MESSAGES=<n> raises the number of messages for a soak (default 5000, ~10 s).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { MAX_TERM_JUMP } from '../src/raft/core/acceptance.js';
import { seededRng } from '../src/raft/core/rng.js';
import { message, type Entry, type Message, type NodeId, type SnapshotMeta } from '../src/raft/core/types.js';
import { RaftNode } from '../src/raft/node.js';
import { SqliteStorage } from '../src/raft/storage/sqlite.js';
import { GrpcTransport } from '../src/raft/transport/grpc.js';
import type { PeerAddress, Transport } from '../src/raft/transport/transport.js';
import { waitFor } from './e2e/cluster.js';
import { freePorts } from './support/ports.js';
import { batch, RoguePeer, sendRound, streamRound, toWire, type TargetView } from './support/rogue-peer.js';

const CLUSTER_ID = 'fuzz';
const IDS: readonly NodeId[] = [1, 2, 3];
/** Small limits make oversized messages and snapshots cheap to send. */
const MAX_MESSAGE_BYTES = 256 * 1024;
const MAX_SNAPSHOT_BYTES = 1024 * 1024;
/**
 * How much a term may grow during a run: the elections a loaded machine may hold on its own
 * (a slow event loop can miss heartbeats). Every term the rogue peer forges upwards is more than
 * MAX_TERM_JUMP ahead, so one forgery taken would show.
 */
const MAX_TERM_GROWTH = 50;
/** The term the nodes start in, so that there are stale terms (below it) to forge. */
const FIRST_TERM = 5;
/** Templates kept per node: the latest real messages it received. */
const TEMPLATES = 64;

/** A node's transport with a tap: it keeps the latest real messages as templates for the rogue peer. */
class TappedTransport implements Transport {
  readonly seen: Message[] = [];
  constructor(readonly inner: GrpcTransport) {}
  send(m: Message): void {
    this.inner.send(m);
  }
  onMessage(handler: (m: Message) => void): void {
    this.inner.onMessage((m) => {
      // Copies: entry data are views into grpc's receive buffer.
      this.seen.push({ ...m, entries: m.entries.map((e) => ({ ...e, data: Buffer.from(e.data) })) });
      if (this.seen.length > TEMPLATES) this.seen.shift();
      handler(m);
    });
  }
  sendSnapshot(m: Message, data: Uint8Array): Promise<void> {
    return this.inner.sendSnapshot(m, data);
  }
  onSnapshot(handler: (m: Message, data: Uint8Array) => void): void {
    this.inner.onSnapshot(handler);
  }
  setPeers(peers: readonly PeerAddress[]): void {
    this.inner.setPeers(peers);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Member {
  readonly id: NodeId;
  readonly dbPath: string;
  readonly port: number;
  readonly node: RaftNode;
  readonly net: TappedTransport;
  /** Applied entries by index (data as text). */
  readonly applied: Map<number, { term: number; data: string }>;
  /** Errors the node stopped on. */
  readonly fatal: unknown[];
  /** Snapshots the node was asked to install: none is real here (nobody compacts). */
  readonly installs: SnapshotMeta[];
  /** Its transport's log lines. */
  readonly logs: string[];
}

/** A write the cluster acknowledged: its proposer applied it at the (index, term) it was given. */
interface Acked {
  readonly index: number;
  readonly term: number;
  readonly data: string;
}

/** Three RaftNodes over gRPC and SQLite in this process, with a light writer. */
class LiveCluster {
  readonly acked: Acked[] = [];
  private readonly proposed = new Map<string, { index: number; term: number; by: NodeId }>();
  private writes = 0;
  private writer: NodeJS.Timeout | undefined;

  readonly members: Member[] = [];

  private constructor(
    private readonly dir: string,
    private readonly ports: readonly number[],
  ) {}

  static async start(): Promise<LiveCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-fuzz-'));
    const ports = await freePorts(IDS.length);
    const c = new LiveCluster(dir, ports);
    for (const [i, id] of IDS.entries()) c.members.push(await c.boot(id, join(dir, `node${id}.db`), ports[i]!));
    return c;
  }

  private async boot(id: NodeId, dbPath: string, port: number): Promise<Member> {
    const applied = new Map<number, { term: number; data: string }>();
    const record = { id, applied, fatal: [] as unknown[], installs: [] as SnapshotMeta[], logs: [] as string[] };
    const storage = SqliteStorage.open(dbPath, { clusterId: CLUSTER_ID, nodeId: id, create: true, unsafeNoFsync: true });
    storage.save({ term: FIRST_TERM, vote: 0, commit: 0 }, []);
    const net = new TappedTransport(
      new GrpcTransport({
        clusterId: CLUSTER_ID,
        self: id,
        listen: `127.0.0.1:${port}`,
        peers: IDS.map((p, i) => ({ id: p, address: `127.0.0.1:${this.ports[i]}` })),
        maxMessageBytes: MAX_MESSAGE_BYTES,
        maxSnapshotBytes: MAX_SNAPSHOT_BYTES,
        logger: (line) => record.logs.push(line),
      }),
    );
    const node = new RaftNode({
      id,
      peers: IDS,
      storage,
      transport: net,
      clock: systemClock,
      seed: id,
      electionTimeoutMs: 500,
      handler: {
        applied: (e) => this.applied(record, e),
        readConfirmed: () => {},
        leadershipLost: () => {},
      },
      snapshots: {
        take: () => Promise.reject(new Error('no snapshots in this test')),
        read: () => Promise.reject(new Error('no snapshots in this test')),
        install: (meta) => {
          record.installs.push(meta);
          return Promise.reject(new Error(`node ${id} was made to install a snapshot (${meta.index}/${meta.term}) nobody took`));
        },
      },
      onFatal: (e) => record.fatal.push(e),
    });
    await net.inner.start();
    return { ...record, dbPath, port, node, net };
  }

  private applied(m: Pick<Member, 'id' | 'applied'>, e: Entry): void {
    const data = Buffer.from(e.data).toString();
    m.applied.set(e.index, { term: e.term, data });
    const p = this.proposed.get(data);
    if (p && p.by === m.id && p.index === e.index && p.term === e.term) this.acked.push({ index: e.index, term: e.term, data });
  }

  leader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.members) {
      const s = m.node.status();
      if (s.role === 'leader' && (!best || s.term > best.node.status().term)) best = m;
    }
    return best;
  }

  /** Proposes a write to the leader now; undefined if there is none. */
  write(): string | undefined {
    const leader = this.leader();
    if (!leader) return undefined;
    const data = `w${this.writes++}`;
    const r = leader.node.propose(Buffer.from(data));
    if (!r) return undefined;
    this.proposed.set(data, { ...r, by: leader.id });
    return data;
  }

  /** A write every `everyMs` until stopWriter(). */
  startWriter(everyMs: number): void {
    this.writer = setInterval(() => this.write(), everyMs);
  }

  stopWriter(): void {
    clearInterval(this.writer);
  }

  view(m: Member): TargetView {
    const s = m.node.status();
    return { id: m.id, term: s.term, lastIndex: s.lastIndex, commit: s.commit, leader: s.leaderId };
  }

  terms(): number[] {
    return this.members.map((m) => m.node.status().term);
  }

  /** Waits until a write goes through and every node applies it: the cluster has a leader and commits. */
  async commitsEverywhere(what: string): Promise<string> {
    return waitFor(
      what,
      () => {
        const data = this.write();
        if (data === undefined) return undefined;
        return waitFor(`${data} applied everywhere`, () => this.members.every((m) => [...m.applied.values()].some((a) => a.data === data)), 3000)
          .then(() => data)
          .catch(() => undefined);
      },
      20_000,
    );
  }

  async stop(): Promise<void> {
    this.stopWriter();
    for (const m of this.members) await m.node.stop();
  }

  /** Reopens each stopped node's database as a restart would, and loads it. */
  reopen(m: Member): ReturnType<SqliteStorage['load']> {
    const s = SqliteStorage.open(m.dbPath, { clusterId: CLUSTER_ID, nodeId: m.id, create: false });
    try {
      return s.load();
    } finally {
      s.close();
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Every acknowledged write sits at its index on every node, and no two nodes applied different entries at an index. */
function expectNoLostWrites(c: LiveCluster): void {
  for (const a of c.acked) {
    for (const m of c.members) {
      expect({ node: m.id, index: a.index, entry: m.applied.get(a.index) }).toEqual({ node: m.id, index: a.index, entry: { term: a.term, data: a.data } });
    }
  }
  const [first, ...rest] = c.members;
  for (const m of rest) {
    for (const [index, e] of m.applied) {
      const other = first!.applied.get(index);
      if (other) expect({ index, e }).toEqual({ index, e: other });
    }
  }
}

/** Node crashes by exception (a core invariant broken by a message) show up here rather than only as vitest's unhandled errors. */
function trapUncaught(): { errors: unknown[]; release: () => void } {
  const errors: unknown[] = [];
  const onError = (e: unknown): void => void errors.push(e);
  process.on('uncaughtException', onError);
  return { errors, release: () => process.off('uncaughtException', onError) };
}

describe('hostile peer messages against live nodes', () => {
  let cluster: LiveCluster | undefined;
  const clients: grpc.Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await cluster?.stop();
    cluster?.remove();
    cluster = undefined;
  });

  const clientTo = (m: Member): grpc.Client => {
    const c = new grpc.Client(`127.0.0.1:${m.port}`, grpc.credentials.createInsecure());
    clients.push(c);
    return c;
  };

  it("refuses issue 11's forged batch (the leader's id, term 2^53 - 1): no term moves, nothing reaches the disk", async () => {
    const trap = trapUncaught();
    try {
      const c = (cluster = await LiveCluster.start());
      await c.commitsEverywhere('a first commit');
      expect(c.members.flatMap((m) => m.logs.filter((l) => l.includes('refused')))).toEqual([]); // nothing real is refused
      const leader = c.leader()!;
      const follower = c.members.find((m) => m !== leader)!;
      const before = c.terms();
      const view = c.view(follower);
      const heartbeat = toWire(message({ type: 'heartbeat', from: leader.id, to: follower.id, term: view.term, commit: view.commit }));
      const forged = [2 ** 53 - 1, 2 ** 52, view.term + MAX_TERM_JUMP + 1].map((term) => ({ ...heartbeat, term }));
      const round = streamRound([batch(CLUSTER_ID, forged)], forged.length);
      // The call ends once the follower has handled every message in it.
      expect(await sendRound(clientTo(follower), round, 5000)).toBeNull(); // a peer's id and cluster: the stream stays up
      expect(follower.node.status().term - before[follower.id - 1]!).toBeLessThanOrEqual(MAX_TERM_GROWTH);
      await c.commitsEverywhere('a commit after the forged batch');
      const after = c.terms();
      after.forEach((t, i) => expect(t - before[i]!).toBeLessThanOrEqual(MAX_TERM_GROWTH));
      expect(c.members.map((m) => m.fatal)).toEqual([[], [], []]);
      await c.stop();
      for (const m of c.members) expect(c.reopen(m).hardState.term).toBe(after[m.id - 1]);
      expect(trap.errors).toEqual([]);
    } finally {
      trap.release();
    }
  });

  it('fuzz: random and mutated peer messages and snapshot transfers crash nothing, move no term, lose no write', { timeout: 120_000 }, async () => {
    const seed = Number(process.env.RAFTKV_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const target = Number(process.env.RAFTKV_FUZZ_MESSAGES ?? 5000);
    console.log(`peer fuzz: seed ${seed} (replay with RAFTKV_FUZZ_SEED=${seed}), ${target} messages`);
    const trap = trapUncaught();
    try {
      const c = (cluster = await LiveCluster.start());
      await c.commitsEverywhere('a first commit');
      c.startWriter(20);
      const before = c.terms();
      const rng = seededRng(seed);
      const rogue = new RoguePeer({ clusterId: CLUSTER_ID, peers: IDS, maxMessageBytes: MAX_MESSAGE_BYTES, maxSnapshotBytes: MAX_SNAPSHOT_BYTES }, rng);
      const byTarget = c.members.map(clientTo);
      const tally = new Map<string, number>();
      let messages = 0;
      let transfers = 0;
      const t0 = Date.now();
      while (messages < target) {
        const i = rng.int(c.members.length);
        const m = c.members[i]!;
        const round = rng.next() < 0.15 ? rogue.snapshotRound(c.view(m)) : rogue.streamRound(c.view(m), m.net.seen);
        await sendRound(byTarget[i]!, round, 10_000);
        messages += round.messages;
        if (round.method === 'InstallSnapshot') transfers++;
        for (const d of round.defects) tally.set(d, (tally.get(d) ?? 0) + 1);
        if (c.members.some((x) => x.fatal.length > 0) || trap.errors.length > 0) break;
      }
      const fuzzMs = Date.now() - t0;
      console.log(
        `peer fuzz: ${messages} messages (${transfers} snapshot transfers) in ${fuzzMs} ms, ${c.acked.length} writes acknowledged meanwhile; ` +
          `defects: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`,
      );

      expect({ fatal: c.members.map((m) => m.fatal.map(String)), uncaught: trap.errors.map(String) }).toEqual({ fatal: [[], [], []], uncaught: [] });
      const after = c.terms();
      after.forEach((t, i) => expect({ node: i + 1, growth: t - before[i]! }).toSatisfy(({ growth }: { growth: number }) => growth <= MAX_TERM_GROWTH));
      expect(c.members.map((m) => m.installs)).toEqual([[], [], []]);
      // Refusals are logged once per peer and rule per interval, in lines of their own.
      const lines = c.members.flatMap((m) => m.logs);
      console.log(`peer fuzz: ${lines.length} transport log lines`);
      expect(lines.length).toBeLessThan(Math.max(200, messages / 10));
      expect(lines.filter((l) => l.includes('\n') || l.length > 1000)).toEqual([]);
      await c.commitsEverywhere('a commit after the fuzz');
      c.stopWriter();
      await waitFor('every node to apply every acknowledged write', () => c.members.every((m) => c.acked.every((a) => m.applied.has(a.index))));
      expectNoLostWrites(c);
      expect(c.acked.length).toBeGreaterThan(0);
      const final = c.terms();
      await c.stop();
      for (const m of c.members) {
        const state = c.reopen(m);
        expect(state.hardState.term).toBe(final[m.id - 1]);
        const onDisk = new Map(state.entries.map((e) => [e.index, Buffer.from(e.data).toString()]));
        for (const a of c.acked) expect({ node: m.id, index: a.index, data: onDisk.get(a.index) }).toEqual({ node: m.id, index: a.index, data: a.data });
      }
      expect(trap.errors).toEqual([]);
    } finally {
      trap.release();
    }
  });
});
