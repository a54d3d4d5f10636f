/**
 * The status page's gathering (cluster-view.ts): each member's own answer or why there is none,
 * lag from the leader's answer, peers' answers checked, and one gathering shared by many polls.
 */
import { describe, expect, it } from 'vitest';
import type { StatusResponse } from '../../src/kv-api.js';
import { ClusterViews, type ClusterViewSource } from '../../src/server/cluster-view.js';
import type { StatusReport } from '../../src/server/health.js';

const member = (id: number, lag: number | null = null): StatusReport['members'][number] => ({ id, voter: true, peerAddr: `p${id}`, clientAddr: `c${id}`, match: null, lag, active: null });
const REPORT = { clusterId: 'c', node: { id: 1, leaderChanges: 2 }, members: [member(1), member(2), member(3)] } as unknown as StatusReport;
const LOAD = { reads: 5, writes: 7, latencyBoundsSeconds: [0.001, 0.01], latencyCounts: [3, 12], fsyncs: 4, fsyncSeconds: 0.004 };

function status(nodeId: number, role: string, lastLogIndex: number, over: Partial<StatusResponse> = {}): StatusResponse {
  return { nodeId, role, term: 3, leaderId: 2, leaderAddr: 'c2', commitIndex: 40, appliedIndex: 40, lastLogIndex, clusterId: 'c', snapshotIndex: 0, load: LOAD, quotaBytes: 0, quotaUsedBytes: 0, ...over };
}

function views(ask: ClusterViewSource['ask'], report: StatusReport | null = REPORT): { views: ClusterViews; time: { now: number } } {
  const time = { now: 0 };
  const v = new ClusterViews({ report: () => report ?? undefined, self: () => status(1, 'follower', 45), ask, clock: { now: () => time.now, epochMs: () => 1_000_000 + time.now }, timeoutMs: 100 });
  return { views: v, time };
}

describe('cluster view', () => {
  it('shows each member as it answers for itself, a silent one down with the reason, and lag behind the leader', async () => {
    const { views: v } = views(async (id) => {
      if (id === 3) throw new Error('UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7003. Resolution note: ');
      return status(2, 'leader', 50);
    });
    const view = (await v.get())!;
    expect(view).toMatchObject({ at: 1_000_000, self: 1, clusterId: 'c', leaderChanges: 2 });
    expect(view.members.map((m) => [m.id, m.status?.role ?? null, m.lag])).toEqual([
      [1, 'follower', 5],
      [2, 'leader', 0],
      [3, null, null],
    ]);
    expect(view.members[2]!.error).toBe('UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7003');
    expect(view.members[1]!.status!.load).toEqual(LOAD);
  });

  it("prefers the leader's own lag figures when this node leads", async () => {
    const report = { ...REPORT, members: [member(1, 0), member(2, 9), member(3, 2)] } as StatusReport;
    const { views: v } = views(async (id) => status(id, 'follower', 10), report);
    expect((await v.get())!.members.map((m) => m.lag)).toEqual([0, 9, 2]);
  });

  it("refuses a peer's answer for another node, and drops a load that does not add up", async () => {
    const { views: v } = views(async (id) =>
      id === 2 ? status(3, 'leader', 50) : status(3, 'follower', 50, { role: 'x'.repeat(1000), load: { ...LOAD, latencyCounts: [1] } }),
    );
    const view = (await v.get())!;
    expect(view.members[1]!.status).toBeNull();
    expect(view.members[1]!.error).toBe('node 3 answered for node 2');
    expect(view.members[2]!.status!.role).toHaveLength(32);
    expect(view.members[2]!.status!.load).toBeNull();
  });

  it('runs one gathering at a time, and serves it to every poll for half a second', async () => {
    let asked = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { views: v, time } = views(async (id) => {
      asked++;
      await gate;
      return status(id, 'follower', 10);
    });
    const polls = Array.from({ length: 50 }, () => v.get());
    release();
    const answers = await Promise.all(polls);
    expect(asked).toBe(2);
    expect(new Set(answers).size).toBe(1);
    time.now = 499;
    expect(await v.get()).toBe(answers[0]);
    expect(asked).toBe(2);
    time.now = 500;
    await v.get();
    expect(asked).toBe(4);
  });

  it('has nothing to show while the node starts', async () => {
    const { views: v } = views(async () => status(2, 'leader', 1), null);
    expect(await v.get()).toBeUndefined();
  });
});
