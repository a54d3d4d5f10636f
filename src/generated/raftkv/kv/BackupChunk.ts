// Original file: proto/kv.proto

import type { BackupInfo as _raftkv_kv_BackupInfo, BackupInfo__Output as _raftkv_kv_BackupInfo__Output } from '../../raftkv/kv/BackupInfo.js';

/**
 * Each message holds one of the three.
 */
export interface BackupChunk {
  /**
   * the first message
   */
  'info'?: (_raftkv_kv_BackupInfo | null);
  /**
   * the next bytes of the file after its header (at most 1 MiB a message)
   */
  'data'?: (Buffer | Uint8Array | string);
  /**
   * the last message: the 24 bytes that begin the file
   */
  'header'?: (Buffer | Uint8Array | string);
}

/**
 * Each message holds one of the three.
 */
export interface BackupChunk__Output {
  /**
   * the first message
   */
  'info': (_raftkv_kv_BackupInfo__Output | null);
  /**
   * the next bytes of the file after its header (at most 1 MiB a message)
   */
  'data': (Buffer);
  /**
   * the last message: the 24 bytes that begin the file
   */
  'header': (Buffer);
}
