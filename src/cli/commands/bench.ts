// `ringkv bench`: drives a store with the load generator (src/loadgen/) and prints its
// throughput and latency percentiles, as text for people or as JSON for scripts. Every
// failure is reported by kind; a run with failures exits 1 so scripts cannot miss them.

import { parseArgs } from 'node:util';
import {
  CONCURRENCY_MAX,
  DEFAULT_ENDPOINTS,
  openTarget,
  parseEndpoints,
  progressLine,
  runLoad,
  TARGET_KINDS,
  WORKLOAD_NAMES,
  type LatencySummary,
  type LoadResult,
  type LoadTarget,
  type PhaseResult,
  type TargetKind,
  type WorkloadName,
} from '../../loadgen/index.ts';
import type { Transport } from '../../client/index.ts';
import { VALUE_BYTES_CEILING } from '../../core/limits.ts';
import { UsageError } from '../options.ts';

export const BENCH_HELP = `Usage: ringkv bench [options]

Sends a workload to a store and reports ops/s and latency (p50, p99, p999, max). Workloads
that read (gets, a, b, c) first write every key once, so that reads hit. Progress shows on
stderr when it is a terminal.

Options:
  --target KIND          resp (a node's Redis protocol port), client (the TypeScript
                         client, over HTTP) or etcd (default resp)
  --endpoints LIST       host:port,... to spread the load over (default: 127.0.0.1:6380
                         for resp, 127.0.0.1:6480 for client, 127.0.0.1:2379 for etcd)
  --keyspace NAME        keyspace of the client target (default 'default')
  --client-transport T   http or resp: how the client target sends gets and puts (the
                         ring always comes over HTTP; --endpoints stay HTTP addresses)
                         (default http)
  --workload NAME        puts, gets, a (50% reads), b (95% reads), c (reads only), cas (each
                         client: read its counter, add one, compare-and-set on the version;
                         strong or chain keyspaces and etcd) (default puts)
  --keys N               number of distinct keys (default 100000)
  --distribution D       uniform or zipfian (YCSB's, constant 0.99) (default uniform)
  --value-bytes N        size of each written value (default 100)
  --concurrency N        requests in flight (default 50)
  --connections N        RESP sockets, spread over the endpoints (default: --concurrency)
  --requests N           stop after N requests (default 100000)
  --duration-s N         stop after N seconds instead
  --seed N               seed of the key and operation choices (default 1)
  --password PW          node password, resp and client (env RINGKV_PASSWORD)
  --json                 print the result as JSON
  --help                 show this help
`;

export interface BenchOptions {
  readonly target: TargetKind;
  readonly endpoints: string;
  readonly workload: WorkloadName;
  readonly keyCount: number;
  readonly distribution: 'uniform' | 'zipfian';
  readonly valueBytes: number;
  readonly concurrency: number;
  readonly connections: number;
  readonly requests: number | undefined;
  readonly durationS: number | undefined;
  readonly seed: number;
  readonly password: string | undefined;
  readonly keyspace: string;
  readonly clientTransport: Transport;
  readonly json: boolean;
}

