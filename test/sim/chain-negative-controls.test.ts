// Negative controls for the chain simulation: each setting removes one safeguard, and the
// linearizability checker must find a violation within a bounded number of seeds. If one of
// these ever passes, the simulation or the checker has stopped seeing what it should.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import type { UnsafeChainSettings } from '../../src/core/chain/replica.ts';
import { ChainWorld, drawChainWorldOptions } from '../../src/sim/chain-world.ts';

const SEEDS_MAX = 100;

/** The first seed whose history is not linearizable, or null. */
function firstViolation(unsafe: UnsafeChainSettings): number | null {
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const world = new ChainWorld(drawChainWorldOptions(seed, { unsafe }));
    world.runScenario();
    const verdict = checkLinearizable(world.history, { budgetMs: 20_000 });
    if (verdict.result === 'not-linearizable') return seed;
  }
  return null;
}

test('a replica that serves requests of an older epoch is caught', (t) => {
  const seed = firstViolation({ acceptOlderEpochs: true });
  assert.ok(seed !== null, `no violation in ${SEEDS_MAX} seeds`);
  t.diagnostic(`first caught at seed ${seed}`);
});

test('reads served by a replica other than the tail are caught', (t) => {
  const seed = firstViolation({ readsAtAnyReplica: true });
  assert.ok(seed !== null, `no violation in ${SEEDS_MAX} seeds`);
  t.diagnostic(`first caught at seed ${seed}`);
});
