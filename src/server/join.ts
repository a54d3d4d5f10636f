import type { Clock } from '../clock.js';
import type { MemberListResponse } from '../kv-api.js';
import type { NodeId } from '../raft/core/types.js';
import { checkMemberTable, type MemberTable } from './members.js';
import type { Network } from './network.js';

// kv-server --join on an empty data dir: the node asks members of the running cluster for the
// cluster id and where the members are, so that it can create its data dir for that cluster and
// take the leader's messages once the leader adds it (the members' links refuse strangers).

/** How long a node started with --join keeps asking before it gives up. */
export const JOIN_DEADLINE_MS = 15_000;
/** How long a restarted node that joined, and holds no member table yet, asks again (it starts anyway). */
export const ASK_AGAIN_DEADLINE_MS = 3000;
const ATTEMPT_TIMEOUT_MS = 1000;
const RETRY_PAUSE_MS = 250;

export interface Joined {
  clusterId: string;
  /** Where the members are, as the answering node has applied it. */
  table: MemberTable;
  /** The node that answered. */
  from: string;
}

/** The joining node as its flags describe it. */
export interface Joiner {
  id: NodeId;
  peerAddr: string;
  clientAddr: string;
  /** On an empty data dir (not a restart of a node that joined before). */
  fresh: boolean;
}

/**
 * Asks `endpoints` (client addresses of members) in turn for the membership until one gives a
 * usable answer, for up to `deadlineMs`. Throws an Error naming each endpoint and what it said
 * last when none does, or at once when an answer shows this node must not join as it is.
 */
export async function askToJoin(
  network: Network,
  clock: Clock,
  endpoints: readonly string[],
  self: Joiner,
  stopping: () => boolean,
  deadlineMs = JOIN_DEADLINE_MS,
): Promise<Joined> {
  const deadline = clock.now() + deadlineMs;
  const last = new Map<string, string>();
  for (;;) {
    for (const ep of endpoints) {
      if (stopping()) throw new Error('--join: stopped while asking the cluster');
      let answer: MemberListResponse;
      try {
        answer = await network.memberList(ep, ATTEMPT_TIMEOUT_MS);
      } catch (e) {
        last.set(ep, (e as Error).message.split('\n')[0]!);
        continue;
      }
      const joined = judge(answer, ep, self);
      if (typeof joined !== 'string') return joined;
      last.set(ep, joined);
    }
    if (clock.now() >= deadline) {
      const said = endpoints.map((ep) => `${ep}: ${last.get(ep) ?? 'no answer'}`).join('; ');
      throw new Error(
        `--join: no member of a cluster answered usefully within ${deadlineMs} ms (${said}). Give the client addresses ` +
          '(--client-addr) of running members of the cluster to join.',
      );
    }
    await new Promise<void>((resolve) => clock.setTimeout(resolve, RETRY_PAUSE_MS));
  }
}

/** The answer as what to start with; a string says why it is not usable. Throws when this node must not join. */
function judge(a: MemberListResponse, from: string, self: Joiner): Joined | string {
  if (!/^[A-Za-z0-9._:-]{1,128}$/.test(a.clusterId)) return `answered with cluster id ${JSON.stringify(a.clusterId)}`;
  const table = checkMemberTable(
    a.members.map((m) => ({ id: m.id, peerAddr: m.peerAddr, clientAddr: m.clientAddr })),
    [],
  );
  if (!table.ok) return `answered with an unusable member list (${table.reason})`;
  for (const m of a.members) {
    const mine = m.id === self.id;
    // Added already and never started is fine (kv-cli member add, then start it); a voter that
    // held the log (the leader saw it) lost votes and entries with its data.
    if (mine && self.fresh && !m.learner && m.matchIndex > 0) {
      throw new Error(
        `--join: node ${self.id} is a voter of cluster ${a.clusterId} that has held its log (${from} says so): a voter whose data ` +
          `was lost must not come back under its id. Remove it (kv-cli member remove ${self.id}) and add this node under a new id.`,
      );
    }
    const clash = [self.peerAddr, self.clientAddr].find((x) => x === m.peerAddr || x === m.clientAddr);
    if (clash !== undefined && !(mine && m.peerAddr === self.peerAddr && m.clientAddr === self.clientAddr)) {
      throw new Error(`--join: address ${clash} is used by node ${m.id} of cluster ${a.clusterId} (${from} says so): give this node its own addresses`);
    }
  }
  return { clusterId: a.clusterId, table: table.table, from };
}
