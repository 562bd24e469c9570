// Cluster benchmark: a 3-node ringkv cluster (`ringkv dev --nodes 3`, keyspace `default`:
// N=3 R=2 W=2, durable) against a 3-member etcd cluster, both on loopback on this machine
// with data in a temporary directory, driven by the same load generator (src/loadgen/): 50
// requests in flight, 100-byte values, puts and then gets (after a load phase, so that reads
// hit). ringkv is measured through its TypeScript client (over HTTP, and over the RESP
// port with RINGKV.* commands) and over RESP with plain Redis commands. Targets alternate
// within each run, and each figure is the median over the runs. The table goes to stdout
// and, when every target ran, into BENCHMARKS.md (replacing the section it wrote before).
// Every process started here is stopped by its PID at the end, or on Ctrl-C.
//
// Needs etcd (Debian: apt-get install etcd-server).
// Usage: npm run bench:cluster [-- --requests N --keys N --runs K
//          --targets client,client-resp,resp,etcd]

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Transport } from '../src/client/index.ts';
import {
  openTarget,
  parseEndpoints,
  runLoad,
  type LoadResult,
  type LoadTarget,
  type TargetKind,
} from '../src/loadgen/index.ts';
import { openRingkvClientTarget } from '../src/loadgen/targets/ringkv-client-target.ts';
import { firstLine, machine, writeBenchmarkSection } from './benchmarks-file.ts';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    keys: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    targets: { type: 'string', default: 'client,client-resp,resp,etcd' },
    output: { type: 'string', default: 'BENCHMARKS.md' },
  },
});
const REQUESTS = Number(flags.requests);
const KEY_COUNT = Number(flags.keys);
const RUNS = Number(flags.runs);
const CONCURRENCY = 50;
const VALUE_BYTES = 100;
const NODE_COUNT = 3;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const projectRoot = path.resolve(import.meta.dirname, '..');
const ringkvLauncher = path.join(projectRoot, 'bin/ringkv.js');

type TargetName = 'ringkv client' | 'ringkv client (RESP)' | 'ringkv RESP' | 'etcd';
interface BenchTarget {
  readonly name: TargetName;
  readonly kind: TargetKind;
  /** For the client: how it sends gets and puts. */
  readonly transport?: Transport;
}
const TARGET_OF: Record<string, BenchTarget> = {
  client: { name: 'ringkv client', kind: 'client' },
  'client-resp': { name: 'ringkv client (RESP)', kind: 'client', transport: 'resp' },
  resp: { name: 'ringkv RESP', kind: 'resp' },
  etcd: { name: 'etcd', kind: 'etcd' },
};

for (const [name, value] of [
  ['requests', REQUESTS],
  ['keys', KEY_COUNT],
  ['runs', RUNS],
] as const) {
  if (!(Number.isSafeInteger(value) && value > 0)) throw new Error(`--${name} must be > 0`);
}
const chosen = flags.targets.split(',').map((name) => {
  const target = TARGET_OF[name.trim()];
  if (target === undefined) throw new Error(`--targets: unknown target '${name}'`);
  return target;
});

/** Every process this script started, to stop by PID whatever happens. */
const started: ChildProcess[] = [];

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stopProcess(child: ChildProcess, extraPids: readonly number[] = []): Promise<void> {
  if (child.pid === undefined) return;
  const exited = new Promise<void>((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve()
      : child.once('exit', () => resolve()),
  );
  if (isRunning(child.pid)) process.kill(child.pid, 'SIGTERM');
  const inTime = await Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(resolve, STOP_TIMEOUT_MS, false).unref()),
  ]);
  for (const pid of [child.pid, ...extraPids]) {
    if (!inTime || isRunning(pid)) {
      if (isRunning(pid)) {
        process.stderr.write(`pid ${pid} did not stop in time; killing it\n`);
        process.kill(pid, 'SIGKILL');
      }
    }
  }
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

interface RingkvCluster {
  readonly dev: ChildProcess;
  readonly nodePids: number[];
  readonly respEndpoints: string;
  readonly httpEndpoints: string;
}

