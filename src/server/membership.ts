import { checkAddress } from '../address.js';
import type {
  LeaderTransferRequestIn,
  LeaderTransferResponse,
  MemberAddRequestIn,
  MemberChangeResponse,
  MemberListResponse,
  MemberPromoteRequestIn,
  MemberRemoveRequestIn,
  MemberWire,
} from '../kv-api.js';
import { changeConf, isJoint, isMember, isVoter, membersOf, votersOf, type ConfChange, type ConfState } from '../raft/core/conf.js';
import type { RaftStatus } from '../raft/core/raft.js';
import type { NodeId } from '../raft/core/types.js';
import { MembershipError, type ConfChangeDone, type MemberState } from '../raft/node.js';
import type { Reply, ServiceError } from './kv-service.js';
import { checkMemberTable, encodeMemberTable, type AddressBook, type MemberAddress, type MemberTable } from './members.js';

/** What the membership calls need of Raft: RaftNode. */
export interface MembershipRaft {
  status(): RaftStatus;
  /** Leader: resolves once it has applied an entry of its term (before, the core takes no change); see RaftNode. */
  awaitTermApplied(timeoutMs: number): Promise<void>;
  members(): MemberState[];
  proposeConfChange(cc: ConfChange, context: Uint8Array): Promise<ConfChangeDone>;
  transferLeadership(to: NodeId, timeoutMs: number): Promise<{ leaderId: NodeId; term: number }>;
}

export interface MembershipOptions {
  raft: MembershipRaft;
  book: AddressBook;
  nodeId: NodeId;
  clusterId: string;
  /** How long a leadership transfer may take before it is reported abandoned: about two election timeouts. */
  transferTimeoutMs: number;
  /**
   * Why a new member's addresses belong to something else (a node of another cluster, another
   * node of this one), or undefined, also when nothing answers there: the node may not be started.
   */
  probe?: (member: MemberAddress) => Promise<string | undefined>;
  /** The refusal of a node that does not lead (with the leader hint), as for writes. */
  notLeader: (leaderId: NodeId) => ServiceError;
}

/**
 * A learner is promoted only if its log is at most this many entries behind the leader's: a
 * voter far behind would count towards no quorum until it has caught up, so promoting it early
 * costs the cluster fault tolerance (etcd refuses for the same reason).
 */
export const PROMOTE_MAX_LAG = 1000;

/**
 * The membership calls of proto/kv.proto (Raft thesis ch. 4), apart from any transport, after
 * etcd's member API. A change is checked here against the foot-guns an operator meets (an id in
 * use or ever removed, an address in use, a learner far behind, a removal that leaves no live
 * quorum) and then proposed as one conf entry whose context is the resulting member table
 * (members.ts); it answers once the entry is applied on this node, the leader.
 */
export class Membership {
  constructor(private readonly o: MembershipOptions) {}

  list(_req: object, reply: Reply<MemberListResponse>): void {
    const st = this.o.raft.status();
    reply(null, {
      members: this.describe(st.conf, st.role === 'leader'),
      leaderId: st.leaderId,
      clusterId: this.o.clusterId,
      commitIndex: st.commit,
      joint: isJoint(st.conf),
      nodeId: this.o.nodeId,
    });
  }

  add(req: MemberAddRequestIn, reply: Reply<MemberChangeResponse>): void {
    this.whenReady(() => this.addNow(req, reply));
  }

  promote(req: MemberPromoteRequestIn, reply: Reply<MemberChangeResponse>): void {
    this.whenReady(() => this.promoteNow(req, reply));
  }

  remove(req: MemberRemoveRequestIn, reply: Reply<MemberChangeResponse>): void {
    this.whenReady(() => this.removeNow(req, reply));
  }

  /**
   * Runs a change once this node can take one. A leader just elected first applies what earlier
   * leaders left in its log; a change asked for meanwhile waits for that (a moment) rather than
   * being refused as pending, and is then judged against the configuration and members as they are.
   */
  private whenReady(change: () => void): void {
    void this.o.raft.awaitTermApplied(this.o.transferTimeoutMs).then(change);
  }

  private addNow(req: MemberAddRequestIn, reply: Reply<MemberChangeResponse>): void {
    const checked = this.checkAdd(req, reply);
    if (!checked) return;
    const probing = this.o.probe?.(checked) ?? Promise.resolve(undefined);
    probing.then(
      (why) => {
        if (why !== undefined) return this.refuser(reply)(`node ${req.id}'s addresses: ${why}`);
        // Checked again: leadership or the members may have changed while the probe was out.
        const member = this.checkAdd(req, reply);
        if (!member) return;
        const table = this.o.book.table;
        this.change({ changes: [{ type: req.learner ? 'addLearner' : 'addVoter', id: member.id }] }, { members: [...table.members, member], removed: table.removed }, reply);
      },
      (e: unknown) => reply({ code: 'INTERNAL', details: `probing node ${req.id}'s addresses failed: ${(e as Error).message}` }),
    );
  }