function integerFlag(
  values: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, got '${raw}'`);
  }
  return value;
}

function choiceFlag<T extends string>(
  values: Record<string, unknown>,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (!choices.includes(raw as T)) {
    throw new UsageError(`--${name}: expected one of ${choices.join(', ')}, got '${String(raw)}'`);
  }
  return raw as T;
}

/** Parses and checks the flags; throws UsageError with the reason on bad input. */
export function parseBenchOptions(
  argv: string[],
  environment: Readonly<Record<string, string | undefined>>,
): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      target: { type: 'string' },
      endpoints: { type: 'string' },
      workload: { type: 'string' },
      keys: { type: 'string' },
      distribution: { type: 'string' },
      'value-bytes': { type: 'string' },
      concurrency: { type: 'string' },
      connections: { type: 'string' },
      requests: { type: 'string' },
      'duration-s': { type: 'string' },
      seed: { type: 'string' },
      password: { type: 'string' },
      keyspace: { type: 'string' },
      'client-transport': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) return 'help';
  const target = choiceFlag(values, 'target', TARGET_KINDS, 'resp');
  if (values['client-transport'] !== undefined && target !== 'client') {
    throw new UsageError('--client-transport applies to --target client only');
  }
  const endpoints = values.endpoints ?? DEFAULT_ENDPOINTS[target];
  try {
    parseEndpoints(endpoints);
  } catch (error) {
    throw new UsageError(`--endpoints: ${(error as Error).message}`);
  }
  const requests = integerFlag(values, 'requests', 1, 1e12);
  const durationS = integerFlag(values, 'duration-s', 1, 7 * 24 * 3600);
  if (requests !== undefined && durationS !== undefined) {
    throw new UsageError('give --requests or --duration-s, not both');
  }
  const concurrency = integerFlag(values, 'concurrency', 1, CONCURRENCY_MAX) ?? 50;
  const password = values.password ?? environment.RINGKV_PASSWORD;
  return {
    target,
    endpoints,
    workload: choiceFlag(values, 'workload', WORKLOAD_NAMES, 'puts'),
    keyCount: integerFlag(values, 'keys', 1, 1e9) ?? 100_000,
    distribution: choiceFlag(values, 'distribution', ['uniform', 'zipfian'] as const, 'uniform'),
    valueBytes: integerFlag(values, 'value-bytes', 0, VALUE_BYTES_CEILING) ?? 100,
    concurrency,
    connections: integerFlag(values, 'connections', 1, CONCURRENCY_MAX) ?? concurrency,
    requests: requests ?? (durationS === undefined ? 100_000 : undefined),
    durationS,
    seed: integerFlag(values, 'seed', 0, 0xffff_ffff) ?? 1,
    password: password === '' ? undefined : password,
    keyspace: values.keyspace ?? 'default',
    clientTransport: choiceFlag(values, 'client-transport', ['http', 'resp'] as const, 'http'),
    json: values.json === true,
  };
}

function milliseconds(microseconds: number): string {
  return (microseconds / 1000).toFixed(3);
}

function latencyLine(label: string, latency: LatencySummary): string {
  return (
    `  ${label.padEnd(8)} ${String(latency.count).padStart(9)} ops` +
    `  p50 ${milliseconds(latency.p50Us)}  p99 ${milliseconds(latency.p99Us)}` +
    `  p999 ${milliseconds(latency.p999Us)}  max ${milliseconds(latency.maxUs)}` +
    `  mean ${milliseconds(latency.meanUs)} ms\n`
  );
}

function phaseText(title: string, phase: PhaseResult): string {
  let text = `${title}: ${phase.succeeded} ops in ${(phase.durationMs / 1000).toFixed(2)} s, ${Math.round(phase.opsPerSecond)} ops/s\n`;
  text += latencyLine('all', phase.latency);
  if (phase.byKind.length > 1) {
    for (const stats of phase.byKind) text += latencyLine(stats.kind, stats);
  }
  if (phase.notFound > 0) text += `  reads that found no value: ${phase.notFound}\n`;
  for (const [kind, count] of Object.entries(phase.errors)) {
    text += `  errors ${kind}: ${count} (for example: ${phase.errorExamples[kind] ?? ''})\n`;
  }
  return text;
}

export function formatBenchResult(result: LoadResult): string {
  const spec = result.workload;
  let text = `target ${result.target}, workload ${spec.name}, ${spec.keyCount} keys ${spec.distribution}, `;
  text += `${spec.valueBytes}-byte values, ${result.concurrency} in flight; latencies in ms\n`;
  if (result.load !== null) text += phaseText('load', result.load);
  text += phaseText('run', result);
  return text;
}

function errorCount(phase: PhaseResult | null): number {
  return phase === null ? 0 : Object.values(phase.errors).reduce((sum, count) => sum + count, 0);
}

/** The client target is opened here, where its transport is known; others by openTarget. */
async function openBenchTarget(options: BenchOptions): Promise<LoadTarget> {
  const endpoints = parseEndpoints(options.endpoints);
  if (options.target === 'client') {
    const { openRingkvClientTarget } =
      await import('../../loadgen/targets/ringkv-client-target.ts');
    return openRingkvClientTarget({
      endpoints,
      keyspace: options.keyspace,
      transport: options.clientTransport,
      ...(options.password === undefined ? {} : { token: options.password }),
    });
  }
  return openTarget({
    kind: options.target,
    endpoints,
    connections: options.connections,
    keyspace: options.keyspace,
    ...(options.password === undefined ? {} : { password: options.password }),
  });
}

export async function benchCommand(argv: string[]): Promise<number> {
  const options = parseBenchOptions(argv, process.env);
  if (options === 'help') {
    process.stdout.write(BENCH_HELP);
    return 0;
  }
  const target = await openBenchTarget(options).catch((error: unknown) => {
    throw new Error(`cannot reach ${options.target} at ${options.endpoints}: ${String(error)}`, {
      cause: error,
    });
  });
  const progress = progressLine();
  let result: LoadResult;
  try {
    result = await runLoad(target, {
      workload: {
        name: options.workload,
        keyCount: options.keyCount,
        distribution: options.distribution,
        valueBytes: options.valueBytes,
        seed: options.seed,
      },
      concurrency: options.concurrency,
      ...(options.requests === undefined ? {} : { requests: options.requests }),
      ...(options.durationS === undefined ? {} : { durationMs: options.durationS * 1000 }),
      onProgress: progress.update,
    });
  } finally {
    progress.finish();
    await target.close();
  }
  process.stdout.write(
    options.json ? `${JSON.stringify(result, null, 2)}\n` : formatBenchResult(result),
  );
  return errorCount(result) + errorCount(result.load) > 0 ? 1 : 0;
}
