// Writes a benchmark's table into BENCHMARKS.md between its own markers
// (`<!-- bench:NAME begin -->` ... `end -->`), replacing what it wrote before and leaving
// every other section as it is; appended at the end the first time.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

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
