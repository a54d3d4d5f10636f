/**
 * SqliteStorage and cluster membership (schema version 3): conf entries and the configuration
 * as of the snapshot on disk, the files of older versions, and what a damaged record does.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { confOfVoters } from '../../src/raft/core/conf.js';
import { encodeConfEntry } from '../../src/raft/core/conf-codec.js';
import { entryChecksum, SCHEMA_VERSION, SqliteStorage } from '../../src/raft/storage/sqlite.js';
import { confEntry, entries, JOINT_CONF } from './conformance.js';
import { expectRefused, ID, makeVersion1Db, metaOf, removeTempDirs, snapshot, tempDir } from './sqlite-fixtures.js';

let dir: string;
let path: string;
beforeEach(() => {
  dir = tempDir();
  path = join(dir, 'raft.db');
});
afterEach(removeTempDirs);

const open = (): SqliteStorage => SqliteStorage.open(path, { ...ID, create: false });

/** Runs `sql` on the closed file, as a damaged disk or a foreign writer might leave it. */
function rawRun(sql: string, ...params: unknown[]): void {
  const raw = new Database(path);
  raw.prepare(sql).run(...params);
  raw.close();
}

/** A closed file: entries 1..20 (a conf entry at 5), commit 15, compacted at 12 with `conf`, keeping 11..12. */
function makeDbWithConf(conf = JOINT_CONF): void {
  const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
  s.save({ term: 2, vote: 1, commit: 15 }, [...entries(1, 4, 1), confEntry(5, 2), ...entries(6, 20, 2)]);
  s.compact({ index: 12, term: 2, conf }, 10);
  s.close();
}

/** A file of schema version 2 as that raftkv left it: compacted at 30, no configuration anywhere. */
function makeVersion2Db(): void {
  makeVersion1Db(path, 40);
  const s = open();
  s.compact({ index: 30, term: 2 }, 20);
  s.close();
  expect(metaOf(path)).toMatchObject({ schema_version: 2, snapshot_index: 30 });
  expect(metaOf(path)).not.toHaveProperty('snapshot_conf');
}

describe('SqliteStorage: configurations on disk', () => {
  it('restores exactly the configuration as of the snapshot after a restart, and the conf entries after it', () => {
    const s = SqliteStorage.open(path, { ...ID, create: true, unsafeNoFsync: true });
    s.save({ term: 2, vote: 1, commit: 25 }, [...entries(1, 19, 1), confEntry(20, 2), ...entries(21, 24, 2), confEntry(25, 2, confOfVoters([1, 2, 4]))]);
    s.compact({ index: 22, term: 2, conf: JOINT_CONF }, 22);
    s.close();
    // What kv-server's start-up reads before opening the file for writing.
    expect(SqliteStorage.check(path, { ...ID, create: false }).snapshot).toEqual({ index: 22, term: 2, conf: JOINT_CONF });
    const r = open();
    const st = r.load();
    r.close();
    expect(st.snapshot).toEqual({ index: 22, term: 2, conf: JOINT_CONF });
    expect(st.entries.map((e) => e.type)).toEqual(['normal', 'normal', 'conf']);
    expect(metaOf(path)).toMatchObject({ schema_version: SCHEMA_VERSION, snapshot_index: 22 });
  });

  it('opens a version 2 file (no configuration: the node falls back to its peers) and marks it version 3 only when it first stores one', () => {
    makeVersion2Db();
    let s = open();
    expect(s.load().snapshot).toEqual({ index: 30, term: 2 });
    s.save({ term: 2, vote: 1, commit: 40 }, entries(41, 42, 2));
    s.compact({ index: 40, term: 2 }, 35);
    s.close();
    expect(metaOf(path)).toMatchObject({ schema_version: 2 }); // still readable by the build that wrote it

    s = open();
    s.save(undefined, [confEntry(43, 2)]);
    s.close();
    expect(metaOf(path)).toMatchObject({ schema_version: 3 });
    s = open();
    expect(s.load().entries.map((e) => [e.index, e.type])).toEqual([
      [41, 'normal'],
      [42, 'normal'],
      [43, 'conf'],
    ]);
    s.close();
  });

  it('marks a version 1 or 2 file version 3 when a snapshot with a configuration is recorded', () => {
    makeVersion2Db();
    let s = open();
    s.compact({ index: 35, term: 2, conf: JOINT_CONF }, 30);
    s.close();
    expect(metaOf(path)).toMatchObject({ schema_version: 3, snapshot_index: 35 });

    removeTempDirs();
    dir = tempDir();
    path = join(dir, 'raft.db');
    makeVersion1Db(path, 10);
    s = open();
    s.installSnapshot({ index: 50, term: 3, conf: JOINT_CONF });
    s.close();
    expect(metaOf(path)).toMatchObject({ schema_version: 3, snapshot_index: 50 });
    s = open();
    expect(s.load().snapshot).toEqual({ index: 50, term: 3, conf: JOINT_CONF });
    s.close();
  });

  it('rejects an invalid configuration, or an entry type it does not know, and changes nothing', () => {
    makeDbWithConf();
    const before = snapshot(dir);
    const s = open();
    const bad = [
      { ...JOINT_CONF, learners: [1] },
      { ...JOINT_CONF, voters: [] as number[], votersOutgoing: [] as number[] },
      { ...JOINT_CONF, voters: [4, 2, 1] },
      { ...JOINT_CONF, voters: [0, 1] },
    ];
    for (const conf of bad) {
      expect(() => s.compact({ index: 14, term: 2, conf }, 14)).toThrow(/invalid snapshot configuration/);
      expect(() => s.installSnapshot({ index: 30, term: 3, conf })).toThrow(RangeError);
    }
    expect(() => s.save(undefined, [{ index: 21, term: 2, type: 'toString' as 'conf', data: new Uint8Array() }])).toThrow(/invalid entry 21/);
    expect(s.load().snapshot).toEqual({ index: 12, term: 2, conf: JOINT_CONF });
    s.close();
    expect(snapshot(dir)).toEqual(before);
  });
});

