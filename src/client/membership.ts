/**
 * The membership calls of the SDK (Raft thesis ch. 4): the list, the changes and leadership
 * transfer, on the router's retry loop. A change carries no session, so the cluster cannot tell a
 * resent change from a new one: after an attempt whose outcome is unknown, the client looks at
 * the configuration before it sends the change again (see `settle` in router.ts).
 */
import { checkAddress } from '../address.js';
import type { LeaderTransferResponse, MemberChangeResponse, MemberListResponse, MemberWire, StatusResponse } from '../kv-api.js';
import { InvalidArgumentError } from './errors.js';
import type { Router } from './router.js';

/**
 * A member of the cluster: its id, its peer address (Raft traffic) and client address (what
 * clients and kv-cli connect to), whether it is a learner (it receives the log but does not vote;
 * promote it once it has caught up), and the leader's view of it (0 and false in another node's
 * answer): `matchIndex`, the last log index known replicated to it, and `active`, heard from within
 * the last election timeout.
 */
export type Member = MemberWire;

/**
 * The configuration as one node has applied it: the members by id, `leaderId` (0 when the node
 * knows none), `clusterId`, `joint` (a change of several voters is being completed), and the
 * answering node's id and commit index (the leader's commit index minus a member's matchIndex is
 * how far behind it is).
 */
export type Membership = MemberListResponse;

/** The configuration after a change, and the log index of the change (0 when not known: see KvClient.addMember). */
export type MembershipChange = MemberChangeResponse;

/** Who leads after a transfer, and in which term. */
export type LeaderTransfer = LeaderTransferResponse;

export interface AddMemberOptions {
  /** host:port of the new node's client port (required: clients and the CLI find it by it). */
  clientAddr: string;
  /** Add it as a learner, to be promoted once caught up (default false: a voter at once). */
  learner?: boolean;
}

function checkMemberId(what: string, id: unknown, zeroOk = false): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < (zeroOk ? 0 : 1)) {
    throw new InvalidArgumentError(`${what} must be a whole number from ${zeroOk ? 0 : 1}, got ${String(id)}`);
  }
  return id;
}

function checkAddr(what: string, addr: unknown): string {
  const r = checkAddress(typeof addr === 'string' ? addr : String(addr));
  if (!r.ok) throw new InvalidArgumentError(`${what}: ${r.error}`);
  return r.address;
}

/** The member `id`'s client address in `m`, if it names one that is an address. */
function clientAddrOf(m: { members: Member[] }, id: number): string | undefined {
  const addr = m.members.find((x) => x.id === id)?.clientAddr;
  return addr !== undefined && checkAddress(addr).ok ? addr : undefined;
}

/** The membership calls of one KvClient. */
export class MemberCalls {
  constructor(
    private readonly router: Router,
    /** Told of every configuration the cluster gives (the endpoint refresh learns from it). */
    private readonly learned: (members: readonly Member[]) => void,
  ) {}

  members(): Promise<Membership> {
    return this.router.withTurn((deadline) => this.list(deadline));
  }

  /**
   * The membership within `deadline`, from the leader if it can be reached: any node answers
   * MemberList, but only the leader knows how far each member is, and has applied a change it
   * answered for. The leader is tried once even if it failed to answer lately (it may be busy
   * with the very change being settled); another node's answer is kept if it does not answer.
   */
  async list(deadline: number): Promise<Membership> {
    let m = await this.router.send<Membership>('MemberList', () => ({}), { anyNode: true }, deadline);
    const leaderAddr = m.leaderId === 0 ? undefined : clientAddrOf(m, m.leaderId);
    if (leaderAddr !== undefined && m.nodeId !== m.leaderId) {
      try {
        const fromLeader = await this.router.once<Membership>(leaderAddr, 'MemberList', {}, deadline);
        if (fromLeader.nodeId === fromLeader.leaderId) m = fromLeader;
      } catch {
        // The leader does not answer us: the first answer will do.
      }
    }
    if (leaderAddr !== undefined && m.nodeId === m.leaderId) this.router.noteLeader(leaderAddr);
    this.learned(m.members);
    return m;
  }

  add(id: number, peerAddr: string, options: AddMemberOptions): Promise<MembershipChange> {
    checkMemberId('id', id);
    const peer = checkAddr('peerAddr', peerAddr);
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('addMember needs options: { clientAddr }');
    const client = checkAddr('clientAddr', options.clientAddr);
    const learner = options.learner === true;
    // Done if the member is there as asked; there otherwise (another id's addresses, another
    // role), the change is sent again and the leader says why it will not make it.
    return this.change('MemberAdd', { id, peerAddr: peer, clientAddr: client, learner }, (m) => {
      const x = m.members.find((y) => y.id === id);
      return x !== undefined && x.peerAddr === peer && x.clientAddr === client && x.learner === learner;
    });
  }

  promote(id: number): Promise<MembershipChange> {
    checkMemberId('id', id);
    return this.change('MemberPromote', { id }, (m) => m.members.some((x) => x.id === id && !x.learner));
  }

  remove(id: number, force: boolean): Promise<MembershipChange> {
    checkMemberId('id', id);
    return this.change('MemberRemove', { id, force }, (m) => !m.members.some((x) => x.id === id));
  }

  /** Leadership to `id`, or (0) away from the node that leads when the call starts, to the voter the leader finds most up to date. */
  transfer(id: number): Promise<LeaderTransfer> {
    checkMemberId('id', id, true);
    return this.router.withTurn(async (deadline) => {
      const status = (d: number): Promise<StatusResponse> => this.router.send<StatusResponse>('Status', () => ({}), { anyNode: true }, d);
      const from = (await status(deadline)).leaderId;
      const moved = (s: StatusResponse): boolean => s.leaderId !== 0 && s.leaderId !== from && (id === 0 || s.leaderId === id);
      const settle = async (d: number): Promise<LeaderTransfer | undefined> => {
        const s = await status(d);
        return moved(s) ? { leaderId: s.leaderId, term: s.term } : undefined;
      };
      // The old leader answers; the next call it gets will name the new one.
      const res = await this.router.send<LeaderTransfer>('LeaderTransfer', () => ({ id }), { settle, leaderOnly: true }, deadline);
      return { leaderId: res.leaderId, term: res.term };
    });
  }

  /**
   * A change routed to the leader. `inForce` says whether a configuration has it: the change
   * took effect if the configuration had it not when the call started and has it now. (Were it
   * in force already, the change is sent all the same, and the leader says why it will not make
   * it: the call means the same whichever node it first reaches.)
   */
  private change(method: 'MemberAdd' | 'MemberPromote' | 'MemberRemove', request: object, inForce: (m: Membership) => boolean): Promise<MembershipChange> {
    return this.router.withTurn(async (deadline) => {
      const before = await this.list(deadline);
      const settle = async (d: number): Promise<MembershipChange | undefined> => {
        const m = await this.list(d);
        return inForce(m) ? { members: m.members, index: 0 } : undefined;
      };
      const hooks = { settle: inForce(before) ? undefined : settle, leaderOnly: true };
      const res = await this.router.send<MembershipChange>(method, () => request, hooks, deadline);
      this.learned(res.members);
      return { members: res.members, index: res.index };
    });
  }
}