  /** The new member, or undefined once the refusal is answered. */
  private checkAdd(req: MemberAddRequestIn, reply: Reply<MemberChangeResponse>): MemberAddress | undefined {
    const conf = this.leaderConf(reply);
    if (!conf) return undefined;
    const { id } = req;
    const table = this.o.book.table;
    const no = (why: string): undefined => void this.refuser(reply)(why);
    if (!isNodeId(id)) return no(`${String(id)} is not a node id (a whole number from 1)`);
    const existing = table.members.find((m) => m.id === id);
    if (isMember(conf, id) || existing) {
      return no(`node ${id} is already a member${existing ? ` (peer ${existing.peerAddr}, client ${existing.clientAddr || 'unknown'})` : ''}; if an earlier attempt to add it was interrupted, it took effect`);
    }
    if (table.removed.includes(id)) return no(`node ${id} was removed from this cluster, and ids are never reused: give the new node another id`);
    const peer = checkAddress(req.peerAddr);
    const client = checkAddress(req.clientAddr);
    if (!peer.ok) return no(`peer address: ${peer.error}`);
    if (!client.ok) return no(`client address: ${client.error}`);
    if (peer.address === client.address) return no(`the peer and client addresses are both ${peer.address}: they must differ`);
    for (const m of table.members) {
      for (const a of [peer.address, client.address]) if (a === m.peerAddr || a === m.clientAddr) return no(`address ${a} is already used by node ${m.id}`);
    }
    if (!req.learner) {
      // A voter that is not running yet counts against the quorum from the start.
      const voters = [...votersOf(conf), id];
      const live = voters.filter((v) => this.isActive(v)).length;
      if (live <= voters.length / 2) {
        return no(`with node ${id} as a voter, only ${live} of ${voters.length} voters would be live: no quorum. Add it as a learner and promote it once it has caught up`);
      }
    }
    return { id, peerAddr: peer.address, clientAddr: client.address };
  }

  private promoteNow(req: MemberPromoteRequestIn, reply: Reply<MemberChangeResponse>): void {
    const conf = this.leaderConf(reply);
    if (!conf) return;
    const { id } = req;
    const refuse = this.refuser(reply);
    if (!isMember(conf, id)) return refuse(this.unknown(id, conf));
    if (isVoter(conf, id)) return refuse(`node ${id} is a voter already`);
    const p = this.o.raft.members().find((m) => m.id === id);
    const last = this.o.raft.status().lastIndex;
    if (!p?.active) return refuse(`node ${id} has not been heard from within an election timeout: is it running? Promote it once it has caught up`);
    if (p.state === 'snapshot' || last - p.match > PROMOTE_MAX_LAG) {
      const where = p.state === 'snapshot' ? 'it is receiving a snapshot' : `its log ends at ${p.match}, the leader's at ${last}`;
      return refuse(`node ${id} is far behind (${where}; at most ${PROMOTE_MAX_LAG} entries behind may be promoted): retry when it has caught up`);
    }
    this.change({ changes: [{ type: 'addVoter', id }] }, this.o.book.table, reply);
  }

  private removeNow(req: MemberRemoveRequestIn, reply: Reply<MemberChangeResponse>): void {
    const conf = this.leaderConf(reply);
    if (!conf) return;
    const { id } = req;
    const refuse = this.refuser(reply);
    const table = this.o.book.table;
    if (!isMember(conf, id)) return refuse(this.unknown(id, conf));
    if (isVoter(conf, id) && !req.force) {
      const remaining = votersOf(conf).filter((v) => v !== id);
      const live = remaining.filter((v) => this.isActive(v));
      if (live.length <= remaining.length / 2) {
        return refuse(
          `without node ${id}, the voters would be ${remaining.join(', ')}, of which only ${live.length} (${live.join(', ') || 'none'}) were heard from ` +
            'within an election timeout: no live quorum. Bring the others back first, or force it (--force)',
        );
      }
    }
    const removed = [...table.removed, id].sort((a, b) => a - b);
    this.change({ changes: [{ type: 'remove', id }] }, { members: table.members.filter((m) => m.id !== id), removed }, reply);
  }

  transfer(req: LeaderTransferRequestIn, reply: Reply<LeaderTransferResponse>): void {
    const conf = this.leaderConf(reply);
    if (!conf) return;
    const refuse = this.refuser(reply);
    const to = req.id === 0 ? transferTarget(this.o.raft.members(), this.o.nodeId) : req.id;
    if (to === undefined) return refuse('there is no other voter to hand leadership to');
    if (to === this.o.nodeId) return reply(null, { leaderId: to, term: this.o.raft.status().term });
    this.o.raft.transferLeadership(to, this.o.transferTimeoutMs).then(
      (r) => reply(null, r),
      (e: unknown) => this.failed(e, reply),
    );
  }

