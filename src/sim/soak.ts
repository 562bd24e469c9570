// `npm run sim:soak -- --seeds A..B`: long swarm runs over a range of seeds, each drawing its
// own faults. A thin wrapper over `ringkv sim` in range mode (src/cli/commands/sim.ts): by
// default seeds 1..1000 of every eventual configuration CI runs, printing only failing runs
// (faults, anomalies, history file, replay command) and a total, and keeping only failing
// runs' histories. Any other `ringkv sim` flag may follow and overrides these defaults:
// `--keyspace strong` or `--keyspace chain` soaks every configuration of that kind instead,
// `--config strong-n3,chain-n5` names configurations of any kind.
//
// `npm run sim:soak -- --membership [--seeds A..B] [--siblings]` soaks the membership swarm
// (src/sim/membership-swarm.ts) instead, seeds 1..200 by default, keyspace `default` under
// `lww` (or `siblings`): failing runs are printed with their changes, faults, anomalies and
// replay command, then a total.

import { simCommand } from '../cli/commands/sim.ts';
import { UsageError } from '../cli/options.ts';
import { describeMembershipRun, runMembershipSeed } from './membership-swarm.ts';

const SOAK_DEFAULTS = ['--seeds', '1..1000', '--config', 'default-set', '--quiet'];
const HISTORY_DEFAULTS = ['--history-of', 'failed'];
const MEMBERSHIP_SEEDS_DEFAULT = '1..200';

/** The membership soak: every seed of the range, failures printed; the exit code. */
function membershipSoak(argv: readonly string[]): number {
  const known = new Set(['--membership', '--seeds', '--siblings']);
  const unknown = argv.filter((arg, index) => !known.has(arg) && argv[index - 1] !== '--seeds');
  if (unknown.length > 0) {
    throw new UsageError(
      `--membership takes --seeds A..B and --siblings, not ${unknown.join(' ')}`,
    );
  }
  const conflicts = argv.includes('--siblings') ? 'siblings' : 'lww';
  const at = argv.lastIndexOf('--seeds');
  const text = at === -1 ? MEMBERSHIP_SEEDS_DEFAULT : (argv[at + 1] ?? '');
  const match = /^(\d+)\.\.(\d+)$/.exec(text);
  if (match === null || Number(match[1]) > Number(match[2])) {
    throw new UsageError(`--seeds: expected A..B with A not above B, got '${text}'`);
  }
  const first = Number(match[1]);
  const last = Number(match[2]);
  const startedMs = performance.now();
  let failed = 0;
  for (let seed = first; seed <= last; seed++) {
    const result = runMembershipSeed(seed, { conflicts });
    if (result.anomalies.length === 0) continue;
    failed++;
    process.stdout.write(`${describeMembershipRun(result)}\n`);
  }
  const seconds = ((performance.now() - startedMs) / 1000).toFixed(0);
  process.stdout.write(
    `sim:soak --membership: ${last - first + 1} runs (seeds ${first}..${last}, ${conflicts}), ` +
      `${failed} failed, ${seconds} s\n`,
  );
  return failed === 0 ? 0 : 1;
}

try {
  const argv = process.argv.slice(2);
  process.exitCode = argv.includes('--membership')
    ? membershipSoak(argv)
    : // parseArgs keeps the last value of a repeated flag, so the user's flags come last.
      simCommand([...SOAK_DEFAULTS, ...HISTORY_DEFAULTS, ...argv]);
} catch (error) {
  process.stderr.write(`sim:soak: ${(error as Error).message}\n`);
  process.exitCode =
    error instanceof UsageError ||
    String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS')
      ? 2
      : 1;
}
