// Simulator at scale: how fast and how big the deterministic simulator is with many nodes.
// Two scenarios, each run in a fresh process so that one run's memory does not count in the
// next, with the same seed in every run: the simulated work is identical from run to run
// (the benchmark checks it), and only wall time and memory vary.
//
// - cluster: a ClusterWorld of real core Nodes (default 100, keyspace default N=3 R=2 W=2)
//   forms, then a workload of 200 concurrent clients runs (default 100,000 operations over
//   uniform keys, 30% reads). Every operation must complete; outcomes are counted.
// - swim: a SwimWorld of SWIM detectors alone (default 1,000). Membership comes from the
//   cluster map, so every member starts holding the others alive; the cluster converges when
//   one full probe round (every member has pinged every other once) ends with every member
//   still holding every other alive. Then one member crashes, and the phase ends when every
//   live member holds it down.
//
// Wall time comes from performance.now; memory is process RSS and V8's heap used, sampled
// every SAMPLE_EVERY_EVENTS events, plus the heap still used after a forced GC at the end
// (world alive) when Node runs with --expose-gc, which the npm script passes.
// Usage: npm run bench:sim-scale [-- --nodes N --operations N --swim-nodes N --runs K
//          --seed S --output FILE]

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { assert } from '../src/core/bytes.ts';
import { Prng } from '../src/core/prng.ts';
import { DEFAULT_SWIM_CONFIG, detectionBoundMs } from '../src/core/swim/swim.ts';
import { ClusterWorld, type ClusterWorldOptions } from '../src/sim/cluster-world.ts';
import { SwimWorld } from '../src/sim/swim-world.ts';
import { runWorkload, type WorkloadOptions } from '../src/sim/workload.ts';
import { firstLine, machine, writeBenchmarkSection } from './benchmarks-file.ts';

const SAMPLE_EVERY_EVENTS = 20_000;
const MEBIBYTE = 2 ** 20;

// --- the cluster scenario ---

export interface ClusterScaleOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly operations: number;
  readonly clients: number;
  readonly keys: number;
  readonly readFraction: number;
}

export const CLUSTER_DEFAULTS: Omit<ClusterScaleOptions, 'seed' | 'nodeCount' | 'operations'> = {
  clients: 200,
  keys: 10_000,
  readFraction: 0.3,
};
const THINK_MS_MAX = 10;
const CLIENT_TIMEOUT_MS = 2_000;
const FORMATION_TIMEOUT_MS = 60_000;

export interface ClusterScaleResult {
  readonly nodeCount: number;
  readonly partitionCount: number;
  readonly operations: number;
  readonly reads: number;
  readonly writes: number;
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
  readonly formationWallMs: number;
  readonly formationCpuMs: number;
  readonly formationVirtualMs: number;
  readonly formationEvents: number;
  readonly workloadWallMs: number;
  /** CPU time of the process (user and system, GC threads included) during the workload. */
  readonly workloadCpuMs: number;
  readonly workloadVirtualMs: number;
  readonly workloadEvents: number;
  readonly messagesSent: number;
  readonly messagesDropped: number;
  readonly rssBytesMax: number;
  readonly heapUsedBytesMax: number;
  /** Heap used after a forced GC with the world still alive; null without --expose-gc. */
  readonly heapUsedBytesAfterGc: number | null;
}

/**
 * A ClusterWorld that counts the events it handles. `runUntil` asks its predicate once before
 * each event, and once more at the end (twice when time runs out first), so the count of
 * questions gives the count of events exactly for predicates that do not read the clock,
 * which is true of every predicate this benchmark and the workload pass.
 */
class CountingClusterWorld extends ClusterWorld {
  eventsHandled = 0;
  private readonly onEvent: () => void;

  constructor(options: ClusterWorldOptions, onEvent: () => void) {
    super(options);
    this.onEvent = onEvent;
  }

  override runUntil(done: () => boolean, timeoutMs: number): boolean {
    let questions = 0;
    const reached = super.runUntil(() => {
      questions++;
      this.onEvent();
      return done();
    }, timeoutMs);
    const handled = questions - (reached ? 1 : 2);
    assert(handled >= 0, 'at least as many questions as events');
    this.eventsHandled += handled;
    return reached;
  }
}

/** Partitions: DESIGN's default of 256, more only when the nodes outnumber them. */
function partitionCountFor(nodeCount: number): number {
  let partitionCount = 256;
  while (partitionCount < nodeCount) partitionCount *= 2;
  return partitionCount;
}

