// What every benchmark's section says of where it ran (the machine, a tool's version line),
// and how it writes its table into BENCHMARKS.md between its own markers
// (`<!-- bench:NAME begin -->` ... `end -->`), replacing what it wrote before and leaving
// every other section as it is; appended at the end the first time.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export function writeBenchmarkSection(outputPath: string, name: string, table: string): void {
  const begin = `<!-- bench:${name} begin -->`;
  const end = `<!-- bench:${name} end -->`;
  const section = `${begin}\n${table}${end}`;
  const document = existsSync(outputPath) ? readFileSync(outputPath, 'utf8') : '# Benchmarks\n\n';
  writeFileSync(
    outputPath,
    document.includes(begin)
      ? document.slice(0, document.indexOf(begin)) +
          section +
          document.slice(document.indexOf(end) + end.length)
      : `${document.trimEnd()}\n\n${section}\n`,
  );
}

/** The first line a command prints (a version line), or 'unknown'. */
export function firstLine(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return (result.stdout ?? '').trim().split('\n')[0] ?? 'unknown';
}

/** The machine a benchmark runs on: cores, CPU model, memory, kernel. */
export function machine(): string {
  let model = os.cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((text) => text.startsWith('model name'));
    if (line !== undefined) model = line.split(':')[1]!.trim();
  } catch {
    // Not Linux: the model Node reports will do.
  }
  const memoryGiB = (os.totalmem() / 2 ** 30).toFixed(0);
  return `${os.cpus().length} cores, ${model}, ${memoryGiB} GiB, ${os.type()} ${os.release()}`;
}
