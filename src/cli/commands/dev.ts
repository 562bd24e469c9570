// `ringkv dev`: a local cluster of N node processes on loopback, for development and
// benchmarks. Node k (0-based) is `node{k+1}` with RESP port P+k, HTTP port P+100+k, peer
// port P+200+k and data in DIR/node{k+1}; every node is given every peer address as a seed.
// Each child's output lines are prefixed with its id. Once every node answers
// GET /v1/cluster with its cluster formed, the endpoints are printed. Ctrl-C or SIGTERM stops the children by PID
// (SIGTERM, a bounded wait, then SIGKILL); a child that dies on its own stops the rest, and
// the command exits 1. Only processes this command started are ever signalled.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { assert } from '../../core/bytes.ts';
import { UsageError } from '../options.ts';

export const DEV_HELP = `Usage: ringkv dev [options]

Starts a local cluster: N 'ringkv start' processes on loopback, each told about all the
others. Node k (counting from 0) is node{k+1}, with RESP port P+k, HTTP port P+100+k, peer
port P+200+k and data in DIR/node{k+1}. Prints the endpoints once every node answers, and
each node's log lines prefixed with its id. Ctrl-C (SIGINT) or SIGTERM stops every node.

Options:
  --nodes N              number of nodes, 1 to 100 (default 3)
  --base-port P          first RESP port (default 6380)
  --data DIR             parent of the nodes' data directories (default data)
  --cluster-secret S     secret the nodes authenticate each other with (env
                         RINGKV_CLUSTER_SECRET; default: a fresh random one for this run)
  --log-level LEVEL      log level of every node (default warn: errors and warnings only)
  --help                 show this help
`;

/** Most nodes: the HTTP ports start 100 above the RESP ports, so more would overlap. */
export const DEV_NODES_MAX = 100;
const LOOPBACK = '127.0.0.1';
const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 100;
const STOP_TIMEOUT_MS = 15_000;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface DevOptions {
  readonly nodeCount: number;
  readonly basePort: number;
  readonly dataDir: string;
  readonly clusterSecret: string;
  readonly logLevel: string | undefined;
}

export interface NodePlan {
  readonly id: string;
  readonly host: string;
  readonly respPort: number;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** Arguments after `ringkv start`. The secret travels in the environment, not here. */
  readonly startArguments: readonly string[];
}

function integer(raw: string | undefined, flag: string, min: number, max: number): number | null {
  if (raw === undefined) return null;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= min && value <= max)) {
    throw new UsageError(`--${flag}: expected an integer from ${min} to ${max}, got '${raw}'`);
  }
  return value;
}

export function parseDevOptions(
  argv: string[],
  environment: Readonly<Record<string, string | undefined>>,
): DevOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      nodes: { type: 'string' },
      'base-port': { type: 'string' },
      data: { type: 'string' },
      'cluster-secret': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) return 'help';
  const nodeCount = integer(values.nodes, 'nodes', 1, DEV_NODES_MAX) ?? 3;
  const highestOffset = 200 + nodeCount - 1;
  const basePort = integer(values['base-port'], 'base-port', 1, 65535 - highestOffset) ?? 6380;
  const dataDir = values.data ?? 'data';
  if (dataDir.length === 0) throw new UsageError('--data: expected a directory');
  const logLevel = values['log-level'];
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const secretFlag = values['cluster-secret'] ?? environment.RINGKV_CLUSTER_SECRET;
  if (secretFlag !== undefined && secretFlag.length < 16) {
    throw new UsageError('--cluster-secret: expected at least 16 characters');
  }
  return {
    nodeCount,
    basePort,
    dataDir,
    clusterSecret: secretFlag ?? randomBytes(32).toString('hex'),
    logLevel,
  };
}

