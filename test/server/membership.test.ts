/**
 * The membership calls of KvService (membership.ts) on a fake Raft that applies what it is given
 * to a real KvStore: what each call answers, what it proposes (the conf entry and its member
 * table), and every refusal, each of which changes nothing.
 */
import { describe, expect, it } from 'vitest';
import type { MemberChangeResponse, MemberListResponse } from '../../src/kv-api.js';
import { changeConf, confOfVoters, type ConfChange, type ConfState } from '../../src/raft/core/conf.js';
import { encodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { RaftStatus } from '../../src/raft/core/raft.js';
import type { NodeId } from '../../src/raft/core/types.js';
import { MembershipError, type ConfChangeDone, type MemberState } from '../../src/raft/node.js';
import { KvService, type ServiceError } from '../../src/server/kv-service.js';
import { KvStore } from '../../src/server/kv-store.js';
import { AddressBook, encodeMemberTable, type MemberAddress, type MemberTable } from '../../src/server/members.js';
import type { MembershipRaft } from '../../src/server/membership.js';

const addr = (id: NodeId): MemberAddress => ({ id, peerAddr: `10.0.0.${id}:7000`, clientAddr: `10.0.0.${id}:9000` });

/** A leader (node 1 by default) whose proposals apply at once unless held; its followers' progress is set by the test. */
class FakeRaft implements MembershipRaft {
  role: RaftStatus['role'] = 'leader';
  leader: NodeId = 1;
  term = 3;
  lastIndex = 5000;
  conf: ConfState;
  progress = new Map<NodeId, Partial<MemberState>>();
  /** A change proposed and not applied yet (the core refuses another meanwhile). */
  pending: (() => void) | undefined;
  hold = false;
  readonly proposed: { cc: ConfChange; table: MemberTable }[] = [];
  transfer: (to: NodeId) => Promise<{ leaderId: NodeId; term: number }> = (to) => Promise.resolve({ leaderId: to, term: this.term + 1 });

  constructor(
    readonly store: KvStore,
    conf: ConfState,
  ) {
    this.conf = conf;
    for (const id of [...conf.voters, ...conf.learners]) this.progress.set(id, { match: this.lastIndex, active: true, state: 'replicate' });
  }

  status(): RaftStatus {
    return { id: 1, role: this.role, term: this.term, vote: 1, leaderId: this.leader, commit: this.lastIndex, applied: this.lastIndex, lastIndex: this.lastIndex, snapshotIndex: 0, conf: this.conf, leadTransferee: 0 };
  }

  awaitTermApplied(): Promise<void> {
    return Promise.resolve();
  }

  members(): MemberState[] {
    if (this.role !== 'leader') return [];
    return [...this.progress].map(([id, p]) => ({ id, voter: this.conf.voters.includes(id), match: 0, next: 0, state: 'replicate', recentActive: false, active: false, ...p }));
  }

  proposeConfChange(cc: ConfChange, context: Uint8Array): Promise<ConfChangeDone> {
    if (this.pending) return Promise.reject(new MembershipError('refused', `a configuration change is pending (at index ${this.lastIndex})`, 1));
    const next = changeConf(this.conf, cc);
    if (!next.ok) return Promise.reject(new MembershipError('refused', next.reason, 1));
    this.proposed.push({ cc, table: JSON.parse(Buffer.from(context).toString()) as MemberTable });
    const index = ++this.lastIndex;
    return new Promise((resolve) => {
      this.pending = () => {
        this.pending = undefined;
        this.store.applied({ index, term: this.term, type: 'conf', data: encodeConfEntry({ conf: next.conf, context }) });
        this.conf = next.conf;
        resolve({ index, term: this.term, conf: next.conf });
      };
      if (!this.hold) this.pending();
    });
  }

  transferLeadership(to: NodeId): Promise<{ leaderId: NodeId; term: number }> {
    return this.transfer(to);
  }
}

interface Setup {
  raft: FakeRaft;
  store: KvStore;
  service: KvService;
  probed: MemberAddress[];
}

/** Node 1 of a cluster of voters 1-3 whose table (from a first conf entry) also records node 9 as removed. */
function setup(opts: { probe?: (m: MemberAddress) => string | undefined } = {}): Setup {
  const store = new KvStore(() => 0);
  const conf = confOfVoters([1, 2, 3]);
  store.applied({ index: 1, term: 1, type: 'conf', data: encodeConfEntry({ conf, context: encodeMemberTable({ members: [1, 2, 3].map(addr), removed: [9] }) }) });
  const raft = new FakeRaft(store, conf);
  const probed: MemberAddress[] = [];
  const service = new KvService({
    store,
    raft: Object.assign(raft, {
      propose: () => undefined,
      readIndex: () => false,
      leaderId: () => raft.leader,
      awaitLeader: () => Promise.resolve(),
      snapshot: () => Promise.reject(new Error('no')),
    }),
    snapshotIndex: () => 0,
    nodeId: 1,
    clusterId: 'c1',
    book: new AddressBook({ members: [], removed: [] }, () => store.sm.members),
    transferTimeoutMs: 600,
    probe: (m) => (probed.push(m), Promise.resolve(opts.probe?.(m))),
  });
  return { raft, store, service, probed };
}

type Outcome<T> = { error: ServiceError | null; response?: T };

/** Calls a service method and waits for its answer. */
function call<Req, Res>(fn: (req: Req, reply: (error: ServiceError | null, response?: Res) => void) => void, req: Req): Promise<Outcome<Res>> {
  return new Promise((resolve) => fn(req, (error, response) => resolve({ error, response })));
}

const add = (s: Setup, req: { id: number; peerAddr?: string; clientAddr?: string; learner?: boolean }) =>
  call<Parameters<KvService['memberAdd']>[0], MemberChangeResponse>((r, cb) => s.service.memberAdd(r, cb), {
    peerAddr: addr(req.id).peerAddr,
    clientAddr: addr(req.id).clientAddr,
    learner: true,
    ...req,
  });
const promote = (s: Setup, id: number) => call<{ id: number }, MemberChangeResponse>((r, cb) => s.service.memberPromote(r, cb), { id });
const remove = (s: Setup, id: number, force = false) => call<{ id: number; force: boolean }, MemberChangeResponse>((r, cb) => s.service.memberRemove(r, cb), { id, force });
const transfer = (s: Setup, id: number) => call<{ id: number }, { leaderId: number; term: number }>((r, cb) => s.service.leaderTransfer(r, cb), { id });
const list = (s: Setup) => call<object, MemberListResponse>((r, cb) => s.service.memberList(r, cb), {});

/** A refusal by the leader: conf-refused, saying `why`; nothing proposed. */
function expectRefused(s: Setup, o: Outcome<unknown>, why: RegExp, proposed = 0): void {
  expect(o.error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'conf-refused', details: expect.stringMatching(why) });
  expect(s.raft.proposed).toHaveLength(proposed);
}