describe('SqliteStorage: refusing a damaged configuration record, read-only', () => {
  const refused = (what: RegExp) => expectRefused(dir, path, { ...ID, create: false }, 'CORRUPT', what);

  it('refuses a snapshot configuration that does not decode', () => {
    makeDbWithConf();
    rawRun("UPDATE meta SET value = ? WHERE key = 'snapshot_conf'", Buffer.from([1, 0, 1]));
    refused(/meta 'snapshot_conf' is not a valid configuration \(conf entry: truncated list\)/);
  });

  it('refuses a snapshot configuration that decodes to an invalid one', () => {
    makeDbWithConf();
    rawRun("UPDATE meta SET value = ? WHERE key = 'snapshot_conf'", encodeConfEntry({ conf: { ...JOINT_CONF, learners: [2] }, context: new Uint8Array() }));
    refused(/meta 'snapshot_conf' is not a valid configuration \(conf entry: node 2 is both a voter and a learner\)/);
  });

  it('refuses a snapshot configuration that is no blob', () => {
    makeDbWithConf();
    rawRun("UPDATE meta SET value = '1,2,3' WHERE key = 'snapshot_conf'");
    refused(/meta 'snapshot_conf' is not a valid configuration \(a string, not a blob\)/);
  });

  it('refuses a snapshot configuration without a snapshot', () => {
    makeDbWithConf();
    rawRun("DELETE FROM meta WHERE key IN ('snapshot_index', 'snapshot_term')");
    rawRun('DELETE FROM log WHERE idx <= 12'); // so that only the configuration is amiss
    refused(/meta 'snapshot_conf' is set, but there is no snapshot/);
  });

  it('refuses a conf entry whose data does not decode, even under a matching checksum', () => {
    makeDbWithConf();
    const data = Buffer.from('not a configuration');
    rawRun('UPDATE log SET data = ?, crc = ? WHERE idx = 14', data, entryChecksum(14, 2, 2, data));
    rawRun('UPDATE log SET type = 2 WHERE idx = 14');
    const err = refused(/log entry 14 is a configuration change that does not decode \(conf entry: unknown version 110\)/);
    expect(err.index).toBe(14);
  });

  it('refuses an entry of a type it does not know', () => {
    makeDbWithConf();
    const data = Buffer.from('x');
    rawRun('UPDATE log SET type = 3, data = ?, crc = ? WHERE idx = 14', data, entryChecksum(14, 2, 3, data));
    refused(/log entry 14 has unknown type 3/);
  });
});
