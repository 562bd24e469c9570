// Real `ringkv start` processes on loopback for the cluster tests: N children run with this
// Node (process.execPath) and the project's launcher, on ports found free by binding port 0,
// with data in one temporary directory that close() removes.
//
// Rules:
// - Only processes this harness spawned are ever signalled, by their PID; close() stops all
//   that are still running (SIGTERM, a bounded wait, then SIGKILL), and a synchronous
//   'exit' hook kills any left should the test process end without calling it.
// - Every wait is a poll with a deadline that names what it waited for.
// - Each node's last log lines are kept, so a failing test can show what the nodes said.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

const LAUNCHER = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');
const LOOPBACK = '127.0.0.1';
const LOG_LINES_KEPT = 40;
const STOP_TIMEOUT_MS = 10_000;
const POLL_PAUSE_MS = 25;
const READY_TIMEOUT_MS = 30_000;

/** Failure detection fast enough for tests that wait for a node to be marked down. */
export const FAST_TIMINGS = {
  probeIntervalMs: 200,
  probeTimeoutMs: 80,
  suspicionTimeoutMs: 1000,
  tickMs: 20,
  requestTimeoutMs: 1500,
} as const;

export interface ClusterOptions {
  readonly nodeCount: number;
  readonly storage: 'lmdb' | 'memory';
  readonly adminToken?: string;
  /** Defaults to FAST_TIMINGS. */
  readonly timings?: Partial<typeof FAST_TIMINGS>;
  readonly logLevel?: string;
}

export interface ClusterNode {
  readonly id: string;
  readonly respPort: number;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly httpUrl: string;
  readonly dataDir: string;
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** Every child any harness started and has not seen exit, for the exit hook. */
const liveChildren = new Set<ChildProcess>();

/**
 * Starts a node process with `args` (the cluster secret in its environment, not on a command
 * line), keeping its last LOG_LINES_KEPT lines of output in `lines`. Every process started
 * here is killed if the test process exits first.
 */
export function spawnLoggedNode(
  args: readonly string[],
  secret: string,
  lines: string[],
): { child: ChildProcess; exited: Promise<void> } {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RINGKV_CLUSTER_SECRET: secret },
  });
  liveChildren.add(child);
  const keep = (line: string): void => {
    lines.push(line);
    if (lines.length > LOG_LINES_KEPT) lines.shift();
  };
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signalName) => {
      liveChildren.delete(child);
      keep(`(exited: code ${code}, signal ${signalName})`);
      resolve();
    });
    child.once('error', (error) => {
      liveChildren.delete(child);
      keep(`(could not start: ${error.message})`);
      resolve();
    });
  });
  return { child, exited };
}
process.once('exit', () => {
  for (const child of liveChildren) signalChild(child, 'SIGKILL');
});

function signalChild(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, name);
  } catch (error) {
    // It exited between the check and the signal, which is what was wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** `count` distinct loopback ports that were free a moment ago (all bound at once, then freed). */
/** Cluster starts tried when a chosen port was taken meanwhile. */
const PORT_ATTEMPTS_MAX = 3;

export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, LOOPBACK, resolve);
      });
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port bound');
      ports.push(address.port);
    }
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
  return ports;
}

