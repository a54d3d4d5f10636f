/**
 * The address book in the replicated state: the member table a conf entry carries (codec and its
 * checks), the KV state machine recording it when it applies the entry, and snapshots keeping it.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { confOfVoters, type ConfState } from '../../src/raft/core/conf.js';
import { encodeConfEntry, MAX_CONF_CONTEXT_BYTES } from '../../src/raft/core/conf-codec.js';
import type { Entry } from '../../src/raft/core/types.js';
import { crc32c } from '../../src/raft/storage/crc32c.js';
import { KvStore } from '../../src/server/kv-store.js';
import { AddressBook, decodeMemberTable, encodeMemberTable, type MemberTable } from '../../src/server/members.js';
import { decodeSnapshot } from '../../src/server/snapshot/decode.js';
import { encodeSnapshot, header } from '../../src/server/snapshot/encode.js';
import { SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_BYTES, SnapshotError } from '../../src/server/snapshot/format.js';
import { KvStateMachine } from '../../src/server/state-machine.js';

const m = (id: number, port = 7000 + id): { id: number; peerAddr: string; clientAddr: string } => ({
  id,
  peerAddr: `127.0.0.1:${port}`,
  clientAddr: `127.0.0.1:${port + 2000}`,
});
const TABLE: MemberTable = { members: [m(1), m(3), m(4)], removed: [2] };
const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));

describe('member table codec', () => {
  it('round-trips a table, an unknown client address ("") included', () => {
    const t: MemberTable = { members: [m(1), { id: 2 ** 40, peerAddr: 'host-b.example:7002', clientAddr: '' }], removed: [7, 9] };
    expect(decodeMemberTable(encodeMemberTable(t))).toEqual({ ok: true, table: t });
    expect(JSON.parse(Buffer.from(encodeMemberTable(TABLE)).toString())).toEqual({ members: TABLE.members, removed: [2] });
  });

  const refused: [string, Uint8Array, RegExp][] = [
    ['not JSON', Buffer.from('{members'), /not JSON/],
    ['no members', json({ members: [], removed: [] }), /non-empty list/],
    ['an id that is not a node id', json({ members: [{ ...m(1), id: 0 }] }), /0 is not a node id/],
    ['ids out of order', json({ members: [m(3), m(1)] }), /strictly ascending/],
    ['a repeated id', json({ members: [m(1), m(1, 7005)] }), /strictly ascending/],
    ['a peer address that is not host:port', json({ members: [{ ...m(1), peerAddr: 'nohost' }] }), /not a host:port/],
    ['a port out of range', json({ members: [{ ...m(1), clientAddr: '127.0.0.1:70000' }] }), /not in 1-65535/],
    ['an address not normalised', json({ members: [{ ...m(1), peerAddr: ' 127.0.0.1:7001' }] }), /not normalised/],
    ['no peer address', json({ members: [{ ...m(1), peerAddr: '' }] }), /no peerAddr/],
    ['an address used twice', json({ members: [m(1), { ...m(2), clientAddr: m(1).peerAddr }] }), /used twice/],
    ['a removed id that is a member', json({ members: [m(1)], removed: [1] }), /both a member and removed/],
    ['removed ids out of order', json({ members: [m(1)], removed: [5, 3] }), /removed ids are not in strictly ascending/],
    ['more bytes than a conf entry may carry', Buffer.alloc(MAX_CONF_CONTEXT_BYTES + 1, 32), /over the limit/],
  ];
  for (const [what, bytes, why] of refused) {
    it(`refuses ${what}`, () => {
      const r = decodeMemberTable(bytes);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.reason).toMatch(why);
    });
  }

  it('an address book answers from the replicated table once there is one, from the bootstrap one before', () => {
    let replicated: MemberTable | undefined;
    const book = new AddressBook({ members: [m(1), m(2)], removed: [] }, () => replicated);
    expect(book.peers()).toEqual([
      { id: 1, address: '127.0.0.1:7001' },
      { id: 2, address: '127.0.0.1:7002' },
    ]);
    expect(book.isReplicated).toBe(false);
    replicated = TABLE;
    expect(book.isReplicated).toBe(true);
    expect(book.peers().map((p) => p.id)).toEqual([1, 3, 4]);
    expect(book.clientAddr(4)).toBe('127.0.0.1:9004');
    expect(book.clientAddr(2)).toBe('');
  });
});

/** A committed conf entry putting `conf` in force, with `context`. */
function confEntry(index: number, conf: ConfState, context: Uint8Array): Entry {
  return { index, term: 1, type: 'conf', data: encodeConfEntry({ conf, context }) };
}

