/**
 * kv-server --force-new-cluster's rewrite of a data dir (src/server/force-new-cluster.ts over
 * src/raft/storage/sqlite-fork.ts), on real SQLite files: one conf entry of this node alone
 * after the whole log, everything committed, a term above any seen, a new cluster id with the
 * old one kept as a former id (whose snapshot files stay readable); idempotent; refusals that
 * change nothing. (A kill -9 in the middle of the rewrite: test/e2e/force-new-cluster.test.ts.)
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { nodeFileSystem } from '../../src/files.js';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { decodeConfEntry, encodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { Entry } from '../../src/raft/core/types.js';
import { SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { checkFlags, type ServerConfig } from '../../src/server/config.js';
import { dataDirDisk, DB_FILE, type LogIds } from '../../src/server/disk.js';
import { forceNewCluster, forkedClusterId } from '../../src/server/force-new-cluster.js';
import type { Logger } from '../../src/server/logger.js';
import { decodeMemberTable, encodeMemberTable } from '../../src/server/members.js';
import { readLatestSnapshot, writeSnapshot } from '../../src/server/snapshot/files.js';
import { SNAPSHOT_DIR } from '../../src/server/snapshotter.js';

const OLD = 'raftkv-old';
const PEERS = '1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103';
const TABLE = { members: [1, 2, 3].map((id) => ({ id, peerAddr: `127.0.0.1:${7100 + id}`, clientAddr: `127.0.0.1:${9100 + id}` })), removed: [7] };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function normal(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new Uint8Array([index & 0xff]) };
}

/**
 * Node 1's data dir of a 3-node cluster: entries 1..30 (a conf entry of voters 1-3 at 1), a
 * snapshot at 20 (file and log), commit 25 of 30 (it had not heard that 26..30 committed), term 4.
 */
async function survivor(): Promise<string> {
  const dataDir = nodePath.join(fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-force-')), 'node1');
  dirs.push(nodePath.dirname(dataDir));
  const s = SqliteStorage.open(nodePath.join(dataDir, DB_FILE), { clusterId: OLD, nodeId: 1, create: true, unsafeNoFsync: true });
  const conf: Entry = { index: 1, term: 1, type: 'conf', data: encodeConfEntry({ conf: confOfVoters([1, 2, 3]), context: encodeMemberTable(TABLE) }) };
  s.save({ term: 4, vote: 2, commit: 25 }, [conf, ...Array.from({ length: 29 }, (_, i) => normal(i + 2, i < 15 ? 2 : 3))]);
  const state = { keys: ['k'], values: ['v'], sessions: [], clockMs: 0, lastExpiryMs: 0, table: TABLE };
  await writeSnapshot(nodeFileSystem(dataDir), SNAPSHOT_DIR, { index: 20, term: 3, conf: confOfVoters([1, 2, 3]) }, state, { clusterId: OLD, nodeId: 1 }, systemClock.slicer());
  s.compact({ index: 20, term: 3, conf: confOfVoters([1, 2, 3]) }, 10);
  s.close();
  return dataDir;
}

function config(dataDir: string, clusterId?: string): ServerConfig {
  return checkFlags({
    id: '1',
    peers: PEERS,
    clientAddr: '127.0.0.1:9101',
    dataDir,
    electionTimeout: '300',
    heartbeat: '50',
    logLevel: 'info',
    snapshotThreshold: '0',
    snapshotRetain: '0',
    unsafeNoFsync: false,
    forceNewCluster: true,
    ...(clusterId ? { clusterId } : {}),
  });
}

function force(cfg: ServerConfig, lines: string[] = []) {
  const at = (level: string) => (msg: string, f?: object) => void lines.push(`${level} ${msg} ${JSON.stringify(f ?? {})}`);
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const disk = dataDirDisk(cfg.dataDir, { unsafeNoFsync: true });
  return forceNewCluster({ cfg, disk, logger, checkLog: (ids: LogIds) => disk.checkLog(ids) });
}

function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out[nodePath.relative(dir, nodePath.join(e.parentPath, e.name))] = createHash('sha256').update(fs.readFileSync(nodePath.join(e.parentPath, e.name))).digest('hex');
  }
  return out;
}

