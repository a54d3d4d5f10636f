/**
 * The kv-server process: bad flags (exit 2), data dirs it must refuse without touching them
 * (exit 1: every file under the data dir keeps its name, size and bytes), a port in use (exit 1),
 * and SIGTERM/SIGINT (exit 0, the data dir reopens).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvClient } from '../../src/index.js';
import { walChecksum } from '../../src/raft/storage/wal-check.js';
import { Cluster, ensureBuilt, freePorts, killAll, server, sha256File, tempDir, waitFor, type RunResult } from './cluster.js';

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

/** Every file under `dir`, subdirectories included, with its size and hash: "nothing modified" means this stays equal. */
function snapshot(dir: string, under = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(path.join(dir, under)).sort()) {
    const rel = path.join(under, f);
    const p = path.join(dir, rel);
    if (fs.statSync(p).isDirectory()) Object.assign(out, snapshot(dir, rel));
    else out[rel] = `${fs.statSync(p).size} ${sha256File(p)}`;
  }
  return out;
}

/** Flags for a start of node `id` on `dir` with fresh ports (refused starts run in parallel). */
async function argsFor(dir: string, clusterId: string, id = 1): Promise<string[]> {
  const [p, cp] = await freePorts(2);
  return [
    '--id', String(id),
    '--peers', `${id}=127.0.0.1:${p!}`,
    '--client-addr', `127.0.0.1:${cp!}`,
    '--data-dir', dir,
    '--cluster-id', clusterId,
  ];
}

/**
 * A one-node cluster's data dir after `puts` writes (value `v<i>:` and padding) and a stop by
 * `signal`, once its log shows `logged` (if given).
 */
async function filledDataDir(
  name: string,
  puts: number,
  signal: NodeJS.Signals,
  extraArgs: string[] = [],
  logged?: RegExp,
): Promise<{ dir: string; clusterId: string }> {
  const c = await Cluster.create(name, { size: 1, extraArgs });
  clusters.push(c);
  c.start(1);
  await c.waitForLeader();
  const client = new KvClient({ endpoints: c.endpoints });
  try {
    for (let i = 1; i <= puts; i += 50) {
      const batch = [];
      for (let j = i; j < i + 50 && j <= puts; j++) batch.push(client.put(`k${j}`, `v${j}:${'-'.repeat(200)}`));
      await Promise.all(batch);
    }
    const [st] = await client.status();
    if (logged) await waitFor(`node log to show ${String(logged)}`, () => logged.test(c.node(1).log));
    expect(await c.stop(1, signal)).toEqual(signal === 'SIGKILL' ? { code: null, signal } : { code: 0, signal: null });
    return { dir: c.node(1).dataDir, clusterId: st?.ok ? st.status.clusterId : '' };
  } finally {
    client.close();
  }
}

/** A copy of `from` in a scratch dir of its own. */
function copyOf(from: string, name: string): string {
  const to = path.join(scratch(name), 'node');
  fs.cpSync(from, to, { recursive: true });
  return to;
}

