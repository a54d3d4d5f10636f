import * as fsp from 'node:fs/promises';
import * as nodePath from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { BackupChunk__Output } from '../generated/raftkv/kv/BackupChunk.js';
import { MD_ERROR, MD_LEADER } from '../kv-api.js';
import { checkAddress } from '../address.js';
import { BackupReceiver, type BackupInfo } from './backup-receiver.js';
import { BackupError, ClusterUnavailableError, RaftkvError, UnexpectedServerError } from './errors.js';
import { describeFailure, details, isConnectFailure } from './grpc-errors.js';
import type { Router } from './router.js';

/**
 * KvClient.backup(): a backup of the cluster's state from its leader, written to a file the way
 * a snapshot file is: to FILE.tmp, checked as it arrives (backup-receiver.ts), fsynced, then
 * renamed (or, without `overwrite`, linked: never replacing a file that appeared meanwhile) to
 * FILE, and the directory fsynced. A crash or failure leaves at most FILE.tmp, never a partial
 * FILE. Attempts follow the leader's hints; a leader change mid-stream starts the backup over.
 */

export interface BackupOptions {
  /** Replace FILE if it exists (default: refuse, with BackupError 'exists'). */
  overwrite?: boolean;
  /**
   * How long to try to find a leader that streams, and the longest the stream may go silent once
   * it flows (default: the client's timeoutMs). A large backup may take longer than this in all.
   */
  timeoutMs?: number;
}

export interface BackupResult extends BackupInfo {
  path: string;
  /** The file's size. */
  bytes: number;
  /** The client address of the leader that streamed it. */
  endpoint: string;
}

/** Hints followed in a row without a pause. */
const MAX_HINT_HOPS = 3;
const PAUSE_MIN_MS = 50;
const PAUSE_MAX_MS = 1000;

