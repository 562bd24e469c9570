// Swarm runs: each seed draws its own faults from the registry (crashes, a power loss, an
// isolated node, loss, long tails, pauses, duplication, reordering, partitions, clogging,
// clock skew and jumps) and must end with no acknowledged write lost and
// every key's replicas agreeing, in every configuration CI runs. Seed ranges are fixed; a
// failure names the seed, its faults and anomalies, and the command that replays it.
// `npm run sim:soak -- --seeds A..B` runs more.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FAULT_KIND_NAMES,
  runSwarmSeed,
  SWARM_CONFIGURATIONS,
  swarmFaults,
} from '../../src/sim/swarm.ts';
import { FIRST_FILE_CONFIGURATIONS, replay, SWARM_RANGES, testSwarmRange } from './swarm-ranges.ts';

for (const range of SWARM_RANGES) {
  if (FIRST_FILE_CONFIGURATIONS.has(range.configuration)) testSwarmRange(range);
}

test('every configuration CI leaves out says why, and every one CI runs has a fixed range', () => {
  for (const configuration of SWARM_CONFIGURATIONS) {
    const ranged = SWARM_RANGES.some((range) => range.configuration === configuration.name);
    assert.equal(ranged, configuration.excludedBecause === undefined, configuration.name);
  }
});

test('negative control: swarm seeds with a disk that acknowledges before it writes lose writes', () => {
  const anomalies: string[] = [];
  let seed = 1;
  for (; seed <= 80 && anomalies.length === 0; seed++) {
    const result = runSwarmSeed(seed, { skipFsync: true });
    if (result.faults.some((fault) => fault.kind === 'power-loss')) {
      anomalies.push(...result.anomalies);
    }
  }
  assert.ok(
    anomalies.length > 0,
    `a power loss with a lying disk must lose acknowledged writes (seeds 1..${seed - 1}); ` +
      `replay: ${replay('n3-quorum', seed - 1, ' --skip-fsync')}`,
  );
});

test('a seed replays exactly: the same history, faults and anomalies', () => {
  const options = { configuration: 'n5-quorum', operations: 120 };
  const first = runSwarmSeed(7, options);
  const second = runSwarmSeed(7, options);
  assert.ok(first.injected.length > 0, 'seed 7 injects faults');
  assert.deepEqual(second, first);
});

test('each fault kind draws from its own generator: allowing fewer kinds leaves the others as drawn', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const all = swarmFaults(seed, 5);
    for (const kind of FAULT_KIND_NAMES) {
      const alone = swarmFaults(seed, 5, [kind]);
      assert.deepEqual(
        alone,
        all.filter((fault) => fault.kind === kind),
        `seed ${seed}, kind ${kind}`,
      );
    }
  }
});

test('every fault kind is drawn on for some seeds and off for others', () => {
  for (const kind of FAULT_KIND_NAMES) {
    let on = 0;
    for (let seed = 1; seed <= 100; seed++) {
      if (swarmFaults(seed, 5).some((fault) => fault.kind === kind)) on++;
    }
    assert.ok(on > 0 && on < 100, `${kind} is on for ${on} of 100 seeds`);
  }
});

test('a run with no fault kinds allowed injects none, and one with only pauses injects only pauses', () => {
  const calm = runSwarmSeed(3, { faults: [], operations: 60 });
  assert.deepEqual([calm.faults, calm.injected, calm.anomalies], [[], [], []]);
  // Seed 3 draws a pause (checked here, so a change of draws fails loudly rather than vacuously).
  const paused = runSwarmSeed(3, { faults: ['pause'], operations: 60, nodes: 4 });
  assert.equal(paused.nodeCount, 4);
  assert.ok(paused.injected.length > 0, 'seed 3 draws a pause');
  assert.ok(paused.injected.every((fault) => fault.kind === 'pause'));
});
