/**
 * kv-cli backup FILE [--force]: a consistent backup of the cluster from its leader, written to
 * FILE (the SDK's backup(): FILE.tmp, checked, fsynced, renamed), for kv-server --restore.
 */
import { UsageError } from './address.js';
import type { CliIo } from './cli-main.js';
import type { BackupResult, KvClient } from './client.js';

export const BACKUP_USAGE = 'backup FILE [--force]';
export const BACKUP_ABOUT = 'write a consistent backup of the cluster to FILE, for kv-server --restore';

export interface BackupCommand {
  file: string;
  overwrite: boolean;
}

export function parseBackup(rest: string[], force: boolean | undefined): BackupCommand {
  if (rest.length === 0) throw new UsageError(`missing FILE: ${BACKUP_USAGE}`);
  if (rest.length > 1) throw new UsageError(`unexpected argument(s) ${rest.slice(1).map((a) => JSON.stringify(a)).join(' ')}: ${BACKUP_USAGE}`);
  const file = rest[0]!;
  if (file.trim() === '') throw new UsageError(`FILE is empty: ${BACKUP_USAGE}`);
  return { file, overwrite: force === true };
}

export async function runBackup(cmd: BackupCommand, client: KvClient, json: boolean, io: CliIo): Promise<void> {
  const r = await client.backup(cmd.file, { overwrite: cmd.overwrite });
  if (json) return io.out(JSON.stringify(backupJson(r)) + '\n');
  io.out(
    `backup written to ${r.path}: ${r.bytes} bytes, ${r.keys} keys, as of log index ${r.index} (term ${r.term})\n` +
      `  from cluster ${r.clusterId}, streamed by its leader, node ${r.nodeId} at ${r.endpoint}; voters ${r.voters.join(',') || '-'}` +
      (r.learners.length > 0 ? `, learners ${r.learners.join(',')}` : '') +
      `\nRestore it into a new cluster: start each of its nodes, on an empty data dir, with\n  kv-server --restore ${r.path} --id ID --peers ... --client-addr ... --data-dir ...\n`,
  );
}

function backupJson(r: BackupResult): object {
  const { path, bytes, index, term, keys, clusterId, nodeId, voters, learners, endpoint } = r;
  return { path, bytes, index, term, keys, clusterId, nodeId, voters, learners, endpoint };
}