export async function backupToFile(router: Router, path: string, options: BackupOptions = {}): Promise<BackupResult> {
  if (typeof path !== 'string' || path === '') throw new BackupError('io', 'a backup needs a file name');
  const timeoutMs = options.timeoutMs ?? router.timeoutMs;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new BackupError('io', `timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  const file = nodePath.resolve(path);
  const overwrite = options.overwrite === true;
  if (!overwrite && (await exists(file))) throw new BackupError('exists', `${file} exists: not overwriting it (ask for overwrite: kv-cli backup --force)`);
  const tmp = `${file}.tmp`;
  const fh = await io(`cannot create ${tmp}`, () => fsp.open(tmp, 'w'));
  let done = false;
  try {
    const got = await attempts(router, timeoutMs, async (data, position) => {
      for (let off = 0; off < data.length; ) off += (await io(`cannot write ${tmp}`, () => fh.write(data, off, data.length - off, position + off))).bytesWritten;
    }, () => io(`cannot truncate ${tmp}`, () => fh.truncate(0)));
    // The contents must be on disk before the name is (a power loss must not leave a damaged FILE).
    await io(`cannot flush ${tmp} to disk`, () => fh.sync());
    await fh.close();
    if (overwrite) await io(`cannot rename ${tmp} to ${file}`, () => fsp.rename(tmp, file));
    else {
      // link() refuses to replace: a FILE created meanwhile is kept.
      await io(`cannot create ${file}`, () => fsp.link(tmp, file), (e) => (e.code === 'EEXIST' ? new BackupError('exists', `${file} appeared during the backup: not overwriting it`) : undefined));
      await fsp.rm(tmp, { force: true });
    }
    await syncDir(nodePath.dirname(file));
    done = true;
    return { ...got.info, path: file, bytes: got.bytes, endpoint: got.endpoint };
  } finally {
    if (!done) {
      await fh.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

/** Attempts until one streams a sound backup, or nothing progresses for `timeoutMs`. */
async function attempts(
  router: Router,
  timeoutMs: number,
  write: (data: Uint8Array, position: number) => Promise<void>,
  reset: () => Promise<void>,
): Promise<{ info: BackupInfo; bytes: number; endpoint: string }> {
  let deadline = Date.now() + timeoutMs;
  const progressed = (): void => void (deadline = Date.now() + timeoutMs);
  let hint: string | undefined;
  let hops = 0;
  let pause = PAUSE_MIN_MS;
  let tries = 0;
  let last = 'no attempt finished';
  for (;;) {
    const target = hint ?? router.nextTarget();
    hint = undefined;
    tries++;
    await reset();
    try {
      const got = await receive(router, target, write, () => deadline, progressed);
      router.noteLeader(target);
      return { ...got, endpoint: target };
    } catch (e) {
      if (e instanceof BackupError && e.kind !== 'damaged') throw e;
      if (e instanceof RaftkvError && !(e instanceof BackupError)) throw e;
      router.checkOpen();
      const err = e as grpc.ServiceError | BackupError;
      if (err instanceof BackupError) last = `${target}: ${err.message}`;
      else {
        last = `${target}: ${describeFailure(err)}`;
        const kind = String(err.metadata?.get(MD_ERROR)[0] ?? '');
        const leader = String(err.metadata?.get(MD_LEADER)[0] ?? '');
        if (err.code === grpc.status.FAILED_PRECONDITION && kind === 'not-leader' && leader !== '' && leader !== target && checkAddress(leader).ok && hops < MAX_HINT_HOPS) {
          hint = leader;
          hops++;
          continue;
        }
        if (err.code === grpc.status.RESOURCE_EXHAUSTED && kind !== 'overloaded') throw new BackupError('tooLarge', `${target}: ${details(err)}`, { cause: err });
        if (err.code === grpc.status.UNIMPLEMENTED || err.code === grpc.status.INVALID_ARGUMENT) {
          throw new UnexpectedServerError(`${target}: ${describeFailure(err)} (is it a raftkv node of a version that serves backups?)`, err.code);
        }
        // A refusal names its reason; anything else is a node that did not answer.
        router.noteFailure(target, kind !== '' || !isConnectFailure(err));
      }
      hops = 0;
      if (Date.now() + pause >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, pause / 2 + (Math.random() * pause) / 2));
      pause = Math.min(2 * pause, PAUSE_MAX_MS);
    }
  }
  throw new ClusterUnavailableError(`no leader streamed a backup within ${timeoutMs} ms of trying (${tries} attempts); last: ${last}`, tries);
}

/** One attempt: the stream from `target` into the file; a silence past the deadline cancels it. */
function receive(
  router: Router,
  target: string,
  write: (data: Uint8Array, position: number) => Promise<void>,
  deadline: () => number,
  progressed: () => void,
): Promise<{ info: BackupInfo; bytes: number }> {
  const call = router.stream<BackupChunk__Output>(target, 'Backup', {});
  const receiver = new BackupReceiver(write);
  let silent = false;
  let timer: NodeJS.Timeout | undefined;
  const watch = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (Date.now() < deadline()) return watch();
      silent = true;
      call.cancel();
    }, Math.max(1, deadline() - Date.now()));
  };
  watch();
  return (async () => {
    try {
      for await (const msg of call as AsyncIterable<BackupChunk__Output>) {
        progressed();
        await receiver.take(msg);
      }
      return await receiver.finish();
    } catch (e) {
      call.cancel();
      if (silent) throw Object.assign(new Error('silent'), { code: grpc.status.DEADLINE_EXCEEDED, details: `${target} sent nothing in time`, metadata: new grpc.Metadata() });
      throw e;
    } finally {
      clearTimeout(timer);
    }
  })();
}

async function exists(p: string): Promise<boolean> {
  return fsp.stat(p).then(
    () => true,
    (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(new BackupError('io', `cannot look at ${p}: ${e.message}`, { cause: e }))),
  );
}

/** Runs a file operation; its error becomes a BackupError ('io') that says what failed, unless `special` names another. */
async function io<T>(what: string, op: () => Promise<T>, special?: (e: NodeJS.ErrnoException) => BackupError | undefined): Promise<T> {
  try {
    return await op();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw special?.(err) ?? new BackupError('io', `${what}: ${err.message}`, { cause: e });
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Some platforms cannot open or fsync a directory; there the rename is as durable as it gets.
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES') throw new BackupError('io', `cannot flush ${dir}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh?.close();
  }
}
