// Strong-keyspace benchmark: a 3-node ringkv cluster with a strong keyspace (CASPaxos per
// key, N=3, durable) against a 3-member etcd cluster, both on loopback on this machine with
// data in a temporary directory, driven by the same load generator (src/loadgen/) with 50
// requests in flight. Three workloads: puts, linearizable gets (etcd: Range with
// serializable false) and `cas`, a read-increment-compare-and-set loop on a counter per
// client (etcd: a transaction on the mod revision). ringkv is measured through its
// TypeScript client over HTTP and over RESP. Targets alternate within each run, and each
// figure is the median over the runs.
//
// Then the outage: under puts with 50 in flight, one node is killed (SIGKILL) and the
// longest interval in the next 10 s in which no request succeeded is measured, against the
// longest one of the same steady load before the kill. ringkv loses a node (a different one
// each run); etcd loses a follower in one variant and its leader (found through the
// maintenance Status API) in the other. Each outage run starts fresh clusters.
//
// The tables go to stdout and, when every target ran, into BENCHMARKS.md (replacing the
// section it wrote before). Every process started here is stopped by its PID at the end,
// or on Ctrl-C.
//
// Needs etcd (Debian: apt-get install etcd-server).
// Usage: npm run bench:strong [-- --requests N --keys N --runs K --outage-runs K
//          --targets client,client-resp,etcd]

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import type { Transport } from '../src/client/index.ts';
import { planNodes, startLaunch, type NodePlan } from '../src/cli/commands/dev.ts';
import {
  measureOutage,
  parseEndpoints,
  runLoad,
  type LoadResult,
  type LoadTarget,
  type OutageResult,
  type WorkloadName,
  type WorkloadSpec,
} from '../src/loadgen/index.ts';
import { openEtcdTarget } from '../src/loadgen/targets/etcd-target.ts';
import { openRingkvClientTarget } from '../src/loadgen/targets/ringkv-client-target.ts';
import { firstLine, machine, writeBenchmarkSection } from './benchmarks-file.ts';

const CONCURRENCY = 50;
const VALUE_BYTES = 100;
const NODE_COUNT = 3;
const KEYSPACE = 'strong';
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
/** The outage: steady load before the kill (the first second left out), the window after. */
const OUTAGE_BEFORE_MS = 11_000;
const OUTAGE_WARMUP_MS = 1_000;
const OUTAGE_AFTER_MS = 10_000;
/** Throughput targets of the issue: ops/s at least this times etcd's, p99 no higher. */
const THROUGHPUT_RATIO_TARGET = 2;
const WORKLOADS = ['puts', 'gets', 'cas'] as const satisfies readonly WorkloadName[];
type StrongWorkload = (typeof WORKLOADS)[number];
const projectRoot = path.resolve(import.meta.dirname, '..');

type TargetName = 'ringkv client' | 'ringkv client (RESP)' | 'etcd';
interface BenchTarget {
  readonly name: TargetName;
  readonly system: 'ringkv' | 'etcd';
  readonly transport?: Transport;
}
export const TARGET_OF: Readonly<Record<string, BenchTarget>> = {
  client: { name: 'ringkv client', system: 'ringkv', transport: 'http' },
  'client-resp': { name: 'ringkv client (RESP)', system: 'ringkv', transport: 'resp' },
  etcd: { name: 'etcd', system: 'etcd' },
};

/** One target's figures for one workload in one run. */
export interface Cell {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly errors: number;
  /** `cas`: compare-and-sets refused and tried again. */
  readonly retries: number;
  /** `cas`: counters whose final value showed a lost or doubled increment. */
  readonly mismatches: number;
}

export interface OutageRow {
  readonly system: string;
  /** Which node was cut in each run, e.g. `node2` or `etcd1 (leader)`. */
  readonly cut: readonly string[];
  readonly runs: readonly OutageResult[];
}

