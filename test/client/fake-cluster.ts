/**
 * Fake raftkv nodes for the SDK's and kv-cli's tests: real gRPC servers of kv.proto's Kv service
 * over one shared, scripted model of a cluster (its members, its leader), so that a test can say
 * in a line who leads, what a node answers and what it refuses, and count what each node was
 * asked. Like a real server: the changes and the transfer are served by the leader only (others
 * refuse with the `raftkv-leader` hint), a refused change fails with `raftkv-error: conf-refused`,
 * and Get and Put are served by the leader, or, with `forwarding`, by any node, a follower naming
 * the leader in its answer's trailer as kv-server's forwarding does.
 */
import * as grpc from '@grpc/grpc-js';
import { loadKvProto, MD_ERROR, MD_LEADER } from '../../src/kv-api.js';
import { outcomeUnknown as serverOutcomeUnknown } from '../../src/server/membership.js';

export interface FakeMember {
  id: number;
  peerAddr: string;
  clientAddr: string;
  learner: boolean;
}

export type FakeMethod =
  | 'get'
  | 'put'
  | 'status'
  | 'memberList'
  | 'memberAdd'
  | 'memberPromote'
  | 'memberRemove'
  | 'leaderTransfer';

export interface Refusal {
  code: grpc.status;
  details: string;
  /** The `raftkv-error` trailer. */
  kind?: string;
  /** The `raftkv-leader` trailer. */
  leader?: string;
}

/**
 * What a node does with a call instead of the default: refuse it, never answer it (`hang`), or
 * do what it would (apply a change), run `after`, and then fail the call, leave it unanswered, or
 * answer it as it would have (`answer`).
 */
export type Scripted = { refuse: Refusal } | { hang: true } | { applyThen: Refusal | 'hang' | 'answer'; after?: () => void };

export interface FakeNode {
  id: number;
  addr: string;
  /** Calls this node received, by method. */
  calls: Map<FakeMethod, number>;
  server: grpc.Server;
}

type Request = Record<string, unknown>;
type Callback = (err: Partial<grpc.ServiceError> | null, res?: object, trailer?: grpc.Metadata) => void;

/** Answers a refusal with its trailers, as kv-server's gRPC layer does. */
function refusal(r: Refusal): Partial<grpc.ServiceError> {
  const metadata = new grpc.Metadata();
  if (r.kind) metadata.set(MD_ERROR, r.kind);
  if (r.leader) metadata.set(MD_LEADER, r.leader);
  return { code: r.code, details: r.details, metadata };
}

const confRefused = (details: string): Refusal => ({ code: grpc.status.FAILED_PRECONDITION, details, kind: 'conf-refused' });

/**
 * What kv-server answers for a change it proposed and stopped leading before it applied, built by
 * the server's own code (membership.ts), so that the SDK is tested against the real answer.
 */
