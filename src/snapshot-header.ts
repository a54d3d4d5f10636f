import { crc32c } from './crc32c.js';

/**
 * The 24-byte header of a raftkv snapshot, which is also the first 24 bytes of a backup (a
 * backup is a snapshot file). Shared by the server, which writes and reads snapshots
 * (server/snapshot/), and the SDK, which checks a backup as it arrives without loading any
 * server code.
 *
 * Layout (integers little-endian):
 *   0   "RKVS"                      magic
 *   4   u32 format version          SNAPSHOT_FORMAT_VERSION
 *   8   u64 body length
 *   16  u32 CRC-32C of the body
 *   20  u32 CRC-32C of bytes 0..19  (so a damaged length or version reads as damage)
 */

export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 24;
export const MAGIC = 0x53564b52; // "RKVS" read as a little-endian u32

export function encodeHeader(bodyLength: number, bodyCrc: number): Uint8Array {
  const h = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const v = new DataView(h.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(4, SNAPSHOT_FORMAT_VERSION, true);
  v.setUint32(8, bodyLength >>> 0, true);
  v.setUint32(12, Math.floor(bodyLength / 2 ** 32), true);
  v.setUint32(16, bodyCrc, true);
  v.setUint32(20, crc32c(h.subarray(0, 20)), true);
  return h;
}

export type HeaderCheck =
  | { ok: true; bodyLength: number; bodyCrc: number }
  /** `damaged`: not what was written (or not a snapshot); `version`: another format version's. */
  | { ok: false; problem: 'damaged' | 'version'; message: string };

/**
 * The header at the start of `bytes` (only its 24 bytes are read), checked: magic, its own
 * checksum, the version. The body length is as the header says; the caller compares it.
 */
export function parseHeader(bytes: Uint8Array): HeaderCheck {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) {
    return { ok: false, problem: 'damaged', message: `truncated: ${bytes.length} bytes, shorter than the ${SNAPSHOT_HEADER_BYTES}-byte header` };
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, SNAPSHOT_HEADER_BYTES);
  if (v.getUint32(0, true) !== MAGIC) return { ok: false, problem: 'damaged', message: 'not a raftkv snapshot (bad magic number)' };
  if (v.getUint32(20, true) !== crc32c(bytes.subarray(0, 20))) {
    return { ok: false, problem: 'damaged', message: 'header checksum mismatch: the header is damaged' };
  }
  const version = v.getUint32(4, true);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    return { ok: false, problem: 'version', message: `snapshot format version ${version}; this build reads version ${SNAPSHOT_FORMAT_VERSION}` };
  }
  return { ok: true, bodyLength: v.getUint32(8, true) + v.getUint32(12, true) * 2 ** 32, bodyCrc: v.getUint32(16, true) };
}

/**
 * The largest backup a leader streams and kv-server --restore reads, header included: as large as
 * the largest snapshot a follower takes (the transport's DEFAULT_MAX_SNAPSHOT_BYTES). A state any
 * larger could not be installed on the followers of the cluster restored from it anyway, and
 * restore reads the whole file to verify it.
 */
export const MAX_BACKUP_BYTES = 1024 * 1024 * 1024;
