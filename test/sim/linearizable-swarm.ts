// What the strong and chain swarm tests share: the seeds a test runs (a default range, or an
// environment variable naming others), running a range of seeds of one configuration and
// adding up what its runs exercised, and the replay command every failure carries.
import assert from 'node:assert/strict';
import { runSwarmSeed, type SwarmOptions, type SwarmResult } from '../../src/sim/swarm.ts';

/**
 * Seeds first..last, or those the environment variable `variable` names: "42", "1..1000",
 * or a list of them, "3,17,40..45".
 */
export function seedsFrom(variable: string, first: number, last: number): number[] {
  const text = process.env[variable];
  if (text === undefined || text.trim() === '') return range(first, last);
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const [low, high, ...rest] = part.split('..').map((field) => Number(field.trim()));
    const valid = (value: number | undefined): value is number =>
      value !== undefined && Number.isSafeInteger(value) && value >= 0;
    if (!valid(low) || (high !== undefined && !valid(high)) || rest.length > 0) {
      throw new Error(`${variable}: expected A..B, A or a list of them, got "${part}"`);
    }
    seeds.push(...range(low, high ?? low));
  }
  return seeds;
}

export function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, index) => first + index);
}

/** How to replay one seed: the CLI command, and the test file under the seed variable. */
export function replayHint(
  configuration: string,
  seed: number,
  test: { readonly variable: string; readonly file: string },
  extra = '',
): string {
  return (
    `replay: npx ringkv sim --seed ${seed} --config ${configuration}${extra} ` +
    `(or ${test.variable}=${seed} npx node --test ${test.file})`
  );
}

/** What a range of runs exercised, added up. */
export interface SwarmTotals {
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

/** Runs `seeds` of a strong or chain configuration; a failure is one line naming its replay. */
export function runSwarmRange(
  configuration: string,
  seeds: readonly number[],
  test: { readonly variable: string; readonly file: string },
  options: Omit<SwarmOptions, 'configuration'> = {},
): { totals: SwarmTotals; failures: string[] } {
  const totals: SwarmTotals = {
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
  for (const seed of seeds) {
    const result = runSwarmSeed(seed, { ...options, configuration });
    addUp(totals, result);
    if (result.anomalies.length > 0) {
      failures.push(
        `${configuration} seed ${seed}, faults ${result.faults.map((fault) => fault.kind).join(',')}: ` +
          `${result.anomalies.slice(0, 3).join(' | ')}; ${replayHint(configuration, seed, test)}`,
      );
    }
  }
  return { totals, failures };
}

function addUp(totals: SwarmTotals, result: SwarmResult): void {
  totals.runs++;
  for (const operation of result.history) totals[operation.outcome]++;
  for (const fault of result.injected) {
    totals.faultEvents.set(fault.kind, (totals.faultEvents.get(fault.kind) ?? 0) + 1);
  }
  const kinds = result.registerKinds;
  if (kinds === undefined) return; // a run that stopped before its workload ended
  totals.casVersionApplied += kinds.casVersion.ok;
  totals.casValueOk += kinds.casValue.ok;
  totals.incrOk += kinds.incr.ok;
  totals.incrFailed += kinds.incr.failed;
}

/**
 * That a range of at least `seedsMin` runs exercised every path: answered operations,
 * failed and unknown ones, both compare-and-sets, increments applied and refused, and the
 * node faults. Smaller ranges (a replay) are not held to it.
 */
export function assertExercised(
  totals: SwarmTotals,
  seedsMin: number,
  answeredPerUnknownMin: number,
): void {
  if (totals.runs < seedsMin) return;
  assert.ok(
    totals.unknown > 0 && totals.ok > answeredPerUnknownMin * totals.unknown,
    `most operations answered: ${totals.ok} ok, ${totals.unknown} unknown`,
  );
  assert.ok(totals.failed > 0, 'some operations failed and changed nothing');
  assert.ok(totals.casVersionApplied > 0 && totals.casValueOk > 0, 'both compare-and-sets ran');
  assert.ok(totals.incrOk > 0 && totals.incrFailed > 0, 'increments ran and were refused');
  for (const kind of ['crash', 'power-loss', 'pause', 'partition', 'clog', 'clock-jump']) {
    assert.ok((totals.faultEvents.get(kind) ?? 0) > 0, `some seed injected ${kind}`);
  }
}

export function describeTotals(totals: SwarmTotals): string {
  return JSON.stringify({ ...totals, faultEvents: Object.fromEntries(totals.faultEvents) });
}
