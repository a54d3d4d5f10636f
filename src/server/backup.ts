import type { Slicer } from '../clock.js';
import type { BackupChunk } from '../generated/raftkv/kv/BackupChunk.js';
import type { ConfState } from '../raft/core/conf.js';
import type { NodeId } from '../raft/core/types.js';
import type { ReplicatedLog } from '../raft/replicated-log.js';
import { MAX_BACKUP_BYTES, SNAPSHOT_HEADER_BYTES } from '../snapshot-header.js';
import type { KvError, KvStore } from './kv-store.js';
import type { MemberTable } from './members.js';
import { encodeBody, header } from './snapshot/encode.js';

/**
 * The leader's side of a backup (kv.proto's Backup): a snapshot file of the whole state, streamed
 * as it is encoded. The state is captured once this node has applied a commit index a ReadIndex
 * round confirmed after the call arrived (KvStore.barrier): every write acknowledged before the
 * call is in it, and a deposed leader that does not know it yet refuses rather than hand out its
 * stale state. Encoding runs in time slices, and waits whenever the client is slower than the
 * encoder, so a backup holds at most a few chunks in memory beyond the capture itself.
 */

/** The most bytes of the file one message carries: well under the client's message limit. */
export const BACKUP_MESSAGE_BYTES = 256 * 1024;

/** Where the messages go. send() resolves once more may be sent, and rejects if the client has gone. */
export interface BackupSink {
  send(chunk: BackupChunk): Promise<void>;
}

export interface BackupSource {
  store: KvStore;
  log: ReplicatedLog;
  ids: { clusterId: string; nodeId: NodeId };
  /** The configuration in force as of an applied index (RaftNode.confAt). */
  confAt(index: number): ConfState;
  /** The member table to record when the replicated state has none yet (no membership change so far: --peers'). */
  table(): MemberTable;
  slicer(): Slicer;
  /** The cap on the file's size (MAX_BACKUP_BYTES; tests make it smaller). */
  maxBytes?: number;
}

export type BackupResult =
  | { ok: true; index: number; term: number; bytes: number; keys: number }
  | { ok: false; error: KvError }
  | { ok: false; tooLarge: string };

/** Streams a backup to `sink`. Rejects only if the sink does (the client went away) or the encoder fails. */
export async function streamBackup(src: BackupSource, sink: BackupSink): Promise<BackupResult> {
  const refused = await new Promise<KvError | undefined>((resolve) => src.store.barrier(src.log, (o) => resolve(o.ok ? undefined : o.error)));
  if (refused) return { ok: false, error: refused };
  // One synchronous step: the state as of the applied index, which the barrier made at least the
  // confirmed commit index; encoding it later does not see what is applied meanwhile.
  const { meta, state } = src.store.capture();
  const conf = src.confAt(meta.index);
  const fallback = src.table();
  const table = state.table ?? (fallback.members.length > 0 ? fallback : undefined);
  const { clusterId, nodeId } = src.ids;
  await sink.send({
    info: { clusterId, nodeId, index: meta.index, term: meta.term, keyCount: state.keys.length, voters: [...conf.voters], learners: [...conf.learners] },
  });
  const max = (src.maxBytes ?? MAX_BACKUP_BYTES) - SNAPSHOT_HEADER_BYTES;
  let sent = 0;
  const body = await encodeBody(
    { ...meta, conf },
    { ...state, ...(table ? { table } : {}) },
    src.ids,
    async (chunk) => {
      sent += chunk.length;
      if (sent > max) throw new TooLarge(`the backup is over ${max + SNAPSHOT_HEADER_BYTES} bytes, the limit (${state.keys.length} keys)`);
      // Copies: the encoder reuses its chunk buffer, and the stream may queue a message before it is serialized.
      for (let at = 0; at < chunk.length; at += BACKUP_MESSAGE_BYTES) await sink.send({ data: Buffer.from(chunk.subarray(at, at + BACKUP_MESSAGE_BYTES)) });
    },
    { buffers: 1, slicer: src.slicer() },
  ).catch((e: unknown) => {
    if (e instanceof TooLarge) return e;
    throw e;
  });
  if (body instanceof TooLarge) return { ok: false, tooLarge: body.message };
  await sink.send({ header: Buffer.from(header(body.length, body.crc)) });
  return { ok: true, index: meta.index, term: meta.term, bytes: SNAPSHOT_HEADER_BYTES + body.length, keys: state.keys.length };
}

class TooLarge extends Error {}
