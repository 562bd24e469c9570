// Swarm runs over the configurations that swarm.test.ts leaves to this file, so that the
// two run side by side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSwarmSeed } from '../../src/sim/swarm.ts';
import { FIRST_FILE_CONFIGURATIONS, SWARM_RANGES, testSwarmRange } from './swarm-ranges.ts';

for (const range of SWARM_RANGES) {
  if (!FIRST_FILE_CONFIGURATIONS.has(range.configuration)) testSwarmRange(range);
}

// Seeds that found a bug, kept as regression tests.

test("n-all seed 734: a late answer to a request of a node's earlier life does not complete an op of its new life", () => {
  // n3, paused, answered a forward of n2's previous life after n2 had restarted; op ids
  // restarted with the life, so the answer completed an unrelated write of the new one.
  assert.deepEqual(runSwarmSeed(734, { configuration: 'n-all' }).anomalies, []);
});