export function runClusterScale(options: ClusterScaleOptions): ClusterScaleResult {
  assert(options.nodeCount >= 3, 'keyspace default needs three replicas');
  assert(options.operations >= 1 && options.clients >= 1, 'a workload has work');
  const memory = new MemoryPeaks();
  const partitionCount = partitionCountFor(options.nodeCount);
  const formationStart = startClocks();
  const world = new CountingClusterWorld(
    { seed: options.seed, nodeCount: options.nodeCount, partitionCount },
    () => memory.onEvent(),
  );
  const virtualStartMs = world.nowMs;
  if (!world.waitFormed(FORMATION_TIMEOUT_MS)) {
    throw new Error(`seed ${options.seed}: ${options.nodeCount} nodes did not form in time`);
  }
  const formation = elapsedSince(formationStart);
  const formationVirtualMs = world.nowMs - virtualStartMs;
  const formationEvents = world.eventsHandled;

  const workload: WorkloadOptions = {
    seed: options.seed,
    clients: options.clients,
    operations: options.operations,
    keys: options.keys,
    distribution: 'uniform',
    keyspace: 'default',
    readFraction: options.readFraction,
    deleteFraction: 0,
    thinkMsMax: THINK_MS_MAX,
    timeoutMs: CLIENT_TIMEOUT_MS,
  };
  const workloadStart = startClocks();
  const workloadVirtualStartMs = world.nowMs;
  const history = runWorkload(world, workload);
  const workloadElapsed = elapsedSince(workloadStart);
  memory.sample();

  let ok = 0;
  let failed = 0;
  let reads = 0;
  for (const operation of history) {
    if (operation.outcome === 'ok') ok++;
    if (operation.outcome === 'failed') failed++;
    if (operation.op === 'get') reads++;
  }
  assert(history.length === options.operations, 'every operation is in the history');
  return {
    nodeCount: options.nodeCount,
    partitionCount,
    operations: history.length,
    reads,
    writes: history.length - reads,
    ok,
    failed,
    unknown: history.length - ok - failed,
    formationWallMs: formation.wallMs,
    formationCpuMs: formation.cpuMs,
    formationVirtualMs,
    formationEvents,
    workloadWallMs: workloadElapsed.wallMs,
    workloadCpuMs: workloadElapsed.cpuMs,
    workloadVirtualMs: world.nowMs - workloadVirtualStartMs,
    workloadEvents: world.eventsHandled - formationEvents,
    messagesSent: world.messagesSent,
    messagesDropped: world.messagesDropped,
    rssBytesMax: memory.rssBytesMax,
    heapUsedBytesMax: memory.heapUsedBytesMax,
    heapUsedBytesAfterGc: heapUsedAfterGc(world),
  };
}

// --- the SWIM scenario ---

export interface SwimScaleOptions {
  readonly seed: number;
  readonly memberCount: number;
}

/** A LAN: 1-20 ms one way, no loss; each member ticks at the config's longest interval. */
const SWIM_DELAY_MS_MIN = 1;
const SWIM_DELAY_MS_MAX = 20;

export interface SwimPhase {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly virtualMs: number;
  readonly events: number;
  readonly messages: number;
}

export interface SwimScaleResult {
  readonly memberCount: number;
  /** Building the world: one Swim instance per member, each holding every other. */
  readonly buildWallMs: number;
  readonly buildCpuMs: number;
  readonly converge: SwimPhase;
  /** After one full probe round: does every member hold every other alive? */
  readonly aliveEverywhere: boolean;
  /** Transitions away from alive about members that never crashed, over both phases. */
  readonly falseSuspicions: number;
  readonly crashed: string;
  readonly detect: SwimPhase;
  /** From the crash to the first suspicion and the first down anywhere. */
  readonly firstSuspectAfterMs: number | null;
  readonly firstDownAfterMs: number | null;
  /** How many live members hold the crashed one down at the end (all: memberCount - 1). */
  readonly downHolders: number;
  readonly rssBytesMax: number;
  readonly heapUsedBytesMax: number;
  readonly heapUsedBytesAfterGc: number | null;
}

