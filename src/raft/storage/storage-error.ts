/** The errors a data file can cause: typed, with messages that say what, where, and what to do. */

export type StorageErrorCode =
  | 'MISSING'
  | 'NOT_RAFTKV'
  | 'CORRUPT'
  | 'WRONG_CLUSTER'
  | 'WRONG_NODE'
  | 'SCHEMA_VERSION'
  | 'LOCKED'
  | 'IO';

/** A data file that cannot be used as it is. The message says what, where, and what to do. */
export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    readonly path: string,
    message: string,
    options?: { index?: number; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.index !== undefined) this.index = options.index;
  }
  /** The log index concerned, when there is one. */
  readonly index?: number;
}

export const ADVICE_FOREIGN =
  'Check the data directory option: it must point at this node\'s own raftkv data directory. ' +
  'Move the file away if it belongs to something else.';
export const ADVICE_CORRUPT =
  'The file is damaged; raftkv will not guess at its contents. Keep it for inspection, and do NOT just delete it and ' +
  'restart under the same node id (this node may have voted and acknowledged entries that the cluster relies on). ' +
  'If the other members have a quorum, replace this node: kv-cli member remove ID, then add a new node with a fresh ' +
  'data directory and a new id (README: "Replacing a node\'s data"). If the cluster has lost its quorum, start one ' +
  'surviving member with kv-server --force-new-cluster, or a new cluster from a backup (kv-cli backup FILE) with ' +
  'kv-server --restore FILE (README: "Disaster recovery").';

export function isSqliteError(e: unknown): e is Error & { code: string } {
  const code: unknown = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** Turns an error from SQLite (or the file system) while reading `path` into a StorageError. */
export function wrapSqliteError(e: unknown, path: string, doing: string): StorageError {
  if (e instanceof StorageError) return e;
  const code = isSqliteError(e) ? e.code : (e as { code?: string } | undefined)?.code ?? 'unknown';
  const detail = e instanceof Error ? e.message : String(e);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StorageError(
      'LOCKED',
      path,
      `${path}: database is locked while ${doing} (${detail}): another process has it open, probably another raftkv ` +
        'node started with the same data directory (or another SqliteStorage in this process). Stop it, or give this node its own data directory.',
      { cause: e },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code.startsWith('SQLITE_NOTADB')) {
    return new StorageError('CORRUPT', path, `${path}: SQLite reports corruption while ${doing}: ${detail}. ${ADVICE_CORRUPT}`, {
      cause: e,
    });
  }
  return new StorageError(
    'IO',
    path,
    `${path}: cannot read the database while ${doing}: ${code}: ${detail}. Check that the file and its directory ` +
      'are readable and writable by this process, and that the disk is healthy.',
    { cause: e },
  );
}
