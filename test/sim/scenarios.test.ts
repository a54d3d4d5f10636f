import { describe, expect, it } from 'vitest';
import { formatFailure, runScenario } from './run.js';
import { SCENARIOS } from './scenarios.js';

/** Every scenario under a few fixed seeds; `make soak` runs them under many more. */
const SEEDS = [1, 2, 3];

describe.each(['2A', '2B', '2C', '2D', 'ours'] as const)('scenarios %s', (suite) => {
  for (const s of SCENARIOS.filter((x) => x.suite === suite)) {
    it.each(SEEDS)(`${s.name} seed %i`, async (seed) => {
      const r = await runScenario(s.name, seed);
      if (!r.ok) expect.fail(formatFailure(r));
    });
  }
});

describe('the simulator', () => {
  it('replays a seed exactly', async () => {
    const a = await runScenario('Chaos', 42);
    const b = await runScenario('Chaos', 42);
    expect({ ...a, wallMs: 0 }).toEqual({ ...b, wallMs: 0 });
    const c = await runScenario('Chaos', 43);
    expect([c.virtualMs, c.maxTerm, c.worstElectionMs]).not.toEqual([a.virtualMs, a.maxTerm, a.worstElectionMs]);
  });
});

describe('the scenarios can fail', () => {
  // Each feature under test, switched off, must make its own scenario fail on most seeds.
  const failures = async (name: string, overrides: { preVote?: boolean; checkQuorum?: boolean }): Promise<number> => {
    const runs = await Promise.all([1, 2, 3, 4, 5].map((seed) => runScenario(name, seed, overrides)));
    return runs.filter((r) => !r.ok).length;
  };

  it('PreVoteRejoin fails without pre-vote (the rejoining node raises the term)', async () => {
    expect(await failures('PreVoteRejoin', { preVote: false })).toBeGreaterThanOrEqual(4);
  });

  it('CheckQuorumStepDown fails without check-quorum (the cut-off leader keeps leading)', async () => {
    expect(await failures('CheckQuorumStepDown', { checkQuorum: false })).toBe(5);
  });

  it('PreVoteAsymmetric fails without check-quorum (no lease stops the deaf follower)', async () => {
    expect(await failures('PreVoteAsymmetric', { checkQuorum: false })).toBeGreaterThanOrEqual(4);
  });
});