export function runSwimScale(options: SwimScaleOptions): SwimScaleResult {
  assert(options.memberCount >= 3, 'a crash leaves at least two members to notice it');
  const config = DEFAULT_SWIM_CONFIG;
  const memory = new MemoryPeaks();
  const buildStart = startClocks();
  const world = new SwimWorld({
    seed: options.seed,
    memberCount: options.memberCount,
    config,
    delayMsMin: SWIM_DELAY_MS_MIN,
    delayMsMax: SWIM_DELAY_MS_MAX,
    lossProbability: 0,
    tickIntervalMs: config.tickIntervalMsMax,
  });
  const build = elapsedSince(buildStart);
  memory.sample();

  // A member's first probe starts at its first tick, within one tick interval; its round
  // holds the other M - 1 members, one per period, and the last probe is judged at the first
  // tick after its period ends.
  const counter = { events: 0 };
  const countEvent = (): boolean => {
    counter.events++;
    memory.onEvent();
    return false;
  };
  const roundMs = (options.memberCount - 1) * config.probeIntervalMs + 2 * config.tickIntervalMsMax;
  const converge = measurePhase(world, counter, () => world.run(world.nowMs + roundMs, countEvent));
  const aliveEverywhere = world.ids.every((observer) =>
    world.ids.every((id) => world.swim(observer).liveness(id) === 'alive'),
  );

  const crashed = world.ids[new Prng(options.seed).below(options.memberCount)]!;
  const crashedAtMs = world.nowMs;
  world.crash(crashed);
  // Who holds the crashed member down now; a later transition back would remove it.
  const downHolders = new Set<string>();
  let scanned = world.changes.length;
  let firstSuspectAtMs: number | null = null;
  let firstDownAtMs: number | null = null;
  const everyoneHoldsDown = (): boolean => {
    countEvent();
    while (scanned < world.changes.length) {
      const change = world.changes[scanned++]!;
      if (change.id !== crashed) continue;
      if (change.liveness === 'suspect') firstSuspectAtMs ??= change.atMs;
      if (change.liveness === 'down') {
        firstDownAtMs ??= change.atMs;
        downHolders.add(change.observer);
      } else {
        downHolders.delete(change.observer);
      }
    }
    return downHolders.size === options.memberCount - 1;
  };
  const detectTimeoutMs = detectionBoundMs(config, options.memberCount) + roundMs;
  const detect = measurePhase(world, counter, () =>
    world.run(world.nowMs + detectTimeoutMs, everyoneHoldsDown),
  );
  assert(
    downHolders.size < options.memberCount - 1 || world.everyLiveMemberHolds(crashed, 'down'),
    'the changes seen agree with what the members hold',
  );
  memory.sample();
  const falseSuspicions = world.changes.filter(
    (change) => change.id !== crashed && change.liveness !== 'alive',
  ).length;
  return {
    memberCount: options.memberCount,
    buildWallMs: build.wallMs,
    buildCpuMs: build.cpuMs,
    converge,
    aliveEverywhere,
    falseSuspicions,
    crashed,
    detect,
    firstSuspectAfterMs: firstSuspectAtMs === null ? null : firstSuspectAtMs - crashedAtMs,
    firstDownAfterMs: firstDownAtMs === null ? null : firstDownAtMs - crashedAtMs,
    downHolders: downHolders.size,
    rssBytesMax: memory.rssBytesMax,
    heapUsedBytesMax: memory.heapUsedBytesMax,
    heapUsedBytesAfterGc: heapUsedAfterGc(world),
  };
}

/** Runs `body` and measures what it took; `counter` counts the events it handles. */
function measurePhase(
  world: SwimWorld,
  counter: { readonly events: number },
  body: () => void,
): SwimPhase {
  const eventsBefore = counter.events;
  const messagesBefore = world.messagesSent;
  const virtualStartMs = world.nowMs;
  const start = startClocks();
  body();
  const { wallMs, cpuMs } = elapsedSince(start);
  return {
    wallMs,
    cpuMs,
    virtualMs: world.nowMs - virtualStartMs,
    events: counter.events - eventsBefore,
    messages: world.messagesSent - messagesBefore,
  };
}

// --- time and memory ---

interface Clocks {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/**
 * Wall time and the process's CPU time. Other work on the machine stretches wall time but
 * not CPU time; CPU time includes V8's helper threads (concurrent marking), so it can exceed
 * wall time on an idle machine.
 */
function startClocks(): Clocks {
  const cpu = process.cpuUsage();
  return { wallMs: performance.now(), cpuMs: (cpu.user + cpu.system) / 1000 };
}

function elapsedSince(start: Clocks): Clocks {
  const now = startClocks();
  return { wallMs: now.wallMs - start.wallMs, cpuMs: now.cpuMs - start.cpuMs };
}

/** Peaks of RSS and heap used, sampled every SAMPLE_EVERY_EVENTS events. */
class MemoryPeaks {
  rssBytesMax = 0;
  heapUsedBytesMax = 0;
  private eventsToSample = SAMPLE_EVERY_EVENTS;