describe('MemberList', () => {
  it("answers from any node with its applied table, the learner flags and the cluster's ids; the leader adds progress", async () => {
    const s = setup();
    s.raft.progress.set(2, { match: 4000, active: true });
    s.raft.progress.set(3, { match: 10, active: false });
    const leader = await list(s);
    expect(leader.response).toEqual({
      members: [
        { ...addr(1), learner: false, matchIndex: 5000, active: true },
        { ...addr(2), learner: false, matchIndex: 4000, active: true },
        { ...addr(3), learner: false, matchIndex: 10, active: false },
      ],
      leaderId: 1,
      clusterId: 'c1',
      commitIndex: 5000,
      joint: false,
      nodeId: 1,
    });
    s.raft.role = 'follower';
    s.raft.leader = 2;
    s.raft.conf = { ...confOfVoters([1, 2]), learners: [3] };
    const follower = await list(s);
    expect(follower.response!.members).toEqual([
      { ...addr(1), learner: false, matchIndex: 0, active: false },
      { ...addr(2), learner: false, matchIndex: 0, active: false },
      { ...addr(3), learner: true, matchIndex: 0, active: false },
    ]);
    expect(follower.response!.leaderId).toBe(2);
  });
});

describe('MemberAdd', () => {
  it('adds a learner: one conf entry whose table lists it, answered with the members after it and its index', async () => {
    const s = setup();
    const r = await add(s, { id: 4 });
    expect(r.error).toBeNull();
    expect(s.raft.proposed).toEqual([{ cc: { changes: [{ type: 'addLearner', id: 4 }] }, table: { members: [1, 2, 3, 4].map(addr), removed: [9] } }]);
    expect(r.response).toEqual({
      members: [...[1, 2, 3].map((id) => ({ ...addr(id), learner: false, matchIndex: 5000, active: true })), { ...addr(4), learner: true, matchIndex: 0, active: false }],
      index: 5001,
    });
    expect(s.store.sm.members?.members.map((m) => m.id)).toEqual([1, 2, 3, 4]);
    expect(s.probed).toEqual([addr(4)]);
  });

  it('refuses on a follower like a write: not-leader with the leader hint', async () => {
    const s = setup();
    s.raft.role = 'follower';
    s.raft.leader = 2;
    const r = await add(s, { id: 4 });
    expect(r.error).toMatchObject({ code: 'FAILED_PRECONDITION', reason: 'not-leader', leaderAddr: addr(2).clientAddr });
    expect(s.raft.proposed).toHaveLength(0);
  });

  it('refuses an id in use or ever removed, an address in use, invalid addresses, and addresses that answer as another node', async () => {
    const s = setup({ probe: (m) => (m.peerAddr === '10.9.9.9:7000' ? 'answer as node 1 of another cluster' : undefined) });
    expectRefused(s, await add(s, { id: 2 }), /node 2 is already a member \(peer 10\.0\.0\.2:7000/);
    expectRefused(s, await add(s, { id: 9 }), /node 9 was removed from this cluster, and ids are never reused/);
    expectRefused(s, await add(s, { id: 4, peerAddr: addr(3).clientAddr }), /address 10\.0\.0\.3:9000 is already used by node 3/);
    expectRefused(s, await add(s, { id: 4, peerAddr: 'no-port' }), /peer address: "no-port" is not a host:port/);
    expectRefused(s, await add(s, { id: 4, clientAddr: '10.0.0.4:0' }), /client address: .*port 0/);
    expectRefused(s, await add(s, { id: 4, clientAddr: addr(4).peerAddr }), /must differ/);
    expectRefused(s, await add(s, { id: 4, peerAddr: '10.9.9.9:7000' }), /addresses: answer as node 1 of another cluster/);
    expectRefused(s, await add(s, { id: 0 }), /0 is not a node id/);
  });

  it('refuses a voter the live voters could not outvote: add it as a learner instead', async () => {
    const s = setup();
    s.raft.progress.set(3, { active: false });
    expectRefused(s, await add(s, { id: 4, learner: false }), /only 2 of 4 voters would be live: no quorum. Add it as a learner/);
    expect((await add(s, { id: 4, learner: true })).error).toBeNull();
  });

  it('passes the core refusal of a second change while one is pending, changing nothing', async () => {
    const s = setup();
    s.raft.hold = true;
    const first = add(s, { id: 4 });
    await new Promise((r) => setImmediate(r)); // the first is proposed (after its probe)
    expectRefused(s, await add(s, { id: 5 }), /a configuration change is pending/, 1);
    s.raft.pending!();
    expect((await first).error).toBeNull();
  });
});

describe('MemberPromote', () => {
  it('promotes a learner that has caught up', async () => {
    const s = setup();
    await add(s, { id: 4 });
    s.raft.progress.set(4, { match: s.raft.lastIndex - 1000, active: true });
    const r = await promote(s, 4);
    expect(r.error).toBeNull();
    expect(s.raft.proposed.at(-1)!.cc).toEqual({ changes: [{ type: 'addVoter', id: 4 }] });
    expect(r.response!.members.find((m) => m.id === 4)!.learner).toBe(false);
  });

  it('refuses a learner far behind, receiving a snapshot, or not heard from; an unknown id; a voter', async () => {
    const s = setup();
    await add(s, { id: 4 });
    s.raft.progress.set(4, { match: s.raft.lastIndex - 1001, active: true });
    expectRefused(s, await promote(s, 4), /node 4 is far behind \(its log ends at 4000, the leader's at 5001.*retry when it has caught up/, 1);
    s.raft.progress.set(4, { match: s.raft.lastIndex, active: true, state: 'snapshot' });
    expectRefused(s, await promote(s, 4), /far behind \(it is receiving a snapshot/, 1);
    s.raft.progress.set(4, { match: s.raft.lastIndex, active: false });
    expectRefused(s, await promote(s, 4), /has not been heard from within an election timeout: is it running/, 1);
    expectRefused(s, await promote(s, 7), /node 7 is not a member; the members are 1, 2, 3, 4/, 1);
    expectRefused(s, await promote(s, 2), /node 2 is a voter already/, 1);
  });
});

describe('MemberRemove', () => {
  it('removes a member and records its id as removed, never to be added again', async () => {
    const s = setup();
    const r = await remove(s, 3);
    expect(r.error).toBeNull();
    expect(s.raft.proposed).toEqual([{ cc: { changes: [{ type: 'remove', id: 3 }] }, table: { members: [1, 2].map(addr), removed: [3, 9] } }]);
    expect(r.response!.members.map((m) => m.id)).toEqual([1, 2]);
    expectRefused(s, await add(s, { id: 3 }), /node 3 was removed from this cluster/, 1);
    expectRefused(s, await remove(s, 3), /node 3 is not a member \(it was removed\)/, 1);
  });

  it('refuses an unknown id, and a removal leaving no live quorum unless forced', async () => {
    const s = setup();
    expectRefused(s, await remove(s, 8), /node 8 is not a member; the members are 1, 2, 3/);
    s.raft.progress.set(2, { active: false });
    s.raft.progress.set(3, { active: false });
    // Voters 1 and 2 would remain, only 1 live.
    expectRefused(s, await remove(s, 3), /voters would be 1, 2, of which only 1 \(1\) were heard from.*no live quorum.*--force/);
    expect((await remove(s, 3, true)).error).toBeNull();
  });

  it('a change whose outcome became unknown (leadership lost before it applied) answers UNAVAILABLE outcome-unknown, not a refusal', async () => {
    const s = setup();
    s.raft.proposeConfChange = () => Promise.reject(new MembershipError('outcomeUnknown', 'node 1 stopped leading before the change was applied here; it may still take effect', 2));
    const r = await remove(s, 3);
    // The reason says that this node answered: a client must not take it for one that did not.
    expect(r.error).toMatchObject({ code: 'UNAVAILABLE', reason: 'outcome-unknown', details: expect.stringMatching(/may still take effect: see the member list/) });
  });
});

describe('LeaderTransfer', () => {
  it('id 0 picks the most up-to-date live voter; the answer names the new leader and term', async () => {
    const s = setup();
    s.raft.progress.set(2, { match: 4990, active: true });
    s.raft.progress.set(3, { match: 4999, active: true });
    expect((await transfer(s, 0)).response).toEqual({ leaderId: 3, term: 4 });
    s.raft.progress.set(3, { match: 5000, active: false });
    expect((await transfer(s, 0)).response).toEqual({ leaderId: 2, term: 4 });
    expect((await transfer(s, 1)).response).toEqual({ leaderId: 1, term: 3 });
  });

  it('a transfer the core abandons or refuses is conf-refused; on a follower, not-leader', async () => {
    const s = setup();
    s.raft.transfer = () => Promise.reject(new MembershipError('abandoned', 'the transfer to node 2 was abandoned: it did not take over', 1));
    expectRefused(s, await transfer(s, 2), /abandoned: it did not take over/);
    s.raft.role = 'follower';
    s.raft.leader = 3;
    expect((await transfer(s, 2)).error).toMatchObject({ reason: 'not-leader', leaderAddr: addr(3).clientAddr });
  });
});

describe('a leader handing leadership over (SIGTERM)', () => {
  it('holds a write it cannot propose until the new leader is known, then forwards it there with its deadline', async () => {
    const s = setup();
    let leader = 1;
    const forwarded: { to: number; method: string; deadline?: number }[] = [];
    const service = new KvService({
      store: s.store,
      raft: Object.assign(s.raft, {
        propose: () => undefined, // the core takes nothing new during a transfer
        readIndex: () => false,
        leaderId: () => leader,
        awaitLeader: () => new Promise<void>((resolve) => setTimeout(() => ((leader = 2), resolve()), 20)),
        snapshot: () => Promise.reject(new Error('no')),
      }),
      snapshotIndex: () => 0,
      nodeId: 1,
      clusterId: 'c1',
      book: new AddressBook({ members: [], removed: [] }, () => s.store.sm.members),
      transferTimeoutMs: 600,
      forward: (to, call) => (forwarded.push({ to, method: call.method, deadline: call.deadline }), Promise.resolve({ ok: true, response: {} })),
    });
    const put = { session: { clientId: 7, seq: 1, firstIncomplete: 1 }, key: Buffer.from('k'), value: Buffer.from('v'), expected: Buffer.alloc(0) };
    const answer = await new Promise<{ error: ServiceError | null; leaderAddr?: string }>((resolve) =>
      service.put(put, (error, _res, leaderAddr) => resolve({ error, leaderAddr }), 12_345),
    );
    expect(answer).toEqual({ error: null, leaderAddr: addr(2).clientAddr });
    // The deadline stays with the call through the wait and goes to the leader, whose admission needs it.
    expect(forwarded).toEqual([{ to: 2, method: 'put', deadline: 12_345 }]);
  });
});
