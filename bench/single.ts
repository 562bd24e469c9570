// Single-node benchmark: redis-benchmark against ringkv and against redis-server, side by
// side in one run on this machine. SET and GET, 50 clients, 100-byte values, pipelines of 1
// and 16; ringkv with durable writes against redis-server with `appendfsync always`, ringkv
// relaxed against redis-server without persistence. Each cell is the median of several runs,
// made in rounds that measure every target once. Beside throughput, each cell gives the
// server's CPU time per request (all its threads, from /proc): the host's load moves
// throughput by a third between minutes, the CPU a request costs much less.
//
// Warm-up. Each measured run follows a first run of the same load against the same server
// (--warmup requests), and both servers get it alike. Why: the first seconds of a fresh
// ringkv process go to compiling its code and growing its heap, and measured cold, a run of
// a few seconds reports that more than the steady state a server lives in. The first runs'
// figures are kept too, in a table of their own, so the cold start stays in view.
// Writes the tables to BENCHMARKS.md (replacing the section it wrote before).
//
// Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools).
// Usage: npm run bench:single [-- --requests N --warmup N --runs K]

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeBenchmarkSection } from './benchmarks-file.ts';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '200000' },
    warmup: { type: 'string', default: '300000' },
    runs: { type: 'string', default: '3' },
    output: { type: 'string', default: 'BENCHMARKS.md' },
  },
});
const REQUESTS = Number(flags.requests);
const WARMUP_REQUESTS = Number(flags.warmup);
const RUNS = Number(flags.runs);
const CLIENTS = 50;
const VALUE_BYTES = 100;
const KEYSPACE_SIZE = 100_000;
const projectRoot = path.resolve(import.meta.dirname, '..');

interface Target {
  readonly name: string;
  readonly start: (port: number, dir: string) => ChildProcess;
}

const targets: Target[] = [
  { name: 'ringkv durable (sync)', start: (port, dir) => startRingkv(port, dir, 'sync') },
  {
    name: 'redis-server appendfsync always',
    start: (port, dir) => startRedis(port, dir, ['--appendonly', 'yes', '--appendfsync', 'always']),
  },
  { name: 'ringkv relaxed', start: (port, dir) => startRingkv(port, dir, 'relaxed') },
  {
    name: 'redis-server no persistence',
    start: (port, dir) => startRedis(port, dir, ['--appendonly', 'no']),
  },
];

function startRedis(port: number, dir: string, persistence: string[]): ChildProcess {
  const base = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  return spawn('redis-server', [...base, ...persistence], { stdio: 'ignore' });
}