function cellOf(result: LoadResult): Cell {
  const count = (errors: Readonly<Record<string, number>>): number =>
    Object.values(errors).reduce((sum, value) => sum + value, 0);
  return {
    opsPerSecond: result.opsPerSecond,
    p50Ms: result.latency.p50Us / 1000,
    p99Ms: result.latency.p99Us / 1000,
    p999Ms: result.latency.p999Us / 1000,
    errors: count(result.errors) + count(result.load?.errors ?? {}),
    retries: result.retries,
    mismatches: result.casCheck?.mismatches ?? 0,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('the median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Medians of each figure over the runs; errors, retries and mismatches are summed. */
export function medianCell(runs: readonly Cell[]): Cell {
  return {
    opsPerSecond: median(runs.map((cell) => cell.opsPerSecond)),
    p50Ms: median(runs.map((cell) => cell.p50Ms)),
    p99Ms: median(runs.map((cell) => cell.p99Ms)),
    p999Ms: median(runs.map((cell) => cell.p999Ms)),
    errors: runs.reduce((sum, cell) => sum + cell.errors, 0),
    retries: runs.reduce((sum, cell) => sum + cell.retries, 0),
    mismatches: runs.reduce((sum, cell) => sum + cell.mismatches, 0),
  };
}

function formatMs(value: number): string {
  return value >= 100 ? String(Math.round(value)) : value.toFixed(value >= 10 ? 1 : 2);
}

/**
 * The throughput table: one row per workload and target, with the ratios against etcd and
 * whether the issue's targets hold (ops/s at least 2x etcd's, p99 no higher).
 */
export function throughputTable(
  cells: ReadonlyMap<string, readonly Cell[]>,
  targets: readonly TargetName[],
): string {
  let table = `| workload | target | ops/s | p50 | p99 | p999 | errors | retries | ops/s vs etcd | p99 vs etcd | target (≥ ${THROUGHPUT_RATIO_TARGET}x, p99 ≤ etcd) |\n`;
  table += `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n`;
  for (const workload of WORKLOADS) {
    const etcdRuns = cells.get(`etcd|${workload}`);
    const etcd = etcdRuns === undefined ? undefined : medianCell(etcdRuns);
    for (const name of targets) {
      const runs = cells.get(`${name}|${workload}`);
      if (runs === undefined) continue;
      const cell = medianCell(runs);
      let ratio = 'n/a';
      let p99Ratio = 'n/a';
      let verdict = 'n/a';
      if (etcd !== undefined && name !== 'etcd') {
        const throughput = cell.opsPerSecond / etcd.opsPerSecond;
        ratio = `${throughput.toFixed(2)}x`;
        p99Ratio = `${(cell.p99Ms / etcd.p99Ms).toFixed(2)}x`;
        const misses: string[] = [];
        if (throughput < THROUGHPUT_RATIO_TARGET) misses.push('throughput');
        if (cell.p99Ms > etcd.p99Ms) misses.push('p99');
        verdict = misses.length === 0 ? 'met' : `missed: ${misses.join(', ')}`;
      } else if (name === 'etcd') {
        ratio = '1.00x';
        p99Ratio = '1.00x';
        verdict = 'baseline';
      }
      const retries = workload === 'cas' ? String(cell.retries) : '';
      const mismatches = cell.mismatches > 0 ? ` (${cell.mismatches} lost updates!)` : '';
      table += `| ${workload} | ${name} | ${Math.round(cell.opsPerSecond)} | ${formatMs(cell.p50Ms)} | `;
      table += `${formatMs(cell.p99Ms)} | ${formatMs(cell.p999Ms)} | ${cell.errors}${mismatches} | `;
      table += `${retries} | ${ratio} | ${p99Ratio} | ${verdict} |\n`;
    }
  }
  return table;
}

/**
 * How much longer than the steady load's silence the one after a kill may be and still be
 * called no gap: on a machine of two shared cores, garbage collection and other work stall
 * every process now and then, and the longest stall of a 10 s window varies by 2x or more
 * from run to run.
 */
const GAP_NOISE_FACTOR = 2;

/**
 * The outage table: per system and variant, first what the kill itself costs (the longest
 * silence in the second after it, against the longest silence of each second of the steady
 * load before it: a gap only if it is longer than the worst steady second), then the longest
 * silence of the whole 10 s after the kill against the 10 s before (a gap only when over
 * GAP_NOISE_FACTOR times the one before; where it began tells whether the kill caused it).
 * Each figure is a median over the runs, with the runs after it.
 */
export function outageTable(rows: readonly OutageRow[]): string {
  let table = `| system | node killed, by run | silence in the second after the kill, ms | `;
  table += `steady seconds before, ms: longest silence, median second / worst second | gap at the kill | `;
  table += `longest silence in the 10 s after, ms (began at +ms) | longest silence in the 10 s before, ms | `;
  table += `ops/s before / after | failed requests after | gap over 10 s |\n`;
  table += `| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |\n`;
  const list = (values: number[]): string => values.map((value) => formatMs(value)).join(', ');
  const withRuns = (values: number[]): string => `${formatMs(median(values))} (${list(values)})`;
  for (const row of rows) {
    const cutSecond = row.runs.map((run) => run.cutSecondSilenceMs);
    const medianSecond = row.runs.map((run) => median([...run.steadySecondSilencesMs]));
    const worstSecond = row.runs.map((run) => Math.max(...run.steadySecondSilencesMs));
    const killGap =
      median(cutSecond) <= median(worstSecond)
        ? 'none'
        : `${formatMs(median(cutSecond) - median(worstSecond))} ms more`;
    const after = row.runs.map((run) => run.longestSilenceMs);
    const began = row.runs.map((run) => run.silenceStartMs);
    const before = row.runs.map((run) => run.steadySilenceMs);
    const gap =
      median(after) <= GAP_NOISE_FACTOR * median(before)
        ? 'none'
        : `${formatMs(median(after) - median(before))} ms more`;
    table += `| ${row.system} | ${row.cut.join(', ')} | ${withRuns(cutSecond)} | `;
    table += `${formatMs(median(medianSecond))} / ${formatMs(median(worstSecond))} | ${killGap} | `;
    table += `${formatMs(median(after))} (${after.map((value, index) => `${formatMs(value)} at +${Math.round(began[index]!)}`).join(', ')}) | `;
    table += `${withRuns(before)} | `;
    table += `${Math.round(median(row.runs.map((run) => run.opsPerSecondBefore)))} / `;
    table += `${Math.round(median(row.runs.map((run) => run.opsPerSecondAfter)))} | `;
    table += `${row.runs.map((run) => run.failuresAfter).join(', ')} | ${gap} |\n`;
  }
  return table;
}

// ---------------------------------------------------------------------------------------
// Processes. Everything below runs only as the benchmark's main program.

/** Every process this script started, to stop by PID whatever happens. */
const started: ChildProcess[] = [];
/** Processes asked to stop: their exit is expected, not reported. */
const stopRequested = new WeakSet<ChildProcess>();

function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, a bounded wait, then SIGKILL: by PID, and only for processes started here. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return;
  stopRequested.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid!, 'SIGTERM');
  const inTime = await Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS, false).unref()),
  ]);
  if (!inTime && isRunning(child)) {
    process.stderr.write(`pid ${child.pid} did not stop in time; killing it\n`);
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  }
}