describe('the KV state machine applies conf entries', () => {
  const conf134: ConfState = { ...confOfVoters([1, 3]), learners: [4] };

  it("records the entry's member table, replacing the previous one whole", () => {
    const store = new KvStore(() => 0);
    expect(store.sm.members).toBeUndefined();
    store.applied(confEntry(1, confOfVoters([1, 2, 3]), encodeMemberTable({ members: [m(1), m(2), m(3)], removed: [] })));
    expect(store.sm.members?.members.map((x) => x.id)).toEqual([1, 2, 3]);
    store.applied(confEntry(2, conf134, encodeMemberTable(TABLE)));
    expect(store.sm.members).toEqual(TABLE);
    expect(store.appliedIndex).toBe(2);
  });

  it('keeps the table it has for an entry without one, or with one that does not list exactly its members', () => {
    const store = new KvStore(() => 0);
    store.applied(confEntry(1, conf134, encodeMemberTable(TABLE)));
    store.applied(confEntry(2, confOfVoters([1, 3]), new Uint8Array(0)));
    store.applied(confEntry(3, confOfVoters([1, 3]), encodeMemberTable(TABLE)));
    store.applied(confEntry(4, conf134, Buffer.from('not a table')));
    expect(store.sm.members).toEqual(TABLE);
    expect(store.appliedIndex).toBe(4);
  });

  it('a capture holds the table, and a restore (in memory and through snapshot bytes) brings it back', async () => {
    const sm = new KvStateMachine();
    sm.setMembers(TABLE);
    expect(KvStateMachine.restore(sm.capture()).members).toEqual(TABLE);
    const ids = { clusterId: 'c', nodeId: 1 };
    const bytes = await encodeSnapshot({ index: 5, term: 2, conf: conf134 }, sm.capture(), ids, systemClock.slicer());
    const back = decodeSnapshot(bytes, ids);
    expect(back.state.table).toEqual(TABLE);
    expect(KvStateMachine.restore(back.state).members).toEqual(TABLE);
    // protobufjs reads the fields as proto/snapshot.proto declares them.
    const msg = Snapshot.toObject(Snapshot.decode(bytes.subarray(SNAPSHOT_HEADER_BYTES)), { longs: Number, defaults: true });
    expect(msg['members']).toEqual(TABLE.members);
    expect(msg['removedIds']).toEqual([2]);
  });

  it('a snapshot without a table (before membership) loads with none, and writes none', async () => {
    expect(decodeSnapshot(handMade({}), IDS).state).not.toHaveProperty('table');
    const bytes = await encodeSnapshot({ index: 5, term: 2 }, new KvStateMachine().capture(), IDS, systemClock.slicer());
    expect(decodeSnapshot(bytes, IDS).state).not.toHaveProperty('table');
    expect(KvStateMachine.restore(decodeSnapshot(bytes, IDS).state).members).toBeUndefined();
  });

  it('refuses a snapshot whose table is invalid (CORRUPT), and will not write one', async () => {
    for (const [fields, why] of [
      [{ members: [m(3), m(1)] }, /strictly ascending/],
      [{ members: [m(1)], removedIds: [1] }, /both a member and removed/],
      [{ removedIds: [4] }, /removed ids without a member table/],
    ] as const) {
      expect(() => decodeSnapshot(handMade(fields), IDS)).toThrow(SnapshotError);
      expect(() => decodeSnapshot(handMade(fields), IDS)).toThrow(why);
    }
    const bad = { ...new KvStateMachine().capture(), table: { members: [m(1), m(1)], removed: [] } };
    await expect(encodeSnapshot({ index: 1, term: 1 }, bad, IDS, systemClock.slicer())).rejects.toThrow(/invalid member table/);
  });
});

const IDS = { clusterId: 'test-cluster', nodeId: 3 };
const Snapshot = protobuf.loadSync(fileURLToPath(new URL('../../proto/snapshot.proto', import.meta.url))).lookupType('raftkv.snapshot.Snapshot');

/** A snapshot whose body protobufjs encodes from `fields`, behind a valid header. */
function handMade(fields: Record<string, unknown>): Uint8Array {
  const body = Snapshot.encode(
    Snapshot.fromObject({ formatVersion: SNAPSHOT_FORMAT_VERSION, clusterId: IDS.clusterId, nodeId: IDS.nodeId, lastIndex: 9, lastTerm: 2, keyCount: 0, ...fields }),
  ).finish();
  return Buffer.concat([header(body.length, crc32c(body)), body]);
}
