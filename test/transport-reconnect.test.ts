/**
 * A peer that comes back is reached at once. While a peer is down, the link to it backs off (up to
 * 2 s between attempts); when the peer restarts, it opens its own stream to this node, and that
 * stream is the sign that it is back: the link reconnects then rather than when its backoff ends.
 * In a rolling restart, a follower whose link to the node restarted just before is made leader by
 * the hand-over of the next node to stop; until it reaches the restarted node it has no quorum.
 */
import { afterEach, expect, it } from 'vitest';
import { message, type NodeId } from '../src/raft/core/types.js';
import { GrpcTransport } from '../src/raft/transport/grpc.js';
import { freePorts } from './support/ports.js';

const open: GrpcTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

function transport(self: NodeId, ports: Map<NodeId, number>, got: NodeId[] = []): GrpcTransport {
  const t = new GrpcTransport({
    clusterId: 'reconnect',
    self,
    listen: `127.0.0.1:${ports.get(self)!}`,
    peers: [...ports].map(([id, port]) => ({ id, address: `127.0.0.1:${port}` })),
    logger: () => {},
  });
  t.onMessage((m) => got.push(m.from));
  open.push(t);
  return t;
}

it('a link backed off from a peer that was down reconnects as soon as the peer, restarted, connects to this node', { timeout: 10_000 }, async () => {
  const [p1, p2] = await freePorts(2);
  const ports = new Map([
    [1, p1!],
    [2, p2!],
  ]);
  const a = transport(1, ports);
  await a.start();
  // Peer 2 stays down for 2 s: a's attempts (50, 100, 200, 400, 800 ms apart, ±20%) are over by
  // 1.86 s, and the next is at least 1.28 s after the last.
  await new Promise((r) => setTimeout(r, 2000));
  const got: NodeId[] = [];
  const b = transport(2, ports, got);
  await b.start();
  const started = Date.now();
  let k = 0;
  // a sends as Raft would (a heartbeat every 10 ms) until one arrives.
  while (got.length === 0 && Date.now() - started < 3000) {
    a.send(message({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: ++k }));
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = Date.now() - started;
  expect(got.length, 'a heartbeat from node 1 within 3 s').toBeGreaterThan(0);
  // Without the reconnect, at least 500 ms (the next attempt of the backoff), usually more than 1 s.
  expect(ms).toBeLessThan(400);
});
