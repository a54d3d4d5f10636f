/**
 * Persist before you speak, tested by breaking it: each test makes one durability mistake in the
 * classes kv-server runs, and the simulator, whose disk loses what was never synced, must catch
 * it at the moment the premature message or answer leaves the node.
 */
import { describe, expect, it } from 'vitest';
import type { Ready } from '../../src/raft/core/types.js';
import type { ReplicatedLog } from '../../src/raft/replicated-log.js';
import { RaftNode } from '../../src/raft/node.js';
import { KvStore, type KvError, type WriteRequest } from '../../src/server/kv-store.js';
import type { WriteResult } from '../../src/server/state-machine.js';
import { withMistake } from './mistakes.js';
import { runScenario, type RunResult } from './run.js';

type Outcome = { ok: true; value: WriteResult } | { ok: false; error: KvError };

/** The reasons the runs failed (first lines), one per run. */
async function failures(name: string, seeds: number[], mistake: (fn: () => Promise<RunResult[]>) => Promise<RunResult[]>): Promise<string[]> {
  const runs = await mistake(() => Promise.all(seeds.map((seed) => runScenario(name, seed))));
  return runs.map((r) => (r.ok ? 'passed' : r.error!.split('\n')[0]!));
}

/** RaftNode's rule for when a Ready must be flushed before its messages leave, replaced. */
const syncOnly = (when: (rd: Ready, durable: { term: number; vote: number }, self: number) => boolean) => (fn: () => Promise<RunResult[]>) =>
  withMistake(RaftNode.prototype as unknown as { needsSync(rd: Ready): boolean }, 'needsSync', () =>
    function (this: { durable: { term: number; vote: number }; id: number }, rd: Ready): boolean {
      const hs = rd.hardState;
      const need = when(rd, this.durable, this.id);
      if (hs) this.durable = { term: hs.term, vote: hs.vote };
      return need;
    },
  fn);

describe('a message that depends on unsynced state is caught as it leaves', () => {
  it('a vote request or grant sent before the new term and vote are durable', async () => {
    const errors = await failures('InitialElection', [1, 2, 3], syncOnly((rd) => rd.entries.length > 0));
    for (const e of errors) expect(e).toMatch(/sent (vote|voteResp|app|heartbeat|appResp|heartbeatResp).* before (that term|its own vote|the vote) was durable/);
  });

  it("a vote granted before it is durable (a candidate's own term and vote are synced)", async () => {
    const errors = await failures('InitialElection', [1, 2, 3], syncOnly((rd, _durable, self) => rd.entries.length > 0 || rd.hardState?.vote === self));
    for (const e of errors) expect(e).toMatch(/sent voteResp in term \d+ to n\d+(: a grant before the vote| before that term) was durable/);
  });

  it('an append acknowledged before its entries are durable', async () => {
    const errors = await failures(
      'BasicAgree',
      [1, 2, 3],
      syncOnly((rd, durable) => rd.hardState !== undefined && (rd.hardState.term !== durable.term || rd.hardState.vote !== durable.vote)),
    );
    for (const e of errors) expect(e).toMatch(/sent appResp in term \d+ .*acknowledged entries up to \d+ before they were durable/);
  });
});

describe('a client "ok" is caught unless the write is committed', () => {
  it('a write answered as soon as it is proposed', async () => {
    const errors = await failures('Basic', [1, 2], (fn) =>
      withMistake(KvStore.prototype, 'write', (write) =>
        function (this: KvStore, log: ReplicatedLog, req: WriteRequest, done: (o: Outcome) => void): void {
          write.call(this, log, req, () => {});
          if (log.leaderId() !== 0) done({ ok: true, value: { kind: 'ok' } });
        },
      fn),
    );
    for (const e of errors) expect(e).toMatch(/was told "ok" (before any node applied its write|while its entry \d+ is durable on only)/);
  });
});