/** The outage's cut: SIGKILL at once, as a crash or a pulled plug would. */
function killNow(child: ChildProcess): void {
  if (!isRunning(child)) throw new Error(`pid ${child.pid} is not running: nothing to cut`);
  stopRequested.add(child);
  process.kill(child.pid!, 'SIGKILL');
}

/** Starts a process whose stderr is kept (its tail is shown if it dies unasked). */
function spawnTracked(
  name: string,
  command: string,
  args: readonly string[],
  environment?: NodeJS.ProcessEnv,
): ChildProcess {
  const child = spawn(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(environment === undefined ? {} : { env: environment }),
  });
  started.push(child);
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  child.once('exit', (code, signal) => {
    if (!stopRequested.has(child)) {
      process.stderr.write(`${name} exited with ${code ?? signal}:\n${log}\n`);
    }
  });
  return child;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port P such that P + offset is free for every offset given. */
async function freeBase(offsets: readonly number[], from: number): Promise<number> {
  for (let base = from; base < 60_000; base += 1000) {
    let free = true;
    for (const offset of offsets) if (!(await portIsFree(base + offset))) free = false;
    if (free) return base;
  }
  throw new Error('no free range of ports');
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what} not ready after ${READY_TIMEOUT_MS} ms`);
}

async function fetchJson(url: string, init: RequestInit = {}): Promise<[number, unknown]> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(2_000) });
  const text = await response.text();
  try {
    return [response.status, JSON.parse(text) as unknown];
  } catch {
    return [response.status, text];
  }
}

interface System {
  readonly name: string;
  /** Member names and processes, in the same order. */
  readonly members: readonly { readonly name: string; readonly process: ChildProcess }[];
  /** host:port of each member's client interface (ringkv: HTTP). */
  readonly endpoints: string;
  readonly stop: () => Promise<void>;
}

async function stopAll(members: System['members']): Promise<void> {
  await Promise.all(members.map((member) => stopProcess(member.process)));
}

/** Three `ringkv start` processes (the layout of `ringkv dev`) and the strong keyspace. */
async function startRingkv(dataDir: string): Promise<System> {
  const offsets = [0, 100, 200].flatMap((offset) =>
    Array.from({ length: NODE_COUNT }, (_, index) => offset + index),
  );
  const basePort = await freeBase(offsets, 21_000);
  const clusterSecret = randomBytes(32).toString('hex');
  const plans: NodePlan[] = planNodes({
    nodeCount: NODE_COUNT,
    basePort,
    dataDir,
    clusterSecret,
    logLevel: 'warn',
  });
  const members = plans.map((plan) => {
    const launch = startLaunch(plan, clusterSecret);
    return {
      name: plan.id,
      process: spawnTracked(plan.id, launch.command, launch.args, launch.environment),
    };
  });
  const system: System = {
    name: 'ringkv',
    members,
    endpoints: plans.map((plan) => `${plan.host}:${plan.httpPort}`).join(','),
    stop: () => stopAll(members),
  };
  try {
    for (const plan of plans) {
      await waitUntil(plan.id, async () => {
        try {
          const [status, body] = await fetchJson(`http://${plan.host}:${plan.httpPort}/v1/cluster`);
          return status === 200 && (body as { state?: unknown }).state === 'ready';
        } catch {
          return false;
        }
      });
    }
    const first = plans[0]!;
    const [status, body] = await fetchJson(`http://${first.host}:${first.httpPort}/v1/keyspaces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: KEYSPACE, consistency: 'strong', n: NODE_COUNT }),
    });
    if (status !== 201) throw new Error(`creating the keyspace: ${status} ${JSON.stringify(body)}`);
    // Every node must know the keyspace before the load starts (404: no such key).
    for (const plan of plans) {
      await waitUntil(`${plan.id} to know keyspace ${KEYSPACE}`, async () => {
        const [probe] = await fetchJson(
          `http://${plan.host}:${plan.httpPort}/v1/kv/${KEYSPACE}/probe`,
        );
        return probe === 404;
      });
    }
  } catch (error) {
    await system.stop();
    throw error;
  }
  return system;
}

