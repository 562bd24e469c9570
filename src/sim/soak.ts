// `npm run sim:soak -- --seeds A..B`: long swarm runs over a range of seeds, each drawing its
// own faults. A thin wrapper over `ringkv sim` in range mode (src/cli/commands/sim.ts): by
// default seeds 1..1000 of every eventual configuration CI runs, printing only failing runs
// (faults, anomalies, history file, replay command) and a total, and keeping only failing
// runs' histories. Any other `ringkv sim` flag may follow and overrides these defaults:
// `--keyspace strong` or `--keyspace chain` soaks every configuration of that kind instead,
// `--config strong-n3,chain-n5` names configurations of any kind.

import { simCommand } from '../cli/commands/sim.ts';
import { UsageError } from '../cli/options.ts';

const SOAK_DEFAULTS = ['--seeds', '1..1000', '--config', 'default-set', '--quiet'];
const HISTORY_DEFAULTS = ['--history-of', 'failed'];

try {
  // parseArgs keeps the last value of a repeated flag, so the user's flags come last.
  process.exitCode = simCommand([...SOAK_DEFAULTS, ...HISTORY_DEFAULTS, ...process.argv.slice(2)]);
} catch (error) {
  process.stderr.write(`sim:soak: ${(error as Error).message}\n`);
  process.exitCode =
    error instanceof UsageError ||
    String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')
      ? 2
      : 1;
}