  onEvent(): void {
    if (--this.eventsToSample > 0) return;
    this.eventsToSample = SAMPLE_EVERY_EVENTS;
    this.sample();
  }

  sample(): void {
    const usage = process.memoryUsage();
    this.rssBytesMax = Math.max(this.rssBytesMax, usage.rss);
    this.heapUsedBytesMax = Math.max(this.heapUsedBytesMax, usage.heapUsed);
  }
}

/** `world` is passed only to keep it reachable through the collection. */
function heapUsedAfterGc(world: object): number | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return null;
  gc();
  const heapUsed = process.memoryUsage().heapUsed;
  assert(world !== null, 'the world is still alive while measured');
  return heapUsed;
}

// --- running, one process per run ---

type Scenario = 'cluster' | 'swim';

interface Settings {
  readonly nodeCount: number;
  readonly operations: number;
  readonly swimMemberCount: number;
  readonly runs: number;
  readonly seed: number;
  readonly output: string;
}

function parseSettings(): { settings: Settings; child: Scenario | null } {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '100' },
      operations: { type: 'string', default: '100000' },
      'swim-nodes': { type: 'string', default: '1000' },
      runs: { type: 'string', default: '3' },
      seed: { type: 'string', default: '1' },
      output: { type: 'string', default: 'BENCHMARKS.md' },
      /** Internal: run one scenario once and print its result as JSON. */
      child: { type: 'string' },
    },
  });
  const settings: Settings = {
    nodeCount: Number(values.nodes),
    operations: Number(values.operations),
    swimMemberCount: Number(values['swim-nodes']),
    runs: Number(values.runs),
    seed: Number(values.seed),
    output: values.output,
  };
  for (const [name, value] of [
    ['nodes', settings.nodeCount],
    ['operations', settings.operations],
    ['swim-nodes', settings.swimMemberCount],
    ['runs', settings.runs],
  ] as const) {
    if (!(Number.isSafeInteger(value) && value > 0)) throw new Error(`--${name} must be > 0`);
  }
  if (!Number.isSafeInteger(settings.seed)) throw new Error('--seed must be an integer');
  const child = values.child;
  if (child !== undefined && child !== 'cluster' && child !== 'swim') {
    throw new Error(`--child: unknown scenario '${child}'`);
  }
  return { settings, child: child ?? null };
}

function runScenario(scenario: Scenario, settings: Settings): ClusterScaleResult | SwimScaleResult {
  return scenario === 'cluster'
    ? runClusterScale({
        seed: settings.seed,
        nodeCount: settings.nodeCount,
        operations: settings.operations,
        ...CLUSTER_DEFAULTS,
      })
    : runSwimScale({ seed: settings.seed, memberCount: settings.swimMemberCount });
}