/** The nodes of a local cluster, by the port and directory layout above. */
export function planNodes(options: DevOptions): NodePlan[] {
  assert(options.nodeCount >= 1 && options.nodeCount <= DEV_NODES_MAX, 'node count in range');
  assert(options.basePort + 200 + options.nodeCount - 1 <= 65535, 'ports in range');
  const seeds = Array.from(
    { length: options.nodeCount },
    (_, index) => `${LOOPBACK}:${options.basePort + 200 + index}`,
  ).join(',');
  return Array.from({ length: options.nodeCount }, (_, index) => {
    const id = `node${index + 1}`;
    const respPort = options.basePort + index;
    const httpPort = options.basePort + 100 + index;
    const peerPort = options.basePort + 200 + index;
    const dataDir = path.join(options.dataDir, id);
    const startArguments = [
      '--node-id',
      id,
      '--data',
      dataDir,
      '--resp-port',
      String(respPort),
      '--http-port',
      String(httpPort),
      '--peer-port',
      String(peerPort),
      '--seeds',
      seeds,
      '--log-level',
      options.logLevel ?? 'warn',
    ];
    return { id, host: LOOPBACK, respPort, httpPort, peerPort, dataDir, startArguments };
  });
}

export function formatEndpoints(plans: readonly NodePlan[], pids: readonly number[]): string {
  let text = '';
  for (const [index, plan] of plans.entries()) {
    text += `  ${plan.id}  resp ${plan.host}:${plan.respPort}  http http://${plan.host}:${plan.httpPort}`;
    text += `  peer ${plan.host}:${plan.peerPort}  pid ${pids[index] ?? '?'}\n`;
  }
  const resp = plans.map((plan) => `${plan.host}:${plan.respPort}`).join(',');
  text += `resp endpoints: ${resp}\n`;
  return text;
}

export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  readonly environment: Readonly<Record<string, string | undefined>>;
}

export interface ClusterIo {
  /** Where prefixed log lines and the endpoint list go. */
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

export interface RunningCluster {
  readonly pids: readonly number[];
  /**
   * Settles once every node answers GET /v1/cluster, formed; rejects if a node exits first, if the
   * wait times out (the nodes are then stopped), or if stop() is called first.
   */
  readonly ready: Promise<void>;
  /** Settles when a node exits on its own (the rest are being stopped) with its message. */
  readonly failed: Promise<string>;
  /** Stops every node still running; resolves once all have exited. Idempotent. */
  stop(): Promise<void>;
}

/** How `ringkv start` is run: this Node, this project's launcher, the secret in the env. */
export function startLaunch(plan: NodePlan, clusterSecret: string): Launch {
  const launcher = path.join(import.meta.dirname, '..', '..', '..', 'bin', 'ringkv.js');
  return {
    command: process.execPath,
    args: [launcher, 'start', ...plan.startArguments],
    environment: { ...process.env, RINGKV_CLUSTER_SECRET: clusterSecret },
  };
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, write: (t: string) => void) {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) =>
    write(`${prefix} ${line}\n`),
  );
}

/** Whether a node serves: it answers, and its cluster has formed. */
async function answersStatus(plan: NodePlan): Promise<boolean> {
  try {
    const response = await fetch(`http://${plan.host}:${plan.httpPort}/v1/cluster`, {
      signal: AbortSignal.timeout(2_000),
    });
    const body = (await response.json()) as { state?: unknown };
    return response.ok && body.state === 'ready';
  } catch {
    return false;
  }
}

