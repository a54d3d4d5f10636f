import { createHash } from 'node:crypto';
import { confOfVoters, describeConf, type ConfState } from '../raft/core/conf.js';
import { encodeConfEntry } from '../raft/core/conf-codec.js';
import type { Fork, ForkView } from '../raft/storage/sqlite-fork.js';
import type { ServerConfig } from './config.js';
import type { Disk, LogIds, LogToOpen } from './disk.js';
import type { Logger } from './logger.js';
import { encodeMemberTable, type MemberTable } from './members.js';

/**
 * kv-server --force-new-cluster: after a loss of quorum, one surviving member's data dir becomes a
 * cluster of that node alone (etcd's flag of the same name), and members are then added again
 * (kv-cli member add, kv-server --join).
 *
 * What it writes, in one SQLite transaction (raft/storage/sqlite-fork.ts), so that a crash leaves
 * the data dir as it was or forked, never in between: a conf entry after the node's last entry
 * that makes this node the only voter, with a member table of itself alone (at this process's
 * --peer-addr and --client-addr); the commit index moved to it; a term above any the node has
 * seen; and a NEW cluster id (derived from the old one, this node and the entry's index and
 * term, or --cluster-id), so that the old members, should they come back, cannot mistake this
 * node's cluster for theirs, nor it theirs: every peer message carries the cluster id. The old id
 * is kept as a former id, under which the node's snapshot files stay valid until it takes a
 * snapshot of the new cluster, which it does as soon as it has applied the fork (KvServer).
 *
 * The whole log is kept, entries beyond the node's commit index included, and they become
 * committed. etcd discards those instead; we keep them because a follower learns of a commit only
 * with the leader's next message, so the writes acknowledged last before the quorum was lost are
 * typically among them: discarding loses acknowledged writes, keeping them can only apply writes
 * whose clients never heard an answer (their outcome was unknown, and any outcome is allowed).
 * What the survivor never received is lost either way (README: "Disaster recovery").
 *
 * Idempotent: a data dir whose configuration is already this node alone is started as it is, so a
 * forced node restarted with the flag still on, or a run interrupted after its transaction, does
 * not fork again. A data dir whose configuration lists other members (members added since) is
 * forked again: remove the flag once the cluster has members again.
 */

export interface ForceDeps {
  cfg: ServerConfig;
  disk: Disk;
  logger: Logger;
  /** disk.checkLog, its refusals made StartErrors. */
  checkLog(ids: LogIds): LogToOpen;
}

export class ForceNewClusterError extends Error {
  override name = 'ForceNewClusterError';
}

/** Forks the data dir (or finds it forked already); the cluster id the node then runs in, and its log to open. */
export function forceNewCluster(d: ForceDeps): { clusterId: string; logToOpen: LogToOpen } {
  const { cfg, disk, logger: log } = d;
  const looked = d.checkLog({ clusterId: cfg.clusterId, nodeId: cfg.id, adoptStoredClusterId: true });
  if (looked.fresh) {
    throw new ForceNewClusterError(
      `--force-new-cluster starts a cluster from this node's own data, and ${cfg.dataDir} holds none. Give it the data dir of a surviving member ` +
        '(or, to start from a backup, use --restore).',
    );
  }
  if (!disk.forkCluster) throw new ForceNewClusterError("this node's disk cannot fork its log");
  const self = { id: cfg.id, peerAddr: cfg.peerAddr, clientAddr: cfg.clientAddr };
  const { view, forked } = disk.forkCluster(cfg.id, (v) => decide(v, cfg, self));
  if (!forked) {
    log.info('--force-new-cluster: this node is already the only member of its cluster; starting it as it is (remove the flag)', {
      cluster: view.clusterId,
      voters: view.conf ? describeConf(view.conf) : 'none',
    });
    return { clusterId: view.clusterId, logToOpen: looked };
  }
  log.warn('--force-new-cluster: this node\'s data dir is now a NEW cluster of this node alone; add members with kv-cli member add', {
    cluster: forked.clusterId,
    from_cluster: view.clusterId,
    from_voters: view.conf ? describeConf(view.conf) : `--peers (${cfg.peers.map((p) => p.id).join(',') || 'unknown'})`,
    kept_through: view.lastIndex,
    committed_before: view.hardState.commit,
    committed_now: forked.index,
    term: forked.term,
  });
  if (view.lastIndex > view.hardState.commit) {
    log.warn(
      `--force-new-cluster: entries ${view.hardState.commit + 1}..${view.lastIndex} were not known to be committed here; they are kept and now ` +
        'committed (they hold the writes acknowledged last; writes never acknowledged may take effect among them)',
    );
  }
  return { clusterId: forked.clusterId, logToOpen: d.checkLog({ clusterId: forked.clusterId, nodeId: cfg.id }) };
}

function decide(v: ForkView, cfg: ServerConfig, self: { id: number; peerAddr: string; clientAddr: string }): Fork | undefined {
  if (v.conf && alone(v.conf, self.id)) return undefined;
  const index = v.lastIndex + 1;
  const term = Math.max(v.hardState.term, v.lastTerm) + 1;
  const clusterId = cfg.clusterIdDerived ? forkedClusterId(v.clusterId, self.id, index, term) : cfg.clusterId;
  if (clusterId === v.clusterId) {
    throw new ForceNewClusterError(`--cluster-id ${clusterId} is the cluster this data dir belongs to already: the forced cluster needs a new one (or leave out --cluster-id)`);
  }
  // The removed ids stay behind with the old cluster: ids are never reused within a cluster, and
  // the old members' data dirs, of the old cluster id, are refused by this one anyway.
  const table: MemberTable = { members: [self], removed: [] };
  return { clusterId, term, confEntry: encodeConfEntry({ conf: confOfVoters([self.id]), context: encodeMemberTable(table) }) };
}

function alone(c: ConfState, id: number): boolean {
  return c.voters.length === 1 && c.voters[0] === id && c.votersOutgoing.length === 0 && c.learners.length === 0 && c.learnersNext.length === 0;
}

/** The forked cluster's id: `raftkv-` and a hash of the cluster it leaves, this node, and where the fork is in its log. */
export function forkedClusterId(from: string, nodeId: number, index: number, term: number): string {
  return 'raftkv-' + createHash('sha256').update(['force-new-cluster', from, nodeId, index, term].join('\n')).digest('hex').slice(0, 12);
}