export function outcomeUnknown(nodeId: number): Refusal {
  const e = serverOutcomeUnknown(`node ${nodeId} stopped leading before the change was applied here; it may still take effect`);
  return { code: grpc.status[e.code], details: e.details, kind: e.reason };
}

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  members: FakeMember[] = [];
  leaderId = 1;
  term = 3;
  commitIndex = 100;
  /** Each member's match index in the leader's answer (default: the commit index). */
  readonly matchIndex = new Map<number, number>();
  joint = false;
  readonly clusterId = 'c0ffee';
  /** Log index of the last change. */
  index = 90;
  /** Return something to script a call; undefined: the default. */
  script: (node: FakeNode, method: FakeMethod, request: Request) => Scripted | undefined = () => undefined;
  /** Followers serve Get and Put (as if forwarded to the leader), naming it. */
  forwarding = false;
  /** Methods no node implements (an older server): answered UNIMPLEMENTED. */
  readonly unimplemented = new Set<FakeMethod>();

  /** `n` nodes, ids 1..n, all voters; node 1 leads. */
  static async start(n: number): Promise<FakeCluster> {
    const c = new FakeCluster();
    for (let id = 1; id <= n; id++) {
      const node = await c.listen(id);
      c.members.push({ id, peerAddr: `127.0.0.1:${7000 + id}`, clientAddr: node.addr, learner: false });
    }
    return c;
  }

  node(id: number): FakeNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no fake node ${id}`);
    return n;
  }

  /** Calls of `method` to every node. */
  count(method: FakeMethod): number {
    return this.nodes.reduce((sum, n) => sum + (n.calls.get(method) ?? 0), 0);
  }

  /** Stops node `id`: nothing listens at its address any more. */
  stop(id: number): void {
    this.node(id).server.forceShutdown();
  }

  close(): void {
    for (const n of this.nodes) n.server.forceShutdown();
  }

  private addrOf(id: number): string | undefined {
    return this.members.find((m) => m.id === id)?.clientAddr;
  }

  private async listen(id: number): Promise<FakeNode> {
    const server = new grpc.Server();
    const node: FakeNode = { id, addr: '', calls: new Map(), server };
    const methods: FakeMethod[] = ['get', 'put', 'status', 'memberList', 'memberAdd', 'memberPromote', 'memberRemove', 'leaderTransfer'];
    const impl: grpc.UntypedServiceImplementation = {};
    for (const m of methods) {
      impl[m] = (call: grpc.ServerUnaryCall<Request, object>, cb: Callback) => this.serve(node, m, call.request, cb);
    }
    server.addService(loadKvProto().Kv.service, impl);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    node.addr = `127.0.0.1:${port}`;
    this.nodes.push(node);
    return node;
  }

  private serve(node: FakeNode, method: FakeMethod, request: Request, cb: Callback): void {
    node.calls.set(method, (node.calls.get(method) ?? 0) + 1);
    if (this.unimplemented.has(method)) return cb({ code: grpc.status.UNIMPLEMENTED, details: `The server does not implement the method ${method}` });
    const scripted = this.script(node, method, request);
    if (scripted && 'refuse' in scripted) return cb(refusal(scripted.refuse));
    if (scripted && 'hang' in scripted) return;
    const answer = (err: Refusal | null, res?: object): void => {
      if (err) return cb(refusal(err));
      if (scripted && 'applyThen' in scripted) {
        scripted.after?.();
        if (scripted.applyThen === 'hang') return;
        if (scripted.applyThen !== 'answer') return cb(refusal(scripted.applyThen));
      }
      cb(null, res);
    };
    const data = method === 'get' || method === 'put';
    const leaderOnly = method !== 'status' && method !== 'memberList' && !(data && this.forwarding);
    if (leaderOnly && node.id !== this.leaderId) return answer(this.notLeader(node));
    if (data && node.id !== this.leaderId) {
      const trailer = new grpc.Metadata();
      trailer.set(MD_LEADER, this.addrOf(this.leaderId) ?? '');
      return cb(null, method === 'get' ? { found: false } : {}, trailer);
    }
    switch (method) {
      case 'get':
        return answer(null, { found: false });
      case 'put':
        return answer(null, {});
      case 'status':
        return answer(null, this.status(node));
      case 'memberList':
        return answer(null, this.list(node));
      case 'leaderTransfer':
        return answer(...this.transfer(Number(request['id'])));
      default:
        return answer(...this.change(method, request));
    }
  }

  private notLeader(node: FakeNode): Refusal {
    if (this.leaderId === 0) return { code: grpc.status.UNAVAILABLE, details: `node ${node.id} knows no leader`, kind: 'no-leader' };
    const leader = this.addrOf(this.leaderId);
    return { code: grpc.status.FAILED_PRECONDITION, details: `node ${node.id} is not the leader`, kind: 'not-leader', leader };
  }

  private status(node: FakeNode): object {
    return {
      nodeId: node.id,
      role: node.id === this.leaderId ? 'leader' : 'follower',
      term: this.term,
      leaderId: this.leaderId,
      leaderAddr: this.addrOf(this.leaderId) ?? '',
      commitIndex: this.commitIndex,
      clusterId: this.clusterId,
    };
  }

  private list(node: FakeNode): object {
    const leads = node.id === this.leaderId;
    return {
      members: this.members.map((m) => ({
        ...m,
        matchIndex: leads ? (this.matchIndex.get(m.id) ?? this.commitIndex) : 0,
        active: leads,
      })),
      leaderId: this.leaderId,
      clusterId: this.clusterId,
      commitIndex: this.commitIndex,
      joint: this.joint,
      nodeId: node.id,
    };
  }

  private change(method: FakeMethod, r: Request): [Refusal | null, object?] {
    const id = Number(r['id']);
    const at = this.members.findIndex((m) => m.id === id);
    if (method === 'memberAdd') {
      if (at >= 0) return [confRefused(`node ${id} is a member already`)];
      this.members.push({ id, peerAddr: String(r['peerAddr']), clientAddr: String(r['clientAddr']), learner: r['learner'] === true });
    } else if (at < 0) {
      return [confRefused(`node ${id} is not a member`)];
    } else if (method === 'memberPromote') {
      if (!this.members[at]!.learner) return [confRefused(`node ${id} is a voter already`)];
      this.members[at]!.learner = false;
    } else {
      this.members.splice(at, 1);
    }
    this.index++;
    return [null, { members: this.members.map((m) => ({ ...m, matchIndex: 0, active: false })), index: this.index }];
  }

  private transfer(id: number): [Refusal | null, object?] {
    const to = id === 0 ? this.members.find((m) => !m.learner && m.id !== this.leaderId)?.id : id;
    if (to === undefined || !this.members.some((m) => m.id === to && !m.learner)) return [confRefused(`node ${id} is not a voter`)];
    this.leaderId = to;
    this.term++;
    return [null, { leaderId: to, term: this.term }];
  }
}
