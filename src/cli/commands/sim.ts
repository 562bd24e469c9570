// `ringkv sim`: swarm runs of the deterministic simulator (src/sim/swarm.ts) from the command
// line, over eventual keyspaces or (--keyspace strong, --keyspace chain) linearizable ones.
// One seed prints a
// full summary: operations by outcome, the faults injected with their virtual times, what
// the judge checked, the anomalies, the history file and the command that replays the run.
// A range of seeds prints a line per run (failures only with --quiet) and a total. Any
// anomaly makes the exit code 1; usage mistakes exit 2. The same flags always replay the same
// run, so every replay command printed here names every flag that shaped it.

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatHistoryLines, type History, type OperationName } from '../../check/history.ts';
import {
  CHAIN_SWARM_CONFIGURATIONS,
  configurationConsistency,
  configurationDescription,
  DEFAULT_CHAIN_CONFIGURATION,
  DEFAULT_CONFIGURATION,
  DEFAULT_OPERATIONS,
  DEFAULT_STRONG_CONFIGURATION,
  FAULT_KIND_NAMES,
  FAULT_KINDS,
  linearizableSwarmConfiguration,
  NODE_COUNT_MAX,
  runSwarmSeed,
  STRONG_SWARM_CONFIGURATIONS,
  SWARM_CLIENTS,
  SWARM_CONFIGURATIONS,
  swarmConfiguration,
  type SwarmResult,
} from '../../sim/swarm.ts';
import { UsageError } from '../options.ts';

/** Runs every configuration of the keyspace kind that CI runs (those not excluded). */
export const DEFAULT_SET = 'default-set';
export const DEFAULT_HISTORY_DIRECTORY = 'sim-histories';
const SEED_MAX = 0xffff_ffff;
const RANGE_RUNS_MAX = 1_000_000;
const OPERATIONS_MAX = 1_000_000;
const PROGRESS_INTERVAL_MS = 100;

type KeyspaceKind = 'eventual' | 'strong' | 'chain';

const KEYSPACE_KINDS: readonly KeyspaceKind[] = ['eventual', 'strong', 'chain'];

interface NamedConfiguration {
  readonly name: string;
  readonly description: string;
  readonly excludedBecause?: string;
}

function configurationsOf(kind: KeyspaceKind): readonly NamedConfiguration[] {
  if (kind === 'strong') return STRONG_SWARM_CONFIGURATIONS;
  if (kind === 'chain') return CHAIN_SWARM_CONFIGURATIONS;
  return SWARM_CONFIGURATIONS;
}

function defaultConfiguration(kind: KeyspaceKind): string {
  if (kind === 'strong') return DEFAULT_STRONG_CONFIGURATION;
  if (kind === 'chain') return DEFAULT_CHAIN_CONFIGURATION;
  return DEFAULT_CONFIGURATION;
}

function configurationLines(kind: KeyspaceKind): string {
  return configurationsOf(kind)
    .map((configuration) => {
      const note = configuration.excludedBecause === undefined ? '' : ' (not in default-set)';
      return `                         ${configuration.name.padEnd(12)} ${configuration.description}${note}`;
    })
    .join('\n');
}

function faultLines(): string {
  return FAULT_KINDS.map(
    (kind) => `                         ${kind.name.padEnd(12)} ${kind.description}`,
  ).join('\n');
}

export const SIM_HELP = `Usage: ringkv sim [options]

Runs a whole cluster in this process on a virtual clock: a workload of ${SWARM_CLIENTS} clients, faults
drawn from the seed, then a liveness phase (faults stop, the cluster must settle); then
the judge. Eventual keyspaces: every key is read with R = all; no acknowledged write lost,
replicas agree. Strong and chain keyspaces: every key is read through every node, each
read must succeed, and the whole history must be linearizable per key; chain keyspaces
must first have every partition's chain whole again.
The same options always replay the same run. Exits 1 when a run finds an anomaly, 2 on a
usage mistake. Progress shows on stderr when it is a terminal.

Options:
  --seed S               the seed of one run (default 1)
  --seeds A..B           every seed from A to B instead: a line per run and a total
  --config LIST          configurations, comma-separated, or ${DEFAULT_SET} for every one
                         of the keyspace kind that CI runs (default ${DEFAULT_CONFIGURATION},
                         ${DEFAULT_STRONG_CONFIGURATION} with --keyspace strong, ${DEFAULT_CHAIN_CONFIGURATION} with
                         --keyspace chain); eventual:
${configurationLines('eventual')}
                         strong:
${configurationLines('strong')}
                         chain:
${configurationLines('chain')}
  --nodes M              a fixed node count instead of one drawn from the seed
                         (1 to ${NODE_COUNT_MAX}, at least the configuration's N)
  --ops K                operations of the workload (default ${DEFAULT_OPERATIONS})
  --faults LIST          fault kinds the seed may draw, comma-separated, or none
                         (default: every kind); each kind is drawn on or off per seed:
${faultLines()}
  --keyspace KIND        eventual (default), strong or chain: which configurations the
                         default and ${DEFAULT_SET} mean, and which --config may name
  --history DIR          where history files go, one JSON-lines file per seed and
                         configuration (default ${DEFAULT_HISTORY_DIRECTORY}/)
  --history-of WHICH     all (default) or failed: which runs write their history
  --quiet                with --seeds: print failing runs and the total only
  --skip-fsync           negative control: a disk that acknowledges writes before it
                         makes them durable (power losses must then lose writes)
  --strong-quorum-of-one negative control of strong configurations: operations need one
                         acceptor instead of a majority (histories must then fail the
                         linearizability checker)
  --chain-accept-older-epochs
                         negative control of chain configurations: replicas serve
                         requests of older chain epochs (histories must then fail the
                         linearizability checker)
  --help                 show this help
`;

