/**
 * The kv-server process: bad flags (exit 2), data dirs it must refuse without touching them
 * (exit 1), a port in use (exit 1), and SIGTERM/SIGINT (exit 0, the data dir reopens).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { Cluster, ensureBuilt, freePorts, killAll, server, sha256File, tempDir } from './cluster.js';

const dirs: string[] = [];
const clusters: Cluster[] = [];

beforeAll(async () => {
  await ensureBuilt();
});

afterAll(async () => {
  for (const c of clusters) await c.close();
  await killAll();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(name: string): string {
  const d = tempDir(name);
  dirs.push(d);
  return d;
}

/** Lists a directory with each file's hash: "nothing modified" means this stays equal. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir).sort()) out[f] = sha256File(path.join(dir, f));
  return out;
}

describe('flags', () => {
  it('bad flags: exit 2 with a clear message, nothing created', async () => {
    const root = scratch('flags');
    const [p1, p2, c1] = (await freePorts(3)).map((p) => `127.0.0.1:${p}`);
    const dataDir = path.join(root, 'node1');
    const good = ['--id', '1', '--peers', `1=${p1},2=${p2}`, '--client-addr', c1!, '--data-dir', dataDir];
    const withFlag = (name: string, value: string): string[] => {
      const args = [...good];
      const i = args.indexOf(name);
      if (i >= 0) args[i + 1] = value;
      else args.push(name, value);
      return args;
    };
    const cases: [string, string[], RegExp][] = [
      ['unknown flag', [...good, '--bogus', '1'], /Unknown argument/],
      ['missing flags', ['--id', '1'], /Missing required/],
      ['id not in peers', withFlag('--id', '3'), /--id 3 is not in --peers/],
      ['non-numeric id', withFlag('--id', 'one'), /--id must be a positive integer/],
      ['peer without id', withFlag('--peers', `${p1!},2=${p2!}`), /not id=host:port/],
      ['bad port', withFlag('--peers', `1=127.0.0.1:70001,2=${p2!}`), /port 70001 is not in 1-65535/],
      ['bad address', withFlag('--peers', `1=127.0.0.1,2=${p2!}`), /not a host:port address/],
      ['duplicate id', withFlag('--peers', `1=${p1!},1=${p2!}`), /listed twice/],
      ['bad client address', withFlag('--client-addr', 'nowhere'), /--client-addr: "nowhere" is not a host:port/],
      ['client address = peer address', withFlag('--client-addr', p2!), /also the peer address of node 2/],
      ['non-numeric election timeout', withFlag('--election-timeout', 'soon'), /--election-timeout must be a whole number of ms from 20 to 60000, got "soon"/],
      ['election timeout that never fires', withFlag('--election-timeout', '1e12'), /--election-timeout must be .* from 20 to 60000, got "1e12"/],
      ['election timeout over a minute', withFlag('--election-timeout', '60001'), /--election-timeout must be .* got "60001"/],
      ['election timeout too short', withFlag('--election-timeout', '19'), /--election-timeout must be .* got "19"/],
      ['non-numeric heartbeat', withFlag('--heartbeat', '5x'), /--heartbeat must be a whole number of ms from 1 to 59999, got "5x"/],
      ['zero heartbeat', withFlag('--heartbeat', '0'), /--heartbeat must be .* got "0"/],
      ['fractional id', withFlag('--id', '1.5'), /--id must be a positive integer, got "1.5"/],
      ['negative snapshot threshold', withFlag('--snapshot-threshold', '-1'), /--snapshot-threshold must be a whole number of entries from 0 to 1000000000, got "-1"/],
      ['fractional snapshot threshold', withFlag('--snapshot-threshold', '2.5'), /--snapshot-threshold must be .* got "2.5"/],
      ['huge snapshot retain', withFlag('--snapshot-retain', '1e12'), /--snapshot-retain must be a whole number of entries from 0 to 1000000000, got "1e12"/],
      ['non-numeric snapshot retain', withFlag('--snapshot-retain', 'all'), /--snapshot-retain must be .* got "all"/],
      [
        'heartbeat >= election timeout',
        [...withFlag('--election-timeout', '100'), '--heartbeat', '100'],
        /--heartbeat \(100 ms\) must be less than --election-timeout \(100 ms\)/,
      ],
      ['missing data dir parent', withFlag('--data-dir', path.join(root, 'no', 'such', 'dir')), /parent directory .* does not exist/],
      ['bad log level', [...good, '--log-level', 'chatty'], /Invalid values/],
      ['client peer not in peers', [...good, '--client-peers', '5=127.0.0.1:9999'], /node 5 is not in --peers/],
      ['stray argument', [...good, 'extra'], /Unknown argument: extra/],
    ];
    const results = await Promise.all(cases.map(([, args]) => server(args)));
    results.forEach((r, i) => {
      const [name, , message] = cases[i]!;
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, name).toMatch(message);
      expect(r.stderr, name).toMatch(/^kv-server: /);
    });
    expect(fs.readdirSync(root)).toEqual([]);
  });
});

describe('data dir', () => {
  it('creates the data dir on first start; SIGTERM exits 0; it reopens with the data; SIGINT exits 0', async () => {
    const c = await Cluster.create('reopen', { size: 1 });
    clusters.push(c);
    c.start(1);
    await c.waitForLeader();
    expect(fs.existsSync(path.join(c.node(1).dataDir, 'raft.db'))).toBe(true);
    const client = new KvClient({ endpoints: c.endpoints });
    try {
      await client.put('durable', 'yes');
      await client.append('durable', '!');
      expect(await c.stop(1, 'SIGTERM')).toEqual({ code: 0, signal: null });
      expect(c.node(1).log).toMatch(/shutting down .*signal=SIGTERM/);
      expect(c.node(1).log).toMatch(/stopped/);

      c.start(1);
      await c.waitForLeader();
      expect(await client.get('durable')).toBe('yes!');
      expect(c.node(1).log).toMatch(/opened data file/);
      expect(await c.stop(1, 'SIGINT')).toEqual({ code: 0, signal: null });
    } finally {
      client.close();
    }
  });

  it('refuses a foreign (garbage), corrupt, truncated, or another cluster/node data dir: exit 1, message, files unchanged', async () => {
    // A real data file to spoil, from a clean single-node run.
    const c = await Cluster.create('spoil', { size: 1 });
    clusters.push(c);
    c.start(1);
    await c.waitForLeader();
    const client = new KvClient({ endpoints: c.endpoints });
    const marker = 'MARKER-'.repeat(20);
    await client.put('k', marker);
    const [st] = await client.status();
    client.close();
    const clusterId = st?.ok ? st.status.clusterId : '';
    expect(clusterId).toMatch(/^raftkv-[0-9a-f]{12}$/);
    expect(await c.stop(1, 'SIGTERM')).toEqual({ code: 0, signal: null });
    const goodDir = c.node(1).dataDir;
    // Each refused start gets its own ports (they run in parallel), so the cluster id is given.
    const withArgs = async (dir: string, opts: { id?: number; clusterId?: string } = {}): Promise<string[]> => {
      const [p, cp] = await freePorts(2);
      const id = String(opts.id ?? 1);
      return [
        '--id', id,
        '--peers', `${id}=127.0.0.1:${p!}`,
        '--client-addr', `127.0.0.1:${cp!}`,
        '--data-dir', dir,
        '--cluster-id', opts.clusterId ?? clusterId,
      ];
    };

    // 1. Foreign: a raft.db that is not a database at all.
    const foreign = path.join(scratch('foreign'), 'node');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'raft.db'), Buffer.from('this is somebody else\'s file\n'.repeat(100)));
    // 2. Corrupt: our file with one byte of an entry flipped.
    const corrupt = path.join(scratch('corrupt'), 'node');
    fs.cpSync(goodDir, corrupt, { recursive: true });
    const db = path.join(corrupt, 'raft.db');
    const bytes = fs.readFileSync(db);
    const at = bytes.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = bytes[at + 3]! ^ 0x20;
    fs.writeFileSync(db, bytes);
    // 3. Truncated: our file cut in half, as by a full disk or a bad copy.
    const truncated = path.join(scratch('truncated'), 'node');
    fs.cpSync(goodDir, truncated, { recursive: true });
    const tdb = path.join(truncated, 'raft.db');
    fs.truncateSync(tdb, Math.floor(fs.statSync(tdb).size / 2));
    // 4. A directory with other things in it and no raft.db.
    const cluttered = path.join(scratch('cluttered'), 'node');
    fs.mkdirSync(cluttered);
    fs.writeFileSync(path.join(cluttered, 'notes.txt'), 'keep me');

    const before = {
      good: snapshot(goodDir),
      foreign: snapshot(foreign),
      corrupt: snapshot(corrupt),
      truncated: snapshot(truncated),
      cluttered: snapshot(cluttered),
    };
    const [rForeign, rCorrupt, rTruncated, rCluster, rNode, rCluttered] = await Promise.all([
      server(await withArgs(foreign)),
      server(await withArgs(corrupt)),
      server(await withArgs(truncated)),
      server(await withArgs(goodDir, { clusterId: 'some-other-cluster' })),
      server(await withArgs(goodDir, { id: 2 })),
      server(await withArgs(cluttered)),
    ]);
    for (const [name, r, message] of [
      ['foreign', rForeign, /raft\.db is not a SQLite database/],
      ['corrupt', rCorrupt, /checksum mismatch in log entry/],
      ['truncated', rTruncated, /truncated/],
      ['other cluster', rCluster, /belongs to cluster "raftkv-[0-9a-f]+", but this node was started for cluster "some-other-cluster"/],
      ['other node', rNode, /belongs to node 1 .* but this process was started as node 2/],
      ['cluttered', rCluttered, /not empty but has no raft\.db/],
    ] as const) {
      expect(r.code, `${name}: ${r.stderr}`).toBe(1);
      expect(r.stderr, name).toMatch(/^kv-server: /m);
      expect(r.stderr, name).toMatch(message);
    }
    expect({
      good: snapshot(goodDir),
      foreign: snapshot(foreign),
      corrupt: snapshot(corrupt),
      truncated: snapshot(truncated),
      cluttered: snapshot(cluttered),
    }).toEqual(before);

    // And the good one still opens.
    c.start(1);
    await c.waitForLeader();
    const again = new KvClient({ endpoints: c.endpoints });
    expect(await again.get('k')).toBe(marker);
    again.close();
  });
});

describe('ports', () => {
  it('a port already in use: exit 1 with a clear message, data dir not created', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const taken = `127.0.0.1:${(blocker.address() as net.AddressInfo).port}`;
    try {
      const root = scratch('ports');
      const [p1, c1] = (await freePorts(2)).map((p) => `127.0.0.1:${p}`);
      const [rClient, rPeer] = await Promise.all([
        server(['--id', '1', '--peers', `1=${p1!}`, '--client-addr', taken, '--data-dir', path.join(root, 'a')]),
        server(['--id', '1', '--peers', `1=${taken}`, '--client-addr', c1!, '--data-dir', path.join(root, 'b')]),
      ]);
      expect(rClient.code, rClient.stderr).toBe(1);
      expect(rClient.stderr).toMatch(new RegExp(`cannot listen for clients on ${taken} \\(port already in use\\?\\)`));
      expect(rPeer.code, rPeer.stderr).toBe(1);
      expect(rPeer.stderr).toMatch(new RegExp(`cannot listen on ${taken}`));
      expect(fs.readdirSync(root)).toEqual([]);
    } finally {
      blocker.close();
    }
  });
});
