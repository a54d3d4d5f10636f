/**
 * A small network for real-process tests: one Linux bridge, one network namespace per node with
 * a veth pair into the bridge, and an address on the host side of the bridge so that the test
 * process (in the root namespace) reaches every node. Links between nodes are cut, made lossy or
 * sent through a proxy on the host by iptables rules inside the namespaces (which also cut a node's
 * client port off from the test process, leaving its peer links alone); each namespace's
 * whole rule set is replaced at once (iptables-restore), so a fault is applied and healed as a
 * unit, and dies with its namespace.
 *
 * Everything created is named `rkv<pid><tag>…` (the test process's PID), so that a later run can
 * tell what a crashed run left behind (its PID is gone) from anything else, and remove only that.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Every node listens for peers and for clients on these ports of its own address. */
export const PEER_PORT = 7001;
export const CLIENT_PORT = 9001;

const NAME_PREFIX = 'rkv';
/** `rkv<pid><tag>` followed by `-n<i>` (namespace), `b` (bridge) or `h<i>` (host end of a veth). */
const OUR_NAME = /^rkv(\d+)[a-z](?:-n\d+|b|h\d+)$/;
const IFNAMSIZ = 15;

/** A directed link between two nodes: traffic from `from` to `to`. */
export interface Link {
  readonly from: number;
  readonly to: number;
}

/** What the network does to node-to-node traffic; the empty state is a healthy network. */
export interface LinkState {
  /** Messages from `from` to `to` are dropped (the streams `from` opened to `to`'s peer port). */
  readonly blocked: readonly Link[];
  /** Each packet from `from` to `to` is dropped with this probability. */
  readonly lossy: readonly (Link & { readonly probability: number })[];
  /** `from`'s connections to `to`'s peer port go through a proxy at the host address, this port. */
  readonly proxied: readonly (Link & { readonly proxyPort: number })[];
  /** Nodes whose client port the test process cannot reach, either way (their peer links untouched). */
  readonly clientCut?: readonly number[];
}

export const HEALTHY: LinkState = { blocked: [], lossy: [], proxied: [] };

