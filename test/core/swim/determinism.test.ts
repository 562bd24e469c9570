// One seed, one run: the same seed gives the same sequence of liveness changes, through loss,
// a crash and a restart; another seed does not.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SwimWorld } from '../../../src/sim/swim-world.ts';
import { worldOptions } from './world-options.ts';

function changesOf(seed: number): string {
  const world = new SwimWorld(worldOptions(seed, 7, { lossProbability: 0.15 }));
  world.run(30_000);
  world.crash('n3');
  world.run(60_000);
  world.restart('n3');
  world.run(90_000);
  return world.changes
    .map(
      (change) =>
        `${change.atMs} ${change.observer} ${change.id} ${change.liveness} ${change.incarnation}`,
    )
    .join('\n');
}

test('the same seed gives the same sequence of changes', () => {
  const first = changesOf(42);
  assert.ok(first.split('\n').length > 20, 'enough changes to mean something');
  assert.equal(changesOf(42), first);
});

test('different seeds give different sequences of changes', () => {
  assert.notEqual(changesOf(1), changesOf(2));
});