/** Runs one scenario in a fresh Node process (with GC exposed) and reads its result. */
function runInChild(scenario: Scenario, settings: Settings): unknown {
  const execArgv = process.execArgv.includes('--expose-gc')
    ? process.execArgv
    : [...process.execArgv, '--expose-gc'];
  const result = spawnSync(
    process.execPath,
    [
      ...execArgv,
      import.meta.filename,
      '--child',
      scenario,
      '--nodes',
      String(settings.nodeCount),
      '--operations',
      String(settings.operations),
      '--swim-nodes',
      String(settings.swimMemberCount),
      '--seed',
      String(settings.seed),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 * MEBIBYTE },
  );
  if (result.status !== 0) {
    throw new Error(`the ${scenario} run failed (exit ${result.status ?? result.signal})`);
  }
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The simulated figures of every run must be equal: the same seed, the same work. */
function sameEverywhere<T>(runs: readonly T[], pick: (run: T) => unknown, what: string): void {
  const first = JSON.stringify(pick(runs[0]!));
  for (const run of runs) {
    if (JSON.stringify(pick(run)) !== first) {
      throw new Error(`${what} differ between runs of one seed: the simulation is not replayable`);
    }
  }
}

const seconds = (ms: number | null): string =>
  ms === null ? 'never' : (ms / 1000).toFixed(ms < 10_000 ? 2 : 1);
const whole = (value: number): string => Math.round(value).toLocaleString('en-US');
const mebibytes = (bytes: number | null): string =>
  bytes === null ? 'n/a' : (bytes / MEBIBYTE).toFixed(0);
const medianOf = <T>(runs: readonly T[], pick: (run: T) => number | null): number | null => {
  const values = runs.map(pick);
  return values.some((value) => value === null) ? null : median(values as number[]);
};

function clusterTable(runs: readonly ClusterScaleResult[]): string {
  sameEverywhere(
    runs,
    (run) => [run.formationVirtualMs, run.workloadVirtualMs, run.workloadEvents, run.ok],
    'cluster figures',
  );
  const run = runs[0]!;
  const medianMs = (pick: (result: ClusterScaleResult) => number): number => median(runs.map(pick));
  const wallMs = medianMs((result) => result.workloadWallMs);
  const cpuMs = medianMs((result) => result.workloadCpuMs);
  const perSecond = (count: number, ms: number): string => whole((count * 1000) / ms);
  let table = `### ClusterWorld: ${run.nodeCount} nodes\n\n`;
  table += `Real core Nodes over the in-memory engine, ${run.partitionCount} partitions, keyspace `;
  table += `default (N=3 R=2 W=2), network delay 1-5 ms, commit 1-4 ms, no faults. Workload: `;
  table += `${CLUSTER_DEFAULTS.clients} clients, ${whole(run.operations)} operations over `;
  table += `${whole(CLUSTER_DEFAULTS.keys)} uniform keys, ${Math.round(CLUSTER_DEFAULTS.readFraction * 100)}% `;
  table += `reads and the rest puts (plain SETs: one conditional put round trip each), think time up to `;
  table += `${THINK_MS_MAX} ms, client timeout ${CLIENT_TIMEOUT_MS} ms.\n\n`;
  table += `| measure | value |\n| --- | ---: |\n`;
  table += `| formation: virtual ms / events / wall s | ${whole(run.formationVirtualMs)} / ${whole(run.formationEvents)} / ${seconds(medianMs((result) => result.formationWallMs))} |\n`;
  table += `| operations: reads / writes | ${whole(run.reads)} / ${whole(run.writes)} |\n`;
  table += `| outcomes: ok / failed / unknown (every run) | ${whole(run.ok)} / ${whole(run.failed)} / ${whole(run.unknown)} |\n`;
  table += `| workload: wall s / CPU s | ${seconds(wallMs)} / ${seconds(cpuMs)} |\n`;
  table += `| operations per wall second / per CPU second | ${perSecond(run.operations, wallMs)} / ${perSecond(run.operations, cpuMs)} |\n`;
  table += `| virtual time simulated, s | ${seconds(run.workloadVirtualMs)} |\n`;
  table += `| events handled | ${whole(run.workloadEvents)} |\n`;
  table += `| events per wall second / per CPU second | ${perSecond(run.workloadEvents, wallMs)} / ${perSecond(run.workloadEvents, cpuMs)} |\n`;
  table += `| messages sent (formation included) | ${whole(run.messagesSent)} |\n`;
  table += `| peak RSS, MiB | ${mebibytes(medianOf(runs, (result) => result.rssBytesMax))} |\n`;
  table += `| peak heap used, MiB | ${mebibytes(medianOf(runs, (result) => result.heapUsedBytesMax))} |\n`;
  table += `| heap used after GC at the end, MiB | ${mebibytes(medianOf(runs, (result) => result.heapUsedBytesAfterGc))} |\n`;
  return table;
}

function swimTable(runs: readonly SwimScaleResult[]): string {
  sameEverywhere(
    runs,
    (run) => [run.converge.events, run.detect.events, run.detect.virtualMs, run.crashed],
    'SWIM figures',
  );
  const run = runs[0]!;
  const medianMs = (pick: (result: SwimScaleResult) => number): number => median(runs.map(pick));
  const config = DEFAULT_SWIM_CONFIG;
  let table = `### SwimWorld: ${run.memberCount} members\n\n`;
  table += `SWIM alone with the default settings (probe every ${config.probeIntervalMs} ms, timeout `;
  table += `${config.probeTimeoutMs} ms, k=${config.indirectProbes}, suspicion ${config.suspicionTimeoutMs} ms, `;
  table += `a tick every ${config.tickIntervalMsMax} ms), network delay ${SWIM_DELAY_MS_MIN}-${SWIM_DELAY_MS_MAX} ms, no loss. `;
  table += `Every member starts holding the others alive (membership comes from the cluster map); `;
  table += `converging is one full probe round, after which every member still holds every other alive `;
  table += `(${run.aliveEverywhere ? 'it does' : 'it does NOT'}; false suspicions in the whole run: ${run.falseSuspicions}). `;
  table += `Then ${run.crashed} crashes; the first suspicion of it came ${seconds(run.firstSuspectAfterMs)} s `;
  table += `and the first down ${seconds(run.firstDownAfterMs)} s after the crash, and `;
  table += `${whole(run.downHolders)} of ${whole(run.memberCount - 1)} live members hold it down at the end.\n\n`;
  table += `| phase | wall s | CPU s | virtual s | events | messages | events per CPU second |\n`;
  table += `| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`;
  table += `| build ${whole(run.memberCount)} Swim instances | ${seconds(medianMs((result) => result.buildWallMs))} | `;
  table += `${seconds(medianMs((result) => result.buildCpuMs))} | 0 | 0 | 0 | |\n`;
  for (const [name, pick] of [
    ['converge: one full probe round', (result: SwimScaleResult) => result.converge],
    [`detect: from the crash to down everywhere`, (result: SwimScaleResult) => result.detect],
  ] as const) {
    const phase = pick(run);
    const cpuMs = medianMs((result) => pick(result).cpuMs);
    table += `| ${name} | ${seconds(medianMs((result) => pick(result).wallMs))} | ${seconds(cpuMs)} | `;
    table += `${seconds(phase.virtualMs)} | ${whole(phase.events)} | ${whole(phase.messages)} | `;
    table += `${whole((phase.events * 1000) / cpuMs)} |\n`;
  }
  table += `\nPeak RSS ${mebibytes(medianOf(runs, (result) => result.rssBytesMax))} MiB, peak heap used `;
  table += `${mebibytes(medianOf(runs, (result) => result.heapUsedBytesMax))} MiB, heap used after GC at the end `;
  table += `${mebibytes(medianOf(runs, (result) => result.heapUsedBytesAfterGc))} MiB.\n`;
  return table;
}

async function main(): Promise<void> {
  const { settings, child } = parseSettings();
  if (child !== null) {
    process.stdout.write(`${JSON.stringify(runScenario(child, settings))}\n`);
    return;
  }
  const clusterRuns: ClusterScaleResult[] = [];
  const swimRuns: SwimScaleResult[] = [];
  for (let run = 1; run <= settings.runs; run++) {
    process.stderr.write(`run ${run}/${settings.runs}: cluster of ${settings.nodeCount} nodes\n`);
    clusterRuns.push(runInChild('cluster', settings) as ClusterScaleResult);
    process.stderr.write(`run ${run}/${settings.runs}: SWIM with ${settings.swimMemberCount}\n`);
    swimRuns.push(runInChild('swim', settings) as SwimScaleResult);
  }
  const incomplete = clusterRuns.some((run) => run.ok + run.failed !== run.operations);
  const packageVersion = (
    JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const commit = firstLine('git', ['-C', import.meta.dirname, 'rev-parse', '--short', 'HEAD']);
  let table = `## Simulator at scale\n\n`;
  table += `Command: \`npm run bench:sim-scale -- --nodes ${settings.nodeCount} --operations ${settings.operations} `;
  table += `--swim-nodes ${settings.swimMemberCount} --runs ${settings.runs} --seed ${settings.seed}\`  \n`;
  table += `Machine: ${machine()}  \n`;
  table += `Date: ${new Date().toISOString().slice(0, 10)}; Node ${process.version}; ringkv ${packageVersion} (${commit})  \n`;
  table += `Each run is a fresh process with the same seed, so every simulated figure (virtual time, `;
  table += `events, messages, outcomes) is the same in every run (checked); wall times and memory are `;
  table += `medians of ${settings.runs} runs. CPU time is the process's (user and system, V8's helper `;
  table += `threads included): unlike wall time, it does not stretch when other work shares the machine. Memory is the process's RSS and V8's heap used, sampled every `;
  table += `${whole(SAMPLE_EVERY_EVENTS)} events, and the heap still used after a forced GC at the end, `;
  table += `with the world alive.\n\n`;
  table += `${clusterTable(clusterRuns)}\n${swimTable(swimRuns)}`;
  process.stdout.write(table);
  if (
    incomplete ||
    swimRuns.some((run) => !run.aliveEverywhere || run.downHolders !== run.memberCount - 1)
  ) {
    process.stderr.write(`a run did not complete its work: ${settings.output} is left as it was\n`);
    process.exitCode = 1;
    return;
  }
  writeBenchmarkSection(
    path.resolve(import.meta.dirname, '..', settings.output),
    'sim-scale',
    table,
  );
}

if (import.meta.main) await main();
