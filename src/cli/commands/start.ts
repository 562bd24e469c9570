// `ringkv start`: runs one node in the foreground until SIGINT or SIGTERM.

import { parseArgs } from 'node:util';
import { OPTION_TABLE, optionsHelp, resolveNodeConfig } from '../options.ts';
import { startNode } from '../start-node.ts';

export const START_HELP = `Usage: ringkv start [options]

Starts a ringkv node in the foreground: the Redis protocol and HTTP on the given ports,
data in --data. Stops cleanly on Ctrl-C (SIGINT) or SIGTERM. Every option can also come
from a JSON config file (--config FILE, keys named as in docs/CONFIGURATION.md) or an
environment variable; flags win over the environment, which wins over the file.

Options:
  --config FILE              JSON config file
${optionsHelp()}
  --help                     show this help
`;

export async function startCommand(argv: string[]): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    help: { type: 'boolean' },
  };
  for (const spec of OPTION_TABLE) options[spec.flag] = { type: 'string' };
  const { values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true });
  if (values.help === true) {
    process.stdout.write(START_HELP);
    return 0;
  }
  const flags: Record<string, string | undefined> = {};
  for (const spec of OPTION_TABLE) flags[spec.flag] = values[spec.flag] as string | undefined;
  const config = resolveNodeConfig(flags, process.env, values.config as string | undefined);
  const node = await startNode(config, (error) => {
    process.stderr.write(`ringkv: ${error.message}\n`);
    process.exit(1);
  });
  process.stdout.write(
    `ringkv: node ${config.nodeId} started, data in ${config.storage === 'memory' ? '(memory)' : config.dataDir}\n`,
  );
  process.stdout.write(`ringkv: resp listening on ${config.host}:${node.resp.port}\n`);
  process.stdout.write(`ringkv: http listening on http://${config.host}:${node.http.port}\n`);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string): void => {
      process.stdout.write(`ringkv: ${signal} received, stopping\n`);
      node.stop().then(resolve, (error: unknown) => {
        process.stderr.write(`ringkv: error while stopping: ${String(error)}\n`);
        resolve();
      });
    };
    process.once('SIGINT', () => shutdown('SIGINT'));
    process.once('SIGTERM', () => shutdown('SIGTERM'));
  });
  return 0;
}