describe('flags', () => {
  it('bad flags: exit 2 with a clear message, nothing created', async () => {
    const root = scratch('flags');
    const [p1, p2, c1] = (await freePorts(3)).map((p) => `127.0.0.1:${p}`);
    const dataDir = path.join(root, 'node1');
    const good = ['--id', '1', '--peers', `1=${p1},2=${p2}`, '--client-addr', c1!, '--data-dir', dataDir];
    const joining = ['--id', '4', '--peer-addr', p2!, '--client-addr', c1!, '--data-dir', dataDir];
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
      ['bad log format', [...good, '--log-format', 'yaml'], /Invalid values/],
      ['client peer not in peers', [...good, '--client-peers', '5=127.0.0.1:9999'], /node 5 is not in --peers/],
      ['--join with --peers', [...good, '--join', c1!], /--join adds this node to a running cluster and --peers bootstraps a new one: give one of them/],
      ['neither --peers nor --peer-addr', ['--id', '4', '--client-addr', c1!, '--data-dir', dataDir], /give --peers \(to bootstrap a new cluster\) or --peer-addr/],
      ['--peer-addr not its --peers entry', [...good, '--peer-addr', p2!], /--peer-addr 127\.0\.0\.1:\d+ is not this node's address in --peers/],
      ['bad --join endpoint', [...joining, '--join', 'nowhere'], /--join: "nowhere" is not a host:port/],
      ['--cluster-id with --join', [...joining, '--join', p1!, '--cluster-id', 'c'], /--cluster-id goes with --peers/],
      ['--client-peers with --join', [...joining, '--join', p1!, '--client-peers', `4=${c1!}`], /--client-peers goes with --peers/],
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
    const withArgs = (dir: string, opts: { id?: number; clusterId?: string } = {}): Promise<string[]> =>
      argsFor(dir, opts.clusterId ?? clusterId, opts.id);

    // 1. Foreign: a raft.db that is not a database at all.
    const foreign = path.join(scratch('foreign'), 'node');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'raft.db'), Buffer.from('this is somebody else\'s file\n'.repeat(100)));
    // 2. Corrupt: our file with one byte of an entry flipped (a checksum refusal).
    const corrupt = copyOf(goodDir, 'corrupt');
    const db = path.join(corrupt, 'raft.db');
    const bytes = fs.readFileSync(db);
    const at = bytes.indexOf(marker);
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = bytes[at + 3]! ^ 0x20;
    fs.writeFileSync(db, bytes);
    // 3. Truncated: our file cut in half, as by a full disk or a bad copy.
    const truncated = copyOf(goodDir, 'truncated');
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
    // The good dir is refused by several processes at once: checks of one file must not trip
    // over each other's temporary files (they once left a raft.db-shm and an empty raft.db-wal).
    const goodArgs: string[][] = [];
    for (let i = 0; i < 3; i++) goodArgs.push(await withArgs(goodDir, { clusterId: 'some-other-cluster' }), await withArgs(goodDir, { id: 2 }));
    const [rForeign, rCorrupt, rTruncated, rCluttered, ...rGood] = await Promise.all([
      server(await withArgs(foreign)),
      server(await withArgs(corrupt)),
      server(await withArgs(truncated)),
      server(await withArgs(cluttered)),
      ...goodArgs.map((args) => server(args)),
    ]);
    const cases: [string, RunResult, RegExp][] = [
      ['foreign', rForeign!, /raft\.db is not a SQLite database/],
      ['corrupt', rCorrupt!, /checksum mismatch in log entry/],
      ['truncated', rTruncated!, /truncated/],
      ['cluttered', rCluttered!, /not empty but has no raft\.db/],
    ];
    rGood.forEach((r, i) =>
      cases.push(
        i % 2 === 0
          ? ['other cluster', r, /belongs to cluster "raftkv-[0-9a-f]+", but this node was started for cluster "some-other-cluster"/]
          : ['other node', r, /belongs to node 1 .* but this process was started as node 2/],
      ),
    );
    expect(cases).toHaveLength(10);
    for (const [name, r, message] of cases) {
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

describe('cluster identity', () => {
  it('a new node needs --peers or --join; --peers edited since the cluster was created is refused until a snapshot records the configuration', async () => {
    const root = scratch('identity');
    const [p, c] = (await freePorts(2)).map((x) => `127.0.0.1:${x}`);
    const alone = await server(['--id', '4', '--peer-addr', p!, '--client-addr', c!, '--data-dir', path.join(root, 'new')]);
    expect(alone.code, alone.stderr).toBe(1);
    expect(alone.stderr).toMatch(/holds no data: a new node needs --peers \(to bootstrap a new cluster\) or --join/);
    expect(fs.readdirSync(root)).toEqual([]);

    const cl = await Cluster.create('edited-peers', { size: 1 });
    clusters.push(cl);
    cl.start(1);
    await cl.waitForLeader();
    const client = new KvClient({ endpoints: cl.endpoints });
    await client.put('k', 'v');
    await cl.stop(1, 'SIGTERM');
    const node = cl.node(1);
    const [other] = await freePorts(1);
    // Node 1 again, with a second voter in --peers: its log starts from a one-voter configuration.
    const edited = ['--id', '1', '--peers', `1=${node.peerAddr},2=127.0.0.1:${other!}`, '--client-addr', node.clientAddr, '--data-dir', node.dataDir];
    const before = snapshot(node.dataDir);
    const refused = await server(edited);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/but --peers describes another .*Start it with that --peers list/);
    expect(snapshot(node.dataDir)).toEqual(before);
    // Once a snapshot records the configuration, --peers no longer matters: it starts, says so, and leads alone.
    cl.start(1);
    await cl.waitForLeader();
    await client.snapshot();
    await cl.stop(1, 'SIGTERM');
    cl.start(1, ['--peers', edited[3]!]); // the cluster's flags, --peers replaced (the last one counts)
    expect(await cl.waitForLeader()).toBe(1);
    expect(node.log).toMatch(/--peers differs from when the cluster was created: the data dir's cluster id and configuration are used/);
    expect(await client.get('k')).toBe('v');
    client.close();
  });
});

describe('data dir left by kill -9', () => {
  it('refuses a WAL damaged mid-file, an old entry that fails its checksum, or a lost snapshot: exit 1, message, files unchanged', async () => {
    // kill -9 leaves raft.db-wal full of frames: a start that opened the file for writing and
    // then gave up would have replayed them into raft.db and deleted it.
    const [snap, many] = await Promise.all([
      filledDataDir('killed-snap', 25, 'SIGKILL', ['--snapshot-threshold', '10', '--snapshot-retain', '2'], /compacted the log/),
      filledDataDir('killed-many', 1100, 'SIGKILL'),
    ]);
    for (const d of [snap.dir, many.dir]) expect(fs.statSync(path.join(d, 'raft.db-wal')).size).toBeGreaterThan(32);

    // 1. 100 bytes flipped in the middle of the WAL (SQLite alone would roll the log back).
    const wal = copyOf(snap.dir, 'wal');
    const walFile = path.join(wal, 'raft.db-wal');
    const w = fs.readFileSync(walFile);
    const frame = 24 + w.readUInt32BE(8);
    let current = 0; // frames of the header's generation (after a checkpoint, older ones follow)
    while (32 + (current + 1) * frame <= w.length && w.readUInt32BE(32 + current * frame + 8) === w.readUInt32BE(16)) current++;
    expect(current).toBeGreaterThan(10);
    const mid = 32 + Math.floor(current / 2) * frame + 1000;
    for (let i = 0; i < 100; i++) w[mid + i]! ^= 0xff;
    fs.writeFileSync(walFile, w);
    // 2. A checksum refusal: the newest entry damaged.
    const recent = copyOf(snap.dir, 'recent-entry');
    damageEntry(recent, 'v25:');
    // 3. An old entry damaged (more than 1000 entries before the last): found only by reading every entry.
    const old = copyOf(many.dir, 'old-entry');
    damageEntry(old, 'v5:');
    // 4. The log was compacted and its only snapshot is damaged: nothing to start from.
    const lost = copyOf(snap.dir, 'lost-snapshot');
    const snaps = fs.readdirSync(path.join(lost, 'snap'));
    expect(snaps).toHaveLength(1);
    const snapFile = path.join(lost, 'snap', snaps[0]!);
    const sb = fs.readFileSync(snapFile);
    sb[sb.length - 3]! ^= 0x01;
    fs.writeFileSync(snapFile, sb);

    const dirs = { wal, recent, old, lost };
    const before = Object.fromEntries(Object.entries(dirs).map(([k, d]) => [k, snapshot(d)]));
    const results = await Promise.all([
      server(await argsFor(wal, snap.clusterId)),
      server(await argsFor(recent, snap.clusterId)),
      server(await argsFor(old, many.clusterId)),
      server(await argsFor(lost, snap.clusterId)),
    ]);
    const expected: [string, RegExp][] = [
      ['wal', /raft\.db-wal: frame \d+ \(bytes \d+\.\.\d+\) is damaged .* committed transaction\(s\) after it are intact/],
      ['recent entry', /checksum mismatch in log entry \d+/],
      ['old entry', /checksum mismatch in log entry \d+/],
      ['lost snapshot', /the log was compacted up to entry \d+, but snap\/ holds no valid snapshot/],
    ];
    results.forEach((r, i) => {
      const [name, message] = expected[i]!;
      expect(r.code, `${name}: ${r.stderr}`).toBe(1);
      expect(r.stderr, name).toMatch(/^kv-server: /m);
      expect(r.stderr, name).toMatch(message);
    });
    expect(results[3]!.stderr).toMatch(/skipping snap\/snap-\d+-\d+\.snap: .*left as it is/);
    expect(Object.fromEntries(Object.entries(dirs).map(([k, d]) => [k, snapshot(d)]))).toEqual(before);
  });
});

/**
 * Damages the entry whose data holds `marker`, wherever its bytes lie: in raft.db, and in every
 * frame of raft.db-wal, whose checksums are then made to match again (as if the damage had come
 * before the write: only raftkv's own checksum can see it). Flips the byte after the marker.
 */
function damageEntry(dataDir: string, marker: string): void {
  const m = Buffer.from(marker);
  const flipAll = (b: Buffer, from: number, to: number): number => {
    let n = 0;
    for (let at = b.indexOf(m, from); at >= 0 && at < to; at = b.indexOf(m, at + 1), n++) b[at + m.length]! ^= 0x01;
    return n;
  };
  const dbFile = path.join(dataDir, 'raft.db');
  const db = fs.readFileSync(dbFile);
  let flipped = flipAll(db, 0, db.length);
  fs.writeFileSync(dbFile, db);

  const walFile = path.join(dataDir, 'raft.db-wal');
  const b = fs.readFileSync(walFile);
  const frame = 24 + b.readUInt32BE(8);
  const bigEndian = (b.readUInt32BE(0) & 1) === 1;
  let sum: [number, number] = [b.readUInt32BE(24), b.readUInt32BE(28)];
  for (let at = 32; at + frame <= b.length; at += frame) {
    if (b.readUInt32BE(at + 8) !== b.readUInt32BE(16) || b.readUInt32BE(at + 12) !== b.readUInt32BE(20)) break; // an older generation
    flipped += flipAll(b, at + 24, at + frame - m.length);
    sum = walChecksum(b, at + 24, at + frame, bigEndian, walChecksum(b, at, at + 8, bigEndian, sum));
    b.writeUInt32BE(sum[0], at + 16);
    b.writeUInt32BE(sum[1], at + 20);
  }
  fs.writeFileSync(walFile, b);
  expect(flipped, `${marker} in ${dataDir}`).toBeGreaterThan(0);
}

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
