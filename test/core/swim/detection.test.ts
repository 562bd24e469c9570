// The detection bound: a crash becomes `down` at every live member within
// detectionBoundMs(config, M), whatever M (3..9) and whenever the crash happens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../../src/core/prng.ts';
import { DEFAULT_SWIM_CONFIG, detectionBoundMs } from '../../../src/core/swim/swim.ts';
import { SwimWorld } from '../../../src/sim/swim-world.ts';
import { replayHint, seeds, worldOptions } from './world-options.ts';

const FILE = 'detection.test.ts';

test('a crashed node is marked down by every live member within the configured bound', (t) => {
  const config = DEFAULT_SWIM_CONFIG;
  let worstFractionOfBound = 0;
  const runs = seeds(1, 500);
  for (const seed of runs) {
    const draws = new Prng(seed ^ 0x5a17);
    const memberCount = draws.between(3, 9);
    // From before the first probe round has finished to well into steady state.
    const crashAtMs = draws.between(0, 12_000);
    const world = new SwimWorld(worldOptions(seed, memberCount));
    world.run(crashAtMs);
    const victim = world.ids[draws.below(memberCount)]!;
    world.crash(victim);
    const boundMs = detectionBoundMs(config, memberCount);
    world.run(crashAtMs + boundMs, () => world.everyLiveMemberHolds(victim, 'down'));
    const context = `M=${memberCount} crash of ${victim} at ${crashAtMs} ms, ${replayHint(seed, FILE)}`;
    assert.ok(
      world.everyLiveMemberHolds(victim, 'down'),
      `not down everywhere ${boundMs} ms after the crash: ${context}`,
    );
    for (const observer of world.liveIds()) {
      const down = world.changes.find(
        (change) =>
          change.observer === observer && change.id === victim && change.liveness === 'down',
      );
      assert.ok(down !== undefined, `${observer} reported no down change: ${context}`);
      assert.ok(down.atMs <= crashAtMs + boundMs, `${observer} too late: ${context}`);
    }
    // Without loss, the crash is the only thing that may be marked down.
    const wrong = world.changes.find(
      (change) => change.liveness === 'down' && change.id !== victim,
    );
    assert.equal(wrong, undefined, `a live node was marked down: ${context}`);
    worstFractionOfBound = Math.max(worstFractionOfBound, (world.nowMs - crashAtMs) / boundMs);
  }
  t.diagnostic(`slowest detection: ${(worstFractionOfBound * 100).toFixed(0)}% of the bound`);
});