/** Starts one process per plan; `ready` tells when every one answers. */
export function startCluster(
  plans: readonly NodePlan[],
  launch: (plan: NodePlan) => Launch,
  io: ClusterIo,
): RunningCluster {
  assert(plans.length > 0, 'a cluster has at least one node');
  const children: ChildProcess[] = [];
  const exited: Promise<void>[] = [];
  let stopping = false;
  let stopped: Promise<void> | null = null;
  let reportFailure: (message: string) => void = () => {};
  const failed = new Promise<string>((resolve) => (reportFailure = resolve));

  const stop = (): Promise<void> => {
    stopping = true;
    stopped ??= (async () => {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) signal(child, 'SIGTERM');
      }
      const allExited = Promise.all(exited);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        allExited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS, true))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        for (const child of children) {
          if (child.exitCode === null && child.signalCode === null) {
            io.err(`ringkv dev: pid ${child.pid} did not stop in time; killing it\n`);
            signal(child, 'SIGKILL');
          }
        }
        await allExited;
      }
    })();
    return stopped;
  };

  for (const plan of plans) {
    const { command, args, environment } = launch(plan);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: environment });
    children.push(child);
    exited.push(
      new Promise<void>((resolve) => {
        child.once('exit', (code, signalName) => {
          if (!stopping) {
            const how = signalName === null ? `with code ${code}` : `on ${signalName}`;
            const message = `${plan.id} (pid ${child.pid}) exited ${how}; stopping the other nodes`;
            io.err(`ringkv dev: ${message}\n`);
            reportFailure(message);
            void stop();
          }
          resolve();
        });
        child.once('error', (error) => {
          io.err(`ringkv dev: cannot start ${plan.id}: ${error.message}\n`);
          resolve();
        });
      }),
    );
    prefixLines(child.stdout!, `[${plan.id}]`, io.out);
    prefixLines(child.stderr!, `[${plan.id}]`, io.err);
  }

  const waitUntilReady = async (): Promise<void> => {
    const deadlineMs = Date.now() + READY_TIMEOUT_MS;
    const pending = new Set(plans);
    while (pending.size > 0) {
      if (stopping) throw new Error('the cluster was stopped before every node answered');
      if (Date.now() > deadlineMs) {
        await stop();
        const late = [...pending].map((plan) => plan.id).join(', ');
        throw new Error(
          `${late} did not report a formed cluster on /v1/cluster within ${READY_TIMEOUT_MS} ms`,
        );
      }
      for (const plan of [...pending]) if (await answersStatus(plan)) pending.delete(plan);
      if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
  };
  const ready = waitUntilReady();
  // Whoever starts a cluster may stop it before it is ready; that rejection is expected.
  ready.catch(() => {});
  return { pids: children.map((child) => child.pid ?? -1), ready, failed, stop };
}

function signal(child: ChildProcess, name: NodeJS.Signals): void {
  assert(child.pid !== undefined, 'only a started child is signalled');
  try {
    process.kill(child.pid, name);
  } catch (error) {
    // ESRCH: it exited between the check and the signal, which is what we wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

export async function devCommand(argv: string[]): Promise<number> {
  const options = parseDevOptions(argv, process.env);
  if (options === 'help') {
    process.stdout.write(DEV_HELP);
    return 0;
  }
  const plans = planNodes(options);
  const io: ClusterIo = {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
  };
  // Signals that arrive while the nodes start still stop them.
  let interrupted: (name: string) => void = () => {};
  const interruption = new Promise<string>((resolve) => (interrupted = resolve));
  const onSignal = (name: string) => () => interrupted(name);
  const onInterrupt = onSignal('SIGINT');
  const onTerminate = onSignal('SIGTERM');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  try {
    const cluster = startCluster(plans, (plan) => startLaunch(plan, options.clusterSecret), io);
    const failure = cluster.failed.then((message) => ({ failure: message }));
    const stopSignal = interruption.then((name) => ({ signal: name }));
    let first: { ready: true } | { signal: string } | { failure: string };
    try {
      first = await Promise.race([
        cluster.ready.then(() => ({ ready: true as const })),
        stopSignal,
        failure,
      ]);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    if ('ready' in first) {
      io.out(`ringkv dev: ${plans.length} nodes up, data in ${options.dataDir}\n`);
      io.out(formatEndpoints(plans, cluster.pids));
    }
    const outcome = 'ready' in first ? await Promise.race([stopSignal, failure]) : first;
    if ('signal' in outcome) io.out(`ringkv dev: ${outcome.signal} received, stopping\n`);
    await cluster.stop();
    if ('failure' in outcome) return 1;
    io.out('ringkv dev: every node stopped\n');
    return 0;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onTerminate);
  }
}
