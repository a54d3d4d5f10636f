/**
 * Cluster membership on the simulator: nodes started with --join are added, promoted, removed and
 * replaced through the member API kv-cli calls, leadership is handed over, joint configurations
 * are entered and left, under the faults of the other scenarios, while clerks read and write.
 * The invariants are checked on every step against the configuration in force (invariants.ts);
 * each run ends with the members agreeing (Operator.converged) and a linearizable history.
 */
import { describeConf, isJoint, isMember, membersOf, type ConfChangeItem } from '../../src/raft/core/conf.js';
import { encodeMemberTable, type MemberAddress } from '../../src/server/members.js';
import type { Harness } from './harness.js';
import { KvLab } from './kv.js';
import { Operator, startClerks } from './operator.js';
import type { Scenario } from './scenarios.js';

const ET = 300;
/**
 * The longest a membership scenario may go without a usable leader (while a quorum could elect
 * one): a few election timeouts on a reliable network. A removed leader that left the others
 * unsure of its removal, or a follower that ignored the candidates needing its vote, took 3.6 and
 * 5.6 s. On the lossy network (10% of messages lost each way) two survivors of three need four
 * messages through per round, and one run in a few hundred loses four rounds running (2.1–2.5 s
 * seen in 500 seeds), so those scenarios get more.
 */
const MAX_ELECTION_MS = 2000;
const MAX_ELECTION_LOSSY_MS = 3500;

/** A run with clerks working throughout: `script` changes the cluster; the history is checked at the end. */
async function withClerks(h: Harness, clerks: number, script: (op: Operator, lab: KvLab) => Promise<void>): Promise<void> {
  const lab = new KvLab(h);
  const op = new Operator(h);
  await op.waitLeader();
  const load = startClerks(lab, clerks);
  await script(op, lab);
  // The clerks finish first: while they write, the leader always has entries to apply.
  await op.recover();
  await load.stop();
  await op.converged();
  lab.checkHistory();
}

/** Adds a node as a learner, waits for it to catch up and promotes it; returns its index. */
async function addVoter(op: Operator): Promise<number> {
  const i = (await op.add(true))!;
  await op.caughtUp(i);
  await op.promote(i);
  return i;
}

function voters(op: Operator): number[] {
  return op.sim.checker.conf.voters.map((id) => id - 1);
}

/** 3 → 5 → 3: a learner joins and is promoted, a voter is added at once, then two go (the leader perhaps). */
async function growShrink(h: Harness, unreliable: boolean): Promise<void> {
  if (unreliable) {
    h.setUnreliable(true);
    h.sim.faults.duplicateRate = 0.02;
  }
  await withClerks(h, 3, async (op) => {
    const four = await addVoter(op);
    await h.sleep(h.rand(ET));
    const five = (await op.add(false))!;
    await h.sleep(h.rand(ET));
    await op.remove(h.rand(2) === 0 ? four : five);
    await h.sleep(h.rand(ET));
    const pick = voters(op)[h.rand(voters(op).length)]!;
    await op.remove(pick);
    if (voters(op).length !== 3) h.fail(`expected 3 voters, got ${describeConf(op.sim.checker.conf)}`);
  });
}

/** Every original member replaced, one at a time: a new node joins, catches up, is promoted; the old one is removed and stopped. */
async function rollingReplacement(h: Harness): Promise<void> {
  h.setUnreliable(h.rand(2) === 0);
  await withClerks(h, 3, async (op) => {
    for (let old = 0; old < 3; old++) {
      await addVoter(op);
      await op.remove(old);
      op.sim.crash(old);
      await h.sleep(h.rand(ET));
    }
    if (voters(op).join() !== '3,4,5') h.fail(`expected voters n4,n5,n6, got ${describeConf(op.sim.checker.conf)}`);
  });
}

/**
 * The leader removes itself: it steps down once the change commits and another leads within an
 * election timeout or so; the removed node, still running, never disturbs the others.
 */
