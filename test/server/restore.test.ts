/**
 * kv-server --restore (src/server/restore.ts) on real data dirs: the backup's state becomes the
 * node's snapshot under a new cluster id and the new --peers configuration; a data dir that holds
 * anything else is refused and left as it was; a damaged, truncated or oversized backup is
 * refused by name, with what is wrong; an interrupted restore is finished by running it again.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { nodeFileSystem } from '../../src/files.js';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { checkFlags, type ServerConfig } from '../../src/server/config.js';
import { dataDirDisk, type LogIds } from '../../src/server/disk.js';
import type { Logger } from '../../src/server/logger.js';
import { restoreFromBackup } from '../../src/server/restore.js';
import { readLatestSnapshot, writeSnapshot } from '../../src/server/snapshot/files.js';
import { SNAPSHOT_DIR } from '../../src/server/snapshotter.js';

const SOURCE = { clusterId: 'raftkv-source', nodeId: 2 };
const PEERS = '1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103';
const OLD_TABLE = { members: [2, 5].map((id) => ({ id, peerAddr: `127.0.0.1:${8000 + id}`, clientAddr: '' })), removed: [1] };
const STATE = {
  keys: ['alpha', 'beta'],
  values: ['1', 'two'],
  sessions: [{ clientId: 9, firstIncomplete: 3, lastActiveMs: 5, results: [] }],
  clockMs: 123,
  lastExpiryMs: 0,
  table: OLD_TABLE,
};

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-restore-'));
  dirs.push(d);
  return d;
}

/** A backup file: a snapshot of cluster SOURCE at 40/7 whose voters were 2 and 5. */
async function backupFile(): Promise<string> {
  const dir = tmp();
  const { path } = await writeSnapshot(nodeFileSystem(dir), 'b', { index: 40, term: 7, conf: confOfVoters([2, 5]) }, STATE, SOURCE, systemClock.slicer());
  return nodePath.join(dir, path);
}

function config(dataDir: string, restore: string, extra: Partial<Record<'clusterId' | 'peers' | 'clientPeers', string>> = {}): ServerConfig {
  return checkFlags({
    id: '1',
    peers: extra.peers ?? PEERS,
    clientPeers: extra.clientPeers ?? '1=127.0.0.1:9101,2=127.0.0.1:9102',
    clientAddr: '127.0.0.1:9101',
    dataDir,
    electionTimeout: '300',
    heartbeat: '50',
    logLevel: 'info',
    snapshotThreshold: '0',
    snapshotRetain: '0',
    unsafeNoFsync: false,
    restore,
    ...(extra.clusterId ? { clusterId: extra.clusterId } : {}),
  });
}

function logger(lines: string[] = []): Logger {
  const at = (level: string) => (msg: string, f?: object) => void lines.push(`${level} ${msg} ${JSON.stringify(f ?? {})}`);
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function restore(cfg: ServerConfig, lines?: string[]) {
  const disk = dataDirDisk(cfg.dataDir, { unsafeNoFsync: true });
  return restoreFromBackup({ cfg, disk, clock: systemClock, logger: logger(lines), checkLog: (ids: LogIds) => disk.checkLog(ids) });
}

/** Every file under `dir`, with a hash of its contents: to see that nothing changed. */
function contents(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = nodePath.join(e.parentPath, e.name);
    out[nodePath.relative(dir, p)] = e.isFile() ? createHash('sha256').update(fs.readFileSync(p)).digest('hex') : 'dir';
  }
  return out;
}

