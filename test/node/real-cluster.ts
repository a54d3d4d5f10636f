import { freePorts } from '../support/ports.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message, NodeId } from '../../src/raft/core/types.js';
import { systemClock } from '../../src/clock.js';
import { RaftNode } from '../../src/raft/node.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { GrpcTransport } from '../../src/raft/transport/grpc.js';
import type { Transport } from '../../src/raft/transport/transport.js';
import { NOOP } from '../sim/cluster.js';
import type { LabCluster } from '../sim/harness.js';

const CLUSTER_ID = 'lab';
const decoder = new TextDecoder();
const encoder = new TextEncoder();


/**
 * A node's network: a real GrpcTransport while connected; disconnecting closes it (peers see
 * refused connections) and connecting binds a fresh one on the same port.
 */
class SwitchableTransport implements Transport {
  private inner: GrpcTransport | undefined;
  private handler: ((m: Message) => void) | undefined;
  private snapshotHandler: ((m: Message, data: Uint8Array) => void) | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly make: () => GrpcTransport) {}

  send(m: Message): void {
    this.inner?.send(m);
  }

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  sendSnapshot(m: Message, data: Uint8Array): Promise<void> {
    return this.inner ? this.inner.sendSnapshot(m, data) : Promise.reject(new Error('disconnected'));
  }

  onSnapshot(handler: (m: Message, data: Uint8Array) => void): void {
    this.snapshotHandler = handler;
  }

  /** The lab's clusters keep their members. */
  setPeers(): void {}

  /** Serialized, so a close always finishes before the port is bound again. */
  up(): Promise<void> {
    return (this.chain = this.chain.then(async () => {
      if (this.inner) return;
      const t = this.make();
      t.onMessage((m) => this.handler?.(m));
      t.onSnapshot((m, data) => this.snapshotHandler?.(m, data));
      await t.start();
      this.inner = t;
    }));
  }

  down(): Promise<void> {
    return (this.chain = this.chain.then(async () => {
      const t = this.inner;
      this.inner = undefined;
      await t?.close();
    }));
  }

  close(): Promise<void> {
    return this.down();
  }
}

interface RealNode {
  id: NodeId;
  node: RaftNode | undefined;
  net: SwitchableTransport | undefined;
  connected: boolean;
  applied: string[];
}

/**
 * Real Raft nodes for the lab's scenarios: RaftNode over SQLite files in a temp dir and gRPC on
 * 127.0.0.1, in this process. Faults are real: disconnect closes the node's server and streams,
 * crash stops the node, restart reopens its database.
 */
export class RealCluster implements LabCluster {
  private readonly nodes: RealNode[];
  private boots = 0;

  private constructor(
    private readonly dir: string,
    private readonly ports: number[],
  ) {
    this.nodes = ports.map((_, i) => ({ id: i + 1, node: undefined, net: undefined, connected: true, applied: [] }));
  }

  static async start(n: number): Promise<RealCluster> {
    const c = new RealCluster(mkdtempSync(join(tmpdir(), 'raftkv-lab-')), await freePorts(n));
    for (let i = 0; i < n; i++) await c.boot(i, true);
    return c;
  }

  get n(): number {
    return this.nodes.length;
  }

  get now(): number {
    return performance.now();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  alive(i: number): boolean {
    return this.nodes[i]!.node !== undefined;
  }

  connected(i: number): boolean {
    return this.nodes[i]!.connected;
  }

  connect(i: number): void {
    const n = this.nodes[i]!;
    n.connected = true;
    void n.net?.up();
  }

  disconnect(i: number): void {
    const n = this.nodes[i]!;
    n.connected = false;
    void n.net?.down();
  }

  async crash(i: number): Promise<void> {
    const n = this.nodes[i]!;
    const node = n.node;
    n.node = undefined;
    n.net = undefined;
    await node?.stop();
  }

  async restart(i: number): Promise<void> {
    await this.crash(i);
    await this.boot(i, false);
  }

  propose(i: number, cmd: string): { ok: boolean; index: number; term: number } {
    const node = this.nodes[i]!.node;
    if (!node) return { ok: false, index: -1, term: -1 };
    const r = node.propose(encoder.encode(cmd));
    return r ? { ok: true, ...r } : { ok: false, index: -1, term: node.status().term };
  }

  term(i: number): number {
    return this.nodes[i]!.node?.status().term ?? -1;
  }

  isLeader(i: number): boolean {
    return this.nodes[i]!.node?.status().role === 'leader';
  }

  applied(i: number): readonly (string | undefined)[] {
    return this.nodes[i]!.applied;
  }

  async close(): Promise<void> {
    for (let i = 0; i < this.n; i++) await this.crash(i);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async boot(i: number, create: boolean): Promise<void> {
    const n = this.nodes[i]!;
    const peers = this.ports.map((port, k) => ({ id: k + 1, address: `127.0.0.1:${port}` }));
    const storage = SqliteStorage.open(join(this.dir, `node${n.id}.db`), { clusterId: CLUSTER_ID, nodeId: n.id, create });
    const net = new SwitchableTransport(
      () =>
        new GrpcTransport({
          clusterId: CLUSTER_ID,
          self: n.id,
          listen: `127.0.0.1:${this.ports[i]}`,
          peers,
          logger: () => {},
        }),
    );
    const node = new RaftNode({
      id: n.id,
      peers: peers.map((p) => p.id),
      storage,
      transport: net,
      clock: systemClock,
      seed: n.id * 7919 + (this.boots++),
      handler: {
        applied: (e) => (n.applied[e.index] = e.type === 'noop' ? NOOP : decoder.decode(e.data)),
        readConfirmed: () => {},
        leadershipLost: () => {},
      },
      onFatal: (e) => {
        throw e;
      },
    });
    n.node = node;
    n.net = net;
    if (n.connected) await net.up();
  }
}
