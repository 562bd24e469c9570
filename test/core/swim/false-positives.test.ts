// Accuracy under message loss: with 5% of messages lost, live nodes may be suspected but are
// never marked down, because refutation wins the race against the suspicion timeout. A
// negative control shows the same check does catch false downs when the timeout is too short.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SWIM_CONFIG } from '../../../src/core/swim/swim.ts';
import type { SwimConfig } from '../../../src/core/swim/swim.ts';
import { SwimWorld } from '../../../src/sim/swim-world.ts';
import { replayHint, seeds, worldOptions } from './world-options.ts';

const FILE = 'false-positives.test.ts';
const TEN_MINUTES_MS = 10 * 60_000;

interface LossRun {
  readonly downs: number;
  readonly suspicions: number;
  /** Suspicions that did not end in alive at that observer although there was time. */
  readonly unrefuted: number;
  readonly lostFraction: number;
}

function runWithLoss(
  seed: number,
  config: SwimConfig,
  lossProbability: number,
  durationMs: number,
): LossRun {
  const memberCount = 5 + (seed % 5);
  const world = new SwimWorld(worldOptions(seed, memberCount, { lossProbability }, config));
  world.run(durationMs);
  const suspicions = world.changes.filter((change) => change.liveness === 'suspect');
  const unrefuted = suspicions.filter(
    (suspicion) =>
      suspicion.atMs + config.suspicionTimeoutMs < durationMs &&
      !world.changes.some(
        (later) =>
          later.atMs >= suspicion.atMs &&
          later.observer === suspicion.observer &&
          later.id === suspicion.id &&
          later.liveness === 'alive',
      ),
  );
  return {
    downs: world.changes.filter((change) => change.liveness === 'down').length,
    suspicions: suspicions.length,
    unrefuted: unrefuted.length,
    lostFraction: world.messagesLost / world.messagesSent,
  };
}

test('with 5% message loss no live node is ever marked down', (t) => {
  let suspicions = 0;
  for (const seed of seeds(1, 20)) {
    const run = runWithLoss(seed, DEFAULT_SWIM_CONFIG, 0.05, TEN_MINUTES_MS);
    assert.equal(run.downs, 0, `a live node was marked down: ${replayHint(seed, FILE)}`);
    assert.ok(
      run.lostFraction > 0.04 && run.lostFraction < 0.06,
      `the network lost ${run.lostFraction} of messages, not about 5%: ${replayHint(seed, FILE)}`,
    );
    assert.equal(run.unrefuted, 0, `a suspicion was never refuted: ${replayHint(seed, FILE)}`);
    suspicions += run.suspicions;
  }
  t.diagnostic(`suspect changes seen (each refuted): ${suspicions}`);
});

test('negative control: the same check sees false downs when the suspicion timeout is too short for refutation', () => {
  const hasty: SwimConfig = { ...DEFAULT_SWIM_CONFIG, suspicionTimeoutMs: 20 };
  let downs = 0;
  for (const seed of [1, 2, 3]) downs += runWithLoss(seed, hasty, 0.2, 60_000).downs;
  assert.ok(downs > 0, 'live nodes marked down under 20% loss and a 20 ms suspicion timeout');
});
