// The swarm's fixed seed ranges, shared by the two files that run them (split so that the
// test runner can run them side by side): a failure names the seed, its faults and the
// command that replays it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSwarmSeed } from '../../src/sim/swarm.ts';

export interface SwarmRange {
  readonly configuration: string;
  readonly first: number;
  readonly last: number;
}

/** Fixed seed ranges per configuration (first and last, inclusive): 600 runs in all. */
export const SWARM_RANGES: readonly SwarmRange[] = [
  { configuration: 'n3-quorum', first: 1, last: 200 },
  { configuration: 'n5-quorum', first: 1, last: 100 },
  { configuration: 'n-all', first: 1, last: 100 },
  { configuration: 'read-heavy', first: 1, last: 100 },
  { configuration: 'n3-siblings', first: 1, last: 100 },
];

/** The configurations swarm.test.ts runs; swarm-configurations.test.ts runs every other. */
export const FIRST_FILE_CONFIGURATIONS: ReadonlySet<string> = new Set(['n3-quorum', 'n5-quorum']);

export function replay(configuration: string, seed: number, extra = ''): string {
  return `npx ringkv sim --seed ${seed} --config ${configuration}${extra}`;
}

export function testSwarmRange({ configuration, first, last }: SwarmRange): void {
  test(`${configuration}: swarm seeds ${first}..${last} lose no acknowledged write, their replicas converge and every checker passes`, () => {
    for (let seed = first; seed <= last; seed++) {
      const result = runSwarmSeed(seed, { configuration });
      assert.deepEqual(
        result.anomalies,
        [],
        `${configuration} seed ${seed}, ${result.nodeCount} nodes, faults ` +
          `${JSON.stringify(result.faults)}; replay: ${replay(configuration, seed)}`,
      );
    }
  });
}