function startRingkv(port: number, dir: string, durability: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      path.join(projectRoot, 'bin/ringkv.js'),
      'start',
      '--data',
      dir,
      '--resp-port',
      String(port),
      '--http-port',
      '0',
      '--durability',
      durability,
      '--log-level',
      'warn',
    ],
    { stdio: 'ignore' },
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listening on ${port} after ${timeoutMs} ms`);
}

interface Row {
  test: string;
  rps: number;
  p50: number;
  p99: number;
  /** The server's CPU time per request in µs, all threads; null where /proc is missing. */
  cpuUs: number | null;
}

const TICKS_PER_SECOND =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds a process has used so far (user and system, all threads), or null. */
function cpuSecondsOf(pid: number | undefined): number | null {
  const file = `/proc/${pid}/stat`;
  if (pid === undefined || !existsSync(file)) return null;
  // The fields after the command name, which is in parentheses and may hold spaces.
  const text = readFileSync(file, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

function runRedisBenchmark(
  port: number,
  pipeline: number,
  test: string,
  requests: number,
): Omit<Row, 'cpuUs'> {
  const result = spawnSync(
    'redis-benchmark',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      test,
      '-n',
      String(requests),
      '-c',
      String(CLIENTS),
      '-d',
      String(VALUE_BYTES),
      '-r',
      String(KEYSPACE_SIZE),
      '-P',
      String(pipeline),
      '--csv',
    ],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (result.status !== 0) throw new Error(`redis-benchmark failed: ${result.stderr}`);
  const lines = result.stdout.trim().split('\n');
  const header = lines[0]!.split(',').map((cell) => cell.replace(/"/g, ''));
  const column = (name: string): number => {
    const index = header.indexOf(name);
    if (index < 0) throw new Error(`redis-benchmark csv has no ${name}: ${lines[0]}`);
    return index;
  };
  if (lines[1] === undefined)
    throw new Error(`redis-benchmark printed no ${test} row: ${result.stdout}`);
  const cells = lines[1].split(',').map((cell) => cell.replace(/"/g, ''));
  return {
    test: cells[column('test')]!,
    rps: Number(cells[column('rps')]),
    p50: Number(cells[column('p50_latency_ms')]),
    p99: Number(cells[column('p99_latency_ms')]),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A latency in ms as redis-benchmark prints it (a median of two may add digits). */
function ms(value: number): string {
  return String(Number(value.toFixed(3)));
}

/** Each figure's median over the runs of one target. */
function medianRow(rows: Row[]): Row {
  return {
    test: rows[0]!.test,
    rps: median(rows.map((row) => row.rps)),
    p50: median(rows.map((row) => row.p50)),
    p99: median(rows.map((row) => row.p99)),
    cpuUs: rows.some((row) => row.cpuUs === null) ? null : median(rows.map((row) => row.cpuUs!)),
  };
}

function cpuText(row: Row): string {
  return row.cpuUs === null ? 'n/a' : row.cpuUs.toFixed(1);
}

/** The figures of one server's runs: the measured ones and the first (warm-up) ones, by test. */
interface Measured {
  readonly rows: Map<string, Row>;
  readonly firstRuns: Map<string, Omit<Row, 'cpuUs'>>;
}

/**
 * Runs of redis-benchmark against a fresh server of `target`: SET, then GET (of the keys
 * the SETs wrote), each measured with the server's CPU time around it after a first run of
 * the same load (the warm-up).
 */
async function measureOnce(target: Target, pipeline: number): Promise<Measured> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-'));
  const port = await freePort();
  const child = target.start(port, dir);
  try {
    await waitForPort(port, 20_000);
    const rows = new Map<string, Row>();
    const firstRuns = new Map<string, Omit<Row, 'cpuUs'>>();
    for (const test of ['set', 'get']) {
      if (WARMUP_REQUESTS > 0) {
        const first = runRedisBenchmark(port, pipeline, test, WARMUP_REQUESTS);
        firstRuns.set(first.test, first);
      }
      const cpuBefore = cpuSecondsOf(child.pid);
      const row = runRedisBenchmark(port, pipeline, test, REQUESTS);
      const cpuAfter = cpuSecondsOf(child.pid);
      const cpuUs =
        cpuBefore === null || cpuAfter === null ? null : ((cpuAfter - cpuBefore) * 1e6) / REQUESTS;
      rows.set(row.test, { ...row, cpuUs });
    }
    return { rows, firstRuns };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) =>
      child.exitCode !== null ? resolve(null) : child.once('exit', resolve),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

function versionOf(command: string): string {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8' });
  return result.stdout.trim().split('\n')[0] ?? 'unknown';
}

async function main(): Promise<void> {
  for (const tool of ['redis-server', 'redis-benchmark']) {
    if (spawnSync('which', [tool]).status !== 0)
      throw new Error(`${tool} is not installed (Debian: redis-server, redis-tools)`);
  }
  const pairs = [
    ['ringkv durable (sync)', 'redis-server appendfsync always'],
    ['ringkv relaxed', 'redis-server no persistence'],
  ] as const;
  // Rounds, not targets, on the outside: each round measures every target once, one after
  // the other, so that a pair (ringkv and its peer) runs minutes apart at most. The host's
  // speed drifts by a third or more over a quarter of an hour; a ratio is taken within each
  // round, and the table gives the median of those.
  const runs = new Map<string, Measured[]>();
  for (const pipeline of [1, 16]) {
    for (let round = 1; round <= RUNS; round++) {
      for (const target of targets) {
        process.stderr.write(`-P ${pipeline}, round ${round} of ${RUNS}: ${target.name}\n`);
        const key = `${target.name}|${pipeline}`;
        runs.set(key, [...(runs.get(key) ?? []), await measureOnce(target, pipeline)]);
      }
    }
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  let table = `## Single node: redis-benchmark, ringkv against redis-server\n\n`;
  table += `Command: \`npm run bench:single -- --requests ${REQUESTS} --warmup ${WARMUP_REQUESTS} --runs ${RUNS}\`  \n`;
  table += `Machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}  \n`;
  table += `Date: ${new Date().toISOString().slice(0, 10)}; Node ${process.version}; ${versionOf('redis-server')}  \n`;
  table += `Load: redis-benchmark -t set, then -t get, -c ${CLIENTS} -d ${VALUE_BYTES} -r ${KEYSPACE_SIZE}, client and server on the same machine. `;
  table += `Each measured run (-n ${REQUESTS}) follows a first run of the same test against the same server (-n ${WARMUP_REQUESTS}), for both servers alike; the second table gives the first runs. `;
  table += `Each figure is the median of ${RUNS} runs; latencies in ms. The runs go in rounds, each target once per round, and the ratio is the median of the ratios within a round (each round's ratio is listed). CPU: the server's CPU time per request in µs (user and system, all its threads, from /proc), which the host's load moves less than throughput; work a SET run leaves behind, such as a checkpoint, may fall in the GET run's.\n\n`;
  table += `| pipeline | test | ringkv | ops/s | p50 | p99 | CPU | peer | ops/s | p50 | p99 | CPU | ratio | per round |\n`;
  table += `| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |\n`;
  // Every cell of both tables: a pipeline, a pair (ringkv and its peer), a test.
  const cells = [1, 16].flatMap((pipeline) =>
    pairs.flatMap(([ours, theirs]) =>
      ['SET', 'GET'].map((test) => ({ pipeline, ours, theirs, test })),
    ),
  );
  /** One figure per round of `target` at `pipeline`; null if a round lacks it. */
  const perRound = <T>(
    target: string,
    pipeline: number,
    pick: (run: Measured) => T | undefined,
  ) => {
    const values = runs.get(`${target}|${pipeline}`)!.map(pick);
    return values.some((value) => value === undefined) ? null : (values as T[]);
  };
  /** The median of the ratios within each round, and each round's ratio. */
  const ratioCells = (ours: number[], theirs: number[]): string => {
    const ratios = ours.map((value, round) => value / theirs[round]!);
    return `${median(ratios).toFixed(2)}x | ${ratios.map((ratio) => ratio.toFixed(2)).join(', ')}`;
  };
  for (const { pipeline, ours, theirs, test } of cells) {
    const a = perRound(ours, pipeline, (run) => run.rows.get(test));
    const b = perRound(theirs, pipeline, (run) => run.rows.get(test));
    if (a === null || b === null) continue;
    const [x, y] = [medianRow(a), medianRow(b)];
    const ratios = ratioCells(
      a.map((row) => row.rps),
      b.map((row) => row.rps),
    );
    table += `| -P ${pipeline} | ${test} | ${ours} | ${Math.round(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${cpuText(x)} | ${theirs} | ${Math.round(y.rps)} | ${ms(y.p50)} | ${ms(y.p99)} | ${cpuText(y)} | ${ratios} |\n`;
  }
  if (WARMUP_REQUESTS > 0) {
    table += `\nFirst runs, on a fresh server (the warm-up, -n ${WARMUP_REQUESTS}): ops/s, medians as above.\n\n`;
    table += `| pipeline | test | ringkv | ops/s | peer | ops/s | ratio | per round |\n`;
    table += `| --- | --- | --- | ---: | --- | ---: | ---: | --- |\n`;
    for (const { pipeline, ours, theirs, test } of cells) {
      const a = perRound(ours, pipeline, (run) => run.firstRuns.get(test)?.rps);
      const b = perRound(theirs, pipeline, (run) => run.firstRuns.get(test)?.rps);
      if (a === null || b === null) continue;
      table += `| -P ${pipeline} | ${test} | ${ours} | ${Math.round(median(a))} | ${theirs} | ${Math.round(median(b))} | ${ratioCells(a, b)} |\n`;
    }
  }
  process.stdout.write(table);
  const outputPath = path.resolve(projectRoot, flags.output);
  writeBenchmarkSection(outputPath, 'single', table);
}

await main();
