// Refutation: a live node that is wrongly suspected hears of it, raises its incarnation and
// is alive again everywhere; a crashed node that restarts learns it was declared down and
// comes back alive at every member within recoveryBoundMs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../../src/core/prng.ts';
import { DEFAULT_SWIM_CONFIG, recoveryBoundMs } from '../../../src/core/swim/swim.ts';
import { SwimWorld } from '../../../src/sim/swim-world.ts';
import { replayHint, seeds, worldOptions } from './world-options.ts';

const FILE = 'refutation.test.ts';
const config = DEFAULT_SWIM_CONFIG;

test('a node whose incoming messages arrive after the probe period is suspected, refutes, and is alive again everywhere', () => {
  for (const seed of seeds(1, 40)) {
    const draws = new Prng(seed ^ 0x7e5);
    const memberCount = draws.between(3, 9);
    const world = new SwimWorld(worldOptions(seed, memberCount));
    const slow = world.ids[draws.below(memberCount)]!;
    const context = `M=${memberCount} slow ${slow}, ${replayHint(seed, FILE)}`;
    world.run(draws.between(2000, 6000));
    // Longer than a whole period: every probe of the slow node fails while this lasts, and
    // it lasts two rounds, so every member probes the slow node at least once.
    world.setExtraDelayTo(slow, 1500);
    const healAtMs = world.nowMs + 2 * (memberCount - 1) * config.probeIntervalMs;
    world.run(healAtMs);
    world.setExtraDelayTo(slow, 0);
    // Messages sent before the heal are still in flight for up to 1.5 s; after that, any
    // suspicion left is refuted by one round trip or gossip well within a suspicion timeout.
    const settledByMs = healAtMs + 1500 + config.suspicionTimeoutMs;
    world.run(settledByMs, () => world.everyLiveMemberHolds(slow, 'alive'));
    const suspected = world.changes.filter(
      (change) => change.id === slow && change.liveness === 'suspect',
    );
    assert.ok(suspected.length > 0, `the slow node was never suspected: ${context}`);
    assert.ok(world.everyLiveMemberHolds(slow, 'alive'), `not alive everywhere: ${context}`);
    assert.ok(world.swim(slow).incarnation(slow) > 0, `the slow node never refuted: ${context}`);
    const down = world.changes.find((change) => change.liveness === 'down');
    assert.equal(down, undefined, `a live node was marked down: ${context}`);
  }
});

test('a suspicion of a live node is refuted at every member within the suspicion timeout under 5% loss', (t) => {
  let slowestMs = 0;
  for (const seed of seeds(1, 300)) {
    const draws = new Prng(seed ^ 0x5b5);
    const memberCount = draws.between(3, 9);
    const world = new SwimWorld(worldOptions(seed, memberCount, { lossProbability: 0.05 }));
    world.run(draws.between(2000, 8000));
    const [accused, accuser, gossip] = world.ids as [string, string, string];
    const held = world.swim(accuser).incarnation(accused);
    // Forged gossip: the accuser hears from a third member that the accused is suspect.
    world.inject(gossip, accuser, {
      type: 'ack',
      sequence: 0,
      incarnation: world.swim(gossip).incarnation(gossip),
      updates: [{ id: accused, liveness: 'suspect', incarnation: held }],
    });
    const startMs = world.nowMs;
    world.run(startMs, () => world.swim(accuser).liveness(accused) === 'suspect');
    const context = `M=${memberCount}, ${replayHint(seed, FILE)}`;
    assert.equal(world.swim(accuser).liveness(accused), 'suspect', `not suspected: ${context}`);
    world.run(
      startMs + config.suspicionTimeoutMs,
      () =>
        world.everyLiveMemberHolds(accused, 'alive') &&
        world.swim(accused).incarnation(accused) > held,
    );
    assert.ok(world.everyLiveMemberHolds(accused, 'alive'), `not refuted in time: ${context}`);
    assert.ok(!world.changes.some((change) => change.liveness === 'down'), `down: ${context}`);
    slowestMs = Math.max(slowestMs, world.nowMs - startMs);
  }
  t.diagnostic(`slowest refutation: ${slowestMs} ms of ${config.suspicionTimeoutMs} ms`);
});

test('a crashed node that restarts is alive at every live member within the recovery bound', () => {
  for (const seed of seeds(1, 200)) {
    const draws = new Prng(seed ^ 0x4e57);
    const memberCount = draws.between(3, 9);
    const world = new SwimWorld(worldOptions(seed, memberCount));
    const victim = world.ids[draws.below(memberCount)]!;
    const context = `M=${memberCount} victim ${victim}, ${replayHint(seed, FILE)}`;
    world.run(draws.between(0, 8000));
    world.crash(victim);
    world.run(world.nowMs + 60_000, () => world.everyLiveMemberHolds(victim, 'down'));
    assert.ok(world.everyLiveMemberHolds(victim, 'down'), `never down: ${context}`);
    const declaredIncarnation = world.swim(world.liveIds()[0]!).incarnation(victim);
    // Stay down a while: down members are probed now and then, and must not come back.
    world.run(world.nowMs + draws.between(0, 10_000));
    assert.ok(world.everyLiveMemberHolds(victim, 'down'), `back while crashed: ${context}`);
    world.restart(victim);
    const restartAtMs = world.nowMs;
    const boundMs = recoveryBoundMs(config, memberCount);
    world.run(restartAtMs + boundMs, () => world.everyLiveMemberHolds(victim, 'alive'));
    assert.ok(
      world.everyLiveMemberHolds(victim, 'alive'),
      `not back within ${boundMs} ms: ${context}`,
    );
    assert.ok(
      world.swim(victim).incarnation(victim) > declaredIncarnation,
      `the restarted node did not outrank its down: ${context}`,
    );
    for (const id of world.ids) {
      assert.equal(world.swim(victim).liveness(id), 'alive', `restarted node's view: ${context}`);
    }
  }
});