describe('--restore on an empty data dir', () => {
  it('writes the backup as this node\'s snapshot: a new cluster id, the --peers configuration and member table, the same state', async () => {
    const file = await backupFile();
    const cfg = config(nodePath.join(tmp(), 'node1'), file);
    const lines: string[] = [];
    const { clusterId, logToOpen } = await restore(cfg, lines);
    expect(clusterId).toMatch(/^raftkv-[0-9a-f]{12}$/);
    expect(clusterId).not.toBe(SOURCE.clusterId);
    expect(logToOpen.fresh).toBe(true);
    const snap = await readLatestSnapshot(nodeFileSystem(cfg.dataDir), SNAPSHOT_DIR, { clusterId, nodeId: 1 }, { onWarning: () => {} });
    expect(snap!.meta).toMatchObject({ clusterId, nodeId: 1, index: 40, term: 7, conf: confOfVoters([1, 2, 3]) });
    expect(snap!.state.table).toEqual({
      members: [
        { id: 1, peerAddr: '127.0.0.1:7101', clientAddr: '127.0.0.1:9101' },
        { id: 2, peerAddr: '127.0.0.1:7102', clientAddr: '127.0.0.1:9102' },
        { id: 3, peerAddr: '127.0.0.1:7103', clientAddr: '' },
      ],
      removed: [],
    });
    expect(snap!.state.keys).toEqual(STATE.keys);
    expect(snap!.state.values).toEqual(['1', 'two']);
    expect(snap!.state.sessions).toEqual(STATE.sessions);
    expect(lines.join('\n')).toMatch(/warn --restore: this node starts a NEW cluster from the backup .*"from_cluster":"raftkv-source","index":40,"term":7/);
  });

  it('every member given the same file and --peers derives the same cluster id; other members, or --cluster-id, another', async () => {
    const file = await backupFile();
    const a = await restore(config(nodePath.join(tmp(), 'a'), file));
    const b = await restore(config(nodePath.join(tmp(), 'b'), file));
    expect(b.clusterId).toBe(a.clusterId);
    const other = await restore(config(nodePath.join(tmp(), 'c'), file, { peers: '1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7104', clientPeers: '1=127.0.0.1:9101' }));
    expect(other.clusterId).not.toBe(a.clusterId);
    expect((await restore(config(nodePath.join(tmp(), 'd'), file, { clusterId: 'prod-2' }))).clusterId).toBe('prod-2');
    await expect(restore(config(nodePath.join(tmp(), 'e'), file, { clusterId: SOURCE.clusterId }))).rejects.toThrow(/is the id of the cluster the backup .* comes from/);
  });

  it('an interrupted restore is finished by running it again; a data dir it made is then started as it is', async () => {
    const file = await backupFile();
    const cfg = config(nodePath.join(tmp(), 'node1'), file);
    const first = await restore(cfg); // as if the process died right after the snapshot file
    const again = await restore(cfg);
    expect(again.clusterId).toBe(first.clusterId);
    expect(again.logToOpen.fresh).toBe(true);
    again.logToOpen.open().close(); // the start went on and created the log
    const lines: string[] = [];
    const third = await restore(cfg, lines);
    expect(third).toMatchObject({ clusterId: first.clusterId, logToOpen: { fresh: false, clusterId: first.clusterId } });
    expect(lines.join('\n')).toMatch(/already holds the cluster restored from this backup; starting it as it is/);
  });
});

