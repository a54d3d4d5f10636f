import { freePorts } from './support/ports.js';
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeConfEntry } from '../src/raft/core/conf-codec.js';
import { CAMPAIGN_TRANSFER, type Entry, type Message, type MessageType, type NodeId } from '../src/raft/core/types.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_SNAPSHOT_BYTES,
  DEFAULT_SNAPSHOT_CHUNK_BYTES,
  GrpcTransport,
  loadRaftProto,
  type GrpcTransportOptions,
} from '../src/raft/transport/grpc.js';
import { MAX_INDEX, MAX_TERM } from '../src/raft/core/acceptance.js';
import { batchOverheadBytes, encodeMessage } from '../src/raft/transport/grpc-codec.js';
import type { PeerCall } from '../src/raft/transport/forwarding.js';
import type { RaftBatch } from '../src/raft/transport/generated/raftkv/raft/RaftBatch.js';
import type { SnapshotAck } from '../src/raft/transport/generated/raftkv/raft/SnapshotAck.js';
import type { SnapshotChunk, SnapshotChunk__Output } from '../src/raft/transport/generated/raftkv/raft/SnapshotChunk.js';

const CLUSTER = 'test-cluster';
/** Every type; all but 'snap' travel on the message stream (a snap message heads an InstallSnapshot call). */
const ALL_TYPES: MessageType[] = [
  'preVote',
  'preVoteResp',
  'vote',
  'voteResp',
  'app',
  'appResp',
  'heartbeat',
  'heartbeatResp',
  'snap',
  'timeoutNow',
];
const STREAM_TYPES = ALL_TYPES.filter((t) => t !== 'snap');


/** Polls `cond` until it holds; fails after the deadline. */
async function waitFor(cond: () => boolean, what: string, deadlineMs = 5000, every?: () => void): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    every?.();
    await new Promise((r) => setTimeout(r, 10));
  }
}

function msg(type: MessageType, from: NodeId, to: NodeId, fields: Partial<Message> = {}): Message {
  return {
    type,
    from,
    to,
    term: 0,
    index: 0,
    logTerm: 0,
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: 0,
    entries: [],
    ...fields,
  };
}

/**
 * The message with each entry's data replaced by its length and SHA-256: byte-exact, and fast to
 * compare (vitest's toEqual walks typed arrays element by element: seconds per MiB).
 */
function normalize(m: Message): unknown {
  return {
    ...m,
    entries: m.entries.map((e) => ({
      ...e,
      data: `${e.data.length}:${createHash('sha256').update(e.data).digest('hex')}`,
    })),
  };
}

interface Node {
  t: GrpcTransport;
  got: Message[];
  snaps: { m: Message; data: Uint8Array }[];
  logs: string[];
  /** Called with every log line as it is written (to act at an exact point of a transfer). */
  onLog?: (line: string) => void;
  port: number;
}

const open: GrpcTransport[] = [];
const servers: grpc.Server[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  for (const s of servers.splice(0)) s.forceShutdown();
});

function makeNode(
  self: NodeId,
  port: number,
  peers: { id: NodeId; port: number }[],
  extra: Partial<GrpcTransportOptions> = {},
): Node {
  const logs: string[] = [];
  const t = new GrpcTransport({
    clusterId: CLUSTER,
    self,
    listen: `127.0.0.1:${port}`,
    peers: peers.map((p) => ({ id: p.id, address: `127.0.0.1:${p.port}` })),
    logger: (line) => {
      logs.push(line);
      node.onLog?.(line);
    },
    ...extra,
  });
  const node: Node = { t, got: [], snaps: [], logs, port };
  t.onMessage((m) => node.got.push(m));
  t.onSnapshot((m, data) => node.snaps.push({ m, data }));
  open.push(t);
  return node;
}

async function cluster3(extra: Partial<GrpcTransportOptions> = {}): Promise<Node[]> {
  const ports = await freePorts(3);
  const ids = [1, 2, 3];
  const nodes = ids.map((id, i) =>
    makeNode(
      id,
      ports[i]!,
      ids.map((p, j) => ({ id: p, port: ports[j]! })),
      extra,
    ),
  );
  await Promise.all(nodes.map((n) => n.t.start()));
  return nodes;
}

/** A configuration with every list set and ids up to 2^53 - 1 (the longest varints). */
const JOINT = {
  voters: [1, 2, 3, 2 ** 40],
  votersOutgoing: [1, 2, 4, Number.MAX_SAFE_INTEGER],
  learners: [5, 300],
  learnersNext: [4],
  autoLeave: true,
};

