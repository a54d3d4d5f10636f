import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { confOfVoters, type ConfState } from '../../src/raft/core/conf.js';
import { encodeConfEntry } from '../../src/raft/core/conf-codec.js';
import type { Entry, EntryType, HardState } from '../../src/raft/core/types.js';
import type { Storage } from '../../src/raft/storage/storage.js';

export interface StorageFixture {
  storage: Storage;
  /** Closes the current storage and opens the same data again (memory storage: the same object). */
  reopen: () => Storage;
  /** Closes whatever is open and removes any files. */
  cleanup: () => void;
}

export function entry(index: number, term: number, data: Uint8Array | string = `e${index}`, type: EntryType = 'normal'): Entry {
  return { index, term, type, data: typeof data === 'string' ? new TextEncoder().encode(data) : data };
}

/** A joint configuration: every list set. */
export const JOINT_CONF: ConfState = { voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learners: [5], learnersNext: [3], autoLeave: true };

/** A conf entry putting `conf` in force. */
export function confEntry(index: number, term: number, conf: ConfState = JOINT_CONF): Entry {
  return entry(index, term, encodeConfEntry({ conf, context: new TextEncoder().encode('1=a:1,2=b:2') }), 'conf');
}

/** Entries [from, to] in `term`. */
export function entries(from: number, to: number, term: number, tag = ''): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, `${tag}e${i}`));
  return out;
}

/** A comparable form: the data as a plain byte array, and a check that it is a Uint8Array. */
function plain(list: readonly Entry[]): { index: number; term: number; type: EntryType; data: number[] }[] {
  return list.map((e) => {
    expect(e.data).toBeInstanceOf(Uint8Array);
    return { index: e.index, term: e.term, type: e.type, data: Array.from(e.data) };
  });
}

/**
 * Registers the Storage contract's tests for one implementation. `makeStorage` is called
 * once per test, on fresh (empty) storage.
 */
