/**
 * A compaction deletes the log rows it frees a bounded number at a time (TRIM_ROWS), the lowest
 * first, and the writes that follow delete the rest: the event loop is never held for a whole
 * large compaction, and the file holds a contiguous log at every step.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { SqliteStorage, TRIM_ROWS } from '../../src/raft/storage/sqlite.js';
import { entries } from './conformance.js';
import { ID, removeTempDirs, tempDir } from './sqlite-fixtures.js';

afterEach(removeTempDirs);

it(`deletes at most ${TRIM_ROWS} rows per write; the rest follow with the next writes`, () => {
  const path = join(tempDir(), 'raft.db');
  const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
  const n = 2.5 * TRIM_ROWS;
  for (let i = 1; i <= n; i += 1000) s.save({ term: 1, vote: 1, commit: i + 999 }, entries(i, i + 999, 1));
  const upTo = n - 1000;
  s.compact({ index: upTo, term: 1, conf: confOfVoters([1]) }, upTo);
  /** Where the log in the file starts. */
  const firstOnDisk = (): number => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT min(idx) FROM log').pluck().get() as number;
    } finally {
      db.close();
    }
  };
  s.close();
  expect(firstOnDisk()).toBe(TRIM_ROWS + 1);
  // A restart finds a valid log (the rows left are a longer tail behind the snapshot).
  const t = SqliteStorage.open(path, { ...ID, create: false, unsafeNoFsync: true });
  expect(t.load().entries[0]!.index).toBe(upTo + 1);
  t.compact({ index: upTo, term: 1, conf: confOfVoters([1]) }, upTo);
  t.save({ term: 1, vote: 1, commit: n + 1 }, entries(n + 1, n + 1, 1));
  t.save({ term: 1, vote: 1, commit: n + 2 }, entries(n + 2, n + 2, 1));
  t.close();
  expect(firstOnDisk()).toBe(upTo + 1);
});
