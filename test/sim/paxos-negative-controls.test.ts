// Negative controls: deliberately broken settings that the linearizability checker must
// catch in the same simulated worlds the correct protocol passes, so that neither the
// checker nor the world can decay into "everything passes".
// - a quorum of one (prepare and accept quorums that need not intersect);
// - acceptors that answer before their state is durable, with crashes;
// - a proposer that skips the prepare phase without the one-round-trip guarantee;
// - a purge that removes a key but does not raise the acceptor's floors.
// Each control runs a fixed range of seeds; a seed counts when the checker answers
// not-linearizable. The correct setting runs the same seeds and must pass them all.
// PAXOS_SEEDS=<seed> replays one seed of every control (then only the correct settings are
// judged: one seed says nothing about how often a control is caught).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { CALM_FAULTS, drawFaults } from '../../src/sim/paxos-world.ts';
import type { PaxosWorldOptions } from '../../src/sim/paxos-world.ts';
import { describeFailure, paxosSeeds, runAndCheck, swarmOptions } from './paxos-helpers.ts';

const REPLAYING = (process.env['PAXOS_SEEDS'] ?? '') !== '';

const FILE = 'paxos-negative-controls.test.ts';

/** Seeds first..last under `broken` and under `correct`: how many each caught. */
function control(
  first: number,
  last: number,
  broken: (seed: number) => PaxosWorldOptions,
  correct: (seed: number) => PaxosWorldOptions,
): { caught: number; seeds: number; correctFailures: string[] } {
  let caught = 0;
  const correctFailures: string[] = [];
  const seeds = paxosSeeds(first, last);
  for (const seed of seeds) {
    if (runAndCheck(broken(seed)).check.result === 'not-linearizable') caught += 1;
    const checked = runAndCheck(correct(seed));
    if (checked.check.result !== 'linearizable') {
      correctFailures.push(describeFailure(seed, FILE, checked));
    }
  }
  return { caught, seeds: seeds.length, correctFailures };
}

test('a quorum of one is caught', (t) => {
  const result = control(
    1,
    30,
    (seed) => ({
      ...swarmOptions(seed, 'mixed'),
      proposer: { prepareQuorum: 1, acceptQuorum: 1, unsafe: { allowDisjointQuorums: true } },
    }),
    (seed) => swarmOptions(seed, 'mixed'),
  );
  t.diagnostic(`caught in ${result.caught} of ${result.seeds} seeds`);
  assert.deepEqual(result.correctFailures, []);
  if (!REPLAYING) assert.ok(result.caught >= 10, `caught in only ${result.caught} seeds`);
});

test('acceptors that answer before their state is durable are caught once they crash', (t) => {
  // Crashes only, and slow disks: a crash takes back promises and accepts already answered.
  const crashy = (seed: number): PaxosWorldOptions => ({
    seed,
    acceptorCount: 3,
    proposerCount: 3,
    clientCount: 5,
    keyCount: 1,
    operationCount: 200,
    workload: 'mixed',
    faults: {
      ...CALM_FAULTS,
      delayMsMax: 8,
      persistMsMin: 5,
      persistMsMax: 60,
      acceptorCrashes: 30,
    },
  });
  const result = control(1, 40, (seed) => ({ ...crashy(seed), answerBeforeDurable: true }), crashy);
  t.diagnostic(`caught in ${result.caught} of ${result.seeds} seeds`);
  assert.deepEqual(result.correctFailures, []);
  if (!REPLAYING) assert.ok(result.caught >= 5, `caught in only ${result.caught} seeds`);
});

test('a proposer that skips the prepare phase without the promise is caught', (t) => {
  const result = control(
    1,
    30,
    (seed) => ({ ...swarmOptions(seed, 'mixed'), proposer: { unsafe: { skipPrepare: true } } }),
    (seed) => swarmOptions(seed, 'mixed'),
  );
  t.diagnostic(`caught in ${result.caught} of ${result.seeds} seeds`);
  assert.deepEqual(result.correctFailures, []);
  if (!REPLAYING) assert.ok(result.caught >= 10, `caught in only ${result.caught} seeds`);
});

test('a purge that leaves the floors where they were is caught', (t) => {
  // Many purges racing the workload on two keys, with the swarm's network faults.
  const purgeHeavy = (seed: number): PaxosWorldOptions => ({
    seed,
    acceptorCount: 3,
    proposerCount: 3,
    clientCount: 5,
    keyCount: 2,
    operationCount: 200,
    workload: 'mixed',
    faults: { ...drawFaults(new Prng(seed)), purges: 40, acceptorCrashes: 0, proposerCrashes: 0 },
  });
  const result = control(
    1,
    60,
    (seed) => ({ ...purgeHeavy(seed), purgeKeepsFloors: true }),
    purgeHeavy,
  );
  t.diagnostic(`caught in ${result.caught} of ${result.seeds} seeds`);
  assert.deepEqual(result.correctFailures, []);
  if (!REPLAYING) assert.ok(result.caught >= 3, `caught in only ${result.caught} seeds`);
});
