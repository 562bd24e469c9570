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
import { runSwarmSeed, type SwarmResult } from '../../src/sim/swarm.ts';

const FILE = 'test/sim/strong-swarm.test.ts';
const DEFAULT_FIRST_SEED = 1;
const DEFAULT_LAST_SEED = 150;
/** Below this many seeds a run is a replay, too small to expect every path exercised. */
const COVERAGE_SEEDS_MIN = 50;

function strongSeeds(): number[] {
  const text = process.env['STRONG_SEEDS'];
  if (text === undefined || text.trim() === '') return range(DEFAULT_FIRST_SEED, DEFAULT_LAST_SEED);
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const [low, high, ...rest] = part.split('..').map((field) => Number(field.trim()));
    const valid = (value: number | undefined): value is number =>
      value !== undefined && Number.isSafeInteger(value) && value >= 0;
    if (!valid(low) || (high !== undefined && !valid(high)) || rest.length > 0) {
      throw new Error(`STRONG_SEEDS: expected A..B, A or a list of them, got "${part}"`);
    }
    seeds.push(...range(low, high ?? low));
  }
  return seeds;
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, index) => first + index);
}

function replay(configuration: string, seed: number, extra = ''): string {
  return (
    `replay: npx ringkv sim --seed ${seed} --config ${configuration}${extra} ` +
    `(or STRONG_SEEDS=${seed} npx node --test ${FILE})`
  );
}

interface Totals {
  runs: number;
  ok: number;
  unknown: number;
  failed: number;
  casVersionApplied: number;
  casValueOk: number;
  incrOk: number;
  incrFailed: number;
  faultEvents: Map<string, number>;
}

function swarm(configuration: string): { totals: Totals; failures: string[] } {
  const totals: Totals = {
    runs: 0,
    ok: 0,
    unknown: 0,
    failed: 0,
    casVersionApplied: 0,
    casValueOk: 0,
    incrOk: 0,
    incrFailed: 0,
    faultEvents: new Map(),
  };
  const failures: string[] = [];
  for (const seed of strongSeeds()) {
    const result = runSwarmSeed(seed, { configuration });
    addUp(totals, result);
    if (result.anomalies.length > 0) {
      failures.push(
        `${configuration} seed ${seed}, faults ${result.faults.map((fault) => fault.kind).join(',')}: ` +
          `${result.anomalies.slice(0, 3).join(' | ')}; ${replay(configuration, seed)}`,
      );
    }
  }
  return { totals, failures };
}

function addUp(totals: Totals, result: SwarmResult): void {
  totals.runs++;
  for (const operation of result.history) totals[operation.outcome]++;
  const kinds = result.registerKinds;
  assert.ok(kinds !== undefined, 'a strong run counts its operations by kind');
  totals.casVersionApplied += kinds.casVersion.ok;
  totals.casValueOk += kinds.casValue.ok;
  totals.incrOk += kinds.incr.ok;
  totals.incrFailed += kinds.incr.failed;
  for (const fault of result.injected) {
    totals.faultEvents.set(fault.kind, (totals.faultEvents.get(fault.kind) ?? 0) + 1);
  }
}

function assertExercised(totals: Totals): void {
  if (totals.runs < COVERAGE_SEEDS_MIN) return;
  assert.ok(totals.unknown > 0 && totals.ok > 5 * totals.unknown, 'most operations answered');
  assert.ok(totals.failed > 0, 'some operations failed and changed nothing');
  assert.ok(totals.casVersionApplied > 0 && totals.casValueOk > 0, 'both compare-and-sets ran');
  assert.ok(totals.incrOk > 0 && totals.incrFailed > 0, 'increments ran and were refused');
  for (const kind of ['crash', 'power-loss', 'pause', 'partition', 'clog', 'clock-jump']) {
    assert.ok((totals.faultEvents.get(kind) ?? 0) > 0, `some seed injected ${kind}`);
  }
}

for (const configuration of ['strong-n3', 'strong-n5']) {
  test(`${configuration}: under every fault kind, every history is linearizable per key, versions agree with it, and every key is readable through every node once faults heal`, (t) => {
    const { totals, failures } = swarm(configuration);
    t.diagnostic(
      JSON.stringify({ ...totals, faultEvents: Object.fromEntries(totals.faultEvents) }),
    );
    assert.deepEqual(failures, []);
    assertExercised(totals);
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
        replay('strong-n3', seed, ' --strong-quorum-of-one'),
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
