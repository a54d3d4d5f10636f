/**
 * A TCP proxy that delays what it forwards, for a kernel without netem: each chunk is held for
 * the link's delay plus a random jitter and released in order (TCP is a stream: reordering
 * chunks would corrupt it, so jitter only ever stretches the gaps), and the whole link can stall
 * for a while, like a congested path or a paused switch. Both directions of a connection are
 * delayed the same way.
 */
import * as net from 'node:net';

export interface LinkShape {
  delayMs: number;
  jitterMs: number;
}

/** Bytes held per direction before the proxy stops reading from the sender. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

export class DelayProxy {
  shape: LinkShape = { delayMs: 0, jitterMs: 0 };
  private stalledUntil = 0;
  private readonly server: net.Server;
  private readonly connections = new Set<net.Socket>();
  private readonly pipes = new Set<DelayedPipe>();
  /** Connections accepted so far. */
  accepted = 0;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly random: () => number,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** Listens on `host`, port chosen by the OS; returns the port. */
  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, host, () => resolve((this.server.address() as net.AddressInfo).port));
    });
  }

  /** Holds every byte in flight and arriving for `ms` from now. */
  stall(ms: number): void {
    this.stalledUntil = Math.max(this.stalledUntil, Date.now() + ms);
    for (const p of this.pipes) p.reschedule();
  }

  /** Ends the stall now. */
  unstall(): void {
    this.stalledUntil = 0;
    for (const p of this.pipes) p.reschedule();
  }

  /** Resets every proxied connection (the sender reconnects, directly once its redirect is gone). */
  dropConnections(): void {
    for (const s of this.connections) s.resetAndDestroy();
    this.connections.clear();
  }

  close(): Promise<void> {
    this.dropConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** When a chunk arriving now may leave. */
  releaseTime(previous: number): number {
    const { delayMs, jitterMs } = this.shape;
    return Math.max(Date.now() + delayMs + this.random() * jitterMs, previous);
  }

  get stalled(): number {
    return this.stalledUntil;
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.target.port, this.target.host);
    this.connections.add(client);
    this.connections.add(upstream);
    const a = new DelayedPipe(client, upstream, this);
    const b = new DelayedPipe(upstream, client, this);
    this.pipes.add(a);
    this.pipes.add(b);
    const teardown = (): void => {
      a.stop();
      b.stop();
      this.pipes.delete(a);
      this.pipes.delete(b);
      this.connections.delete(client);
      this.connections.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      s.on('error', teardown);
      s.on('close', teardown);
    }
  }
}

/** One direction of a proxied connection: chunks wait in a queue until their release time. */
class DelayedPipe {
  private readonly queue: { at: number; chunk: Buffer }[] = [];
  private queuedBytes = 0;
  private lastRelease = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly proxy: DelayProxy,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
    src.on('end', () => {
      this.ended = true;
      this.reschedule();
    });
  }

  private push(chunk: Buffer): void {
    this.lastRelease = this.proxy.releaseTime(this.lastRelease);
    this.queue.push({ at: this.lastRelease, chunk });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > HIGH_WATER_BYTES) this.src.pause();
    this.reschedule();
  }

  reschedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const head = this.queue[0];
    if (head === undefined) {
      if (this.ended) this.dst.end();
      return;
    }
    const wait = Math.max(head.at, this.proxy.stalled) - Date.now();
    this.timer = setTimeout(() => this.release(), Math.max(0, wait));
  }

  private release(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now && this.proxy.stalled <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      this.dst.write(chunk);
    }
    if (this.queuedBytes <= HIGH_WATER_BYTES / 2 && this.src.isPaused()) this.src.resume();
    this.reschedule();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}
