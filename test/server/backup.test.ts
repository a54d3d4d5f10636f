/**
 * Backups (kv.proto's Backup): the leader's stream (src/server/backup.ts) into the client's checks
 * (src/client/backup-receiver.ts), with no gRPC between them. A backup is a snapshot file that
 * the server's decoder reads back whole; it waits for a ReadIndex-confirmed commit index to be
 * applied before it captures; and the receiver refuses every way a stream can be unsound.
 */
import { describe, expect, it } from 'vitest';
import { BackupReceiver } from '../../src/client/backup-receiver.js';
import { BackupError } from '../../src/client/errors.js';
import { systemClock } from '../../src/clock.js';
import type { BackupChunk__Output } from '../../src/generated/raftkv/kv/BackupChunk.js';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { encodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { Entry, NodeId } from '../../src/raft/core/types.js';
import type { ReplicatedLog } from '../../src/raft/replicated-log.js';
import { streamBackup, type BackupResult } from '../../src/server/backup.js';
import { encodeCommand } from '../../src/server/command.js';
import { KvStore } from '../../src/server/kv-store.js';
import { encodeMemberTable, type MemberTable } from '../../src/server/members.js';
import { decodeSnapshot } from '../../src/server/snapshot/decode.js';
import { SNAPSHOT_HEADER_BYTES } from '../../src/snapshot-header.js';

const IDS = { clusterId: 'raftkv-source', nodeId: 1 };
const TABLE: MemberTable = {
  members: [1, 2, 3].map((id) => ({ id, peerAddr: `127.0.0.1:${7000 + id}`, clientAddr: `127.0.0.1:${9000 + id}` })),
  removed: [],
};

/** This node's log: it leads, and records the ReadIndex rounds the store starts. */
class Log implements ReplicatedLog {
  leading = true;
  readonly rounds: number[] = [];
  propose(): undefined {
    return undefined;
  }
  readIndex(ctx: number): boolean {
    if (this.leading) this.rounds.push(ctx);
    return this.leading;
  }
  leaderId(): NodeId {
    return this.leading ? 1 : 2;
  }
}

/** A store that has applied a conf entry (1) and `n` puts (2..n+1), in term 3. */
function storeWith(n: number): { store: KvStore; entries: Entry[] } {
  const store = new KvStore(() => 0);
  const entries: Entry[] = [{ index: 1, term: 3, type: 'conf', data: encodeConfEntry({ conf: confOfVoters([1, 2, 3]), context: encodeMemberTable(TABLE) }) }];
  for (let i = 0; i < n; i++) entries.push(put(i + 2, `k${i}`, `v${i}`.repeat(1 + (i % 50))));
  for (const e of entries) store.applied(e);
  return { store, entries };
}

function put(index: number, key: string, value: string): Entry {
  const data = encodeCommand({ op: 'put', clientId: 7, seq: index - 1, firstIncomplete: index - 1, leaderTimeMs: 0, key: Buffer.from(key), value: Buffer.from(value), expected: new Uint8Array(0) });
  return { index, term: 3, type: 'normal', data };
}

/** The messages of one backup, as gRPC would deliver them (missing fields at their defaults). */
async function backup(store: KvStore, log: Log, opts: { maxBytes?: number; onSend?: (m: BackupChunk__Output) => void } = {}): Promise<{ result: BackupResult; messages: BackupChunk__Output[] }> {
  const messages: BackupChunk__Output[] = [];
  const src = { store, log, ids: IDS, confAt: () => confOfVoters([1, 2, 3]), table: () => TABLE, slicer: () => systemClock.slicer(), maxBytes: opts.maxBytes };
  const running = streamBackup(src, {
    send: async (c) => {
      const m = { info: c.info ? (c.info as BackupChunk__Output['info']) : null, data: Buffer.from((c.data as Uint8Array | undefined) ?? []), header: Buffer.from((c.header as Uint8Array | undefined) ?? []) };
      messages.push(m);
      opts.onSend?.(m);
    },
  });
  // The store's ReadIndex round is confirmed at what it has applied.
  await Promise.resolve();
  for (const ctx of log.rounds.splice(0)) store.readConfirmed({ ctx, index: store.appliedIndex });
  return { result: await running, messages };
}

/** Feeds `messages` to a receiver over an in-memory file; the file, or the receiver's refusal. */
async function receive(messages: BackupChunk__Output[], maxBytes?: number): Promise<Buffer> {
  let file = Buffer.alloc(0);
  const r = new BackupReceiver(async (data, at) => {
    if (at + data.length > file.length) file = Buffer.concat([file, Buffer.alloc(at + data.length - file.length)]);
    file.set(data, at);
  }, maxBytes);
  for (const m of messages) await r.take(m);
  const { bytes } = await r.finish();
  expect(bytes).toBe(file.length);
  return file;
}

async function refusal(messages: BackupChunk__Output[], maxBytes?: number): Promise<BackupError> {
  const e = await receive(messages, maxBytes).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(BackupError);
  return e as BackupError;
}

describe('a backup streamed by the leader', () => {
  it('is a snapshot file holding the state, its index and term, the configuration and the member table', async () => {
    const { store } = storeWith(3000);
    const { result, messages } = await backup(store, new Log());
    expect(result).toMatchObject({ ok: true, index: 3001, term: 3, keys: 3000 });
    expect(messages[0]!.info).toMatchObject({ clusterId: IDS.clusterId, nodeId: 1, index: 3001, term: 3, keyCount: 3000, voters: [1, 2, 3], learners: [] });
    expect(messages.length).toBeGreaterThan(3); // info, several data messages, header
    for (const m of messages.slice(1, -1)) expect(m.data.length).toBeLessThanOrEqual(256 * 1024);
    const file = await receive(messages);
    const d = decodeSnapshot(file, { clusterId: IDS.clusterId });
    expect(d.meta).toMatchObject({ clusterId: IDS.clusterId, nodeId: 1, index: 3001, term: 3, conf: confOfVoters([1, 2, 3]) });
    expect(d.state.table).toEqual(TABLE);
    expect(d.state.keys.length).toBe(3000);
    const i = d.state.keys.indexOf('k2999');
    expect(Buffer.from(d.state.values[i]!).toString()).toBe('v2999'.repeat(50));
  });

  it('waits until the state machine has applied the commit index its ReadIndex round confirmed, then captures', async () => {
    const { store } = storeWith(10);
    const log = new Log();
    const sent: BackupChunk__Output[] = [];
    const running = streamBackup(
      { store, log, ids: IDS, confAt: () => confOfVoters([1, 2, 3]), table: () => TABLE, slicer: () => systemClock.slicer() },
      { send: async (c) => void sent.push(c as BackupChunk__Output) },
    );
    // The leader had acknowledged a write at 12 that this store has not applied yet.
    store.readConfirmed({ ctx: log.rounds[0]!, index: 12 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sent).toEqual([]);
    store.applied(put(12, 'late', 'acknowledged'));
    const result = await running;
    expect(result).toMatchObject({ ok: true, index: 12, keys: 11 });
    expect(sent[0]!.info).toMatchObject({ index: 12, keyCount: 11 });
  });

  it('is refused by a node that does not lead (or no longer does): no state is sent', async () => {
    const { store } = storeWith(5);
    const log = new Log();
    log.leading = false;
    const { result, messages } = await backup(store, log);
    expect(result).toEqual({ ok: false, error: { code: 'notLeader', leaderId: 2 } });
    expect(messages).toEqual([]);
  });

  it('stops at the size cap, and says so', async () => {
    const { store } = storeWith(2000);
    const { result } = await backup(store, new Log(), { maxBytes: 64 * 1024 });
    expect(result).toMatchObject({ ok: false, tooLarge: expect.stringMatching(/over 65536 bytes, the limit/) });
  });
});

describe('the client refuses a backup stream that is not sound', () => {
  const stream = async (): Promise<BackupChunk__Output[]> => (await backup(storeWith(500).store, new Log())).messages;
  const copy = (ms: BackupChunk__Output[]): BackupChunk__Output[] => ms.map((m) => ({ ...m, data: Buffer.from(m.data), header: Buffer.from(m.header) }));

  it('a flipped byte anywhere in the data: checksum mismatch', async () => {
    const ms = copy(await stream());
    ms[1]!.data[7]! ^= 0x10;
    expect((await refusal(ms)).message).toMatch(/checksum mismatch/);
  });

  it('a damaged header', async () => {
    const ms = copy(await stream());
    ms[ms.length - 1]!.header[9]! ^= 1;
    expect((await refusal(ms)).message).toMatch(/header checksum mismatch/);
  });

  it('truncation: a data message lost, or the stream ending before its header', async () => {
    const ms = await stream();
    expect((await refusal([...ms.slice(0, 1), ...ms.slice(2)])).message).toMatch(/the header says \d+ bytes follow it, but \d+ arrived/);
    expect((await refusal(ms.slice(0, -1))).message).toMatch(/before the header: truncated/);
    expect((await refusal([])).message).toMatch(/before anything arrived/);
  });

  it('a header of the wrong size, data before the info, anything after the header', async () => {
    const ms = await stream();
    const last = ms[ms.length - 1]!;
    const oversized = { ...last, header: Buffer.concat([last.header, Buffer.alloc(1)]) };
    expect((await refusal([...ms.slice(0, -1), oversized])).message).toMatch(new RegExp(`a header of ${SNAPSHOT_HEADER_BYTES + 1} bytes`));
    expect((await refusal(ms.slice(1))).message).toMatch(/does not begin with what the backup holds/);
    expect((await refusal([...ms, ms[1]!])).message).toMatch(/after the header/);
  });

  it('a message over the message limit, or a file over the backup limit', async () => {
    const ms = await stream();
    const big = { info: null, data: Buffer.alloc(1024 * 1024 + 1), header: Buffer.alloc(0) };
    expect((await refusal([ms[0]!, big])).message).toMatch(/a message of 1048577 bytes/);
    const e = await refusal(ms, 4096);
    expect(e.kind).toBe('tooLarge');
  });

  it('an info message with a cluster id or a list that could not be ours', async () => {
    const ms = await stream();
    const info = ms[0]!.info!;
    expect((await refusal([{ ...ms[0]!, info: { ...info, clusterId: 'x'.repeat(129) } }, ...ms.slice(1)])).message).toMatch(/no valid cluster id/);
    expect((await refusal([{ ...ms[0]!, info: { ...info, voters: new Array(1025).fill(1) } }, ...ms.slice(1)])).message).toMatch(/lists 1025 voters/);
  });
});