/** Every field `type` carries set (values up to the caps), as our core would send it; the others zero. */
function fullMessage(type: MessageType, from: NodeId, to: NodeId, seed: number): Message {
  const allBytes = new Uint8Array(256).map((_, i) => i);
  const index = 2 ** 40 + seed;
  const entries: Entry[] = [
    { index: index + 1, term: 7, type: 'noop', data: new Uint8Array(0) },
    { index: index + 2, term: 7, type: 'normal', data: allBytes },
    { index: index + 3, term: 8, type: 'normal', data: randomBytes(1000) },
    { index: index + 4, term: 8, type: 'normal', data: new Uint8Array(0) },
    { index: index + 5, term: 8, type: 'conf', data: encodeConfEntry({ conf: JOINT, context: allBytes }) },
  ];
  const term = MAX_TERM - seed;
  const all: Record<MessageType, Partial<Message>> = {
    preVote: { index: MAX_INDEX - seed, logTerm: term - 1 },
    preVoteResp: { reject: true },
    vote: { index: MAX_INDEX - seed, logTerm: term, context: CAMPAIGN_TRANSFER },
    voteResp: { reject: true },
    app: { index, logTerm: 7, commit: 2 ** 33, entries },
    appResp: { index: MAX_INDEX - seed, logTerm: 42, reject: true, rejectHint: 99 },
    heartbeat: { commit: MAX_INDEX - seed, context: 5 + seed },
    heartbeatResp: { index: 2 ** 33, reject: true, context: MAX_INDEX - seed },
    snap: { index: MAX_INDEX - seed, logTerm: term, commit: MAX_INDEX, conf: JOINT },
    timeoutNow: {},
  };
  return msg(type, from, to, { term, ...all[type] });
}