/** Polls `check` until it returns true or `timeoutMs` passes, then throws naming `what`. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string | (() => string),
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadlineMs) {
      const text = typeof what === 'string' ? what : what();
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_PAUSE_MS));
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

/** One HTTP request with a timeout; network failures reject. */
export async function http(
  url: string,
  init: { method?: string; body?: string | Uint8Array; token?: string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
    signal: AbortSignal.timeout(init.timeoutMs ?? 5_000),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

export interface MemberView {
  readonly id: string;
  readonly liveness: 'alive' | 'suspect' | 'down';
  readonly partitionsOwned: number;
}

export interface ClusterView {
  readonly node: string;
  readonly state: 'forming' | 'ready';
  readonly members: readonly MemberView[];
  readonly hintsPending: Readonly<Record<string, number>>;
  readonly hintsTotal: number;
}

export interface RingView {
  readonly partitionCount: number;
  readonly owners: readonly string[];
  readonly keyspaces: readonly { readonly name: string; readonly id: number }[];
}

export class TestCluster {
  readonly nodes: readonly ClusterNode[];
  readonly rootDir: string;
  readonly adminToken: string | undefined;
  private readonly options: ClusterOptions;
  private readonly seeds: string;
  private readonly secret = 'cluster-test-secret-0123456789';
  private readonly running = new Map<string, Running>();
  private readonly logs = new Map<string, string[]>();
  private closed = false;

  private constructor(options: ClusterOptions, nodes: ClusterNode[], rootDir: string) {
    this.options = options;
    this.nodes = nodes;
    this.rootDir = rootDir;
    this.adminToken = options.adminToken;
    this.seeds = nodes.map((node) => `${LOOPBACK}:${node.peerPort}`).join(',');
  }

  /**
   * Starts every node and waits until each reports the cluster ready. The ports are free
   * when chosen, but another test process may take one before the node binds it: then the
   * whole cluster starts again on fresh ports, a few times at most.
   */
  static async start(options: ClusterOptions): Promise<TestCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await TestCluster.startOnce(options);
      } catch (error) {
        const portTaken = error instanceof Error && error.message.includes('EADDRINUSE');
        if (!portTaken || attempt >= PORT_ATTEMPTS_MAX) throw error;
      }
    }
  }

  private static async startOnce(options: ClusterOptions): Promise<TestCluster> {
    const rootDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-cluster-'));
    const ports = await freePorts(options.nodeCount * 3);
    const nodes = Array.from({ length: options.nodeCount }, (_, index): ClusterNode => {
      const [respPort, httpPort, peerPort] = ports.slice(index * 3, index * 3 + 3) as [
        number,
        number,
        number,
      ];
      const id = `node${index + 1}`;
      return {
        id,
        respPort,
        httpPort,
        peerPort,
        httpUrl: `http://${LOOPBACK}:${httpPort}`,
        dataDir: path.join(rootDir, id),
      };
    });
    const cluster = new TestCluster(options, nodes, rootDir);
    try {
      for (const node of nodes) cluster.spawnNode(node.id);
      await cluster.waitReady();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  isRunning(id: string): boolean {
    const child = this.running.get(id)?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  pid(id: string): number {
    const pid = this.running.get(id)?.child.pid;
    if (pid === undefined) throw new Error(`${id} is not running`);
    return pid;
  }

  /** The last log lines of every node, for a failure message. */
  recentLogs(): string {
    return [...this.logs].map(([id, lines]) => `--- ${id}\n${lines.join('\n')}`).join('\n');
  }

  private spawnNode(id: string): void {
    if (this.closed) throw new Error('the cluster is closed');
    if (this.isRunning(id)) throw new Error(`${id} is already running`);
    const node = this.node(id);
    const timings = { ...FAST_TIMINGS, ...this.options.timings };
    const args = [
      LAUNCHER,
      'start',
      '--node-id',
      id,
      '--storage',
      this.options.storage,
      '--data',
      node.dataDir,
      '--host',
      LOOPBACK,
      '--resp-port',
      String(node.respPort),
      '--http-port',
      String(node.httpPort),
      '--peer-port',
      String(node.peerPort),
      '--seeds',
      this.seeds,
      '--probe-interval-ms',
      String(timings.probeIntervalMs),
      '--probe-timeout-ms',
      String(timings.probeTimeoutMs),
      '--suspicion-timeout-ms',
      String(timings.suspicionTimeoutMs),
      '--tick-ms',
      String(timings.tickMs),
      '--request-timeout-ms',
      String(timings.requestTimeoutMs),
      '--log-level',
      this.options.logLevel ?? 'warn',
      ...(this.adminToken === undefined ? [] : ['--admin-token', this.adminToken]),
    ];
    const lines = this.logs.get(id) ?? [];
    this.logs.set(id, lines);
    const { child, exited } = spawnLoggedNode(args, this.secret, lines);
    this.running.set(id, { child, exited });
  }

  /** Waits until every running node answers GET /v1/cluster with state ready. */
  async waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const pending = new Set(this.nodes.filter((node) => this.isRunning(node.id)));
    await waitFor(
      async () => {
        for (const node of [...pending]) {
          if (!this.isRunning(node.id)) throw new Error(`${node.id} exited:\n${this.recentLogs()}`);
          const view = await this.clusterView(node.id).catch(() => null);
          if (view?.state === 'ready') pending.delete(node);
        }
        return pending.size === 0;
      },
      timeoutMs,
      () => `${[...pending].map((node) => node.id).join(', ')} to be ready\n${this.recentLogs()}`,
    );
  }

  /** GET /v1/cluster on one node. */
  async clusterView(id: string): Promise<ClusterView> {
    const answer = await http(`${this.node(id).httpUrl}/v1/cluster`);
    if (answer.status !== 200) throw new Error(`${id}: /v1/cluster answered ${answer.status}`);
    return answer.json as ClusterView;
  }

  async ring(id: string): Promise<RingView> {
    const answer = await http(`${this.node(id).httpUrl}/v1/cluster/ring`);
    if (answer.status !== 200) throw new Error(`${id}: /v1/cluster/ring answered ${answer.status}`);
    return answer.json as RingView;
  }

  /** The liveness `observer` gives `subject`, or null when it does not list it. */
  async livenessSeenBy(observer: string, subject: string): Promise<string | null> {
    const view = await this.clusterView(observer);
    return view.members.find((member) => member.id === subject)?.liveness ?? null;
  }

  /** Sends `signal` to a node's process and waits for it to exit. */
  async signal(id: string, name: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const running = this.running.get(id);
    if (running === undefined) throw new Error(`${id} was never started`);
    signalChild(running.child, name);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      running.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, STOP_TIMEOUT_MS, true))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      signalChild(running.child, 'SIGKILL');
      await running.exited;
      throw new Error(`${id} did not exit within ${STOP_TIMEOUT_MS} ms of ${name}`);
    }
  }

  /** Starts a stopped node again on its ports and data directory, and waits until it is ready. */
  async restart(id: string): Promise<void> {
    this.spawnNode(id);
    await this.waitReady();
  }

  /** Stops every node still running (SIGTERM, then SIGKILL) and removes the data. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = [...this.running.keys()].filter((id) => this.isRunning(id));
    await Promise.all(
      running.map((id) => this.signal(id, 'SIGTERM').catch(() => this.signal(id, 'SIGKILL'))),
    );
    rmSync(this.rootDir, { recursive: true, force: true });
  }
}
