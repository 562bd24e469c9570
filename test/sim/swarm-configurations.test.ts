// Swarm runs over the configurations that swarm.test.ts leaves to this file, so that the
// two run side by side.
import { FIRST_FILE_CONFIGURATIONS, SWARM_RANGES, testSwarmRange } from './swarm-ranges.ts';

for (const range of SWARM_RANGES) {
  if (!FIRST_FILE_CONFIGURATIONS.has(range.configuration)) testSwarmRange(range);
}
