/**
 * What the peer transport refuses (issue 11): every field of every message is checked before it
 * reaches the node (grpc-codec.ts decodeMessage), and a refused message is dropped with one
 * rate-limited log line naming the peer and the reason, while the stream stays up.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_INDEX } from '../src/raft/core/acceptance.js';
import { MAX_MEMBERS } from '../src/raft/core/conf.js';
import { encodeConfEntry } from '../src/raft/core/conf-codec.js';
import { CAMPAIGN_TRANSFER, message as msg, type Message, type MessageType } from '../src/raft/core/types.js';
import { decodeMessage, encodeMessage, MAX_ENTRIES_PER_MESSAGE, MAX_MESSAGES_PER_BATCH } from '../src/raft/transport/grpc-codec.js';
import { GrpcTransport, loadRaftProto } from '../src/raft/transport/grpc.js';
import type { RaftBatch__Output } from '../src/raft/transport/generated/raftkv/raft/RaftBatch.js';
import type { RaftMessage, RaftMessage__Output } from '../src/raft/transport/generated/raftkv/raft/RaftMessage.js';
import { Network } from './raft/network.js';
import { freePorts } from './support/ports.js';

const CLUSTER = 'refusals';
const stream = loadRaftProto().raftkv.raft.Raft.service.Stream;

/** A core message in wire form, as our sender encodes it. */
const wire = (m: Message): RaftMessage => encodeMessage(m)!.msg;

/** `pm` as a receiver's grpc hands it over: serialized and parsed again. */
function received(pm: RaftMessage): RaftMessage__Output {
  const bytes = stream.requestSerialize({ clusterId: CLUSTER, messages: [pm] });
  return (stream.requestDeserialize(bytes) as RaftBatch__Output).messages[0]!;
}

/** Message `m` with its entry data as plain arrays, for deep comparisons. */
function plain(m: Message): unknown {
  return { ...m, entries: m.entries.map((e) => ({ ...e, data: [...e.data] })) };
}

