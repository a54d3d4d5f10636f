/**
 * The SDK keeps its endpoints in step with the membership (issue 12): a client given one live
 * endpoint learns the others, and drops a removed member's; against a server without MemberList
 * it keeps the endpoints it was given and does not ask again.
 */
import { afterEach, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { FakeCluster } from './fake-cluster.js';

let cluster: FakeCluster | undefined;
let kv: KvClient | undefined;
afterEach(() => {
  kv?.close();
  cluster?.close();
});

const REFRESH_MS = 100;
const client = (endpoints: string[]): KvClient =>
  (kv = new KvClient({ endpoints, timeoutMs: 3_000, attemptTimeoutMs: 300, endpointRefreshMs: REFRESH_MS }));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, cond: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const sorted = (list: readonly string[]): string[] => [...list].sort();

it('a client given one endpoint learns the others, and is served by them once that one is gone', async () => {
  cluster = await FakeCluster.start(3);
  const c = client([cluster.node(1).addr]);
  await c.get('k');
  const all = sorted(cluster.nodes.map((n) => n.addr));
  await waitFor('the learned endpoints', () => sorted(c.endpoints).join() === all.join());
  cluster.stop(1);
  cluster.leaderId = 3;
  await c.put('k', 'v'); // only learned endpoints are left
  expect(cluster.node(3).calls.get('put')).toBe(1);
});

it("a member removed by someone else: its endpoint is dropped at the next refresh, configured or not", async () => {
  cluster = await FakeCluster.start(3);
  const c = client(cluster.nodes.map((n) => n.addr));
  await c.get('k');
  await waitFor('the first refresh', () => cluster!.count('memberList') === 1);
  cluster.members = cluster.members.filter((m) => m.id !== 3);
  cluster.stop(3);
  await sleep(REFRESH_MS + 20);
  // The leader moves: the client follows the hint, and refreshes.
  cluster.leaderId = 2;
  await c.get('k');
  await waitFor('node 3 dropped', () => !c.endpoints.includes(cluster!.node(3).addr));
  expect(sorted(c.endpoints)).toEqual(sorted([cluster.node(1).addr, cluster.node(2).addr]));
});

it('a client served through a follower sees the leader move in the name the follower gives, and refreshes', async () => {
  cluster = await FakeCluster.start(3);
  cluster.forwarding = true;
  const c = client([cluster.node(2).addr]);
  await c.get('k');
  await waitFor('the first refresh', () => c.endpoints.length === 3);
  cluster.members = cluster.members.filter((m) => m.id !== 1);
  cluster.leaderId = 3;
  await sleep(REFRESH_MS + 20);
  await c.get('k'); // served by node 2 again, which names node 3 now
  await waitFor('node 1 dropped', () => !c.endpoints.includes(cluster!.node(1).addr));
});

it("the client's own removal drops the endpoint at once", async () => {
  cluster = await FakeCluster.start(3);
  const c = client([cluster.node(1).addr]);
  const res = await c.removeMember(2);
  expect(res.members.map((m) => m.id)).toEqual([1, 3]);
  expect(sorted(c.endpoints)).toEqual(sorted([cluster.node(1).addr, cluster.node(3).addr]));
});

it('a membership that names no usable client address leaves the endpoints as they are', async () => {
  cluster = await FakeCluster.start(2);
  const c = client([cluster.node(1).addr]);
  await c.get('k');
  await waitFor('the first refresh', () => c.endpoints.length === 2);
  const learned = [...c.endpoints];
  for (const m of cluster.members) m.clientAddr = '';
  await sleep(REFRESH_MS + 20);
  cluster.leaderId = 2; // no hint (no address): the client finds it in its own list
  await c.get('k');
  await waitFor('the second refresh', () => cluster!.count('memberList') === 2);
  await sleep(50);
  expect(c.endpoints).toEqual(learned);
});

it('a server without MemberList: the configured endpoints are kept, calls succeed, and it is asked once', async () => {
  cluster = await FakeCluster.start(2);
  cluster.unimplemented.add('memberList');
  const configured = [cluster.node(1).addr, cluster.node(2).addr];
  const c = client(configured);
  await c.get('k');
  await waitFor('the first refresh', () => cluster!.count('memberList') === 1);
  await sleep(REFRESH_MS + 20);
  cluster.leaderId = 2; // a leader change would refresh again
  await c.get('k');
  await c.get('k');
  await sleep(REFRESH_MS);
  expect(cluster.count('memberList')).toBe(1);
  expect(c.endpoints).toEqual(configured);
});
