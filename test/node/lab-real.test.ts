/**
 * The lab's scenarios, unchanged, against real nodes: gRPC on 127.0.0.1 and SQLite files,
 * with faults made by closing connections and stopping and restarting nodes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Harness } from '../sim/harness.js';
import { findScenario } from '../sim/scenarios.js';
import { RealCluster } from './real-cluster.js';

const REAL_NODE_SCENARIOS = ['BasicAgree', 'ReElection', 'FailAgree', 'FailNoAgree', 'Rejoin', 'Persist1', 'Persist3', 'Backup'];

describe('lab scenarios on real nodes', () => {
  let cluster: RealCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  for (const name of REAL_NODE_SCENARIOS) {
    it(name, { timeout: 120_000 }, async () => {
      const scenario = findScenario(name);
      cluster = await RealCluster.start(scenario.nodes);
      await scenario.run(new Harness(cluster, 1));
      expect(cluster.n).toBe(scenario.nodes);
    });
  }
});
