import { checkAddress } from '../address.js';
import { MAX_MEMBERS } from '../raft/core/conf.js';
import { MAX_CONF_CONTEXT_BYTES } from '../raft/core/conf-codec.js';
import type { NodeId } from '../raft/core/types.js';
import type { PeerAddress } from '../raft/transport/transport.js';

// The cluster's address book, part of the replicated state: the `context` of every conf entry
// kv-server proposes is the member table of the configuration it puts in force, as JSON, so that
// every node (a new one included, and one restored from a snapshot) learns where each member is
// from the log itself, not from flags that may be out of date.

/** One member's addresses. `clientAddr` is "" when unknown (a cluster bootstrapped without --client-peers). */
export interface MemberAddress {
  readonly id: NodeId;
  readonly peerAddr: string;
  readonly clientAddr: string;
}

/**
 * The members of one configuration, by id, and every id ever removed from the cluster (ids are
 * never reused: a removed node's old messages, or its data dir, must not pass for a new member).
 */
export interface MemberTable {
  readonly members: readonly MemberAddress[];
  readonly removed: readonly NodeId[];
}

/** The most ids a table keeps as removed: a bound on a decoded list (a cluster would need years of replacements). */
export const MAX_REMOVED_IDS = 8192;

export type TableCheck = { ok: true; table: MemberTable } | { ok: false; reason: string };

export function encodeMemberTable(t: MemberTable): Uint8Array {
  return Buffer.from(JSON.stringify({ members: t.members.map(({ id, peerAddr, clientAddr }) => ({ id, peerAddr, clientAddr })), removed: t.removed }), 'utf8');
}

/** A conf entry's context as a table, or why it is not one. */
export function decodeMemberTable(data: Uint8Array): TableCheck {
  if (data.length > MAX_CONF_CONTEXT_BYTES) return { ok: false, reason: `member table of ${data.length} bytes is over the limit of ${MAX_CONF_CONTEXT_BYTES}` };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch (e) {
    return { ok: false, reason: `member table is not JSON: ${(e as Error).message}` };
  }
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  return checkMemberTable(o['members'], o['removed'] ?? []);
}

/**
 * The table in `members` and `removed` as some decoder produced them (JSON, a snapshot file), or
 * why it is refused: at least one and at most MAX_MEMBERS members in ascending id order, ids safe
 * positive integers, addresses that kv-server's flags would take (normalised), no address used
 * twice, and removed ids (at most MAX_REMOVED_IDS, ascending) that are not members.
 */
export function checkMemberTable(members: unknown, removed: unknown): TableCheck {
  const no = (reason: string): TableCheck => ({ ok: false, reason: `member table: ${reason}` });
  if (!Array.isArray(members) || members.length === 0) return no('members is not a non-empty list');
  if (members.length > MAX_MEMBERS) return no(`${members.length} members (the limit is ${MAX_MEMBERS})`);
  if (!Array.isArray(removed)) return no('removed is not a list');
  if (removed.length > MAX_REMOVED_IDS) return no(`${removed.length} removed ids (the limit is ${MAX_REMOVED_IDS})`);
  const out: MemberAddress[] = [];
  const used = new Set<string>();
  let prev = 0;
  for (const m of members as unknown[]) {
    const r = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    const id = r['id'];
    if (!isNodeId(id)) return no(`${JSON.stringify(id)} is not a node id`);
    if (id <= prev) return no(`ids are not in strictly ascending order (${id} after ${prev})`);
    prev = id;
    const addrs: string[] = [];
    for (const field of ['peerAddr', 'clientAddr'] as const) {
      const a = r[field];
      if (typeof a !== 'string' || (field === 'peerAddr' && a === '')) return no(`node ${id} has no ${field}`);
      if (a === '') {
        addrs.push('');
        continue;
      }
      const checked = checkAddress(a);
      if (!checked.ok || checked.address !== a) return no(`node ${id}: ${checked.ok ? `${field} "${a}" is not normalised` : checked.error}`);
      if (used.has(a)) return no(`address ${a} is used twice`);
      used.add(a);
      addrs.push(a);
    }
    out.push({ id, peerAddr: addrs[0]!, clientAddr: addrs[1]! });
  }
  prev = 0;
  for (const id of removed as unknown[]) {
    if (!isNodeId(id)) return no(`removed holds ${JSON.stringify(id)}, not a node id`);
    if (id <= prev) return no('removed ids are not in strictly ascending order');
    if (out.some((m) => m.id === id)) return no(`node ${id} is both a member and removed`);
    prev = id;
  }
  return { ok: true, table: { members: out, removed: [...(removed as NodeId[])] } };
}

/** The members' addresses from the flags: --peers, and --client-peers where it names them ("" elsewhere). */
export function bootstrapTable(peers: readonly { id: NodeId; address: string }[], clientAddrs: ReadonlyMap<NodeId, string>): MemberTable {
  const members = [...peers].sort((a, b) => a.id - b.id).map((p) => ({ id: p.id, peerAddr: p.address, clientAddr: clientAddrs.get(p.id) ?? '' }));
  return { members, removed: [] };
}

function isNodeId(v: unknown): v is NodeId {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/**
 * Where each member is, as this node knows it now: the table of the last conf entry it applied
 * (or of the snapshot it restored) once there is one; before that, the one it started with (from
 * --peers and --client-peers, or from the members --join asked).
 */
export class AddressBook {
  constructor(
    private readonly bootstrap: MemberTable,
    private readonly replicated: () => MemberTable | undefined,
  ) {}

  get table(): MemberTable {
    return this.replicated() ?? this.bootstrap;
  }

  /** Whether the table comes from the replicated state (a conf entry or a snapshot). */
  get isReplicated(): boolean {
    return this.replicated() !== undefined;
  }

  member(id: NodeId): MemberAddress | undefined {
    return this.table.members.find((m) => m.id === id);
  }

  /** A member's client address, "" when unknown. */
  clientAddr(id: NodeId): string {
    return this.member(id)?.clientAddr ?? '';
  }

  /** The transport's peers. */
  peers(): PeerAddress[] {
    return this.table.members.map((m) => ({ id: m.id, address: m.peerAddr }));
  }
}
