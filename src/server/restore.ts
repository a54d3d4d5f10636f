import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { confOfVoters, describeConf } from '../raft/core/conf.js';
import { MAX_BACKUP_BYTES } from '../snapshot-header.js';
import type { ServerConfig } from './config.js';
import type { Disk, LogIds, LogToOpen } from './disk.js';
import type { Logger } from './logger.js';
import { bootstrapTable } from './members.js';
import { decodeBackupAsync } from './snapshot/decode.js';
import { listSnapshots, snapshotFileName, writeSnapshot } from './snapshot/files.js';
import { SnapshotError, type DecodedSnapshot } from './snapshot/format.js';
import { SNAPSHOT_DIR } from './snapshotter.js';

/**
 * kv-server --restore FILE: a new cluster from a backup (kv-cli backup), as etcd's snapshot
 * restore makes one. Each initial member is started with the same file and the usual bootstrap
 * flags on an empty data dir. It verifies the file (checksums, structure), and writes its state
 * as this node's snapshot at the backup's index and term, with a NEW configuration (the voters of
 * --peers; the backup's own membership is history) and member table (--peers, --client-peers),
 * under a NEW cluster id; the start then goes on as any start does: it finds that snapshot ahead
 * of an empty log, records it in the log (Snapshotter.restore), and runs as a node bootstrapped
 * from --peers. The old cluster's nodes cannot talk to the new one (every peer message carries
 * the cluster id), so a restore is safe to do beside a cluster that still runs.
 *
 * The new cluster id is derived from the backup (its cluster, index, term and body checksum) and
 * --peers, so that every member given the same file and flags agrees on it without talking, or
 * is --cluster-id. A crash at any point leaves a data dir this same command finishes: before the
 * snapshot file is renamed into place, the data dir holds nothing; after, the file is ahead of a
 * log that does not exist yet, which any start records. A data dir that already holds the cluster
 * this restore makes is started as it is (the flag may stay in a service's command line); any
 * other data dir is refused, and nothing in it is changed.
 */

export interface RestoreDeps {
  cfg: ServerConfig;
  disk: Disk;
  clock: Clock;
  logger: Logger;
  /** disk.checkLog, its refusals made StartErrors. */
  checkLog(ids: LogIds): LogToOpen;
}

/** Refuses the restore, having changed nothing; the message names the file or the data dir and says why. */
export class RestoreError extends Error {
  override name = 'RestoreError';
}

/** Prepares the data dir from the backup; the cluster id the node then runs in, and its log to open. */
export async function restoreFromBackup(d: RestoreDeps): Promise<{ clusterId: string; logToOpen: LogToOpen }> {
  const { cfg, disk, logger: log } = d;
  const file = cfg.restore!;
  if (!disk.readBackup) throw new RestoreError('this node\'s disk cannot read a backup');
  // A look first (it changes nothing): a data dir restored earlier starts without its backup.
  const looked = d.checkLog({ clusterId: cfg.clusterId, nodeId: cfg.id, adoptStoredClusterId: true });
  const bytes = await disk.readBackup(file, MAX_BACKUP_BYTES).catch((e: unknown) => {
    const held = looked.fresh ? '' : ` (${cfg.dataDir} holds cluster ${JSON.stringify(looked.clusterId)} already: to start it as it is, leave out --restore)`;
    throw new RestoreError((e as Error).message + held);
  });
  const backup = await decodeBackupAsync(bytes, d.clock.slicer()).catch((e: unknown) => {
    if (!(e instanceof SnapshotError)) throw e;
    const what = e.code === 'VERSION' ? 'a backup of another format version' : 'damaged or truncated';
    throw new RestoreError(`--restore ${file} is ${what}: ${e.message}. Nothing was written; restore from an intact copy of the backup.`);
  });
  const { meta } = backup;
  const clusterId = cfg.clusterIdDerived ? restoredClusterId(backup, bytes, cfg) : cfg.clusterId;
  if (clusterId === meta.clusterId) {
    throw new RestoreError(`--cluster-id ${clusterId} is the id of the cluster the backup ${file} comes from: a restored cluster needs a new one`);
  }
  const from = { backup: file, from_cluster: meta.clusterId, index: meta.index, term: meta.term, keys: backup.state.keys.length };

  const existing = looked.fresh ? d.checkLog({ clusterId, nodeId: cfg.id }) : looked;
  if (!existing.fresh) {
    if (existing.clusterId === clusterId) {
      log.info('--restore: the data dir already holds the cluster restored from this backup; starting it as it is', { cluster: clusterId, ...from });
      return { clusterId, logToOpen: existing };
    }
    throw new RestoreError(
      `--restore needs an empty data dir, and ${cfg.dataDir} holds node ${cfg.id}'s data of cluster ${JSON.stringify(existing.clusterId)}: ` +
        'nothing was changed. Give each node of the restored cluster a new data dir (or remove this one, if its data is not needed).',
    );
  }
  const name = snapshotFileName(meta);
  const others = (await listSnapshots(disk.files, SNAPSHOT_DIR)).filter((f) => f.path !== `${SNAPSHOT_DIR}/${name}`);
  if (others.length > 0) {
    throw new RestoreError(
      `--restore needs an empty data dir, and ${cfg.dataDir} holds snapshot files (${others.map((f) => f.path).join(', ')}) but no log: ` +
        'nothing was changed. Give the node a new data dir.',
    );
  }
  // A snapshot file of this name is the same restore, interrupted: written again, identically.
  const conf = confOfVoters(cfg.peers.map((p) => p.id));
  const table = bootstrapTable(cfg.peers, cfg.clientAddrs);
  await writeSnapshot(disk.files, SNAPSHOT_DIR, { index: meta.index, term: meta.term, conf }, { ...backup.state, table }, { clusterId, nodeId: cfg.id }, d.clock.slicer(), { keep: 1 });
  log.warn('--restore: this node starts a NEW cluster from the backup', {
    cluster: clusterId,
    ...from,
    from_voters: meta.conf ? describeConf(meta.conf) : 'unknown',
    voters: describeConf(conf),
  });
  return { clusterId, logToOpen: existing };
}

/**
 * The restored cluster's id: `raftkv-` and a hash of what the backup is (its cluster, index, term
 * and body checksum, which covers everything in it) and of the new members, so that every member
 * started with the same file and --peers agrees on it, and a restore of another backup, or with
 * other members, gets another one.
 */
export function restoredClusterId(backup: DecodedSnapshot, bytes: Uint8Array, cfg: Pick<ServerConfig, 'peers'>): string {
  const bodyCrc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(16, true);
  const peers = [...cfg.peers].sort((a, b) => a.id - b.id).map((p) => `${p.id}=${p.address}`).join(',');
  const what = ['restore', backup.meta.clusterId, backup.meta.index, backup.meta.term, bodyCrc, peers].join('\n');
  return 'raftkv-' + createHash('sha256').update(what).digest('hex').slice(0, 12);
}