describe('GrpcTransport', () => {
  it('delivers every message type with all fields and binary entry data intact', async () => {
    const nodes = await cluster3();
    const sent = new Map<NodeId, Message[]>([
      [1, []],
      [2, []],
      [3, []],
    ]);
    let seed = 0;
    for (const from of nodes) {
      for (const to of nodes) {
        if (from === to) continue;
        const fromId = nodes.indexOf(from) + 1;
        const toId = nodes.indexOf(to) + 1;
        for (const type of STREAM_TYPES) {
          const full = fullMessage(type, fromId, toId, seed++);
          const zero = msg(type, fromId, toId, { term: 1 }); // every other field at its default
          from.t.send(full);
          from.t.send(zero);
          sent.get(toId)!.push(full, zero);
        }
      }
    }
    await waitFor(() => nodes.every((n, i) => n.got.length === sent.get(i + 1)!.length), 'all messages');
    for (const [i, n] of nodes.entries()) {
      // Per sender, appends keep their order, and so do the other messages (each kind has its
      // own stream); the two kinds, and messages from different senders, interleave.
      for (const fromId of [1, 2, 3]) {
        for (const appends of [true, false]) {
          const lane = (m: Message): boolean => m.from === fromId && (m.type === 'app') === appends;
          expect(n.got.filter(lane).map(normalize)).toEqual(sent.get(i + 1)!.filter(lane).map(normalize));
        }
      }
      expect(n.logs.filter((l) => l.includes('refused'))).toEqual([]);
    }
  });

  it('encodeMessage computes the exact encoded size used for batch splitting', () => {
    const serialize = loadRaftProto().raftkv.raft.Raft.service.Stream.requestSerialize;
    for (const type of ALL_TYPES) {
      for (const m of [fullMessage(type, 1, 2, 3), msg(type, 1, 2), msg(type, 0, 2, { entries: [{ index: 0, term: 0, type: 'normal', data: randomBytes(200) }] })]) {
        const e = encodeMessage(m)!;
        const batch: RaftBatch = { clusterId: CLUSTER, messages: [e.msg, e.msg] };
        expect(serialize(batch).length).toBe(batchOverheadBytes(CLUSTER) + 2 * e.batchBytes);
      }
    }
  });

  it('delivers a large batch of messages in order, within and across event-loop turns', async () => {
    const [a, b] = await cluster3();
    // Same tick: one batch.
    for (let i = 1; i <= 2000; i++) a!.t.send(msg('heartbeat', 1, 2, { term: 1, commit: i }));
    // Further ticks.
    for (let round = 0; round < 20; round++) {
      await new Promise((r) => setImmediate(r));
      for (let i = 1; i <= 100; i++) a!.t.send(msg('heartbeat', 1, 2, { term: 2, commit: 2000 + round * 100 + i }));
    }
    await waitFor(() => b!.got.length === 4000, '4000 messages');
    expect(b!.got.map((m) => m.commit)).toEqual(Array.from({ length: 4000 }, (_, i) => i + 1));
  });

  it('a heartbeat is not held up behind appends: they travel on a connection of their own', async () => {
    const [a, b] = await cluster3();
    // 12 MiB of appends (within the queue), then a heartbeat: on one stream the heartbeat would come last.
    const payload = randomBytes(1024 * 1024);
    for (let k = 0; k < 12; k++) a!.t.send(msg('app', 1, 2, { term: 3, index: k, entries: [{ index: k + 1, term: 3, type: 'normal', data: payload }] }));
    a!.t.send(msg('heartbeat', 1, 2, { term: 3, commit: 7 }));
    await waitFor(() => b!.got.filter((m) => m.type === 'app').length === 12 && b!.got.some((m) => m.type === 'heartbeat'), 'the appends and the heartbeat');
    expect(b!.got.findIndex((m) => m.type === 'heartbeat')).toBeLessThan(b!.got.length - 1);
  });

  it('delivers a 3 MiB append, splits batches over the limit, drops a single oversized message', async () => {
    const [a, b] = await cluster3();
    const entries: Entry[] = Array.from({ length: 48 }, (_, i) => ({
      index: 100 + i,
      term: 3,
      type: 'normal' as const,
      data: randomBytes(64 * 1024),
    }));
    const big = msg('app', 1, 2, { term: 3, index: 99, logTerm: 3, commit: 90, entries });
    a!.t.send(big);
    await waitFor(() => b!.got.length === 1, 'the 3 MiB append');
    expect(normalize(b!.got[0]!)).toEqual(normalize(big));

    // Three 1.5 MiB appends queued in one tick exceed 4 MiB together: split, still in order.
    const part = (k: number): Message =>
      msg('app', 1, 2, { term: 3, index: k, entries: [{ index: k + 1, term: 3, type: 'normal', data: randomBytes(1536 * 1024) }] });
    const parts = [part(1000), part(2000), part(3000)];
    // One message over maxMessageBytes: dropped with a log line, the rest still flows.
    const tooBig = msg('app', 1, 2, { entries: [{ index: 1, term: 1, type: 'normal', data: new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES) }] });
    a!.t.send(parts[0]!);
    a!.t.send(tooBig);
    a!.t.send(parts[1]!);
    a!.t.send(parts[2]!);
    await waitFor(() => b!.got.length === 4, 'the split appends');
    expect(b!.got.slice(1).map(normalize)).toEqual(parts.map(normalize));
    expect(a!.logs.some((l) => l.includes('exceeds maxMessageBytes'))).toBe(true);
  });

  it('forwards a client call to a peer with its deadline: the handler sees when the caller gives up', async () => {
    const [a, b] = await cluster3();
    const seen: PeerCall[] = [];
    b!.t.onForward((call) => (seen.push(call), Promise.resolve({ response: new Uint8Array([7]), refusal: '' })));
    const before = Date.now();
    const reply = await a!.t.forward(2, { method: 'Put', request: new Uint8Array([1, 2]) }, 3000);
    expect(reply.refusal).toBe('');
    expect([...reply.response]).toEqual([7]);
    expect(seen.map((c) => [c.method, [...c.request]])).toEqual([['Put', [1, 2]]]);
    // gRPC carries the deadline as a timeout: the receiver reads it back on its own clock.
    expect(seen[0]!.deadline).toBeGreaterThanOrEqual(before + 3000 - 100);
    expect(seen[0]!.deadline).toBeLessThanOrEqual(Date.now() + 3000 + 100);
  });

  it('refuses a transport of another cluster', async () => {
    const [, b] = await cluster3();
    const [port] = await freePorts(1);
    const intruder = makeNode(1, port!, [{ id: 2, port: b!.port }], { clusterId: 'other-cluster' });
    await intruder.t.start();
    intruder.t.send(msg('vote', 1, 2, { term: 9 }));
    await waitFor(() => b!.logs.some((l) => l.includes('cluster id mismatch')), 'the refusal on the receiver');
    await waitFor(() => intruder.logs.some((l) => l.includes('FAILED_PRECONDITION')), 'the refusal on the sender');
    for (let i = 0; i < 5; i++) intruder.t.send(msg('vote', 1, 2, { term: 9 }));
    await new Promise((r) => setTimeout(r, 100)); // give a wrongly accepted message time to show up
    expect(b!.got).toEqual([]);
  });

  it('refuses a stream sent to the wrong node (misconfigured peer address)', async () => {
    const [, b] = await cluster3();
    const [port] = await freePorts(1);
    // This node believes peer 3 lives at node 2's address.
    const confused = makeNode(1, port!, [{ id: 3, port: b!.port }]);
    await confused.t.start();
    confused.t.send(msg('heartbeat', 1, 3));
    await waitFor(() => b!.logs.some((l) => l.includes('addressed to node 3, but this is node 2')), 'the refusal');
    await waitFor(() => confused.logs.some((l) => l.includes('FAILED_PRECONDITION')), 'the sender to see it');
    expect(b!.got).toEqual([]);
  });

  it('refuses raw batches with a wrong cluster id, wrong `to`, unknown `from` or unknown type', async () => {
    const [, b] = await cluster3();
    const Client = loadRaftProto().raftkv.raft.Raft;
    const client = new Client(`127.0.0.1:${b!.port}`, grpc.credentials.createInsecure());
    try {
      const stream = () => {
        let status: grpc.ServiceError | null | undefined;
        const call = client.Stream((err) => {
          status = err;
        });
        return { call, status: () => status };
      };
      const ok = encodeMessage(msg('heartbeat', 3, 2, { term: 4, commit: 1 }))!.msg;

      // Right cluster: misaddressed, unknown-sender and unknown-type messages are dropped, the
      // valid one in the same batch is delivered.
      const s1 = stream();
      s1.call.write({
        clusterId: CLUSTER,
        messages: [
          { ...ok, to: 3 },
          { ...ok, from: 42 },
          { ...ok, type: 'MESSAGE_TYPE_UNSPECIFIED' },
          { ...ok, type: 10 as unknown as 'MESSAGE_TYPE_UNSPECIFIED' }, // a number from a future schema (reserved)
          ok,
        ],
      });
      await waitFor(() => b!.got.length === 1, 'the valid message');
      expect(b!.got[0]).toMatchObject({ type: 'heartbeat', from: 3, to: 2, term: 4, commit: 1 });
      expect(b!.logs.some((l) => /addressed to node 3, but this is node 2/.test(l))).toBe(true);
      expect(b!.logs.some((l) => /from 42 \(.*\): not a known peer/.test(l))).toBe(true);
      expect(b!.logs.some((l) => /unknown message type/.test(l))).toBe(true);
      s1.call.end();
      await waitFor(() => s1.status() === null, 'a clean end of the stream');

      // Wrong cluster: the batch is dropped and the stream ends with FAILED_PRECONDITION.
      const s2 = stream();
      s2.call.write({ clusterId: 'other', messages: [ok] });
      await waitFor(() => s2.status() !== undefined, 'the stream to be ended');
      expect(s2.status()?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(b!.logs.some((l) => /batch from cluster "other"/.test(l))).toBe(true);
      expect(b!.got.length).toBe(1);
    } finally {
      client.close();
    }
  });

  it('keeps send() safe while a peer is down and delivers once it starts', async () => {
    const [p1, p2] = await freePorts(2);
    const peers = [
      { id: 1, port: p1! },
      { id: 2, port: p2! },
    ];
    const a = makeNode(1, p1!, peers);
    await a.t.start();
    // Peer 2 is down: send never throws (and never blocks) — and also not before start/after close.
    for (let i = 0; i < 1000; i++) expect(() => a.t.send(msg('app', 1, 2, { term: 1, index: i }))).not.toThrow();
    expect(() => a.t.send(msg('app', 1, 77))).not.toThrow();
    await new Promise((r) => setTimeout(r, 150)); // let a few reconnect attempts fail
    const b = makeNode(2, p2!, peers);
    await b.t.start();
    let k = 0;
    // Raft retries: keep sending until one gets through.
    await waitFor(() => b.got.length > 0, 'delivery after the peer started', 5000, () => a.t.send(msg('heartbeat', 1, 2, { term: 1, commit: ++k })));
    expect(b.got[0]!.type).toBe('heartbeat');
    expect(a.logs.some((l) => l.includes('stream to peer 2') && l.includes('is up'))).toBe(true);
  });

  it('setPeers: a link opens to a peer added after start, and a removed peer is neither sent to nor heard', async () => {
    const [p1, p2, p3] = await freePorts(3);
    const a = makeNode(1, p1!, [{ id: 2, port: p2! }]);
    const b = makeNode(2, p2!, [{ id: 1, port: p1! }]);
    const c = makeNode(3, p3!, [{ id: 1, port: p1! }]);
    await Promise.all([a.t.start(), b.t.start(), c.t.start()]);
    let k = 0;
    const beat = (to: NodeId): void => a.t.send(msg('heartbeat', 1, to, { term: 1, commit: ++k }));
    beat(3);
    expect(a.logs.some((l) => l.includes('dropped heartbeat to 3: not a known peer'))).toBe(true);
    // Node 3 joins: a reaches it, and takes its messages.
    a.t.setPeers([
      { id: 1, address: `127.0.0.1:${p1!}` },
      { id: 2, address: `127.0.0.1:${p2!}` },
      { id: 3, address: `127.0.0.1:${p3!}` },
    ]);
    await waitFor(() => c.got.length > 0, 'delivery to the added peer', 5000, () => beat(3));
    c.t.send(msg('heartbeatResp', 3, 1, { term: 1 }));
    await waitFor(() => a.got.some((m) => m.from === 3), 'a message from the added peer');
    // Node 2 is removed: nothing goes to it any more, and what it sends is refused.
    a.t.setPeers([{ id: 3, address: `127.0.0.1:${p3!}` }]);
    const before = b.got.length;
    beat(2);
    expect(a.logs.some((l) => l.includes('dropped heartbeat to 2: not a known peer (known: 3)'))).toBe(true);
    b.t.send(msg('heartbeatResp', 2, 1, { term: 1 }));
    await waitFor(() => a.logs.some((l) => /refused .*(not a known peer|sender 2)/.test(l)), "a's refusal of the removed peer");
    expect(a.got.some((m) => m.from === 2)).toBe(false);
    expect(b.got.length).toBe(before);
  });

  it('rejects start() on a taken port; close() is idempotent and frees the port', async () => {
    const [p1, p2] = await freePorts(2);
    const peers = [
      { id: 1, port: p1! },
      { id: 2, port: p2! },
    ];
    const a = makeNode(1, p1!, peers);
    const b = makeNode(2, p2!, peers);
    await Promise.all([a.t.start(), b.t.start()]);
    a.t.send(msg('vote', 1, 2, { term: 1 }));
    b.t.send(msg('vote', 2, 1, { term: 1 }));
    await waitFor(() => a.got.length === 1 && b.got.length === 1, 'streams in both directions');

    const clash = makeNode(3, p1!, peers);
    await expect(clash.t.start()).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);

    const t0 = Date.now();
    await Promise.all([a.t.close(), a.t.close()]);
    await a.t.close();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(() => a.t.send(msg('vote', 1, 2))).not.toThrow();

    // The port is free again: a new transport binds it and b reconnects to it.
    const a2 = makeNode(1, p1!, peers);
    await a2.t.start();
    await waitFor(() => a2.got.length > 0, 'b to reach the restarted node', 5000, () => b.t.send(msg('heartbeat', 2, 1, { term: 1 })));
  });
});