describe('decodeMessage', () => {
  it('takes every message the core sends, unchanged: elections, appends with conflicts, conf changes, snapshots, reads, leadership transfer', () => {
    const net = new Network([1, 2, 3], { checkQuorum: false }); // so that node 2 can win while 1 still leads
    net.elect(1);
    for (let i = 0; i < 5; i++) net.propose(1, `a${i}`);
    // Node 1 takes entries it cannot commit, node 2 leads a new term over them: conflicts and hints.
    net.isolate(1);
    for (let i = 0; i < 3; i++) net.node(1).propose(new TextEncoder().encode(`lost${i}`));
    net.deliverAll();
    net.elect(2);
    net.isolate(3);
    for (let i = 0; i < 5; i++) net.propose(2, `b${i}`);
    // Node 3 falls behind a compaction, twice: it gets a snapshot, the second time of a joint
    // configuration (voter 3 on its way to learner).
    const leader = net.node(2);
    const snapshotTo3 = (): void => {
      leader.compact({ index: leader.log.applied, term: leader.log.term(leader.log.applied)! });
      net.recover();
      for (let i = 0; i < 3; i++) leader.tick();
      net.deliverAll();
    };
    snapshotTo3();
    net.isolate(3);
    expect(leader.proposeConfChange({ changes: [{ type: 'addLearner', id: 3 }], transition: 'explicitJoint' })).toMatchObject({ ok: true });
    net.deliverAll();
    snapshotTo3();
    expect(leader.proposeConfChange({ changes: [] })).toMatchObject({ ok: true }); // leaves the joint configuration
    net.deliverAll();
    leader.readIndex(1);
    net.deliverAll();
    expect(leader.transferLeadership(1)).toEqual({ ok: true });
    net.deliverAll();
    expect(net.node(1).role).toBe('leader');
    const types = new Set(net.delivered.map((m) => m.type));
    expect([...types].sort()).toEqual(['app', 'appResp', 'heartbeat', 'heartbeatResp', 'preVote', 'preVoteResp', 'snap', 'timeoutNow', 'vote', 'voteResp']);
    expect(net.delivered.some((m) => m.type === 'appResp' && m.reject && m.logTerm > 0)).toBe(true); // a conflict hint
    expect(net.delivered.some((m) => m.type === 'heartbeatResp' && m.context > 0)).toBe(true); // a read round
    expect(net.delivered.some((m) => m.type === 'app' && m.entries.some((e) => e.type === 'conf'))).toBe(true);
    expect(net.delivered.some((m) => m.type === 'snap' && m.conf?.learnersNext.includes(3))).toBe(true);
    expect(net.delivered.some((m) => m.type === 'vote' && m.context === CAMPAIGN_TRANSFER)).toBe(true);
    for (const m of net.delivered) {
      const got = decodeMessage(received(wire(m)));
      expect(plain(got as Message)).toEqual(plain(m));
    }
  });

  const term = 7;
  const app = msg({
    type: 'app',
    from: 1,
    to: 2,
    term,
    index: 10,
    logTerm: 5,
    commit: 9,
    entries: [5, 6, 7].map((t, i) => ({ index: 11 + i, term: t, type: 'normal' as const, data: new Uint8Array([i]) })),
  });
  const withEntry = (k: number, e: object): RaftMessage => ({ ...wire(app), entries: wire(app).entries!.map((x, i) => (i === k ? { ...x, ...e } : x)) });
  const entryAt = (index: number, t: number) => ({ index, term: t, type: 'normal' as const, data: new Uint8Array() });
  const at = (type: MessageType, fields: Partial<Message> = {}): RaftMessage => wire(msg({ type, from: 1, to: 2, term, ...fields }));
  const conf = { voters: [1, 2, 3], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
  /** A snap message whose configuration is `conf` with `changes`, in wire form (ids may be anything a peer can send). */
  const snapWith = (changes: Record<string, unknown>): RaftMessage => ({ ...at('snap', { index: 3, logTerm: 2, commit: 3 }), conf: { ...conf, ...changes } });
  const confEntry = (c: object) => encodeConfEntry({ conf: { ...conf, ...c }, context: new Uint8Array([1, 2]) });
  const cases: [string, RaftMessage, RegExp][] = [
    ['unspecified type', { ...at('heartbeat'), type: 'MESSAGE_TYPE_UNSPECIFIED' }, /unknown message type/],
    ['unknown type', { ...at('heartbeat'), type: 11 as unknown as 'MESSAGE_TYPE_UNSPECIFIED' }, /unknown message type 11/],
    ['sender 0', at('heartbeat', { from: 0 }), /sender id 0 is not a node id/],
    ['receiver 0', at('heartbeat', { to: 0 }), /receiver id 0 is not a node id/],
    ['sender past 2^64', { ...at('heartbeat'), from: '18446744073709551615' }, /sender id 18446744073709552000 is not a node id/],
    ['term 2^52', at('heartbeat', { term: 2 ** 52 }), /term 4503599627370496 is outside 0\.\.4503599627370495/],
    ['term 2^53 - 1 (issue 11)', at('heartbeat', { term: 2 ** 53 - 1 }), /term 9007199254740991 is outside/],
    ['term 2^64 - 1', { ...at('heartbeat'), term: '18446744073709551615' }, /term 18446744073709552000 is outside/],
    ['index past the cap', at('vote', { index: MAX_INDEX + 1 }), /index 4503599627370496 is outside/],
    ['logTerm past the cap', { ...at('vote'), logTerm: '9223372036854775807' }, /logTerm 9223372036854776000 is outside/],
    ['commit past the cap', at('heartbeat', { commit: 2 ** 53 }), /commit 9007199254740992 is outside/],
    ['rejectHint past the cap', at('appResp', { rejectHint: 2 ** 60 }), /rejectHint \d+ is outside/],
    ['context past the cap', at('heartbeat', { context: 2 ** 52 }), /context \d+ is outside/],
    ['entries on a vote', { ...at('vote'), entries: wire(app).entries }, /vote messages carry no entries/],
    ['commit on a vote', at('vote', { commit: 3 }), /vote messages carry no commit/],
    ['context on an append', { ...wire(app), context: 1 }, /app messages carry no context/],
    ['reject on a heartbeat', at('heartbeat', { reject: true }), /heartbeat messages carry no reject/],
    ['rejectHint on a heartbeat response', at('heartbeatResp', { rejectHint: 1 }), /heartbeatResp messages carry no rejectHint/],
    ['index on a heartbeat', at('heartbeat', { index: 1 }), /heartbeat messages carry no index/],
    ['index on a timeoutNow', at('timeoutNow', { index: 1 }), /timeoutNow messages carry no index/],
    ['context on a timeoutNow', at('timeoutNow', { context: 1 }), /timeoutNow messages carry no context/],
    ['term 0 on a timeoutNow', at('timeoutNow', { term: 0 }), /timeoutNow messages carry a term of at least 1, not 0/],
    ['context on a pre-vote', at('preVote', { context: 1 }), /preVote messages carry no context/],
    ['a vote context that is no transfer', at('vote', { context: 2 }), /vote context 2 is neither 0 nor 1/],
    ['conf on an append', { ...wire(app), conf }, /app messages carry no conf/],
    ['conf on a timeoutNow', { ...at('timeoutNow'), conf }, /timeoutNow messages carry no conf/],
    ['conf on a vote', { ...at('vote'), conf }, /vote messages carry no conf/],
    ['a snapshot conf without voters', snapWith({ voters: [] }), /configuration is invalid: it has no voters/],
    ['a snapshot conf with node id 0', snapWith({ voters: [0, 1] }), /configuration is invalid: voters holds 0, not a node id/],
    ['a snapshot conf with an id past 2^53', snapWith({ learners: ['18446744073709551615'] }), /learners holds 18446744073709552000, not a node id/],
    ['a snapshot conf out of order', snapWith({ voters: [2, 1] }), /voters is not in strictly ascending order \(1 after 2\)/],
    ['a snapshot conf repeating an id', snapWith({ votersOutgoing: [1, 1] }), /votersOutgoing is not in strictly ascending order \(1 after 1\)/],
    ['a snapshot conf with a voter that is a learner', snapWith({ learners: [3] }), /node 3 is both a voter and a learner/],
    ['a snapshot conf with learnersNext outside a joint conf', snapWith({ learnersNext: [4] }), /node 4 is to become a learner but is not only an outgoing voter/],
    ['a snapshot conf with autoLeave outside a joint conf', snapWith({ autoLeave: true }), /not joint has learnersNext or autoLeave/],
    [`a snapshot conf of more than ${MAX_MEMBERS} voters`, snapWith({ voters: Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => i + 1) }), /voters has 1025 ids \(the limit is 1024\)/],
    ['a conf entry of garbage', withEntry(1, { type: 'ENTRY_TYPE_CONF', data: Buffer.from('garbage') }), /entry 12: conf entry: unknown version 103/],
    ['a truncated conf entry', withEntry(1, { type: 'ENTRY_TYPE_CONF', data: confEntry({}).subarray(0, -1) }), /entry 12: conf entry: context of 2 bytes does not match/],
    ['a conf entry of an invalid configuration', withEntry(2, { type: 'ENTRY_TYPE_CONF', data: confEntry({ learners: [2] }) }), /entry 13: conf entry: node 2 is both a voter and a learner/],
    ['an empty conf entry', withEntry(0, { type: 'ENTRY_TYPE_CONF' }), /entry 11: conf entry: truncated header/],
    ['term 0 on an append', { ...wire(app), term: 0 }, /app messages carry a term of at least 1, not 0/],
    ['term 0 on a vote', at('vote', { term: 0 }), /vote messages carry a term of at least 1, not 0/],
    ['logTerm above term', at('vote', { logTerm: term + 1 }), /logTerm 8 is above the term 7/],
    ['snapshot past commit', at('snap', { index: 10, logTerm: 3, commit: 9 }), /snapshot's index 10 is past the leader's commit 9/],
    ['entries not after index', { ...wire(app), index: 9 }, /entry 0 has index 11, expected 10/],
    ['a gap in entries', withEntry(1, { index: 13 }), /entry 1 has index 13, expected 12/],
    ['entries out of order', { ...wire(app), entries: [...wire(app).entries!].reverse() }, /entry 0 has index 13, expected 11/],
    ['an entry term above the message term', withEntry(2, { term: term + 1 }), /entry 13 has term 8, outside 6\.\.7/],
    ['an entry term below logTerm', withEntry(0, { term: 4 }), /entry 11 has term 4, outside 5\.\.7/],
    ['entry terms going down', withEntry(2, { term: 5 }), /entry 13 has term 5, outside 6\.\.7/],
    ['an entry term of 0', at('app', { entries: [entryAt(1, 0)] }), /entry 1 has term 0, outside 1\.\.7/],
    ['an entry of unknown type', withEntry(1, { type: 7 }), /entry 12 has unknown type 7/],
    ['entries past the last index', at('app', { index: MAX_INDEX - 1, logTerm: 1, entries: [entryAt(MAX_INDEX, 1), entryAt(MAX_INDEX + 1, 1)] }), /run past index/],
  ];
  for (const [name, pm, why] of cases) {
    it(`refuses ${name}`, () => {
      const got = decodeMessage(received(pm));
      expect(got).toHaveProperty('detail');
      expect((got as { detail: string }).detail).toMatch(why);
    });
  }

  it("names the rule 'conf' for a refused configuration; takes a valid one and a valid conf entry", () => {
    expect(decodeMessage(received(snapWith({ learners: [3] })))).toMatchObject({ rule: 'conf' });
    expect(decodeMessage(received(withEntry(1, { type: 'ENTRY_TYPE_CONF', data: Buffer.from('x') })))).toMatchObject({ rule: 'conf' });
    const joint = { voters: [1, 2], votersOutgoing: [1, 2, 3], learners: [4], learnersNext: [3], autoLeave: true };
    expect(decodeMessage(received(snapWith(joint)))).toMatchObject({ type: 'snap', conf: joint });
    const withConf = decodeMessage(received(withEntry(1, { type: 'ENTRY_TYPE_CONF', data: confEntry(joint) })));
    expect((withConf as Message).entries.map((e) => e.type)).toEqual(['normal', 'conf', 'normal']);
    // A snap message of an older sender, without a configuration: taken, with none.
    expect(decodeMessage(received(at('snap', { index: 3, logTerm: 2, commit: 3 })))).not.toHaveProperty('conf');
  });

  it(`refuses more than ${MAX_ENTRIES_PER_MESSAGE} entries, and more entry bytes than maxMessageBytes`, () => {
    const many = Array.from({ length: MAX_ENTRIES_PER_MESSAGE + 1 }, (_, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: new Uint8Array() }));
    expect(decodeMessage(received(at('app', { entries: many })))).toMatchObject({ rule: 'entries', detail: /131073 entries, more than 131072/ });
    expect(decodeMessage(received(at('app', { entries: many.slice(0, -1) })))).not.toHaveProperty('rule');
    const big = [1, 2].map((i) => ({ index: i, term: 1, type: 'normal' as const, data: new Uint8Array(600) }));
    expect(decodeMessage(received(at('app', { entries: big })), 1200)).not.toHaveProperty('rule');
    expect(decodeMessage(received(at('app', { entries: big })), 1199)).toMatchObject({ rule: 'size', detail: /more than 1199 bytes/ });
  });
});