async function startRingkv(dataDir: string): Promise<RingkvCluster> {
  const offsets = [0, 100, 200].flatMap((offset) =>
    Array.from({ length: NODE_COUNT }, (_, index) => offset + index),
  );
  const base = await freeBase(offsets, 21_000);
  const dev = spawn(
    process.execPath,
    [ringkvLauncher, 'dev', '--nodes', String(NODE_COUNT), '--base-port', String(base)].concat([
      '--data',
      dataDir,
      '--log-level',
      'warn',
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.push(dev);
  let output = '';
  dev.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const exited = new Promise<number | null>((resolve) => dev.once('exit', resolve));
  const nodePids = await new Promise<number[]>((resolve, reject) => {
    dev.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (/^resp endpoints: /m.test(output)) {
        resolve(
          [...output.matchAll(/^ {2}node\d+ .* pid (\d+)$/gm)].map((match) => Number(match[1])),
        );
      }
    });
    void exited.then((code) => reject(new Error(`ringkv dev exited with ${code}:\n${output}`)));
    setTimeout(
      () => reject(new Error('ringkv dev did not start in time')),
      READY_TIMEOUT_MS,
    ).unref();
  });
  const range = (offset: number): string =>
    Array.from({ length: NODE_COUNT }, (_, index) => `127.0.0.1:${base + offset + index}`).join(
      ',',
    );
  return { dev, nodePids, respEndpoints: range(0), httpEndpoints: range(100) };
}

async function startEtcd(dataDir: string): Promise<{ members: ChildProcess[]; endpoints: string }> {
  // Member k: client port B+k, peer port B+100+k.
  const offsets = [0, 1, 2, 100, 101, 102];
  const base = await freeBase(offsets, 31_000);
  const names = Array.from({ length: NODE_COUNT }, (_, index) => `etcd${index + 1}`);
  const peerUrl = (index: number): string => `http://127.0.0.1:${base + 100 + index}`;
  const clientUrl = (index: number): string => `http://127.0.0.1:${base + index}`;
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',');
  const members = names.map((name, index) => {
    const memberDir = path.join(dataDir, name);
    mkdirSync(memberDir, { recursive: true });
    const child = spawn(
      'etcd',
      [
        '--name',
        name,
        '--data-dir',
        memberDir,
        '--listen-client-urls',
        clientUrl(index),
        '--advertise-client-urls',
        clientUrl(index),
        '--listen-peer-urls',
        peerUrl(index),
        '--initial-advertise-peer-urls',
        peerUrl(index),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        'ringkv-bench',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    started.push(child);
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    child.once('exit', (code) => {
      if (!stopping) process.stderr.write(`${name} exited with ${code}:\n${log}\n`);
    });
    return child;
  });
  for (let index = 0; index < NODE_COUNT; index++) {
    await waitUntil(names[index]!, async () => {
      try {
        const response = await fetch(`${clientUrl(index)}/health`);
        const body = (await response.json()) as { health?: string };
        return body.health === 'true';
      } catch {
        return false;
      }
    });
  }
  const endpoints = names.map((_, index) => `127.0.0.1:${base + index}`).join(',');
  return { members, endpoints };
}

let stopping = false;

interface Cell {
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly errors: number;
}

function cellOf(result: LoadResult): Cell {
  return {
    opsPerSecond: result.opsPerSecond,
    p50Ms: result.latency.p50Us / 1000,
    p99Ms: result.latency.p99Us / 1000,
    p999Ms: result.latency.p999Us / 1000,
    errors:
      Object.values(result.errors).reduce((sum, count) => sum + count, 0) +
      Object.values(result.load?.errors ?? {}).reduce((sum, count) => sum + count, 0),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function openBenchTarget(benchTarget: BenchTarget, endpoints: string): Promise<LoadTarget> {
  if (benchTarget.kind === 'client') {
    return openRingkvClientTarget({
      endpoints: parseEndpoints(endpoints),
      keyspace: 'default',
      transport: benchTarget.transport ?? 'http',
    });
  }
  return openTarget({
    kind: benchTarget.kind,
    endpoints: parseEndpoints(endpoints),
    connections: CONCURRENCY,
  });
}

async function measure(
  benchTarget: BenchTarget,
  endpoints: string,
  operation: 'puts' | 'gets',
  seed: number,
): Promise<Cell> {
  const target = await openBenchTarget(benchTarget, endpoints);
  try {
    const result = await runLoad(target, {
      workload: {
        name: operation,
        keyCount: KEY_COUNT,
        distribution: 'uniform',
        valueBytes: VALUE_BYTES,
        seed,
      },
      concurrency: CONCURRENCY,
      requests: REQUESTS,
    });
    for (const [errorKind, count] of Object.entries(result.errors)) {
      process.stderr.write(`  ${count} × ${errorKind}: ${result.errorExamples[errorKind]}\n`);
    }
    return cellOf(result);
  } finally {
    await target.close();
  }
}

function formatNumber(value: number): string {
  return value >= 100 ? String(Math.round(value)) : value.toFixed(3);
}

async function main(): Promise<void> {
  if (spawnSync('etcd', ['--version']).error !== undefined) {
    throw new Error('etcd is not on PATH. On Debian: apt-get install etcd-server');
  }
  const needsRingkv = chosen.some((target) => target.kind !== 'etcd');
  const needsEtcd = chosen.some((target) => target.kind === 'etcd');
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-cluster-'));
  let ringkv: RingkvCluster | null = null;
  let etcd: { members: ChildProcess[]; endpoints: string } | null = null;
  const cleanUp = async (): Promise<void> => {
    stopping = true;
    if (ringkv !== null) await stopProcess(ringkv.dev, ringkv.nodePids);
    if (etcd !== null) await Promise.all(etcd.members.map((member) => stopProcess(member)));
    for (const child of started) await stopProcess(child);
    rmSync(workDir, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    process.stderr.write('interrupted: stopping every process started here\n');
    void cleanUp().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const cells = new Map<string, Cell[]>();
  try {
    if (needsRingkv) ringkv = await startRingkv(path.join(workDir, 'ringkv'));
    if (needsEtcd) etcd = await startEtcd(path.join(workDir, 'etcd'));
    const endpointsOf = (kind: TargetKind): string =>
      kind === 'etcd'
        ? etcd!.endpoints
        : kind === 'resp'
          ? ringkv!.respEndpoints
          : ringkv!.httpEndpoints;
    for (let run = 0; run < RUNS; run++) {
      // Rotate the order so that no target always goes first (cold) or last.
      const order = chosen.map((_, index) => chosen[(index + run) % chosen.length]!);
      for (const target of order) {
        for (const operation of ['puts', 'gets'] as const) {
          process.stderr.write(`run ${run + 1}/${RUNS}: ${target.name} ${operation}\n`);
          const cell = await measure(target, endpointsOf(target.kind), operation, run + 1);
          const key = `${target.name}|${operation}`;
          cells.set(key, [...(cells.get(key) ?? []), cell]);
        }
      }
    }
  } finally {
    await cleanUp();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const medianCell = (name: TargetName, operation: string): Cell | undefined => {
    const runs = cells.get(`${name}|${operation}`);
    if (runs === undefined) return undefined;
    return {
      opsPerSecond: median(runs.map((cell) => cell.opsPerSecond)),
      p50Ms: median(runs.map((cell) => cell.p50Ms)),
      p99Ms: median(runs.map((cell) => cell.p99Ms)),
      p999Ms: median(runs.map((cell) => cell.p999Ms)),
      errors: runs.reduce((sum, cell) => sum + cell.errors, 0),
    };
  };
  const packageVersion = (
    JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const commit = firstLine('git', ['-C', projectRoot, 'rev-parse', '--short', 'HEAD']);
  let table = `## Cluster: ringkv vs etcd\n\n`;
  table += `Command: \`npm run bench:cluster -- --requests ${REQUESTS} --keys ${KEY_COUNT} --runs ${RUNS}\`  \n`;
  table += `Machine: ${machine()}  \n`;
  table += `Date: ${new Date().toISOString().slice(0, 10)}; Node ${process.version}; ringkv ${packageVersion} (${commit}); ${firstLine('etcd', ['--version'])}  \n`;
  table += `Load: ${NODE_COUNT} ringkv nodes (\`ringkv dev\`, keyspace default: N=3 R=2 W=2, durable) and ${NODE_COUNT} etcd members, `;
  table += `all on loopback with the load generator on the same machine; ${CONCURRENCY} requests in flight, `;
  table += `${VALUE_BYTES}-byte values, ${KEY_COUNT} keys chosen uniformly, ${REQUESTS} puts and then ${REQUESTS} gets `;
  table += `(after writing every key once) per target and run. Each figure is the median of ${RUNS} runs; latencies in ms.\n\n`;
  table += `| target | operation | ops/s | p50 | p99 | p999 | errors | ops/s vs etcd |\n`;
  table += `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n`;
  for (const operation of ['puts', 'gets']) {
    const baseline = medianCell('etcd', operation);
    for (const target of chosen) {
      const cell = medianCell(target.name, operation);
      if (cell === undefined) continue;
      const ratio =
        baseline === undefined
          ? 'n/a'
          : `${(cell.opsPerSecond / baseline.opsPerSecond).toFixed(2)}x`;
      table += `| ${target.name} | ${operation} | ${Math.round(cell.opsPerSecond)} | ${formatNumber(cell.p50Ms)} | `;
      table += `${formatNumber(cell.p99Ms)} | ${formatNumber(cell.p999Ms)} | ${cell.errors} | ${ratio} |\n`;
    }
  }
  process.stdout.write(table);
  const complete = Object.values(TARGET_OF).every((target) =>
    chosen.some((entry) => entry.name === target.name),
  );
  if (!complete) {
    process.stderr.write(`not every target ran: ${flags.output} is left as it was\n`);
    return;
  }
  const outputPath = path.resolve(projectRoot, flags.output);
  writeBenchmarkSection(outputPath, 'cluster', table);
}

await main();
