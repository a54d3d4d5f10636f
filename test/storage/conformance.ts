import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

    it('keeps the data across a reopen', () => {
      s.save({ term: 1, vote: 1, commit: 0 }, entries(1, 5, 1));
      s.save({ term: 2, vote: 2, commit: 3 }, entries(4, 6, 2, 'b'));
      s = fx.reopen();
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

    it('round-trips binary data: every byte value, empty data, a large blob, both entry types', () => {
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
  });
}