async function removeLeader(h: Harness): Promise<void> {
  await withClerks(h, 3, async (op) => {
    await addVoter(op);
    const old = await op.waitLeader();
    await op.remove(old);
    // Measured from its step-down: the removal itself may have waited on a slow disk.
    for (let waited = 0; h.isLeader(old); waited += 5) {
      if (waited > 3 * ET) h.fail(`n${old + 1} still leads ${waited} ms after its removal was applied`);
      await h.sleep(5);
    }
    const before = h.sim.now;
    while (op.leader() === undefined || op.leader() === old) {
      if (h.sim.now - before > 3 * ET) h.fail(`no new leader within ${3 * ET} ms after the leader n${old + 1} removed itself and stepped down`);
      await h.sleep(5);
    }
    const next = op.leader()!;
    const term = h.term(next);
    await h.sleep(3 * ET);
    if (op.leader() !== next || h.term(next) !== term) h.fail(`leadership moved after the removal (n${next + 1} term ${term} -> n${(op.leader() ?? -1) + 1} term ${h.term(next)})`);
    if (h.isLeader(old)) h.fail(`the removed n${old + 1} leads again`);
  });
}

/**
 * A node removed while cut off never hears of it: back on the network it keeps campaigning, and
 * must not disturb the cluster (pre-vote and check-quorum hold the others; they ignore it).
 */
async function removedNodeCampaigns(h: Harness): Promise<void> {
  await withClerks(h, 3, async (op) => {
    const l = await op.waitLeader();
    const gone = (l + 1 + h.rand(4)) % 5;
    h.disconnect(gone);
    await op.remove(gone);
    const leader = await op.waitLeader();
    const term = h.term(leader);
    h.connect(gone);
    for (let round = 0; round < 3; round++) {
      await h.sleep(2 * ET + h.rand(ET));
      if (round === 1) await h.start(gone);
      if (op.leader() !== leader || h.term(leader) !== term) {
        h.fail(`removed n${gone + 1} disturbed the cluster: n${leader + 1} led term ${term}, now n${(op.leader() ?? -1) + 1} leads term ${h.term(op.leader() ?? leader)}`);
      }
    }
    if (isMember(op.sim.checker.conf, gone + 1)) h.fail(`n${gone + 1} is a member again`);
  });
}

/** Several changes asked for at once: the leader takes one and refuses the others as pending. */
async function concurrentChanges(h: Harness): Promise<void> {
  await withClerks(h, 2, async (op) => {
    const fresh = [await op.sim.addNode(), await op.sim.addNode(), await op.sim.addNode()];
    const l = await op.waitLeader();
    await op.caughtUp(l);
    const service = op.sim.network.service(l + 1)!;
    const answers: string[] = [];
    for (const i of fresh) {
      service.memberAdd({ id: i + 1, peerAddr: `n${i + 1}:7000`, clientAddr: `n${i + 1}:9000`, learner: h.rand(2) === 0 }, (e) =>
        answers.push(e ? `refused: ${e.details}` : 'ok'),
      );
    }
    for (let waited = 0; answers.length < fresh.length && waited < 5000; waited += 10) await h.sleep(10);
    if (answers.length === fresh.length) {
      const ok = answers.filter((a) => a === 'ok').length;
      const pending = answers.filter((a) => /pending/.test(a)).length;
      if (ok > 1 || ok + pending !== fresh.length) h.fail(`three adds at once were answered: ${answers.join('; ')}`);
    } else if (op.leader() === l) h.fail(`the leader answered ${answers.length} of ${fresh.length} adds`);
    // The refused ones go in one at a time.
    for (const i of fresh) {
      if (isMember(op.sim.checker.conf, i + 1)) continue;
      await op.change(`add n${i + 1}`, (s, r) => s.memberAdd({ id: i + 1, peerAddr: `n${i + 1}:7000`, clientAddr: `n${i + 1}:9000`, learner: true }, r), /already a member/);
    }
  });
}

/**
 * Leadership handed over again and again while clerks work: each hand-over takes one term (no
 * election timeout). One may be abandoned, cleanly, when the target's disk is too slow to catch up
 * within an election timeout: then the leader leads on in its term.
 */