  /**
   * Proposes `cc` with `table` (the members' addresses, of which the new configuration's are
   * taken) and answers with the configuration it put in force once it is applied here.
   */
  private change(cc: ConfChange, table: MemberTable, reply: Reply<MemberChangeResponse>): void {
    const st = this.o.raft.status();
    if (st.role !== 'leader') return reply(this.o.notLeader(st.leaderId));
    const next = changeConf(st.conf, cc);
    if (!next.ok) return this.refuser(reply)(next.reason);
    const byId = new Map(table.members.map((m) => [m.id, m]));
    const members: MemberAddress[] = [];
    for (const id of membersOf(next.conf)) {
      const m = byId.get(id);
      if (!m) return this.refuser(reply)(`the address of node ${id} is unknown here (no member table lists it)`);
      members.push(m);
    }
    // What every node will check when it applies the entry (a table it refuses it ignores).
    const checked = checkMemberTable(members, table.removed);
    if (!checked.ok) return this.refuser(reply)(checked.reason);
    this.o.raft.proposeConfChange(cc, encodeMemberTable(checked.table)).then(
      (done) => reply(null, { members: this.describe(done.conf, true), index: done.index }),
      (e: unknown) => this.failed(e, reply),
    );
  }

  /** The configuration in force if this node leads; otherwise answers the refusal and returns undefined. */
  private leaderConf(reply: Reply<never>): ConfState | undefined {
    const st = this.o.raft.status();
    if (st.role === 'leader') return st.conf;
    reply(this.o.notLeader(st.leaderId));
    return undefined;
  }

  private refuser(reply: Reply<never>): (why: string) => void {
    return (why) => reply({ code: 'FAILED_PRECONDITION', reason: 'conf-refused', details: why });
  }

  private failed(e: unknown, reply: Reply<never>): void {
    if (!(e instanceof MembershipError)) return reply({ code: 'INTERNAL', details: (e as Error).message });
    if (e.kind === 'outcomeUnknown') return reply(outcomeUnknown(e.message));
    if (e.kind === 'refused' && this.o.raft.status().role !== 'leader') return reply(this.o.notLeader(e.leaderId));
    this.refuser(reply)(e.message);
  }

  private unknown(id: NodeId, conf: ConfState): string {
    const was = this.o.book.table.removed.includes(id) ? ' (it was removed)' : '';
    return `node ${id} is not a member${was}; the members are ${membersOf(conf).join(', ')}`;
  }

  /** This node (the leader), or a member heard from within an election timeout. */
  private isActive(id: NodeId): boolean {
    return id === this.o.nodeId || this.o.raft.members().some((m) => m.id === id && m.active);
  }

  /** The members of `conf` with their addresses, and (on the leader) their progress. */
  private describe(conf: ConfState, leading: boolean): MemberWire[] {
    const progress = new Map(leading ? this.o.raft.members().map((m) => [m.id, m]) : []);
    return membersOf(conf).map((id) => {
      const a = this.o.book.member(id);
      const p = progress.get(id);
      return {
        id,
        peerAddr: a?.peerAddr ?? '',
        clientAddr: a?.clientAddr ?? '',
        learner: !isVoter(conf, id),
        matchIndex: p?.match ?? 0,
        active: p?.active ?? false,
      };
    });
  }
}

/**
 * The answer to a change this node proposed and stopped leading (or stopped) before it applied:
 * it may still take effect under the next leader. UNAVAILABLE, so that clients try again, and
 * with the reason, so that they know this node answered: without it a client takes the call for
 * one the node never answered, and avoids a live node for a while (the SDK avoids a node that
 * failed to answer, and does not follow hints to it, for 10 s).
 */
export function outcomeUnknown(why: string): ServiceError {
  return { code: 'UNAVAILABLE', reason: 'outcome-unknown', details: `${why}: see the member list` };
}

/** The voter to hand leadership to: the most up to date of those heard from lately, then of all; undefined if there is none. */
export function transferTarget(members: readonly MemberState[], self: NodeId): NodeId | undefined {
  const candidates = members.filter((m) => m.voter && m.id !== self);
  const best = (ms: MemberState[]) => ms.reduce<MemberState | undefined>((b, m) => (!b || m.match > b.match ? m : b), undefined);
  return (best(candidates.filter((m) => m.active)) ?? best(candidates))?.id;
}

function isNodeId(v: unknown): v is NodeId {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}
