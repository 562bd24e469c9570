// The `ringkv` command: dispatches to one file per command under ./commands/.

import { clientCommand, CLIENT_HELP } from './commands/client-commands.ts';
import { clusterCommand, CLUSTER_HELP } from './commands/cluster-commands.ts';
import { START_HELP, startCommand } from './commands/start.ts';
import { UsageError } from './options.ts';

const MAIN_HELP = `Usage: ringkv <command> [options]

A distributed key-value store spoken to over the Redis protocol and HTTP.

Commands:
  start     run a node in the foreground
  dev       run a local cluster of several node processes
  get       print the value of a key
  put       store a value under a key
  del       delete a key
  scan      list keys
  status    print a node's status
  cluster   print the members, their liveness, partitions and hints
  ring      print how the ring's partitions are owned
  keyspace  create or list keyspaces
  fault     inject faults into a node (fail, delay, loss, cut) and clear them
  bench     drive a store with a workload and report ops/s and latency
  sim       run a simulated cluster under faults drawn from a seed, and check it
  help CMD  show the help of a command

Run 'ringkv <command> --help' for a command's options.
`;

function helpOf(command: string | undefined): string | undefined {
  if (command === 'start') return START_HELP;
  return command === undefined ? undefined : (CLIENT_HELP[command] ?? CLUSTER_HELP[command]);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    process.stdout.write(MAIN_HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === 'help' && rest[0] === 'sim') {
    return (await import('./commands/sim.ts')).simCommand(['--help']);
  }
  if (command === 'help') {
    const help = rest[0] === undefined ? MAIN_HELP : helpOf(rest[0]);
    if (help === undefined) throw new UsageError(`unknown command '${rest[0]}'`);
    process.stdout.write(help);
    return 0;
  }
  if (command === 'start') return startCommand(rest);
  if (command === 'dev') return (await import('./commands/dev.ts')).devCommand(rest);
  if (command === 'bench') return (await import('./commands/bench.ts')).benchCommand(rest);
  if (command === 'sim') return (await import('./commands/sim.ts')).simCommand(rest);
  if (command in CLIENT_HELP) return clientCommand(command, rest);
  if (command in CLUSTER_HELP) return clusterCommand(command, rest);
  throw new UsageError(`unknown command '${command}'\n\n${MAIN_HELP}`);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  const usage =
    error instanceof UsageError ||
    String((error as { code?: unknown }).code ?? '').startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`ringkv: ${(error as Error).message}\n`);
  process.exitCode = usage ? 2 : 1;
}
