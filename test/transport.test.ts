import { freePorts } from './support/ports.js';
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry, Message, MessageType, NodeId } from '../src/raft/core/types.js';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  GrpcTransport,
  batchOverheadBytes,
  encodeMessage,
  loadRaftProto,
  type GrpcTransportOptions,
} from '../src/raft/transport/grpc.js';
import type { RaftBatch } from '../src/raft/transport/generated/raftkv/raft/RaftBatch.js';

const CLUSTER = 'test-cluster';
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
];


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
  logs: string[];
  port: number;
}

const open: GrpcTransport[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function makeNode(
  self: NodeId,
  port: number,
  peers: { id: NodeId; port: number }[],
  extra: Partial<GrpcTransportOptions> = {},
): Node {
  const logs: string[] = [];
  const got: Message[] = [];
  const t = new GrpcTransport({
    clusterId: CLUSTER,
    self,
    listen: `127.0.0.1:${port}`,
    peers: peers.map((p) => ({ id: p.id, address: `127.0.0.1:${p.port}` })),
    logger: (line) => logs.push(line),
    ...extra,
  });
  t.onMessage((m) => got.push(m));
  open.push(t);
  return { t, got, logs, port };
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

function fullMessage(type: MessageType, from: NodeId, to: NodeId, seed: number): Message {
  const allBytes = new Uint8Array(256).map((_, i) => i);
  const entries: Entry[] = [
    { index: 2 ** 40 + seed, term: 7, type: 'noop', data: new Uint8Array(0) },
    { index: 2 ** 40 + seed + 1, term: 7, type: 'normal', data: allBytes },
    { index: 2 ** 40 + seed + 2, term: 8, type: 'normal', data: randomBytes(1000) },
    { index: 2 ** 40 + seed + 3, term: 8, type: 'normal', data: new Uint8Array(0) },
  ];
  return msg(type, from, to, {
    term: 123456789 + seed,
    index: Number.MAX_SAFE_INTEGER - seed,
    logTerm: 42,
    commit: 2 ** 33,
    reject: true,
    rejectHint: 99,
    context: 5 + seed,
    entries,
  });
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
        for (const type of ALL_TYPES) {
          const full = fullMessage(type, fromId, toId, seed++);
          const zero = msg(type, fromId, toId); // every field at its default
          from.t.send(full);
          from.t.send(zero);
          sent.get(toId)!.push(full, zero);
        }
      }
    }
    await waitFor(() => nodes.every((n, i) => n.got.length === sent.get(i + 1)!.length), 'all messages');
    for (const [i, n] of nodes.entries()) {
      // Per-sender order is preserved; messages from different senders interleave.
      for (const fromId of [1, 2, 3]) {
        const want = sent.get(i + 1)!.filter((m) => m.from === fromId);
        const got = n.got.filter((m) => m.from === fromId);
        expect(got.map(normalize)).toEqual(want.map(normalize));
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
      expect(b!.logs.some((l) => /from 42: not a known peer/.test(l))).toBe(true);
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
    for (let i = 0; i < 1000; i++) expect(() => a.t.send(msg('app', 1, 2, { index: i }))).not.toThrow();
    expect(() => a.t.send(msg('app', 1, 77))).not.toThrow();
    await new Promise((r) => setTimeout(r, 150)); // let a few reconnect attempts fail
    const b = makeNode(2, p2!, peers);
    await b.t.start();
    let k = 0;
    // Raft retries: keep sending until one gets through.
    await waitFor(() => b.got.length > 0, 'delivery after the peer started', 5000, () => a.t.send(msg('heartbeat', 1, 2, { commit: ++k })));
    expect(b.got[0]!.type).toBe('heartbeat');
    expect(a.logs.some((l) => l.includes('stream to peer 2') && l.includes('is up'))).toBe(true);
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
    await waitFor(() => a2.got.length > 0, 'b to reach the restarted node', 5000, () => b.t.send(msg('heartbeat', 2, 1)));
  });
});