describe('a receiving transport', () => {
  const open: GrpcTransport[] = [];
  const clients: grpc.Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  /** Node 2 of {1, 2, 3}, alone (its peers are never up), with its log lines and deliveries. */
  async function receiver(): Promise<{ logs: string[]; got: Message[]; send: (batches: object[]) => Promise<grpc.ServiceError | null> }> {
    const [p1, p2, p3] = await freePorts(3);
    const logs: string[] = [];
    const got: Message[] = [];
    const t = new GrpcTransport({
      clusterId: CLUSTER,
      self: 2,
      listen: `127.0.0.1:${p2}`,
      peers: [1, 3].map((id) => ({ id, address: `127.0.0.1:${id === 1 ? p1 : p3}` })),
      logger: (l) => logs.push(l),
    });
    open.push(t);
    t.onMessage((m) => got.push(m));
    await t.start();
    const client = new (loadRaftProto().raftkv.raft.Raft)(`127.0.0.1:${p2}`, grpc.credentials.createInsecure());
    clients.push(client);
    const send = (batches: object[]) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const call = client.Stream((err) => resolve(err));
        for (const b of batches) call.write(b);
        call.end();
      });
    return { logs, got, send };
  }

  const heartbeat = (from: number): RaftMessage => wire(msg({ type: 'heartbeat', from, to: 2, term: 3, commit: 1 }));

  it('drops each refused message with one line per peer and rule, keeps the stream up and delivers the rest', async () => {
    const r = await receiver();
    const forged: RaftMessage[] = [];
    for (let i = 0; i < 100; i++) {
      forged.push({ ...heartbeat(3), term: 2 ** 53 - 1 - i }); // issue 11's term, and more
      forged.push(heartbeat(1000 + i)); // strangers, each under another id
      forged.push(wire(msg({ type: 'snap', from: 1, to: 2, term: 3, index: 1, logTerm: 1, commit: 1 })));
    }
    const status = await r.send([{ clusterId: CLUSTER, messages: forged }, { clusterId: CLUSTER, messages: [heartbeat(1), heartbeat(3)] }]);
    expect(status).toBeNull(); // ended by us, cleanly: the stream was never cut
    expect(r.got.map((m) => m.from)).toEqual([1, 3]);
    const refusals = r.logs.filter((l) => l.includes('refused'));
    expect(refusals).toHaveLength(3);
    expect(refusals).toEqual([
      expect.stringMatching(/refused MESSAGE_TYPE_HEARTBEAT from 3 \(.*127\.0\.0\.1:\d+\): term 9007199254740991 is outside 0\.\.4503599627370495$/),
      expect.stringMatching(/refused MESSAGE_TYPE_HEARTBEAT from 1000 \(.*\): not a known peer/),
      expect.stringMatching(/refused MESSAGE_TYPE_SNAPSHOT from 1 \(.*\): a snap message travels only at the head of an InstallSnapshot call/),
    ]);
  });

  it(`refuses a batch of more than ${MAX_MESSAGES_PER_BATCH} messages whole, and takes the next`, async () => {
    const r = await receiver();
    const huge = Array.from({ length: MAX_MESSAGES_PER_BATCH + 1 }, () => heartbeat(1));
    expect(await r.send([{ clusterId: CLUSTER, messages: huge }, { clusterId: CLUSTER, messages: [heartbeat(3)] }])).toBeNull();
    expect(r.got.map((m) => m.from)).toEqual([3]);
    expect(r.logs.some((l) => l.includes(`refused batch of ${MAX_MESSAGES_PER_BATCH + 1} messages`))).toBe(true);
  });

  it("ends the stream of another cluster's batch, and quotes the stranger's cluster id in one line", async () => {
    const r = await receiver();
    const status = await r.send([{ clusterId: 'evil\nraft transport 2: FAKE LINE' + 'x'.repeat(10_000), messages: [heartbeat(1)] }]);
    expect(status?.code).toBe(grpc.status.FAILED_PRECONDITION);
    const line = r.logs.find((l) => l.includes('cluster id mismatch'))!;
    expect(line).toMatch(/from cluster "evil\\nraft transport 2: FAKE LINEx+…"/);
    expect(line).not.toContain('\n');
    expect(line.length).toBeLessThan(400);
    expect(r.got).toEqual([]);
  });
});