async function transferUnderLoad(h: Harness): Promise<void> {
  await withClerks(h, 3, async (op) => {
    let handed = 0;
    for (let k = 0; k < 6; k++) {
      const from = await op.waitLeader();
      const others = voters(op).filter((v) => v !== from);
      const to = h.rand(3) === 0 ? undefined : others[h.rand(others.length)];
      const asked = to === undefined ? 'any' : `n${to + 1}`;
      const term = h.term(from);
      const r = await op.transfer(to);
      if (!r) h.fail(`leadership transfer from n${from + 1} to ${asked}: no answer`);
      if (r.ok) {
        handed++;
        const now = r.value.leaderId - 1;
        if (now === from || (to !== undefined && now !== to)) h.fail(`leadership went from n${from + 1} to n${now + 1} (asked: ${asked})`);
        if (r.value.term !== term + 1) h.fail(`the hand-over took terms ${term} -> ${r.value.term}: an election, not a transfer`);
      } else {
        op.sim.log(`operator: transfer to ${asked} abandoned: ${r.error.details}`);
        if (!/abandoned/.test(r.error.details)) h.fail(`leadership transfer from n${from + 1} to ${asked} refused: ${r.error.details}`);
      }
      await h.sleep(h.rand(ET));
    }
    if (handed < 4) h.fail(`only ${handed} of 6 leadership transfers succeeded`);
  });
}

/**
 * A transfer to a node the leader cannot reach is abandoned after an election timeout: the leader
 * leads on in the same term and serves again. Once the link is back, the transfer succeeds.
 */
async function transferPartition(h: Harness): Promise<void> {
  await withClerks(h, 3, async (op) => {
    const from = await op.waitLeader();
    const to = voters(op).filter((v) => v !== from)[h.rand(2)]!;
    const term = h.term(from);
    h.sim.blockLink(from, to);
    const r = await op.transfer(to, 4 * ET);
    if (r?.ok) h.fail(`a transfer to n${to + 1}, which n${from + 1} cannot reach, reported success: ${JSON.stringify(r.value)}`);
    if (op.leader() !== from || h.term(from) !== term) h.fail(`the abandoned transfer cost the leadership: n${from + 1} led term ${term}`);
    const lab = new KvLab(h);
    const ck = lab.makeClerk(Array.from({ length: h.n }, (_, i) => i), 99);
    await lab.put(ck, 'after-abort', 'ok');
    h.sim.heal();
    await h.sleep(ET);
    const again = await op.transfer(to);
    if (!again?.ok || again.value.leaderId !== to + 1) h.fail(`after the heal the transfer to n${to + 1} failed: ${again && !again.ok ? again.error.details : JSON.stringify(again)}`);
  });
}

/**
 * Members added after the log was compacted get a snapshot (with the configuration in it); nodes
 * restarted after changes restore the configuration from snapshot and log.
 */
async function withSnapshots(h: Harness): Promise<void> {
  await withClerks(h, 3, async (op) => {
    await h.sleep(1500);
    const before = op.sim.snapshotsInstalled;
    const four = await addVoter(op);
    if (op.sim.nodes[four]!.snapshotsInstalled === 0) h.fail(`n${four + 1} caught up without a snapshot (${op.sim.snapshotsInstalled - before} installed)`);
    await h.sleep(500);
    await h.start(four);
    h.connect(four);
    await op.remove(voters(op).find((v) => v !== four && v !== op.leader())!);
    await h.sleep(500);
    for (const v of voters(op)) {
      await h.crash(v);
      await h.start(v);
      h.connect(v);
      await h.sleep(h.rand(ET));
    }
  });
}

/**
 * Two voters swapped at once through a joint configuration (C_old,new, then C_new, left by the
 * leader), and any node, the leader included, crashed in the middle of it.
 */
async function jointCrash(h: Harness): Promise<void> {
  h.setUnreliable(h.rand(2) === 0);
  await withClerks(h, 3, async (op) => {
    for (let round = 0; round < 2; round++) {
      const add = await op.sim.addNode();
      const out = voters(op)[h.rand(3)]!;
      const want = [...voters(op).filter((v) => v !== out), add].sort((a, b) => a - b).join();
      const victim = [...voters(op), add][h.rand(4)]!;
      let crashed = false;
      const deadline = h.sim.now + 30_000;
      while (voters(op).join() !== want || isJoint(op.sim.checker.conf)) {
        if (h.sim.now > deadline) h.fail(`the joint change to voters ${want} did not finish: ${describeConf(op.sim.checker.conf)}`);
        if (!isJoint(op.sim.checker.conf) && voters(op).join() !== want) enterJoint(op, [{ type: 'addVoter', id: add + 1 }, { type: 'remove', id: out + 1 }], add);
        await h.sleep(1 + h.rand(40));
        if (!crashed && (isJoint(op.sim.checker.conf) || h.rand(4) === 0)) {
          crashed = true;
          await h.crash(victim);
          await h.sleep(h.rand(ET));
          await h.start(victim);
          h.connect(victim);
        }
      }
      op.sim.crash(out);
    }
  });
}