describe('--force-new-cluster on a surviving member\'s data dir', () => {
  it('appends a configuration of this node alone after the whole log, commits it all, and forks the cluster id', async () => {
    const dataDir = await survivor();
    const lines: string[] = [];
    const { clusterId, logToOpen } = force(config(dataDir), lines);
    expect(clusterId).toBe(forkedClusterId(OLD, 1, 31, 5));
    expect(logToOpen).toMatchObject({ fresh: false, clusterId, formerClusterIds: [OLD] });
    const s = SqliteStorage.open(nodePath.join(dataDir, DB_FILE), { clusterId, nodeId: 1, create: false });
    const st = s.load();
    s.close();
    // Entries 26..30, never known to be committed here, are kept; the fork follows them.
    expect(st.entries.map((e) => e.index)).toEqual(Array.from({ length: 11 }, (_, i) => 21 + i));
    expect(st.hardState).toEqual({ term: 5, vote: 0, commit: 31 });
    const fork = st.entries[st.entries.length - 1]!;
    expect(fork).toMatchObject({ index: 31, term: 5, type: 'conf' });
    const d = decodeConfEntry(fork.data);
    expect(d.ok && d.entry.conf).toEqual(confOfVoters([1]));
    const table = d.ok ? decodeMemberTable(d.entry.context) : undefined;
    expect(table).toEqual({ ok: true, table: { members: [{ id: 1, peerAddr: '127.0.0.1:7101', clientAddr: '127.0.0.1:9101' }], removed: [] } });
    // The former cluster's snapshot file is still this node's state.
    const snap = await readLatestSnapshot(nodeFileSystem(dataDir), SNAPSHOT_DIR, { clusterId, nodeId: 1, formerClusterIds: [OLD] }, { onWarning: () => {} });
    expect(snap?.meta).toMatchObject({ clusterId: OLD, index: 20 });
    await expect(readLatestSnapshot(nodeFileSystem(dataDir), SNAPSHOT_DIR, { clusterId, nodeId: 1 }, { onWarning: () => {} })).rejects.toThrow(/belongs to cluster "raftkv-old"/);
    const log = lines.join('\n');
    expect(log).toMatch(/warn --force-new-cluster: this node's data dir is now a NEW cluster of this node alone.*"from_cluster":"raftkv-old","from_voters":"voters \(1,2,3\)","kept_through":30,"committed_before":25,"committed_now":31/);
    expect(log).toMatch(/entries 26\.\.30 were not known to be committed here; they are kept and now committed/);
  });

  it('is idempotent: a data dir already forked (this node the only member) is started as it is, byte for byte', async () => {
    const dataDir = await survivor();
    const first = force(config(dataDir));
    const before = hashes(dataDir);
    const lines: string[] = [];
    const again = force(config(dataDir), lines);
    expect(again.clusterId).toBe(first.clusterId);
    expect(hashes(dataDir)).toEqual(before);
    expect(lines.join('\n')).toMatch(/already the only member of its cluster; starting it as it is/);
  });

  it('forks again once members were added since, remembering every former cluster', async () => {
    const dataDir = await survivor();
    const first = force(config(dataDir));
    const s = SqliteStorage.open(nodePath.join(dataDir, DB_FILE), { clusterId: first.clusterId, nodeId: 1, create: false });
    const two = encodeConfEntry({ conf: confOfVoters([1, 4]), context: encodeMemberTable({ members: [TABLE.members[0]!, { id: 4, peerAddr: '127.0.0.1:7104', clientAddr: '' }], removed: [] }) });
    s.save({ term: 6, vote: 1, commit: 32 }, [{ index: 32, term: 6, type: 'conf', data: two }]);
    s.close();
    const second = force(config(dataDir));
    expect(second.clusterId).not.toBe(first.clusterId);
    expect(second.logToOpen.formerClusterIds).toEqual([OLD, first.clusterId]);
  });

  it('takes --cluster-id as the new id, and refuses the id it has', async () => {
    const dataDir = await survivor();
    const before = hashes(dataDir);
    expect(() => force(config(dataDir, OLD))).toThrow(/--cluster-id raftkv-old is the cluster this data dir belongs to already/);
    expect(hashes(dataDir)).toEqual(before);
    expect(force(config(dataDir, 'dr-2025')).clusterId).toBe('dr-2025');
  });

  it('refuses an empty data dir, and creates nothing', () => {
    const dataDir = nodePath.join(fs.mkdtempSync(nodePath.join(os.tmpdir(), 'raftkv-force-')), 'node1');
    dirs.push(nodePath.dirname(dataDir));
    expect(() => force(config(dataDir))).toThrow(/--force-new-cluster starts a cluster from this node's own data, and .* holds none/);
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
