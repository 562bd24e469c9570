// What the CASPaxos simulation tests share: the seeds a test runs (PAXOS_SEEDS replays or
// widens them: "42", "1..1000", "3,17,40"), the swarm configuration each seed draws, the
// check of one run, and the replay hint every failure carries.
import { checkLinearizable } from '../../src/check/linearizability.ts';
import type { LinearizabilityResult } from '../../src/check/linearizability.ts';
import { Prng } from '../../src/core/prng.ts';
import { drawFaults, runPaxosWorld } from '../../src/sim/paxos-world.ts';
import type {
  PaxosRunResult,
  PaxosWorkload,
  PaxosWorldOptions,
} from '../../src/sim/paxos-world.ts';

/** PAXOS_SEEDS when set, else first..last. */
export function paxosSeeds(first: number, last: number): number[] {
  const text = process.env['PAXOS_SEEDS'];
  if (text === undefined || text.trim() === '') return range(first, last);
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const [low, high] = part.split('..').map((field) => Number(field.trim()));
    if (low === undefined || !Number.isSafeInteger(low))
      throw new Error(`PAXOS_SEEDS: bad "${part}"`);
    if (high !== undefined && !Number.isSafeInteger(high))
      throw new Error(`PAXOS_SEEDS: bad "${part}"`);
    seeds.push(...range(low, high ?? low));
  }
  return seeds;
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, index) => first + index);
}

/**
 * The configuration a seed draws: 3 acceptors for odd seeds and 5 for even ones, 2 to 4
 * proposers, 3 to 6 clients on 1 to 3 keys, and the faults of drawFaults.
 */
export function swarmOptions(seed: number, workload: PaxosWorkload): PaxosWorldOptions {
  const draws = new Prng(seed ^ 0x5eed);
  return {
    seed,
    acceptorCount: seed % 2 === 1 ? 3 : 5,
    proposerCount: draws.between(2, 4),
    clientCount: draws.between(3, 6),
    keyCount: draws.between(1, 3),
    operationCount: 150,
    workload,
    faults: drawFaults(draws),
  };
}

export interface CheckedRun {
  readonly run: PaxosRunResult;
  readonly check: LinearizabilityResult;
}

export function runAndCheck(options: PaxosWorldOptions): CheckedRun {
  const run = runPaxosWorld(options);
  const check = checkLinearizable(run.history, { budgetMs: 20_000 });
  return { run, check };
}

export function replayHint(seed: number, testFile: string): string {
  return `seed ${seed} (replay: PAXOS_SEEDS=${seed} npx node --test test/sim/${testFile})`;
}

export function describeFailure(seed: number, testFile: string, checked: CheckedRun): string {
  const { check, run } = checked;
  const problems = [
    check.result !== 'linearizable' ? `${check.result}: ${check.explanation ?? ''}` : null,
    run.livenessFailures.length > 0 ? `liveness: ${run.livenessFailures.join('; ')}` : null,
  ].filter((problem) => problem !== null);
  return `${replayHint(seed, testFile)}: ${problems.join(' | ')}`;
}
