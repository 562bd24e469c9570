// `npm run sim:soak -- --seeds A..B`: swarm runs (src/sim/swarm.ts) over a range of seeds,
// long: each seed draws its own faults. Prints a line per failing seed with its faults, its
// anomalies and the command that replays it, and a summary; exits 1 if any seed failed.

import { parseArgs } from 'node:util';
import { runSwarmSeed } from './swarm.ts';

const { values } = parseArgs({
  options: { seeds: { type: 'string', default: '1..1000' } },
  strict: true,
});
const match = /^(\d+)\.\.(\d+)$/.exec(values.seeds);
if (match === null || Number(match[1]) > Number(match[2])) {
  process.stderr.write(`sim:soak: --seeds must be A..B with A <= B, not '${values.seeds}'\n`);
  process.exit(2);
}
const first = Number(match[1]);
const last = Number(match[2]);
let failed = 0;
const startedAt = performance.now();
for (let seed = first; seed <= last; seed++) {
  const result = runSwarmSeed(seed);
  if (result.anomalies.length > 0) {
    failed++;
    process.stdout.write(
      `seed ${seed} FAILED ${JSON.stringify(result.faults)}\n` +
        result.anomalies.map((anomaly) => `  ${anomaly}\n`).join('') +
        `  replay: npm run sim:soak -- --seeds ${seed}..${seed}\n`,
    );
  }
  if (process.stderr.isTTY) {
    process.stderr.write(`\rsim:soak: seed ${seed} of ${first}..${last}, ${failed} failed`);
  }
}
if (process.stderr.isTTY) process.stderr.write('\n');
const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
process.stdout.write(`sim:soak: ${last - first + 1} seeds in ${seconds} s, ${failed} failed\n`);
process.exitCode = failed > 0 ? 1 : 0;
