// Shared settings for the SWIM simulation tests: the network they assume, how to pick seeds
// (SWIM_SEED replays one), and the replay hint every failure message carries.

import { DEFAULT_SWIM_CONFIG } from '../../../src/core/swim/swim.ts';
import type { SwimConfig } from '../../../src/core/swim/swim.ts';
import type { SwimWorldOptions } from '../../../src/sim/swim-world.ts';

/** A LAN-like network: 1-20 ms one way, well under the 400 ms probe timeout. */
export function worldOptions(
  seed: number,
  memberCount: number,
  overrides: Partial<SwimWorldOptions> = {},
  config: SwimConfig = DEFAULT_SWIM_CONFIG,
): SwimWorldOptions {
  return {
    seed,
    memberCount,
    config,
    delayMsMin: 1,
    delayMsMax: 20,
    lossProbability: 0,
    tickIntervalMs: config.tickIntervalMsMax,
    ...overrides,
  };
}

/** Seeds first..last, or only SWIM_SEED when it is set (to replay a failure). */
export function seeds(first: number, last: number): number[] {
  const replay = process.env['SWIM_SEED'];
  if (replay !== undefined && replay !== '') return [Number(replay)];
  const list: number[] = [];
  for (let seed = first; seed <= last; seed++) list.push(seed);
  return list;
}

export function replayHint(seed: number, testFile: string): string {
  return `seed ${seed} (replay: SWIM_SEED=${seed} npx node --test test/core/swim/${testFile})`;
}