// ---------------------------------------------------------------------------------------------
// Commands.

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command, ignoring a failure (for removal of what may already be gone). */
function tryRun(cmd: string, args: string[]): boolean {
  try {
    run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command without blocking the event loop (clients and proxies go on meanwhile). */
function runAsync(cmd: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === '' ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`))));
    if (input !== '') child.stdin!.end(input);
  });
}

function hasCommand(cmd: string, versionArg = '--version'): boolean {
  return tryRun(cmd, [versionArg]);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// Availability and leftovers.

/**
 * Why namespace tests cannot run here (not root, `ip netns` or iptables missing or not working
 * inside a namespace), or undefined when they can. Creates and removes one probe namespace.
 */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, a bridge and iptables)';
  if (!hasCommand('ip', '-V')) return 'the ip command (iproute2) is missing';
  if (!hasCommand('ss', '-V')) return 'the ss command (iproute2) is missing';
  if (!hasCommand('iptables')) return 'iptables is missing (apt-get install -y iptables)';
  if (!hasCommand('iptables-restore')) return 'iptables-restore is missing (apt-get install -y iptables)';
  const probe = `${NAME_PREFIX}${process.pid}z-n0`;
  try {
    run('ip', ['netns', 'add', probe]);
  } catch (e) {
    return `ip netns does not work here: ${firstLine(e)}`;
  }
  try {
    run('ip', ['netns', 'exec', probe, 'iptables', '-S']);
  } catch (e) {
    return `iptables does not work inside a network namespace: ${firstLine(e)}`;
  } finally {
    tryRun('ip', ['netns', 'del', probe]);
  }
  return undefined;
}

function firstLine(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr || err.message || String(e)).trim().split('\n')[0]!;
}

/** Whether `name` matches `pattern`, whose first group is a PID, of a process that is gone. */
export function leftBehind(name: string, pattern: RegExp = OUR_NAME): boolean {
  const m = pattern.exec(name);
  return m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
}

/**
 * Removes the namespaces, veths and bridges that an earlier run of a namespace test left behind
 * when it was killed: names of our scheme whose PID is no longer running. Returns what it removed.
 */
export function removeLeftovers(): string[] {
  const stale = (name: string): boolean => leftBehind(name);
  const removed: string[] = [];
  // Host ends of veths first (that removes both ends), then bridges, then namespaces.
  const links = run('ip', ['-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && stale(n));
  for (const name of links.sort((a, b) => Number(a.endsWith('b')) - Number(b.endsWith('b')))) {
    if (tryRun('ip', ['link', 'del', name])) removed.push(name);
  }
  for (const line of run('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0]!;
    if (stale(name) && tryRun('ip', ['netns', 'del', name])) removed.push(name);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------
// The network.

/** Cleanups to run synchronously if the process exits or is interrupted before the tests clean up. */
const onExit = new Set<() => void>();
let exitHooksInstalled = false;

/**
 * Runs `fn` when the process exits or gets SIGINT/SIGTERM/SIGHUP, unless the returned function is
 * called first. After a signal the cleanups run, then the signal is raised again with no handler
 * of ours, so the process ends as that signal says (vitest's workers turn process.exit() into an
 * exception, and the run would go on).
 */
export function atExit(fn: () => void): () => void {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    const runAll = (): void => {
      for (const f of [...onExit].reverse()) {
        onExit.delete(f);
        try {
          f();
        } catch {
          // best effort: the rest must still run
        }
      }
    };
    process.on('exit', runAll);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(signal, () => {
        runAll();
        process.kill(process.pid, signal);
      });
    }
  }
  onExit.add(fn);
  return () => onExit.delete(fn);
}

export class Netns {
  /** `rkv<pid><tag>`: the start of every name this network uses. */
  readonly prefix: string;
  readonly size: number;
  /** The host side of the bridge, as the nodes see the test process. */
  readonly hostIp: string;
  private readonly subnet: string;
  private readonly spawned = new Set<ChildProcess>();
  private readonly unregister: () => void;
  private destroyed = false;
  private readonly pdeathsig: string[];

  private constructor(tag: string, size: number, octet: number) {
    this.prefix = `${NAME_PREFIX}${process.pid}${tag}`;
    this.size = size;
    this.subnet = `10.213.${octet}`;
    this.hostIp = `${this.subnet}.1`;
    // A server outlives a SIGKILLed test unless the kernel kills it with its parent.
    this.pdeathsig = hasCommand('setpriv') ? ['setpriv', '--pdeathsig', 'KILL'] : [];
    this.unregister = atExit(() => this.destroy());
  }

  /**
   * Creates the bridge and `size` namespaces (tag: one lower-case letter, so that two networks of
   * one process differ). The /24 is picked from the PID, skipping ones the host already uses.
   */
  static create(tag: string, size: number): Netns {
    if (!/^[a-y]$/.test(tag)) throw new Error(`tag must be one letter a-y, got "${tag}"`);
    const used = run('ip', ['-4', '-o', 'addr', 'show']) + run('ip', ['-4', 'route', 'show']);
    let octet = 20 + ((process.pid * 7 + tag.charCodeAt(0)) % 230);
    for (let tries = 0; used.includes(`10.213.${octet}.`); tries++) {
      if (tries > 230) throw new Error('no free 10.213.x.0/24 for the test network');
      octet = 20 + ((octet - 20 + 1) % 230);
    }
    const net = new Netns(tag, size, octet);
    try {
      net.build();
    } catch (e) {
      net.destroy();
      throw e;
    }
    return net;
  }

  ns(id: number): string {
    return `${this.prefix}-n${id}`;
  }

  nodeIp(id: number): string {
    return `${this.subnet}.${10 + id}`;
  }

  private bridge(): string {
    return `${this.prefix}b`;
  }

  private hostVeth(id: number): string {
    return `${this.prefix}h${id}`;
  }

  private build(): void {
    if (this.hostVeth(this.size).length > IFNAMSIZ) throw new Error(`interface name ${this.hostVeth(this.size)} is too long`);
    const br = this.bridge();
    run('ip', ['link', 'add', br, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${this.hostIp}/24`, 'dev', br]);
    run('ip', ['link', 'set', br, 'up']);
    for (let id = 1; id <= this.size; id++) {
      const ns = this.ns(id);
      run('ip', ['netns', 'add', ns]);
      run('ip', ['link', 'add', this.hostVeth(id), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      run('ip', ['link', 'set', this.hostVeth(id), 'master', br, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${this.nodeIp(id)}/24`, 'dev', 'eth0']);
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
  }

  /**
   * Starts `argv` inside node `id`'s namespace. `ip netns exec` (and setpriv) exec the command,
   * so the child's PID is the command's, and signals reach it.
   */
  spawnIn(id: number, argv: string[], opts: SpawnOptions): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(id), ...this.pdeathsig, ...argv], opts);
    this.spawned.add(child);
    child.once('exit', () => this.spawned.delete(child));
    return child;
  }

  /** Replaces the iptables rules of every namespace with those of `state`, all at once. */
  async apply(state: LinkState): Promise<void> {
    await Promise.all(
      Array.from({ length: this.size }, (_, i) =>
        runAsync('ip', ['netns', 'exec', this.ns(i + 1), 'iptables-restore'], this.rules(i + 1, state)),
      ),
    );
  }

  /** Packets the DROP rules in force have dropped, over all namespaces (proof that a cut cut). */
  async droppedPackets(): Promise<number> {
    const dumps = await Promise.all(
      Array.from({ length: this.size }, (_, i) => runAsync('ip', ['netns', 'exec', this.ns(i + 1), 'iptables-save', '-c', '-t', 'filter'])),
    );
    let n = 0;
    for (const m of dumps.join('\n').matchAll(/^\[(\d+):\d+\] .* -j DROP$/gm)) n += Number(m[1]);
    return n;
  }

  /**
   * Connections from the test process to node `id`'s client port that received data within the
   * last `withinMs` (the kernel's own record, per socket): which clients are using that node now.
   */
  async activeClientConnections(id: number, withinMs: number): Promise<number> {
    const out = await runAsync('ip', ['netns', 'exec', this.ns(id), 'ss', '-tniH', 'state', 'established', `( sport = :${CLIENT_PORT} )`]);
    let n = 0;
    // One connection per address line, its details on the next; ss leaves lastrcv out when it is 0.
    for (const conn of out.split(/\n(?=\S)/)) {
      if (!conn.includes(`${this.hostIp}:`)) continue;
      const lastRcvMs = Number(/\blastrcv:(\d+)/.exec(conn)?.[1] ?? 0);
      if (lastRcvMs <= withinMs) n++;
    }
    return n;
  }

  /** Node `id`'s rule set for `state`, in iptables-restore form (a complete replacement). */
  rules(id: number, state: LinkState): string {
    const filter: string[] = [];
    const nat: string[] = [];
    const peer = (to: number): string => `-d ${this.nodeIp(to)}/32 -p tcp --dport ${PEER_PORT}`;
    // Dropped at the receiver: only the sender's stream to our peer port, so that a one-way
    // block leaves the reverse stream (which we opened) working.
    for (const l of state.blocked) {
      if (l.to === id) filter.push(`-A INPUT -s ${this.nodeIp(l.from)}/32 -p tcp --dport ${PEER_PORT} -j DROP`);
    }
    if (state.clientCut?.includes(id)) {
      filter.push(`-A INPUT -s ${this.hostIp}/32 -p tcp --dport ${CLIENT_PORT} -j DROP`);
      filter.push(`-A OUTPUT -d ${this.hostIp}/32 -p tcp --sport ${CLIENT_PORT} -j DROP`);
    }
    for (const l of state.lossy) {
      if (l.to === id) {
        filter.push(`-A INPUT -s ${this.nodeIp(l.from)}/32 -m statistic --mode random --probability ${l.probability.toFixed(4)} -j DROP`);
      }
    }
    // Redirected at the sender. New connections go to the proxy; the established direct one is
    // reset (it is not NATed, so it still has the peer's address after the nat hook) and gRPC
    // reconnects, through the proxy.
    for (const l of state.proxied) {
      if (l.from !== id) continue;
      nat.push(`-A OUTPUT ${peer(l.to)} -j DNAT --to-destination ${this.hostIp}:${l.proxyPort}`);
      filter.push(`-A OUTPUT ${peer(l.to)} -j REJECT --reject-with tcp-reset`);
    }
    return [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ...filter,
      'COMMIT',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':INPUT ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ...nat,
      'COMMIT',
      '',
    ].join('\n');
  }

  /**
   * Removes everything: SIGKILLs the processes started in the namespaces (by PID), then the veths,
   * the bridge and the namespaces (their iptables rules go with them). Synchronous, so that it
   * can run at exit; idempotent.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.unregister();
    for (const c of this.spawned) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    for (let id = 1; id <= this.size; id++) tryRun('ip', ['link', 'del', this.hostVeth(id)]);
    tryRun('ip', ['link', 'del', this.bridge()]);
    for (let id = 1; id <= this.size; id++) tryRun('ip', ['netns', 'del', this.ns(id)]);
  }

  /** Names of ours that still exist (for the test's own check that nothing is left). */
  leftovers(): string[] {
    const links = run('ip', ['-o', 'link', 'show']);
    const namespaces = run('ip', ['netns', 'list']);
    const names = [...links.matchAll(/^\d+:\s+([^:@\s]+)/gm), ...namespaces.matchAll(/^(\S+)/gm)].map((m) => m[1]!);
    return names.filter((n) => n.startsWith(this.prefix));
  }
}