describe('--restore refuses, changing nothing', () => {
  it('a data dir that holds another cluster\'s node', async () => {
    const file = await backupFile();
    const dataDir = nodePath.join(tmp(), 'node1');
    dataDirDisk(dataDir, { unsafeNoFsync: true }).checkLog({ clusterId: 'raftkv-other', nodeId: 1 }).open().close();
    const before = contents(dataDir);
    await expect(restore(config(dataDir, file))).rejects.toThrow(
      new RegExp(`--restore needs an empty data dir, and ${dataDir} holds node 1's data of cluster "raftkv-other": nothing was changed`),
    );
    expect(contents(dataDir)).toEqual(before);
  });

  it('a data dir with snapshot files of its own but no log, or with anything else in it', async () => {
    const file = await backupFile();
    const dataDir = nodePath.join(tmp(), 'node1');
    await writeSnapshot(nodeFileSystem(dataDir), SNAPSHOT_DIR, { index: 3, term: 1 }, STATE, { clusterId: 'raftkv-other', nodeId: 1 }, systemClock.slicer());
    const before = contents(dataDir);
    await expect(restore(config(dataDir, file))).rejects.toThrow(/holds snapshot files \(snap\/snap-0+3-1\.snap\) but no log: nothing was changed/);
    expect(contents(dataDir)).toEqual(before);
    const other = nodePath.join(tmp(), 'node2');
    fs.mkdirSync(other);
    fs.writeFileSync(nodePath.join(other, 'notes.txt'), 'mine');
    await expect(restore(config(other, file))).rejects.toThrow(/is not empty but has no raft.db \(found notes.txt\)/);
    expect(fs.readdirSync(other)).toEqual(['notes.txt']);
  });

  it('a damaged backup: named, and what is wrong with it', async () => {
    const file = await backupFile();
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 3]! ^= 0x40;
    fs.writeFileSync(file, bytes);
    const dataDir = nodePath.join(tmp(), 'node1');
    await expect(restore(config(dataDir, file))).rejects.toThrow(new RegExp(`--restore ${file} is damaged or truncated: body checksum mismatch`));
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('a truncated backup, or one whose header claims more than the file holds', async () => {
    const file = await backupFile();
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
    await expect(restore(config(nodePath.join(tmp(), 'a'), file))).rejects.toThrow(/is damaged or truncated: truncated: body is \d+ of \d+ bytes/);
    fs.writeFileSync(file, bytes.subarray(0, 10));
    await expect(restore(config(nodePath.join(tmp(), 'b'), file))).rejects.toThrow(/truncated: 10 bytes, shorter than the 24-byte header/);
    fs.writeFileSync(file, 'not a backup at all, but long enough to have a header');
    await expect(restore(config(nodePath.join(tmp(), 'c'), file))).rejects.toThrow(/not a raftkv snapshot \(bad magic number\)/);
  });

  it('a file over the backup limit, before reading it; a missing file; a directory', async () => {
    const file = await backupFile();
    const disk = dataDirDisk(tmp(), { unsafeNoFsync: true });
    await expect(disk.readBackup!(file, 100)).rejects.toThrow(new RegExp(`--restore ${file} is \\d+ bytes, over the 100-byte limit of a backup`));
    await expect(restore(config(nodePath.join(tmp(), 'a'), `${file}.missing`))).rejects.toThrow(/\.missing: no such file/);
    await expect(restore(config(nodePath.join(tmp(), 'b'), nodePath.dirname(file)))).rejects.toThrow(/is not a regular file/);
  });
});

describe('--restore on the command line', () => {
  it('needs --peers, and goes with neither --join nor --force-new-cluster', () => {
    const base = { id: '1', clientAddr: '127.0.0.1:9101', dataDir: tmp(), electionTimeout: '300', heartbeat: '50', logLevel: 'info' as const, snapshotThreshold: '0', snapshotRetain: '0', unsafeNoFsync: false };
    expect(() => checkFlags({ ...base, peerAddr: '127.0.0.1:7101', join: '127.0.0.1:9102', restore: 'b.snap' })).toThrow(/--restore bootstraps a new cluster from a backup: it goes with --peers, not --join/);
    expect(() => checkFlags({ ...base, peerAddr: '127.0.0.1:7101', restore: 'b.snap' })).toThrow(/--restore needs --peers/);
    expect(() => checkFlags({ ...base, peers: PEERS, restore: 'b.snap', forceNewCluster: true })).toThrow(/give one of them/);
    expect(() => checkFlags({ ...base, peerAddr: '127.0.0.1:7101', join: '127.0.0.1:9102', forceNewCluster: true })).toThrow(/does not go with --join/);
    expect(checkFlags({ ...base, peers: PEERS, restore: 'b.snap' }).restore).toBe(nodePath.resolve('b.snap'));
  });
});