export function storageConformance(name: string, makeStorage: () => StorageFixture): void {
  describe(`Storage conformance: ${name}`, () => {
    let fx: StorageFixture;
    let s: Storage;
    beforeEach(() => {
      fx = makeStorage();
      s = fx.storage;
    });
    afterEach(() => fx.cleanup());

    const expectLog = (st: Storage, want: readonly Entry[]) => expect(plain(st.load().entries)).toEqual(plain(want));

    it('loads empty state from fresh storage', () => {
      const st = s.load();
      expect(st.hardState).toEqual({ term: 0, vote: 0, commit: 0 });
      expect(st.entries).toEqual([]);
    });

    it('appends entries and loads them in order', () => {
      const a = entries(1, 3, 1);
      s.save(undefined, a);
      expectLog(s, a);
      const b = [entry(4, 1), entry(5, 2, 'x', 'noop'), entry(6, 2)];
      s.save(undefined, b);
      expectLog(s, [...a, ...b]);
    });

    it('round-trips the hard state, replacing it wholesale', () => {
      s.save({ term: 5, vote: 2, commit: 0 }, []);
      expect(s.load().hardState).toEqual({ term: 5, vote: 2, commit: 0 });
      s.save({ term: 6, vote: 0, commit: 0 }, []);
      expect(s.load().hardState).toEqual({ term: 6, vote: 0, commit: 0 });
    });

    it('saves hard state and entries together', () => {
      const hs: HardState = { term: 3, vote: 1, commit: 2 };
      s.save(hs, entries(1, 4, 3));
      const st = s.load();
      expect(st.hardState).toEqual(hs);
      expect(plain(st.entries)).toEqual(plain(entries(1, 4, 3)));
    });

    it('replaces a conflicting suffix when entries start at or below the last index', () => {
      s.save(undefined, entries(1, 5, 1));
      const replacement = entries(3, 4, 2, 'new');
      s.save(undefined, replacement);
      expectLog(s, [...entries(1, 2, 1), ...replacement]);
      // Shorter than before, from the very first index.
      s.save(undefined, [entry(1, 3, 'only')]);
      expectLog(s, [entry(1, 3, 'only')]);
      // Overwriting the last entry only.
      s.save(undefined, [entry(2, 3, 'a'), entry(3, 3, 'b')]);
      s.save(undefined, [entry(3, 4, 'c')]);
      expectLog(s, [entry(1, 3, 'only'), entry(2, 3, 'a'), entry(3, 4, 'c')]);
    });

    it('saves a hard state without entries, keeping the log', () => {
      s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 3, 1));
      s.save({ term: 2, vote: 3, commit: 3 }, []);
      const st = s.load();
      expect(st.hardState).toEqual({ term: 2, vote: 3, commit: 3 });
      expect(plain(st.entries)).toEqual(plain(entries(1, 3, 1)));
    });

    it('saves entries without a hard state, keeping the old hard state', () => {
      s.save({ term: 4, vote: 2, commit: 1 }, entries(1, 1, 4));
      s.save(undefined, entries(2, 3, 4));
      const st = s.load();
      expect(st.hardState).toEqual({ term: 4, vote: 2, commit: 1 });
      expect(plain(st.entries)).toEqual(plain(entries(1, 3, 4)));
    });

    it('treats an empty save as a no-op', () => {
      s.save({ term: 1, vote: 1, commit: 1 }, entries(1, 2, 1));
      s.save(undefined, []);
      const st = s.load();
      expect(st.hardState).toEqual({ term: 1, vote: 1, commit: 1 });
      expect(plain(st.entries)).toEqual(plain(entries(1, 2, 1)));
    });

    it('sync() resolves on fresh storage, after saves, and for several calls at once', async () => {
      await s.sync();
      s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 3, 1));
      await s.sync();
      await s.sync(); // nothing saved since: resolves too
      s.save(undefined, entries(4, 4, 1));
      const first = s.sync();
      s.save({ term: 1, vote: 1, commit: 4 }, entries(5, 6, 1));
      const second = s.sync();
      s.save(undefined, []);
      await Promise.all([first, second, s.sync()]);
      const st = s.load();
      expect(st.hardState).toEqual({ term: 1, vote: 1, commit: 4 });
      expectLog(s, entries(1, 6, 1));
    });

    it('keeps synced saves across a reopen', async () => {
      s.save({ term: 1, vote: 2, commit: 1 }, entries(1, 2, 1));
      await s.sync();
      s = fx.reopen();
      expect(s.load().hardState).toEqual({ term: 1, vote: 2, commit: 1 });
      expectLog(s, entries(1, 2, 1));
      s.save(undefined, [entry(3, 1)]);
      await s.sync();
      s = fx.reopen();
      expectLog(s, entries(1, 3, 1));
    });

    it('keeps the data across a reopen', () => {
      s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 5, 1));
      s.save({ term: 2, vote: 2, commit: 3 }, entries(4, 6, 2, 'b'));
      s = fx.reopen(); // close() makes what was saved durable, synced or not
      const want = [...entries(1, 3, 1), ...entries(4, 6, 2, 'b')];
      let st = s.load();
      expect(st.hardState).toEqual({ term: 2, vote: 2, commit: 3 });
      expect(plain(st.entries)).toEqual(plain(want));
      // And it keeps working after the reopen.
      s.save({ term: 3, vote: 0, commit: 6 }, [entry(7, 3)]);
      s = fx.reopen();
      st = s.load();
      expect(st.hardState).toEqual({ term: 3, vote: 0, commit: 6 });
      expect(plain(st.entries)).toEqual(plain([...want, entry(7, 3)]));
    });

    it('rejects a gap (first index > last + 1) and changes nothing', () => {
      expect(() => s.save(undefined, [entry(2, 1)])).toThrow(/gap/);
      s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 2, 1));
      expect(() => s.save({ term: 9, vote: 9, commit: 0 }, [entry(4, 1)])).toThrow(/gap/);
      const st = s.load();
      expect(st.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
      expect(plain(st.entries)).toEqual(plain(entries(1, 2, 1)));
      // Appending right after the last index is still fine.
      s.save(undefined, [entry(3, 1)]);
      expectLog(s, entries(1, 3, 1));
    });

    it('round-trips binary data: every byte value, empty data, a large blob, every entry type', () => {
      const all = new Uint8Array(256);
      for (let i = 0; i < 256; i++) all[i] = i;
      const reversed = all.slice().reverse();
      const large = new Uint8Array(100_000);
      for (let i = 0; i < large.length; i++) large[i] = (i * 7919 + 13) & 0xff;
      // A view into a larger buffer: only the view's bytes are data.
      const backing = new Uint8Array([0xaa, 0xbb, 1, 2, 3, 0xcc]);
      const list = [
        entry(1, 1, all),
        entry(2, 1, new Uint8Array(0), 'noop'),
        entry(3, 1, new Uint8Array(0)),
        entry(4, 2, reversed),
        entry(5, 2, large),
        entry(6, 2, backing.subarray(2, 5)),
        entry(7, 2, new Uint8Array([0])),
        confEntry(8, 2),
      ];
      s.save(undefined, list);
      expectLog(s, list);
      s = fx.reopen();
      expectLog(s, list);
    });

    it('returns a log that the caller may modify without changing what is stored', () => {
      s.save(undefined, entries(1, 3, 1));
      const got = s.load().entries;
      got.length = 1;
      expectLog(s, entries(1, 3, 1));
    });

    describe('snapshots and compaction', () => {
      it('has no snapshot on fresh storage', () => {
        expect(s.load().snapshot).toBeUndefined();
        s.save({ term: 1, vote: 1, commit: 1 }, entries(1, 3, 1));
        expect(s.load().snapshot).toBeUndefined();
      });

      it('compact: load returns the snapshot and only the entries after it', () => {
        const hs: HardState = { term: 2, vote: 1, commit: 8 };
        s.save(hs, entries(1, 10, 2));
        s.compact({ index: 8, term: 2 }, 8);
        const st = s.load();
        expect(st.snapshot).toEqual({ index: 8, term: 2 });
        expect(st.hardState).toEqual(hs);
        expect(plain(st.entries)).toEqual(plain(entries(9, 10, 2)));
      });

      it('compacting the whole log leaves no entries, and the log continues after the snapshot', () => {
        s.save({ term: 1, vote: 1, commit: 5 }, entries(1, 5, 1));
        s.compact({ index: 5, term: 1 }, 5);
        let st = s.load();
        expect(st.snapshot).toEqual({ index: 5, term: 1 });
        expect(st.entries).toEqual([]);
        expect(() => s.save(undefined, [entry(7, 1)])).toThrow(/gap/);
        s.save({ term: 1, vote: 1, commit: 6 }, [entry(6, 1)]);
        st = s.load();
        expect(st.hardState).toEqual({ term: 1, vote: 1, commit: 6 });
        expect(plain(st.entries)).toEqual(plain([entry(6, 1)]));
      });

      it('keeps a retained window that load skips, and saves after it still work', () => {
        s.save({ term: 2, vote: 1, commit: 8 }, entries(1, 10, 2));
        s.compact({ index: 8, term: 2 }, 5); // entries 6..8 stay for slow followers
        expectLog(s, entries(9, 10, 2));
        expect(s.load().snapshot).toEqual({ index: 8, term: 2 });
        // Appending after the log, and replacing a conflicting suffix after the snapshot.
        s.save(undefined, entries(11, 12, 2));
        expectLog(s, entries(9, 12, 2));
        s.save(undefined, [entry(10, 3, 'x')]);
        expectLog(s, [entry(9, 2), entry(10, 3, 'x')]);
        // A later snapshot moves the window along.
        s.compact({ index: 10, term: 3 }, 8);
        let st = s.load();
        expect(st.snapshot).toEqual({ index: 10, term: 3 });
        expect(st.entries).toEqual([]);
        s.save(undefined, [entry(11, 3)]);
        st = s.load();
        expect(plain(st.entries)).toEqual(plain([entry(11, 3)]));
      });

      it('compacting below the first retained index only records the newer snapshot', () => {
        s.save({ term: 1, vote: 1, commit: 10 }, entries(1, 10, 1));
        s.compact({ index: 6, term: 1 }, 4);
        s.compact({ index: 9, term: 1 }, 2);
        const st = s.load();
        expect(st.snapshot).toEqual({ index: 9, term: 1 });
        expect(plain(st.entries)).toEqual(plain([entry(10, 1)]));
        expect(() => s.save(undefined, [entry(4, 2)])).toThrow(RangeError); // still compacted
      });

      it('refuses to rewrite compacted entries, and changes nothing', () => {
        const hs: HardState = { term: 1, vote: 1, commit: 8 };
        s.save(hs, entries(1, 10, 1));
        s.compact({ index: 8, term: 1 }, 5);
        expect(() => s.save({ term: 9, vote: 9, commit: 0 }, [entry(5, 2)])).toThrow(RangeError);
        expect(() => s.save(undefined, [entry(1, 2), entry(2, 2)])).toThrow(/compacted/);
        const st = s.load();
        expect(st.hardState).toEqual(hs);
        expect(st.snapshot).toEqual({ index: 8, term: 1 });
        expect(plain(st.entries)).toEqual(plain(entries(9, 10, 1)));
      });

      it('installSnapshot replaces the log: load returns the snapshot and no entries', () => {
        const hs: HardState = { term: 1, vote: 2, commit: 3 };
        s.save(hs, entries(1, 5, 1));
        s.installSnapshot({ index: 20, term: 3 });
        const st = s.load();
        expect(st.snapshot).toEqual({ index: 20, term: 3 });
        expect(st.entries).toEqual([]);
        expect(st.hardState).toEqual(hs);
      });

      it('saves after installSnapshot: the log continues at snapshot.index + 1', () => {
        s.installSnapshot({ index: 20, term: 3 }); // on fresh storage: a new node's first contact
        expect(() => s.save(undefined, [entry(22, 3)])).toThrow(/gap/);
        expect(() => s.save(undefined, [entry(20, 3)])).toThrow(RangeError);
        expect(() => s.save(undefined, [entry(1, 1)])).toThrow(RangeError);
        s.save({ term: 3, vote: 0, commit: 20 }, []);
        s.save({ term: 3, vote: 0, commit: 22 }, entries(21, 23, 3));
        const st = s.load();
        expect(st.hardState).toEqual({ term: 3, vote: 0, commit: 22 });
        expect(st.snapshot).toEqual({ index: 20, term: 3 });
        expect(plain(st.entries)).toEqual(plain(entries(21, 23, 3)));
        // A second snapshot from the leader replaces that log too.
        s.installSnapshot({ index: 30, term: 4 });
        expect(s.load().entries).toEqual([]);
        expect(s.load().snapshot).toEqual({ index: 30, term: 4 });
      });

      it('keeps a compacted log across a reopen', () => {
        s.save({ term: 1, vote: 1, commit: 8 }, entries(1, 10, 1));
        s.compact({ index: 8, term: 1 }, 5);
        s = fx.reopen();
        let st = s.load();
        expect(st.hardState).toEqual({ term: 1, vote: 1, commit: 8 });
        expect(st.snapshot).toEqual({ index: 8, term: 1 });
        expect(plain(st.entries)).toEqual(plain(entries(9, 10, 1)));
        // The compacted prefix stays compacted; the log keeps growing and compacting.
        expect(() => s.save(undefined, [entry(5, 2)])).toThrow(RangeError);
        s.save({ term: 1, vote: 1, commit: 11 }, [entry(11, 1)]);
        s = fx.reopen();
        expectLog(s, entries(9, 11, 1));
        s.compact({ index: 11, term: 1 }, 11);
        s = fx.reopen();
        st = s.load();
        expect(st.snapshot).toEqual({ index: 11, term: 1 });
        expect(st.entries).toEqual([]);
        s.save(undefined, [entry(12, 2)]);
        s = fx.reopen();
        expectLog(s, [entry(12, 2)]);
      });

      it('records the configuration as of each snapshot and returns it, across a reopen; a snapshot without one drops it', () => {
        const three = confOfVoters([1, 2, 3]);
        s.save({ term: 2, vote: 1, commit: 9 }, [...entries(1, 4, 1), confEntry(5, 2), ...entries(6, 10, 2)]);
        s.compact({ index: 6, term: 2, conf: JOINT_CONF }, 3);
        expect(s.load().snapshot).toEqual({ index: 6, term: 2, conf: JOINT_CONF });
        s = fx.reopen();
        expect(s.load().snapshot).toEqual({ index: 6, term: 2, conf: JOINT_CONF });
        expectLog(s, entries(7, 10, 2));
        s.compact({ index: 9, term: 2, conf: three }, 9);
        s = fx.reopen();
        expect(s.load().snapshot).toEqual({ index: 9, term: 2, conf: three });
        // A snapshot recorded without a configuration (a caller that has none) must not pass for having the older one.
        s.compact({ index: 10, term: 2 }, 10);
        expect(s.load().snapshot).toEqual({ index: 10, term: 2 });
        s = fx.reopen();
        expect(s.load().snapshot).toEqual({ index: 10, term: 2 });
        s.installSnapshot({ index: 20, term: 3, conf: JOINT_CONF });
        s = fx.reopen();
        expect(s.load().snapshot).toEqual({ index: 20, term: 3, conf: JOINT_CONF });
        expect(s.load().entries).toEqual([]);
      });

      it('keeps an installed snapshot across a reopen', () => {
        s.save({ term: 1, vote: 1, commit: 2 }, entries(1, 5, 1));
        s.installSnapshot({ index: 20, term: 3 });
        s = fx.reopen();
        let st = s.load();
        expect(st.snapshot).toEqual({ index: 20, term: 3 });
        expect(st.entries).toEqual([]);
        expect(st.hardState).toEqual({ term: 1, vote: 1, commit: 2 });
        expect(() => s.save(undefined, [entry(20, 3)])).toThrow(RangeError);
        s.save({ term: 3, vote: 0, commit: 21 }, [entry(21, 3)]);
        s = fx.reopen();
        st = s.load();
        expect(st.snapshot).toEqual({ index: 20, term: 3 });
        expect(st.hardState).toEqual({ term: 3, vote: 0, commit: 21 });
        expect(plain(st.entries)).toEqual(plain([entry(21, 3)]));
      });
    });
  });
}
