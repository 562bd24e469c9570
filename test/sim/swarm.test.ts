// Swarm runs: each seed draws its own faults (crashes, a power loss, an isolated node,
// loss, long tails) and must end with no acknowledged write lost and every key's replicas
// agreeing. A failure names the seed; `npm run sim:soak -- --seeds A..B` runs more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSwarmSeed } from '../../src/sim/swarm.ts';

const FIRST_SEED = 1;
const SEEDS = 40;

test(`${SEEDS} swarm seeds: no acknowledged write lost, replicas converge`, () => {
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    const result = runSwarmSeed(seed);
    assert.deepEqual(
      result.anomalies,
      [],
      `seed ${seed} (${JSON.stringify(result.faults)}); replay: npm run sim:soak -- --seeds ${seed}..${seed}`,
    );
  }
});

test('negative control: swarm seeds with a disk that acknowledges before it writes lose writes', () => {
  const anomalies = [];
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS && anomalies.length === 0; seed++) {
    const result = runSwarmSeed(seed, { skipFsync: true });
    if (result.faults.powerLoss) anomalies.push(...result.anomalies);
  }
  assert.ok(anomalies.length > 0, 'a power loss with a lying disk must lose acknowledged writes');
});