/** Three etcd members, each on its own client and peer port. */
async function startEtcd(dataDir: string): Promise<System> {
  // Member k: client port B+k, peer port B+100+k.
  const base = await freeBase([0, 1, 2, 100, 101, 102], 31_000);
  const names = Array.from({ length: NODE_COUNT }, (_, index) => `etcd${index + 1}`);
  const peerUrl = (index: number): string => `http://127.0.0.1:${base + 100 + index}`;
  const clientUrl = (index: number): string => `http://127.0.0.1:${base + index}`;
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',');
  const members = names.map((name, index) => {
    const memberDir = path.join(dataDir, name);
    mkdirSync(memberDir, { recursive: true });
    const args = [
      ['--name', name],
      ['--data-dir', memberDir],
      ['--listen-client-urls', clientUrl(index)],
      ['--advertise-client-urls', clientUrl(index)],
      ['--listen-peer-urls', peerUrl(index)],
      ['--initial-advertise-peer-urls', peerUrl(index)],
      ['--initial-cluster', initialCluster],
      ['--initial-cluster-state', 'new'],
      ['--initial-cluster-token', 'ringkv-bench-strong'],
      ['--log-level', 'warn'],
    ].flat();
    return { name, process: spawnTracked(name, 'etcd', args) };
  });
  const system: System = {
    name: 'etcd',
    members,
    endpoints: names.map((_, index) => `127.0.0.1:${base + index}`).join(','),
    stop: () => stopAll(members),
  };
  try {
    for (let index = 0; index < NODE_COUNT; index++) {
      await waitUntil(names[index]!, async () => {
        try {
          const [, body] = await fetchJson(`${clientUrl(index)}/health`);
          return (body as { health?: string }).health === 'true';
        } catch {
          return false;
        }
      });
    }
  } catch (error) {
    await system.stop();
    throw error;
  }
  return system;
}

