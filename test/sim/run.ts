import { Harness } from './harness.js';
import { findScenario } from './scenarios.js';
import { SimCluster, SimFailure, type SimOptions } from './cluster.js';

export interface RunResult {
  scenario: string;
  seed: number;
  ok: boolean;
  error?: string;
  trace?: string[];
  virtualMs: number;
  wallMs: number;
  worstElectionMs: number;
  maxTerm: number;
  /** Snapshots taken by the nodes' state machines, and received from a leader and installed. */
  snapshotsTaken: number;
  snapshotsInstalled: number;
}

/** Runs one scenario under one seed; the same (scenario, seed, overrides) always replays the same run. */
export async function runScenario(name: string, seed: number, overrides: Partial<SimOptions> = {}): Promise<RunResult> {
  const scenario = findScenario(name);
  const started = performance.now();
  let sim: SimCluster | undefined;
  const result = (ok: boolean, error?: string): RunResult => ({
    scenario: name,
    seed,
    ok,
    error,
    trace: ok ? undefined : sim?.recentTrace(),
    virtualMs: sim?.now ?? 0,
    wallMs: performance.now() - started,
    worstElectionMs: sim?.worstElectionMs ?? 0,
    maxTerm: sim?.maxTerm ?? 0,
    snapshotsTaken: sim?.snapshotsTaken ?? 0,
    snapshotsInstalled: sim?.snapshotsInstalled ?? 0,
  });
  try {
    sim = await SimCluster.create({ nodes: scenario.nodes, seed, ...scenario.options, ...overrides });
    await scenario.run(new Harness(sim, seed));
    if (scenario.maxTerm !== undefined && sim.maxTerm > scenario.maxTerm) {
      throw new SimFailure(`terms climbed to ${sim.maxTerm}, above this scenario's bound of ${scenario.maxTerm}`);
    }
    if (scenario.maxElectionMs !== undefined && sim.worstElectionMs > scenario.maxElectionMs) {
      throw new SimFailure(`the cluster was without a usable leader for ${sim.worstElectionMs} ms, above this scenario's bound of ${scenario.maxElectionMs} ms`);
    }
    return result(true);
  } catch (e) {
    return result(false, e instanceof Error ? (e.stack ?? e.message) : String(e));
  }
}

export function replayCommand(r: Pick<RunResult, 'scenario' | 'seed'>): string {
  return `npm run soak -- --scenario ${r.scenario} --seed ${r.seed}`;
}

export function formatFailure(r: RunResult): string {
  return [
    `FAIL ${r.scenario} seed=${r.seed} at ${r.virtualMs} ms virtual`,
    `  ${r.error}`,
    `  last events:`,
    ...(r.trace ?? []).slice(-60).map((l) => `    ${l}`),
    `  replay: ${replayCommand(r)}`,
  ].join('\n');
}