/**
 * The leader proposes `changes` as one joint change (kv-server's Membership proposes single
 * changes only), with the member table of the joint configuration: the members now and `added`.
 */
function enterJoint(op: Operator, changes: ConfChangeItem[], added: number): void {
  const l = op.leader();
  const server = l === undefined ? undefined : op.sim.nodes[l]!.server;
  if (!server) return;
  const ids = [...new Set([...membersOf(server.raft.conf), added + 1])].sort((a, b) => a - b);
  const members: MemberAddress[] = ids.map((id) => ({ id, peerAddr: `n${id}:7000`, clientAddr: `n${id}:9000` }));
  server.raft.proposeConfChange({ changes, transition: 'joint' }, encodeMemberTable({ members, removed: server.store.sm.members?.removed ?? [] })).then(
    () => {},
    () => {},
  );
}

/** Every kind of change at random, with crashes, partitions and an unreliable network in between. */
async function membersChaos(h: Harness): Promise<void> {
  await withClerks(h, 3, async (op) => {
    for (let round = 0; round < 12; round++) {
      const members = membersOf(op.sim.checker.conf).map((id) => id - 1);
      const vs = voters(op);
      switch (h.rand(7)) {
        case 0:
          if (members.length < 6) await op.add(h.rand(2) === 0, false);
          break;
        case 1: {
          const learners = members.filter((m) => !vs.includes(m));
          if (learners.length > 0) await op.promote(learners[h.rand(learners.length)]!, false);
          break;
        }
        case 2:
          if (vs.length > 3 || (vs.length === 3 && members.length > 3)) await op.remove(members[h.rand(members.length)]!, false);
          break;
        case 3:
          await op.transfer(vs[h.rand(vs.length)], 3 * ET);
          break;
        case 4:
          op.sim.crash(members[h.rand(members.length)]!);
          break;
        case 5: {
          const order = [...members];
          for (let k = order.length - 1; k > 0; k--) {
            const j = h.rand(k + 1);
            [order[k], order[j]] = [order[j]!, order[k]!];
          }
          const cut = 1 + h.rand(order.length - 1);
          op.sim.partition(order.slice(0, cut), order.slice(cut));
          break;
        }
        default:
          h.setUnreliable(h.rand(2) === 0);
      }
      await h.sleep(h.rand(2 * ET));
      op.sim.heal();
      for (const m of membersOf(op.sim.checker.conf)) if (!op.sim.alive(m - 1) && h.rand(2) === 0) await h.start(m - 1);
    }
  });
}

const members = (name: string, nodes: number, run: (h: Harness) => Promise<void>, options?: Scenario['options'], lossy = false): Scenario => ({
  name,
  suite: 'members',
  nodes,
  maxElectionMs: lossy ? MAX_ELECTION_LOSSY_MS : MAX_ELECTION_MS,
  run,
  ...(options ? { options } : {}),
});

/** The membership scenarios of `make soak`. */
export const MEMBERSHIP_SCENARIOS: readonly Scenario[] = [
  members('MembersGrowShrink', 3, (h) => growShrink(h, false)),
  members('MembersGrowShrinkUnreliable', 3, (h) => growShrink(h, true), undefined, true),
  members('MembersRollingReplacement', 3, rollingReplacement, undefined, true),
  members('MembersRemoveLeader', 3, removeLeader),
  members('MembersRemovedNodeCampaigns', 5, removedNodeCampaigns),
  members('MembersConcurrentChanges', 3, concurrentChanges),
  members('MembersTransferUnderLoad', 3, transferUnderLoad),
  members('MembersTransferPartition', 3, transferPartition),
  members('MembersSnapshots', 3, withSnapshots, { snapshots: { entries: 20 } }),
  members('MembersJointCrash', 3, jointCrash, undefined, true),
  members('MembersChaos', 3, membersChaos, { snapshots: { entries: 50 } }, true),
];