/** A snap message with every field it carries set. */
function snapMessage(from: NodeId, to: NodeId, seed = 1): Message {
  return fullMessage('snap', from, to, seed);
}

/** A bare Raft service with our own InstallSnapshot, to play a peer that misbehaves or spies. */
async function fakePeer(installSnapshot: grpc.handleClientStreamingCall<SnapshotChunk__Output, SnapshotAck>): Promise<number> {
  const server = new grpc.Server();
  servers.push(server);
  server.addService(loadRaftProto().raftkv.raft.Raft.service, {
    Stream: (call: grpc.ServerReadableStream<unknown, object>) => call.on('data', () => {}),
    InstallSnapshot: installSnapshot,
  });
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/** A node 1 whose only peer, 2, listens on `peerPort`. */
async function senderTo(peerPort: number, extra: Partial<GrpcTransportOptions> = {}): Promise<Node> {
  const [port] = await freePorts(1);
  const a = makeNode(1, port!, [{ id: 2, port: peerPort }], extra);
  await a.t.start();
  return a;
}

describe('GrpcTransport stream opening', () => {
  it('a stream whose opening gets no answer is retried on a new connection, not on the same one', async () => {
    // A peer that never answers a stream from the connections it first sees (as over a connection
    // that died without a reset), and answers those from any new connection.
    const hung = new Set<string>();
    let batches = 0;
    const server = new grpc.Server();
    servers.push(server);
    server.addService(loadRaftProto().raftkv.raft.Raft.service, {
      Stream: (call: grpc.ServerReadableStream<unknown, object>) => {
        const from = call.getPeer();
        if (hung.has(from) || hung.size < 2) {
          hung.add(from);
          return void call.on('data', () => {});
        }
        call.sendMetadata(new grpc.Metadata());
        call.on('data', () => batches++);
      },
      InstallSnapshot: () => {},
    });
    const peerPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    const a = await senderTo(peerPort);
    const sender = setInterval(() => a.t.send(msg('heartbeat', 1, 2, { term: 1 })), 100);
    try {
      await waitFor(() => batches > 0, 'a batch over a new connection', 12_000);
    } finally {
      clearInterval(sender);
    }
    expect(hung.size).toBe(2);
    expect(a.logs.some((l) => l.includes('no answer within 5000 ms'))).toBe(true);
  }, 20_000);
});

describe('GrpcTransport snapshots', () => {
  it('delivers a multi-chunk snapshot byte-identical, with every message field intact', async () => {
    const [a, b] = await cluster3({ snapshotChunkBytes: 64 * 1024 });
    const data = randomBytes(5_000_000);
    const m = snapMessage(1, 2);
    await a!.t.sendSnapshot(m, data);
    // Resolved means delivered: the receiver answers only after its handler returned.
    expect(b!.snaps.length).toBe(1);
    expect(normalize(b!.snaps[0]!.m)).toEqual(normalize(m));
    expect(Buffer.compare(b!.snaps[0]!.data, data)).toBe(0);
    expect(b!.logs.some((l) => l.includes('received snapshot from node 1') && l.includes('5000000 bytes'))).toBe(true);
    expect(b!.logs.filter((l) => l.includes('refused') || l.includes('discarded'))).toEqual([]);
  });

  it('sends contiguous chunks of at most snapshotChunkBytes, the message on the first only', async () => {
    const chunks: SnapshotChunk__Output[] = [];
    const port = await fakePeer((call, callback) => {
      call.on('data', (c: SnapshotChunk__Output) => chunks.push(c));
      call.on('end', () => callback(null, {}));
    });
    const a = await senderTo(port, { snapshotChunkBytes: 1000 });
    await a.t.sendSnapshot(snapMessage(1, 2), randomBytes(10_500));
    expect(chunks.map((c) => [c.offset, c.data.length, c.totalBytes, c.message !== null, c.last, c.clusterId])).toEqual(
      Array.from({ length: 11 }, (_, i) => [i * 1000, i < 10 ? 1000 : 500, 10_500, i === 0, i === 10, CLUSTER]),
    );
    expect(DEFAULT_SNAPSHOT_CHUNK_BYTES).toBe(1024 * 1024);
    expect(DEFAULT_MAX_SNAPSHOT_BYTES).toBe(1024 ** 3);
  });

  it('delivers a 0-byte snapshot as one empty chunk', async () => {
    const [a, b] = await cluster3();
    await a!.t.sendSnapshot(snapMessage(1, 2), new Uint8Array(0));
    expect(b!.snaps.map((s) => s.data.length)).toEqual([0]);
    expect(normalize(b!.snaps[0]!.m)).toEqual(normalize(snapMessage(1, 2)));
  });

  it('keeps the message stream flowing while a transfer is in flight', async () => {
    const [a, b] = await cluster3({ snapshotChunkBytes: 16 * 1024 });
    const data = randomBytes(8 * 1024 * 1024);
    const transfer = a!.t.sendSnapshot(snapMessage(1, 2), data);
    for (let i = 1; i <= 100; i++) a!.t.send(msg('heartbeat', 1, 2, { term: 1, commit: i }));
    await waitFor(() => b!.got.length === 100, 'the heartbeats');
    await transfer;
    expect(b!.got.map((m) => m.commit)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(Buffer.compare(b!.snaps[0]!.data, data)).toBe(0);
  });

  it('refuses a snapshot from another cluster and delivers nothing', async () => {
    const [, b] = await cluster3();
    const intruder = await senderTo(b!.port, { clusterId: 'other-cluster' });
    await expect(intruder.t.sendSnapshot(snapMessage(1, 2), randomBytes(1000))).rejects.toThrow(
      /snapshot to peer 2 failed: FAILED_PRECONDITION: cluster id mismatch/,
    );
    expect(b!.snaps).toEqual([]);
    expect(b!.logs.some((l) => l.includes('refused snapshot') && l.includes('cluster id mismatch'))).toBe(true);
  });

  it('refuses malformed transfers with a clear status, delivers nothing and keeps serving', async () => {
    const [, b] = await cluster3({ maxSnapshotBytes: 1000 });
    const client = new (loadRaftProto().raftkv.raft.Raft)(`127.0.0.1:${b!.port}`, grpc.credentials.createInsecure());
    const m = encodeMessage(snapMessage(3, 2))!.msg;
    const chunk = (offset: number, len: number, more: Partial<SnapshotChunk> = {}): SnapshotChunk => ({
      clusterId: CLUSTER,
      offset,
      totalBytes: 100,
      data: new Uint8Array(len).fill(7),
      ...more,
    });
    /** Writes the chunks (then ends the call, unless told not to) and resolves with the status. */
    const transfer = (chunks: SnapshotChunk[], end = true) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const call = client.InstallSnapshot((err) => resolve(err));
        for (const c of chunks) call.write(c);
        if (end) call.end();
      });
    const { INVALID_ARGUMENT, FAILED_PRECONDITION, RESOURCE_EXHAUSTED, ABORTED } = grpc.status;
    const cases: [string, SnapshotChunk[], grpc.status, RegExp][] = [
      ['no chunk', [], INVALID_ARGUMENT, /ended before its first chunk/],
      ['no message', [chunk(0, 100, { last: true })], INVALID_ARGUMENT, /first chunk carries no message/],
      ['not a snap', [chunk(0, 100, { message: { ...m, type: 'MESSAGE_TYPE_APP', conf: null }, last: true })], INVALID_ARGUMENT, /expected a snap message/],
      ['bad configuration', [chunk(0, 100, { message: { ...m, conf: { ...m.conf, learners: [1] } }, last: true })], INVALID_ARGUMENT, /configuration is invalid: node 1 is both a voter and a learner/],
      ['entries', [chunk(0, 100, { message: { ...m, entries: [{ index: 1 }] }, last: true })], INVALID_ARGUMENT, /snap messages carry no entries/],
      ['wrong to', [chunk(0, 100, { message: { ...m, to: 3 }, last: true })], FAILED_PRECONDITION, /addressed to node 3/],
      ['unknown from', [chunk(0, 100, { message: { ...m, from: 42 }, last: true })], FAILED_PRECONDITION, /from 42: not a known peer/],
      ['other cluster', [chunk(0, 100, { message: m, clusterId: 'x', last: true })], FAILED_PRECONDITION, /cluster id mismatch/],
      ['other cluster later', [chunk(0, 50, { message: m }), chunk(50, 50, { clusterId: 'x', last: true })], FAILED_PRECONDITION, /cluster id mismatch/],
      ['too big', [chunk(0, 10, { message: m, totalBytes: 1001 })], RESOURCE_EXHAUSTED, /1001 bytes exceeds this node's maxSnapshotBytes \(1000\)/],
      ['inexact size', [chunk(0, 10, { message: m, totalBytes: '18446744073709551615' })], INVALID_ARGUMENT, /not an exact byte count/],
      ['first not at 0', [chunk(10, 90, { message: m, last: true })], INVALID_ARGUMENT, /starts at byte 10, expected 0/],
      ['gap', [chunk(0, 40, { message: m }), chunk(50, 50, { last: true })], INVALID_ARGUMENT, /starts at byte 50, expected 40/],
      ['overlap', [chunk(0, 50, { message: m }), chunk(40, 60, { last: true })], INVALID_ARGUMENT, /starts at byte 40, expected 50/],
      ['total changes', [chunk(0, 50, { message: m }), chunk(50, 50, { totalBytes: 101 })], INVALID_ARGUMENT, /announces 101 bytes in all, the first announced 100/],
      ['past the total', [chunk(0, 50, { message: m }), chunk(50, 51)], INVALID_ARGUMENT, /runs past the total of 100/],
      ['short last', [chunk(0, 50, { message: m }), chunk(50, 49, { last: true })], INVALID_ARGUMENT, /last chunk ends at byte 99 of 100/],
      ['no last', [chunk(0, 50, { message: m }), chunk(50, 50)], INVALID_ARGUMENT, /ended without its last chunk/],
      ['second message', [chunk(0, 50, { message: m }), chunk(50, 50, { message: m, last: true })], INVALID_ARGUMENT, /after the first carries a message/],
    ];
    try {
      for (const [name, chunks, code, details] of cases) {
        const err = await transfer(chunks);
        expect({ name, code: err?.code }).toEqual({ name, code });
        expect(err!.details).toMatch(details);
      }
      // Bytes that are no SnapshotChunk at all.
      const garbage = await new Promise<grpc.ServiceError | null>((resolve) => {
        const call = client.makeClientStreamRequest('/raftkv.raft.Raft/InstallSnapshot', (b: Buffer) => b, (b: Buffer) => b, new grpc.Metadata(), resolve);
        call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80]));
        call.end();
      });
      expect(garbage?.code).toBe(grpc.status.INTERNAL); // grpc's own answer to bytes it cannot decode
      // A newer transfer from the same sender supersedes an unfinished one.
      const stale = transfer([chunk(0, 50, { message: m })], false);
      await waitFor(() => b!.logs.some((l) => l.includes('receiving snapshot from node 3')), 'the first transfer to begin');
      expect(await transfer([chunk(0, 100, { message: m, last: true })])).toBeNull();
      expect((await stale)?.code).toBe(ABORTED);
      // Only the well-formed transfer was delivered, and the receiver serves on.
      expect(b!.snaps.length).toBe(1);
      expect(Buffer.from(b!.snaps[0]!.data)).toEqual(Buffer.alloc(100, 7));
      expect(b!.logs.some((l) => l.includes('discarded after 50 of 100 bytes: superseded by a newer transfer from node 3'))).toBe(true);
    } finally {
      client.close();
    }
  });

  it('delivers nothing when the sender closes mid-transfer, and sendSnapshot rejects', async () => {
    const [a, b] = await cluster3({ snapshotChunkBytes: 16 * 1024 });
    // Close the sender the moment the receiver has the first chunk.
    let closed: Promise<void> | undefined;
    b!.onLog = (line) => {
      if (line.includes('receiving snapshot from node 1')) closed ??= a!.t.close();
    };
    await expect(a!.t.sendSnapshot(snapMessage(1, 2), randomBytes(20 * 1024 * 1024))).rejects.toThrow(/snapshot to peer 2 failed: transport closed/);
    expect(closed).toBeDefined();
    await closed;
    await waitFor(() => b!.logs.some((l) => /snapshot from node 1 discarded after \d+ of 20971520 bytes/.test(l)), 'the receiver to drop it');
    expect(b!.snaps).toEqual([]);
    await expect(a!.t.sendSnapshot(snapMessage(1, 2), new Uint8Array(10))).rejects.toThrow(/transport closed/);
  });

  it('rejects, never hangs, when the peer is down or does not answer', async () => {
    const [downPort] = await freePorts(1);
    const a = await senderTo(downPort!);
    await expect(a.t.sendSnapshot(snapMessage(1, 2), randomBytes(1000))).rejects.toThrow(/snapshot to peer 2 failed: UNAVAILABLE/);

    const hungPort = await fakePeer((call) => call.on('data', () => {})); // takes the bytes, never answers
    const b = await senderTo(hungPort, { snapshotTimeoutMs: 300 });
    const t0 = Date.now();
    await expect(b.t.sendSnapshot(snapMessage(1, 2), randomBytes(1000))).rejects.toThrow(/not acknowledged within snapshotTimeoutMs \(300 ms\)/);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('rejects a second transfer to a peer while one is in flight, and bad requests at once', async () => {
    const [a, b] = await cluster3({ snapshotChunkBytes: 64 * 1024 });
    const first = a!.t.sendSnapshot(snapMessage(1, 2), randomBytes(2 * 1024 * 1024));
    await expect(a!.t.sendSnapshot(snapMessage(1, 2), randomBytes(10))).rejects.toThrow(/another snapshot transfer to this peer is in flight/);
    // Another peer is another transfer.
    await a!.t.sendSnapshot(snapMessage(1, 3), randomBytes(10));
    await first;
    expect(b!.snaps.length).toBe(1);
    // Once the first is done, the next may go.
    await a!.t.sendSnapshot(snapMessage(1, 2, 2), randomBytes(10));
    expect(b!.snaps.length).toBe(2);

    await expect(a!.t.sendSnapshot(snapMessage(1, 77), new Uint8Array(1))).rejects.toThrow(/peer 77 failed: not a known peer/);
    await expect(a!.t.sendSnapshot(msg('app', 1, 2), new Uint8Array(1))).rejects.toThrow(/expected a snap message/);
    const [port] = await freePorts(1);
    const idle = makeNode(1, port!, [{ id: 2, port: b!.port }]);
    await expect(idle.t.sendSnapshot(snapMessage(1, 2), new Uint8Array(1))).rejects.toThrow(/transport not started/);
  });
});
