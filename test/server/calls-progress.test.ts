/**
 * The empty progress frames of kv.proto's Calls stream, as the real gRPC server sends them:
 * while a call waits, kv-server sends an empty AnswerFrame every PROGRESS_MS (CallStream), so
 * that the SDK knows the node is alive and working on it rather than gone silent (its watchdog
 * would otherwise give the node up). call-stream.test.ts checks CallStream with a scripted timer,
 * call-mux.test.ts the SDK against a scripted server; this checks that grpc-network.ts wires
 * CallStream's timer to a real one, on a KvServer serving over gRPC on 127.0.0.1.
 *
 * A call that waits: a put to a leader that has lost its quorum. Two members of a three-member
 * cluster elect a leader, then the follower stops; the leader proposes the put, cannot commit
 * it, and answers only when it steps down (check-quorum, an election timeout later) or the
 * call's deadline passes.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { AnswerFrame__Output } from '../../src/generated/raftkv/kv/AnswerFrame.js';
import type { KvClient } from '../../src/generated/raftkv/kv/Kv.js';
import { loadKvProto } from '../../src/kv-api.js';
import { dataDirDisk } from '../../src/server/disk.js';
import { parseArgs } from '../../src/server/flags.js';
import { grpcNetwork } from '../../src/server/grpc-network.js';
import { KvServer } from '../../src/server/kv-server.js';
import type { Logger } from '../../src/server/logger.js';
import { freePorts } from '../support/ports.js';

/** The leader keeps leading (and the put waiting) at least this long after its follower stops: several progress intervals. */
const ELECTION_TIMEOUT_MS = 500;
const HEARTBEAT_MS = 50;
/** The call's timeout_ms (the client's deadline). */
const CALL_TIMEOUT_MS = 2000;
const LEADER_DEADLINE_MS = 15_000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});

/** Waits until `cond` holds, polling; fails after `ms`. */
async function waitFor<T>(what: string, cond: () => T | undefined, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = cond();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

it('kv-server sends empty AnswerFrames on the Calls stream while a call waits, before its answer', async () => {
  const [p1, p2, p3, c1, c2] = await freePorts(5);
  const peers = `1=127.0.0.1:${p1},2=127.0.0.1:${p2},3=127.0.0.1:${p3}`;
  const lines: string[] = [];
  const servers = new Map<number, KvServer>();
  for (const [id, clientPort] of [
    [1, c1],
    [2, c2],
  ] as const) {
    const dataDir = await mkdtemp(join(tmpdir(), `raftkv-progress-${id}-`));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const cfg = parseArgs([
      ...['--id', String(id), '--peers', peers, '--client-addr', `127.0.0.1:${clientPort}`, '--data-dir', dataDir],
      ...['--election-timeout', String(ELECTION_TIMEOUT_MS), '--heartbeat', String(HEARTBEAT_MS), '--unsafe-no-fsync'],
    ]);
    const line = (level: string) => (msg: string, fields?: object) => void lines.push(`n${id} ${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    const logger: Logger = { debug: () => {}, info: line('info'), warn: line('warn'), error: line('error') };
    const server = new KvServer(cfg, {
      clock: systemClock,
      disk: dataDirDisk(dataDir, { unsafeNoFsync: true }),
      network: grpcNetwork(),
      logger,
      seed: id,
      onFatal: (e) => void lines.push(`n${id} FATAL ${String(e)}`),
    });
    cleanup.push(() => server.stop());
    await server.start();
    servers.set(id, server);
  }

  const leaderId = await waitFor(
    `a leader\n${lines.join('\n')}`,
    () => [...servers].find(([, s]) => s.raft.status().role === 'leader')?.[0],
    LEADER_DEADLINE_MS,
  );
  const followerId = leaderId === 1 ? 2 : 1;
  await servers.get(followerId)!.stop();

  const Kv = loadKvProto().Kv;
  const client = new Kv(`127.0.0.1:${leaderId === 1 ? c1 : c2}`, grpc.credentials.createInsecure()) as unknown as KvClient;
  cleanup.push(async () => client.close());
  const stream = client.Calls();
  cleanup.push(async () => void stream.cancel());
  const frames: { at: number; frame: AnswerFrame__Output }[] = [];
  let ended: string | undefined;
  stream.on('data', (frame: AnswerFrame__Output) => frames.push({ at: Date.now(), frame }));
  stream.on('error', (e: Error) => (ended = e.message));
  stream.on('end', () => (ended ??= 'ended'));

  const sent = Date.now();
  stream.write({
    calls: [
      {
        id: 1,
        timeoutMs: CALL_TIMEOUT_MS,
        put: { session: { clientId: 4242, seq: 1, firstIncomplete: 1 }, key: Buffer.from('k'), value: Buffer.from('v') },
      },
    ],
  });
  const answeredAt = await waitFor(
    'the put answered',
    () => {
      if (ended !== undefined) throw new Error(`the stream ended before the answer: ${ended}`);
      const i = frames.findIndex((f) => f.frame.answers.some((a) => Number(a.id) === 1));
      return i < 0 ? undefined : i;
    },
    // Check-quorum steps the leader down within two election timeouts; the rest is slack for a loaded machine.
    2 * ELECTION_TIMEOUT_MS + 5000,
  );
  const answer = frames[answeredAt]!.frame.answers.find((a) => Number(a.id) === 1)!;
  const before = frames.slice(0, answeredAt);
  const waitedMs = frames[answeredAt]!.at - sent;
  // The put must have waited (not been refused at once), or the check below proves nothing.
  expect(waitedMs, `the put was answered after ${waitedMs} ms: ${JSON.stringify(answer)}`).toBeGreaterThan(300);
  expect(answer.put, 'a put the leader could not commit was not answered as done').toBeFalsy();
  expect(before.length, `no frame came in the ${waitedMs} ms the put waited`).toBeGreaterThan(0);
  expect(before.every((f) => f.frame.answers.length === 0)).toBe(true);
});