export interface SimOptions {
  readonly firstSeed: number;
  readonly lastSeed: number;
  /** Whether the seeds came as a range (--seeds): range output even for one run. */
  readonly range: boolean;
  /** The keyspace kind --keyspace named (eventual when absent). */
  readonly keyspace: KeyspaceKind;
  readonly configurations: readonly string[];
  readonly nodes: number | undefined;
  readonly operations: number;
  /** Allowed fault kinds; undefined: every kind. */
  readonly faults: readonly string[] | undefined;
  readonly historyDirectory: string;
  readonly historyOf: 'all' | 'failed';
  readonly quiet: boolean;
  readonly skipFsync: boolean;
  readonly strongQuorumOfOne: boolean;
  readonly chainAcceptOlderEpochs: boolean;
}

function integerText(raw: string, flag: string, min: number, max: number): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${flag}: expected an integer from ${min} to ${max}, got '${raw}'`);
  }
  return value;
}

function listText(raw: string, flag: string): string[] {
  const items = raw.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) {
    throw new UsageError(`--${flag}: expected names separated by commas, got '${raw}'`);
  }
  return items;
}

/**
 * The configurations a --config list names. `default-set` means those of `kind` that CI
 * runs; a name of either kind is taken, unless --keyspace named the other kind.
 */
function parseConfigurations(raw: string, kind: KeyspaceKind, kindGiven: boolean): string[] {
  const names = listText(raw, 'config');
  const chosen: string[] = [];
  for (const name of names) {
    if (name === DEFAULT_SET) {
      for (const configuration of configurationsOf(kind)) {
        if (configuration.excludedBecause === undefined) chosen.push(configuration.name);
      }
      continue;
    }
    const consistency = configurationConsistency(name);
    const known = configurationsOf(kind).map((configuration) => configuration.name);
    if (consistency === undefined) {
      const every = [
        ...SWARM_CONFIGURATIONS,
        ...STRONG_SWARM_CONFIGURATIONS,
        ...CHAIN_SWARM_CONFIGURATIONS,
      ].map((configuration) => configuration.name);
      throw new UsageError(
        `--config: no configuration '${name}'; expected ${[...(kindGiven ? known : every), DEFAULT_SET].join(', ')}`,
      );
    }
    if (kindGiven && consistency !== kind) {
      throw new UsageError(
        `--config: ${name} is a configuration of ${consistency} keyspaces, not of --keyspace ${kind}; ` +
          `expected ${[...known, DEFAULT_SET].join(', ')}`,
      );
    }
    chosen.push(name);
  }
  return [...new Set(chosen)];
}

/** The replication factors a configuration's keyspaces need on `nodes` nodes. */
function replicationFactors(name: string, nodes: number): (number | 'all')[] {
  const linearizable = linearizableSwarmConfiguration(name);
  if (linearizable !== undefined) {
    return linearizable.keyspaces(nodes).map((keyspace) => keyspace.n);
  }
  return [swarmConfiguration(name)!.keyspace(nodes).n];
}

function parseFaults(raw: string): string[] {
  if (raw === 'none') return [];
  const names = listText(raw, 'faults');
  for (const name of names) {
    if (!FAULT_KIND_NAMES.includes(name)) {
      throw new UsageError(
        `--faults: no fault kind '${name}'; expected none or some of ${FAULT_KIND_NAMES.join(', ')}`,
      );
    }
  }
  return [...new Set(names)];
}

/** Parses and checks the flags; throws UsageError with the reason on bad input. */
export function parseSimOptions(argv: string[]): SimOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      config: { type: 'string' },
      nodes: { type: 'string' },
      ops: { type: 'string' },
      faults: { type: 'string' },
      keyspace: { type: 'string' },
      history: { type: 'string' },
      'history-of': { type: 'string' },
      quiet: { type: 'boolean' },
      'skip-fsync': { type: 'boolean' },
      'strong-quorum-of-one': { type: 'boolean' },
      'chain-accept-older-epochs': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) return 'help';
  const keyspaceText = values.keyspace ?? 'eventual';
  const keyspace = KEYSPACE_KINDS.find((kind) => kind === keyspaceText);
  if (keyspace === undefined) {
    throw new UsageError(`--keyspace: expected eventual, strong or chain, got '${keyspaceText}'`);
  }
  if (values.seed !== undefined && values.seeds !== undefined) {
    throw new UsageError('give --seed or --seeds, not both');
  }
  let firstSeed = 1;
  let lastSeed = 1;
  if (values.seeds !== undefined) {
    const match = /^(\d+)\.\.(\d+)$/.exec(values.seeds);
    if (match === null) {
      throw new UsageError(`--seeds: expected A..B, got '${values.seeds}'`);
    }
    firstSeed = integerText(match[1]!, 'seeds', 0, SEED_MAX);
    lastSeed = integerText(match[2]!, 'seeds', 0, SEED_MAX);
    if (firstSeed > lastSeed) {
      throw new UsageError(`--seeds: A must not be above B, got '${values.seeds}'`);
    }
  } else if (values.seed !== undefined) {
    firstSeed = lastSeed = integerText(values.seed, 'seed', 0, SEED_MAX);
  }
  const configurations = parseConfigurations(
    values.config ?? defaultConfiguration(keyspace),
    keyspace,
    values.keyspace !== undefined,
  );
  const strongQuorumOfOne = values['strong-quorum-of-one'] === true;
  if (strongQuorumOfOne) controlOf('strong-quorum-of-one', 'strong', configurations);
  const chainAcceptOlderEpochs = values['chain-accept-older-epochs'] === true;
  if (chainAcceptOlderEpochs) controlOf('chain-accept-older-epochs', 'chain', configurations);
  if ((lastSeed - firstSeed + 1) * configurations.length > RANGE_RUNS_MAX) {
    throw new UsageError(`at most ${RANGE_RUNS_MAX} runs at once (seeds times configurations)`);
  }
  const nodes =
    values.nodes === undefined ? undefined : integerText(values.nodes, 'nodes', 1, NODE_COUNT_MAX);
  if (nodes !== undefined) {
    for (const name of configurations) {
      for (const n of replicationFactors(name, nodes)) {
        if (n !== 'all' && n > nodes) {
          throw new UsageError(`--nodes ${nodes}: configuration ${name} needs at least ${n} nodes`);
        }
      }
    }
  }
  const historyOf = values['history-of'] ?? 'all';
  if (historyOf !== 'all' && historyOf !== 'failed') {
    throw new UsageError(`--history-of: expected all or failed, got '${historyOf}'`);
  }
  if (values.history === '') throw new UsageError('--history: expected a directory');
  return {
    firstSeed,
    lastSeed,
    range: values.seeds !== undefined,
    keyspace,
    configurations,
    nodes,
    operations:
      values.ops === undefined
        ? DEFAULT_OPERATIONS
        : integerText(values.ops, 'ops', 1, OPERATIONS_MAX),
    faults: values.faults === undefined ? undefined : parseFaults(values.faults),
    historyDirectory: values.history ?? DEFAULT_HISTORY_DIRECTORY,
    historyOf,
    quiet: values.quiet === true,
    skipFsync: values['skip-fsync'] === true,
    strongQuorumOfOne,
    chainAcceptOlderEpochs,
  };
}

/** Refuses a negative control given with configurations of another keyspace kind. */
function controlOf(flag: string, kind: KeyspaceKind, configurations: readonly string[]): void {
  const others = configurations.filter((name) => configurationConsistency(name) !== kind);
  if (others.length === 0) return;
  const kinds = [...new Set(others.map((name) => configurationConsistency(name)))];
  throw new UsageError(
    `--${flag}: a control of ${kind} configurations; ${others.join(', ')} ` +
      `${others.length === 1 ? 'runs' : 'run'} ${kinds.join(' and ')} keyspaces`,
  );
}

/** The command that replays one run: every flag that shaped it, and no other. */
export function replayCommand(seed: number, configuration: string, options: SimOptions): string {
  const parts = ['ringkv', 'sim', '--seed', String(seed), '--config', configuration];
  if (options.nodes !== undefined) parts.push('--nodes', String(options.nodes));
  if (options.operations !== DEFAULT_OPERATIONS) parts.push('--ops', String(options.operations));
  if (options.faults !== undefined) {
    parts.push('--faults', options.faults.length === 0 ? 'none' : options.faults.join(','));
  }
  if (options.skipFsync) parts.push('--skip-fsync');
  if (options.strongQuorumOfOne) parts.push('--strong-quorum-of-one');
  if (options.chainAcceptOlderEpochs) parts.push('--chain-accept-older-epochs');
  return parts.join(' ');
}

export interface OutcomeCounts {
  ok: number;
  failed: number;
  unknown: number;
}

/** Operations by kind and outcome, kinds in a fixed order. */
export function tallyOutcomes(
  history: History,
  into = new Map<OperationName, OutcomeCounts>(),
): Map<OperationName, OutcomeCounts> {
  for (const operation of history) {
    let counts = into.get(operation.op);
    if (counts === undefined) into.set(operation.op, (counts = { ok: 0, failed: 0, unknown: 0 }));
    counts[operation.outcome]++;
  }
  return into;
}

function outcomeTable(tally: ReadonlyMap<OperationName, OutcomeCounts>): string {
  const total: OutcomeCounts = { ok: 0, failed: 0, unknown: 0 };
  const row = (label: string, counts: OutcomeCounts): string =>
    `  ${label.padEnd(8)}${[counts.ok, counts.failed, counts.unknown].map((count) => String(count).padStart(9)).join('')}\n`;
  let text = `${'operations'.padEnd(10)}${['ok', 'failed', 'unknown'].map((name) => name.padStart(9)).join('')}\n`;
  const names: OperationName[] = ['get', 'put', 'delete', 'cas', 'incr'];
  for (const name of names) {
    const counts = tally.get(name);
    if (counts === undefined) continue;
    text += row(name, counts);
    total.ok += counts.ok;
    total.failed += counts.failed;
    total.unknown += counts.unknown;
  }
  return text + row('all', total);
}

function writeHistory(options: SimOptions, result: SwarmResult): string {
  mkdirSync(options.historyDirectory, { recursive: true });
  const file = path.join(
    options.historyDirectory,
    `${result.configuration}-seed-${result.seed}.jsonl`,
  );
  writeFileSync(file, formatHistoryLines(result.history));
  return file;
}

function faultList(result: SwarmResult): string {
  return result.faults.length === 0 ? 'none' : result.faults.map((fault) => fault.kind).join(', ');
}

/** The full summary of one run. */
export function formatRun(
  result: SwarmResult,
  options: SimOptions,
  historyFile: string | null,
): string {
  let text =
    `ringkv sim: seed ${result.seed}, configuration ${result.configuration} ` +
    `(${configurationDescription(result.configuration)}), ${result.nodeCount} nodes, ` +
    `${result.operations} operations\n`;
  text += outcomeTable(tallyOutcomes(result.history));
  if (result.checks !== undefined) {
    text += 'checked:\n' + result.checks.map((line) => `  ${line}\n`).join('');
  }
  text += `faults drawn: ${faultList(result)}\n`;
  if (result.injected.length > 0) {
    text += `faults injected (virtual ms since the world began; the workload began at ${result.workloadStartMs} ms):\n`;
    for (const fault of result.injected) {
      text += `  ${String(fault.atMs).padStart(7)} ms  ${fault.kind.padEnd(10)}  ${fault.description}\n`;
    }
  }
  text += formatAnomalies(result);
  text += `history: ${historyFile ?? '(not written)'}\n`;
  text += `replay: ${replayCommand(result.seed, result.configuration, options)}\n`;
  return text;
}

function formatAnomalies(result: SwarmResult): string {
  if (result.anomalies.length === 0) return 'anomalies: none\n';
  return (
    `anomalies: ${result.anomalies.length}\n` +
    result.anomalies.map((anomaly) => `  ${anomaly}\n`).join('')
  );
}

function runLine(result: SwarmResult): string {
  const counts = [...tallyOutcomes(result.history).values()].reduce(
    (sum, next) => ({
      ok: sum.ok + next.ok,
      failed: sum.failed + next.failed,
      unknown: sum.unknown + next.unknown,
    }),
    { ok: 0, failed: 0, unknown: 0 },
  );
  const verdict = result.anomalies.length === 0 ? 'ok' : 'FAILED';
  return (
    `${result.configuration} seed ${result.seed}: ${verdict}, ${result.nodeCount} nodes, ` +
    `${result.operations} operations (ok ${counts.ok}, failed ${counts.failed}, unknown ${counts.unknown}), ` +
    `faults: ${faultList(result)}\n`
  );
}

interface Output {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WriteStream;
}

/** A progress line on stderr, redrawn at most every PROGRESS_INTERVAL_MS, only on a terminal. */
function progressDisplay(stream: NodeJS.WriteStream): {
  show: (text: string) => void;
  clear: () => void;
} {
  if (stream.isTTY !== true) return { show: () => {}, clear: () => {} };
  let shownAtMs = -Infinity;
  let shown = false;
  return {
    show: (text) => {
      const nowMs = performance.now();
      if (nowMs - shownAtMs < PROGRESS_INTERVAL_MS) return;
      shownAtMs = nowMs;
      shown = true;
      stream.write(`\r\x1b[2K${text}`);
    },
    clear: () => {
      if (shown) stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}

export function runSim(options: SimOptions, output: Output): number {
  const progress = progressDisplay(output.stderr);
  const runsTotal = (options.lastSeed - options.firstSeed + 1) * options.configurations.length;
  const single = !options.range && runsTotal === 1;
  const startedAtMs = performance.now();
  const tally = new Map<OperationName, OutcomeCounts>();
  const injectedByKind = new Map<string, number>();
  let runsDone = 0;
  let runsFailed = 0;
  for (let seed = options.firstSeed; seed <= options.lastSeed; seed++) {
    for (const configuration of options.configurations) {
      const result = runSwarmSeed(seed, {
        configuration,
        operations: options.operations,
        skipFsync: options.skipFsync,
        ...(options.strongQuorumOfOne ? { strongQuorumOfOne: true } : {}),
        ...(options.chainAcceptOlderEpochs ? { chainAcceptOlderEpochs: true } : {}),
        ...(options.nodes === undefined ? {} : { nodes: options.nodes }),
        ...(options.faults === undefined ? {} : { faults: options.faults }),
        ...(single
          ? {
              onProgress: (answered: number, total: number) =>
                progress.show(`seed ${seed}: ${answered}/${total} operations answered`),
            }
          : {}),
      });
      runsDone++;
      const failed = result.anomalies.length > 0;
      if (failed) runsFailed++;
      const historyFile =
        failed || options.historyOf === 'all' ? writeHistory(options, result) : null;
      progress.clear();
      if (single) {
        output.stdout.write(formatRun(result, options, historyFile));
        return failed ? 1 : 0;
      }
      tallyOutcomes(result.history, tally);
      for (const fault of result.injected) {
        injectedByKind.set(fault.kind, (injectedByKind.get(fault.kind) ?? 0) + 1);
      }
      if (!options.quiet || failed) output.stdout.write(runLine(result));
      if (failed) {
        output.stdout.write(formatAnomalies(result).replace(/^(?=.)/gm, '  '));
        output.stdout.write(`  history: ${historyFile}\n`);
        output.stdout.write(`  replay: ${replayCommand(seed, configuration, options)}\n`);
      }
      progress.show(
        `seeds ${options.firstSeed}..${options.lastSeed}: ${runsDone}/${runsTotal} runs, ${runsFailed} failed`,
      );
    }
  }
  progress.clear();
  const seconds = ((performance.now() - startedAtMs) / 1000).toFixed(1);
  let text =
    `ringkv sim: ${runsDone} runs (seeds ${options.firstSeed}..${options.lastSeed}, ` +
    `${options.configurations.join(', ')}) in ${seconds} s: ${runsDone - runsFailed} passed, ${runsFailed} failed\n`;
  if (!options.quiet) {
    text += outcomeTable(tally);
    const injected = FAULT_KIND_NAMES.filter((kind) => injectedByKind.has(kind)).map(
      (kind) => `${kind} ${injectedByKind.get(kind)}`,
    );
    text += `fault events: ${injected.length === 0 ? 'none' : injected.join(', ')}\n`;
    if (options.historyOf === 'all') text += `histories: ${options.historyDirectory}\n`;
  }
  output.stdout.write(text);
  return runsFailed > 0 ? 1 : 0;
}

export function simCommand(argv: string[]): number {
  const options = parseSimOptions(argv);
  if (options === 'help') {
    process.stdout.write(SIM_HELP);
    return 0;
  }
  return runSim(options, { stdout: process.stdout, stderr: process.stderr });
}