/** The index of etcd's leader, by asking each member's maintenance Status whom it follows. */
async function etcdLeaderIndex(system: System): Promise<number> {
  const endpoints = system.endpoints.split(',');
  for (let attempt = 0; attempt < 50; attempt++) {
    const statuses = await Promise.all(
      endpoints.map(async (endpoint) => {
        const client = new Etcd3({ hosts: `http://${endpoint}`, dialTimeout: 2_000 });
        try {
          return await client.maintenance.status();
        } catch {
          return null;
        } finally {
          client.close();
        }
      }),
    );
    const leader = statuses.find((status) => status !== null && status.leader !== '0')?.leader;
    const index = statuses.findIndex((status) => status?.header.member_id === leader);
    if (index !== -1) return index;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('etcd has no leader that its members agree on');
}

function openBenchTarget(target: BenchTarget, system: System): Promise<LoadTarget> {
  const endpoints = parseEndpoints(system.endpoints);
  if (target.system === 'etcd') return openEtcdTarget({ endpoints });
  return openRingkvClientTarget({
    endpoints,
    keyspace: KEYSPACE,
    transport: target.transport ?? 'http',
  });
}

function workloadSpec(name: StrongWorkload, keyCount: number, seed: number): WorkloadSpec {
  return { name, keyCount, distribution: 'uniform', valueBytes: VALUE_BYTES, seed };
}

function reportErrors(result: LoadResult): void {
  for (const [kind, count] of Object.entries(result.errors)) {
    process.stderr.write(`  ${count} × ${kind}: ${result.errorExamples[kind]}\n`);
  }
  if (result.casCheck !== null && result.casCheck.mismatches > 0) {
    process.stderr.write(`  lost or doubled increments: ${result.casCheck.example}\n`);
  }
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      requests: { type: 'string', default: '20000' },
      keys: { type: 'string', default: '10000' },
      runs: { type: 'string', default: '3' },
      'outage-runs': { type: 'string', default: '3' },
      targets: { type: 'string', default: 'client,client-resp,etcd' },
      'outage-transport': { type: 'string', default: 'resp' },
      output: { type: 'string', default: 'BENCHMARKS.md' },
    },
  });
  const requests = Number(flags.requests);
  const keyCount = Number(flags.keys);
  const runs = Number(flags.runs);
  const outageRuns = Number(flags['outage-runs']);
  for (const [name, value, least] of [
    ['requests', requests, 1],
    ['keys', keyCount, 1],
    ['runs', runs, 1],
    ['outage-runs', outageRuns, 0],
  ] as const) {
    if (!(Number.isSafeInteger(value) && value >= least)) {
      throw new Error(`--${name} must be an integer >= ${least}`);
    }
  }
  const outageTransport = flags['outage-transport'];
  if (outageTransport !== 'resp' && outageTransport !== 'http') {
    throw new Error('--outage-transport must be resp or http');
  }
  const chosen = flags.targets.split(',').map((name) => {
    const target = TARGET_OF[name.trim()];
    if (target === undefined) throw new Error(`--targets: unknown target '${name}'`);
    return target;
  });
  if (spawnSync('etcd', ['--version']).error !== undefined) {
    throw new Error('etcd is not on PATH. On Debian: apt-get install etcd-server');
  }
  const loadAtStart = os.loadavg()[0]!;
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-strong-'));
  const systems: System[] = [];
  const cleanUp = async (): Promise<void> => {
    await Promise.all(systems.map((system) => system.stop()));
    await Promise.all(started.map((child) => stopProcess(child)));
    rmSync(workDir, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    process.stderr.write('interrupted: stopping every process started here\n');
    void cleanUp().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let fresh = 0;
  const startFresh = async (kind: 'ringkv' | 'etcd'): Promise<System> => {
    const dir = path.join(workDir, `${kind}-${++fresh}`);
    const system = kind === 'ringkv' ? await startRingkv(dir) : await startEtcd(dir);
    systems.push(system);
    return system;
  };
  const retire = async (system: System): Promise<void> => {
    await system.stop();
    systems.splice(systems.indexOf(system), 1);
  };

  const cells = new Map<string, Cell[]>();
  const outages: OutageRow[] = [];
  try {
    const needs = (system: 'ringkv' | 'etcd'): boolean =>
      chosen.some((target) => target.system === system);
    const ringkv = needs('ringkv') ? await startFresh('ringkv') : null;
    const etcd = needs('etcd') ? await startFresh('etcd') : null;
    for (let run = 0; run < runs; run++) {
      // Rotate the order so that no target always goes first (cold) or last.
      const order = chosen.map((_, index) => chosen[(index + run) % chosen.length]!);
      for (const target of order) {
        const system = target.system === 'etcd' ? etcd! : ringkv!;
        for (const workload of WORKLOADS) {
          process.stderr.write(`run ${run + 1}/${runs}: ${target.name} ${workload}\n`);
          const loadTarget = await openBenchTarget(target, system);
          try {
            const result = await runLoad(loadTarget, {
              workload: workloadSpec(workload, keyCount, run + 1),
              concurrency: CONCURRENCY,
              requests,
              // Keys stay from one run to the next: the first run's load phase serves all.
              loadPhase: workload === 'gets' && run === 0,
            });
            reportErrors(result);
            const key = `${target.name}|${workload}`;
            cells.set(key, [...(cells.get(key) ?? []), cellOf(result)]);
          } finally {
            await loadTarget.close();
          }
        }
      }
    }
    if (ringkv !== null) await retire(ringkv);
    if (etcd !== null) await retire(etcd);

    const variants: {
      readonly system: string;
      readonly kind: 'ringkv' | 'etcd';
      readonly victim: (system: System, run: number) => Promise<number>;
      readonly label: (system: System, index: number) => string;
    }[] = [];
    if (needs('ringkv')) {
      variants.push({
        system: `ringkv (client over ${outageTransport === 'resp' ? 'RESP' : 'HTTP'})`,
        kind: 'ringkv',
        victim: async (_, run) => run % NODE_COUNT,
        label: (system, index) => system.members[index]!.name,
      });
    }
    if (needs('etcd')) {
      variants.push({
        system: 'etcd, a follower killed',
        kind: 'etcd',
        victim: async (system, run) => {
          const leader = await etcdLeaderIndex(system);
          return (leader + 1 + (run % (NODE_COUNT - 1))) % NODE_COUNT;
        },
        label: (system, index) => `${system.members[index]!.name} (follower)`,
      });
      variants.push({
        system: 'etcd, the leader killed',
        kind: 'etcd',
        victim: (system) => etcdLeaderIndex(system),
        label: (system, index) => `${system.members[index]!.name} (leader)`,
      });
    }
    for (const variant of variants) {
      const row = { system: variant.system, cut: [] as string[], runs: [] as OutageResult[] };
      for (let run = 0; run < outageRuns; run++) {
        process.stderr.write(`outage ${run + 1}/${outageRuns}: ${variant.system}\n`);
        const system = await startFresh(variant.kind);
        try {
          const target = await openBenchTarget(
            variant.kind === 'etcd'
              ? TARGET_OF.etcd!
              : { name: 'ringkv client', system: 'ringkv', transport: outageTransport },
            system,
          );
          try {
            const victim = await variant.victim(system, run);
            row.cut.push(variant.label(system, victim));
            const result = await measureOutage(target, {
              workload: workloadSpec('puts', keyCount, 100 + run),
              concurrency: CONCURRENCY,
              beforeMs: OUTAGE_BEFORE_MS,
              warmupMs: OUTAGE_WARMUP_MS,
              afterMs: OUTAGE_AFTER_MS,
              cut: () => killNow(system.members[victim]!.process),
            });
            process.stderr.write(
              `  ${result.cutSecondSilenceMs.toFixed(1)} ms of silence in the second after the kill, ` +
                `worst steady second ${Math.max(...result.steadySecondSilencesMs).toFixed(1)} ms; ` +
                `longest silence ${result.longestSilenceMs.toFixed(1)} ms after the kill ` +
                `(from +${result.silenceStartMs.toFixed(0)} ms), ${result.steadySilenceMs.toFixed(1)} ms before\n`,
            );
            for (const [kind, count] of Object.entries(result.errors)) {
              process.stderr.write(`  ${count} × ${kind}: ${result.errorExamples[kind]}\n`);
            }
            row.runs.push(result);
          } finally {
            await target.close();
          }
        } finally {
          await retire(system);
        }
      }
      if (row.runs.length > 0) outages.push(row);
    }
  } finally {
    await cleanUp();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const packageVersion = (
    JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const commit = firstLine('git', ['-C', projectRoot, 'rev-parse', '--short', 'HEAD']);
  let text = `## Strong keyspaces: ringkv vs etcd\n\n`;
  text += `Command: \`npm run bench:strong -- --requests ${requests} --keys ${keyCount} --runs ${runs} --outage-runs ${outageRuns}\`  \n`;
  text += `Machine: ${machine()}; load average ${loadAtStart.toFixed(1)} at the start, ${os.loadavg()[0]!.toFixed(1)} at the end  \n`;
  text += `Date: ${new Date().toISOString().slice(0, 10)}; Node ${process.version}; ringkv ${packageVersion} (${commit}); ${firstLine('etcd', ['--version'])}  \n`;
  text += `Load: ${NODE_COUNT} ringkv nodes (the layout of \`ringkv dev\`) with keyspace \`${KEYSPACE}\` (consistency strong, N=3, durable) `;
  text += `and ${NODE_COUNT} etcd members, all on loopback with the load generator on the same machine; ${CONCURRENCY} requests in flight. `;
  text += `puts and gets: ${requests} each per target and run, ${VALUE_BYTES}-byte values, ${keyCount} keys chosen uniformly (every key written once before the first gets); `;
  text += `every get linearizable (etcd: Range with serializable false). cas: ${requests} loops per target and run, each client `;
  text += `reading its own counter with its version and writing the number plus one on condition of that version `;
  text += `(etcd: a transaction comparing the mod revision), retried after a refusal; at the end every counter is read back `;
  text += `and checked against the increments that applied. Each figure is the median of ${runs} runs; errors and retries are totals; latencies in ms.\n\n`;
  text += throughputTable(
    cells,
    chosen.map((target) => target.name),
  );
  if (outages.length > 0) {
    text += `\nOutage: puts as above, ${CONCURRENCY} in flight, through a client given every node's address; after `;
    text += `${OUTAGE_BEFORE_MS / 1000} s one node is killed (SIGKILL). A silence is an interval in which no request succeeded. `;
    text += `What the kill itself costs: the longest silence in the second after it, next to the longest silence of each whole `;
    text += `second of the ${(OUTAGE_BEFORE_MS - OUTAGE_WARMUP_MS) / 1000} s of the same load before it (the median second and the worst); `;
    text += `gap at the kill: how much longer the first is than the worst steady second (medians), "none" when it is not. `;
    text += `Then the longest silence anywhere in the ${OUTAGE_AFTER_MS / 1000} s after the kill, with when it began, next to the longest `;
    text += `in the steady load before; gap over 10 s: "none" when the first is at most ${GAP_NOISE_FACTOR}x the second, `;
    text += `this machine's run-to-run noise. Each run starts fresh clusters; ${outageRuns} runs.\n\n`;
    text += outageTable(outages);
  }
  process.stdout.write(text);
  const complete =
    Object.values(TARGET_OF).every((target) =>
      chosen.some((entry) => entry.name === target.name),
    ) && outageRuns > 0;
  if (!complete) {
    process.stderr.write(
      `not every target and the outage ran: ${flags.output} is left as it was\n`,
    );
    return;
  }
  writeBenchmarkSection(path.resolve(projectRoot, flags.output), 'strong', text);
}

if (import.meta.main) await main();
