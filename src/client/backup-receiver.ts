import { crc32c } from '../crc32c.js';
import type { BackupChunk__Output } from '../generated/raftkv/kv/BackupChunk.js';
import type { BackupInfo__Output } from '../generated/raftkv/kv/BackupInfo.js';
import { MAX_BACKUP_BYTES, parseHeader, SNAPSHOT_HEADER_BYTES } from '../snapshot-header.js';
import { BackupError } from './errors.js';

/**
 * The client's side of kv.proto's Backup stream, apart from gRPC and files: checks each message
 * as it arrives and hands the file's bytes to a writer at their offsets. Everything in the
 * stream is the server's word, so it is checked as hostile input: the order (info, data,
 * header), each message's size, the running size against the cap, and at the end the header
 * (its magic, version and own checksum) against what arrived (the body's length and CRC-32C).
 * A file this accepts is byte for byte what the leader encoded, and the leader's encoder never
 * writes what kv-server --restore's decoder refuses.
 */

/** What a backup holds, as its leader reported it. */
export interface BackupInfo {
  clusterId: string;
  /** The leader that made it. */
  nodeId: number;
  /** Every log entry up to and including (index, term) is in it. */
  index: number;
  term: number;
  keys: number;
  voters: number[];
  learners: number[];
}

/** The most bytes one data message may carry (the server sends at most 256 KiB). */
export const MAX_BACKUP_MESSAGE_BYTES = 1024 * 1024;
/** Bounds on the info message's lists and id (those of a configuration and a --cluster-id). */
const MAX_IDS = 1024;
const MAX_CLUSTER_ID = 128;

/** Writes `data` at byte `position` of the file being received. */
export type Writer = (data: Uint8Array, position: number) => Promise<void>;

export class BackupReceiver {
  private info: BackupInfo | undefined;
  private header: Uint8Array | undefined;
  private at = SNAPSHOT_HEADER_BYTES;
  private crc = 0;

  constructor(
    private readonly write: Writer,
    private readonly maxBytes = MAX_BACKUP_BYTES,
  ) {}

  /** Takes the next message; throws BackupError ('damaged', 'tooLarge'), or what the writer throws. */
  async take(msg: BackupChunk__Output): Promise<void> {
    if (this.header) throw damaged('a message after the header, which ends the stream');
    if (!this.info) {
      if (!msg.info) throw damaged('the stream does not begin with what the backup holds (info)');
      this.info = checkInfo(msg.info);
      return;
    }
    if (msg.info) throw damaged('a second info message');
    if (msg.header.length > 0) {
      if (msg.data.length > 0) throw damaged('a message with both data and the header');
      if (msg.header.length !== SNAPSHOT_HEADER_BYTES) throw damaged(`a header of ${msg.header.length} bytes, not ${SNAPSHOT_HEADER_BYTES}`);
      this.header = Uint8Array.from(msg.header);
      return;
    }
    const d = msg.data;
    if (d.length === 0) throw damaged('an empty message');
    if (d.length > MAX_BACKUP_MESSAGE_BYTES) throw damaged(`a message of ${d.length} bytes (at most ${MAX_BACKUP_MESSAGE_BYTES} are sent)`);
    if (this.at + d.length > this.maxBytes) {
      throw new BackupError('tooLarge', `the backup is over ${this.maxBytes} bytes, the most a backup may hold (and kv-server --restore reads)`);
    }
    this.crc = crc32c(d, this.crc);
    await this.write(d, this.at);
    this.at += d.length;
  }

  /** The stream ended: checks the header against what arrived and writes it; the file is then complete. */
  async finish(): Promise<{ info: BackupInfo; bytes: number }> {
    if (!this.info) throw damaged('the stream ended before anything arrived');
    if (!this.header) throw damaged(`the stream ended after ${this.at - SNAPSHOT_HEADER_BYTES} bytes, before the header: truncated`);
    const h = parseHeader(this.header);
    if (!h.ok) throw damaged(`its header: ${h.message}`);
    const body = this.at - SNAPSHOT_HEADER_BYTES;
    if (h.bodyLength !== body) throw damaged(`the header says ${h.bodyLength} bytes follow it, but ${body} arrived`);
    if (h.bodyCrc !== this.crc) throw damaged('checksum mismatch: the bytes that arrived are not those the leader encoded');
    await this.write(this.header, 0);
    return { info: this.info, bytes: this.at };
  }
}

function damaged(what: string): BackupError {
  return new BackupError('damaged', `the backup stream is not sound: ${what}`);
}

function checkInfo(i: BackupInfo__Output): BackupInfo {
  const ids = (what: string, list: number[]): number[] => {
    if (list.length > MAX_IDS) throw damaged(`info lists ${list.length} ${what}`);
    for (const id of list) if (!isCount(id) || id === 0) throw damaged(`info lists ${String(id)} among the ${what}`);
    return [...list];
  };
  if (typeof i.clusterId !== 'string' || i.clusterId === '' || i.clusterId.length > MAX_CLUSTER_ID) throw damaged('info names no valid cluster id');
  for (const [what, n] of [['node id', i.nodeId], ['index', i.index], ['term', i.term], ['key count', i.keyCount]] as const) {
    if (!isCount(n)) throw damaged(`info gives ${String(n)} as the ${what}`);
  }
  return { clusterId: i.clusterId, nodeId: i.nodeId, index: i.index, term: i.term, keys: i.keyCount, voters: ids('voters', i.voters), learners: ids('learners', i.learners) };
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
