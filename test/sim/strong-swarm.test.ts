// The strong swarm: every seed of each strong configuration draws its faults from the swarm's
// registry (crashes, power loss, isolation, loss, long tails, pauses, duplication,
// reordering, partitions, clogging, clock skew and jumps), runs clients on shared keys
// through random nodes, and must end with every key readable through every node, a history
// linearizable per key and versions that agree with it. The negative control (strong
// operations that need one acceptor instead of a majority) must be caught, and only as a
// linearizability violation.
//
// Seeds 1..150 of each configuration by default (about 18 s of one core, the control included);
// STRONG_SEEDS=1..1000 (or "42", or "3,17,40") runs others. A failure names the seed and
// the command that replays it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSwarmSeed } from '../../src/sim/swarm.ts';
import {
  assertExercised,
  describeTotals,
  range,
  replayHint,
  runSwarmRange,
  seedsFrom,
} from './linearizable-swarm.ts';

const TEST = { variable: 'STRONG_SEEDS', file: 'test/sim/strong-swarm.test.ts' };
const DEFAULT_FIRST_SEED = 1;
const DEFAULT_LAST_SEED = 150;
/** Below this many seeds a run is a replay, too small to expect every path exercised. */
const COVERAGE_SEEDS_MIN = 50;

for (const configuration of ['strong-n3', 'strong-n5']) {
  test(`${configuration}: under every fault kind, every history is linearizable per key, versions agree with it, and every key is readable through every node once faults heal`, (t) => {
    const seeds = seedsFrom(TEST.variable, DEFAULT_FIRST_SEED, DEFAULT_LAST_SEED);
    const { totals, failures } = runSwarmRange(configuration, seeds, TEST);
    t.diagnostic(describeTotals(totals));
    assert.deepEqual(failures, []);
    assertExercised(totals, COVERAGE_SEEDS_MIN, 5);
  });
}

test('negative control: with quorums of one acceptor, the strong swarm fails linearizability, caught by the checker on most seeds', (t) => {
  const seeds = range(1, 20);
  const byChecker: number[] = [];
  const byVersionsOnly: number[] = [];
  for (const seed of seeds) {
    const result = runSwarmSeed(seed, { configuration: 'strong-n3', strongQuorumOfOne: true });
    if (result.anomalies.length === 0) continue;
    // Every failure is one of safety: values that no sequential order explains, or a
    // version naming two values or going back (which no sequential register shows either).
    // The cluster still settles and answers, so no liveness anomaly hides the verdict.
    assert.ok(
      result.anomalies.every(
        (anomaly) => anomaly.startsWith('not linearizable: ') || anomaly.startsWith('versions: '),
      ),
      `seed ${seed} fails only as a linearizability violation: ${result.anomalies.join(' | ')}; ` +
        replayHint('strong-n3', seed, TEST, ' --strong-quorum-of-one'),
    );
    if (result.anomalies.some((anomaly) => anomaly.startsWith('not linearizable: '))) {
      byChecker.push(seed);
    } else {
      byVersionsOnly.push(seed);
    }
  }
  t.diagnostic(
    `of seeds ${seeds[0]}..${seeds.at(-1)}: checkLinearizable caught ${byChecker.length} ` +
      `(${byChecker.join(', ')}), the version check alone ${byVersionsOnly.length} ` +
      `(${byVersionsOnly.join(', ')})`,
  );
  assert.ok(
    byChecker.length > 0,
    `checkLinearizable must catch quorums of one on some seed of ${seeds.join(',')}`,
  );
});

test('a strong seed replays exactly: the same history, faults and verdict', () => {
  const options = { configuration: 'strong-n5', operations: 150 };
  const first = runSwarmSeed(11, options);
  const second = runSwarmSeed(11, options);
  assert.ok(first.injected.length > 0, 'seed 11 injects faults');
  assert.deepEqual(second, first);
});

test('without faults every strong operation answers: none of unknown outcome, and only refused increments fail', () => {
  const result = runSwarmSeed(3, { configuration: 'strong-n3', faults: [], operations: 150 });
  assert.deepEqual([result.faults, result.anomalies], [[], []]);
  const kinds = result.registerKinds!;
  for (const [kind, counts] of Object.entries(kinds)) {
    assert.equal(counts.unknown, 0, `${kind}: no unknown outcome`);
    if (kind !== 'incr') assert.equal(counts.failed, 0, `${kind}: none failed`);
  }
  assert.ok(kinds.incr.failed > 0, 'increments of values that are not integers are refused');
});
