// Real `ringkv start` processes on loopback whose membership changes while they run: a set
// of founders started together (`--seeds`), and nodes started later with `--join`, which
// come up as standbys. Each node gets ports found free by binding port 0 and a data
// directory under one temporary directory that close() removes. The membership tests and
// the handoff benchmark share it; cluster-harness.ts serves the fixed-membership tests.
//
// Rules:
// - Only processes started here are ever signalled, by their PID; close() stops all that
//   are still running (SIGTERM, a bounded wait, then SIGKILL), and a synchronous 'exit'
//   hook kills any left should the process end without calling it.
// - A node whose chosen port was taken meanwhile (EADDRINUSE) is started again on fresh
//   ports, a few times at most (for founders: all of them, since their seeds name the ports).
// - Every wait is a poll with a deadline that names what it waited for; each node's last
//   log lines are kept for failure messages.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts, http, spawnLoggedNode, waitFor, type FAST_TIMINGS } from './cluster-harness.ts';

const LAUNCHER = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');
export const LOOPBACK = '127.0.0.1';
const STOP_TIMEOUT_MS = 15_000;
const READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS_MAX = 3;
const SECRET = 'membership-test-secret-0123456789';

export interface NodeProcessOptions {
  readonly storage: 'lmdb' | 'memory';
  /** Failure detection and tick flags; absent: the node's defaults. */
  readonly timings?: Partial<typeof FAST_TIMINGS>;
  readonly logLevel?: string;
  /** Extra flags given to every node (e.g. `--durability relaxed`). */
  readonly extraArgs?: readonly string[];
  /** Where the temporary directory goes; absent: the system's. */
  readonly parentDir?: string;
}

export interface NodeEndpoints {
  readonly id: string;
  readonly respPort: number;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly httpUrl: string;
  readonly respAddress: string;
  readonly peerAddress: string;
  readonly dataDir: string;
}

/** What GET /v1/cluster answers, as far as these tests read it. */
export interface ClusterStatusView {
  readonly node: string;
  readonly state: 'forming' | 'ready';
  readonly epoch: number;
  readonly partitionCount: number;
  readonly left: boolean;
  readonly members: readonly {
    readonly id: string;
    readonly role: 'member' | 'standby';
    readonly voter: boolean;
    readonly liveness: string;
    readonly partitionsOwned: number;
  }[];
  readonly change: {
    readonly kind: string;
    readonly subject: string;
    readonly epoch: number;
    readonly receivers: readonly string[];
    readonly copied: readonly string[];
  } | null;
  readonly handoff: HandoffView;
}

export interface TransferView {
  readonly keyspaceId: number;
  readonly partition: number;
  readonly state: string;
  readonly keysReceived: number;
  readonly bytesReceived: number;
  readonly keysDurable: number;
  readonly bytesDurable: number;
  readonly bytesPerSecond: number;
  readonly bytesTotalEstimate: number | null;
  readonly etaMs: number | null;
}

export interface HandoffView {
  readonly changeEpoch: number | null;
  readonly transfers: readonly TransferView[];
  readonly copiesWaiting: number;
  readonly copiesDone: number;
  readonly bytesPerSecondLimit: number;
  readonly paused: boolean;
  /** What the node receives over all its copies, averaged from its first copy's start. */
  readonly bytesPerSecond: number;
}

/** What GET /v1/cluster/ring answers, as far as these tests read it. */
export interface RingDocument {
  readonly epoch: number;
  readonly partitionCount: number;
  readonly owners: readonly string[];
  readonly nodes: readonly { readonly id: string; readonly http: string }[];
  readonly keyspaces: readonly {
    readonly name: string;
    readonly id: number;
    readonly n: number | 'all';
  }[];
}

function signalChild(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, name);
  } catch (error) {
    // It exited between the check and the signal, which is what was wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export class NodeProcesses {
  readonly rootDir: string;
  private readonly options: NodeProcessOptions;
  private readonly endpoints = new Map<string, NodeEndpoints>();
  private readonly running = new Map<string, Running>();
  private readonly logs = new Map<string, string[]>();
  private closed = false;

  constructor(options: NodeProcessOptions) {
    this.options = options;
    this.rootDir = mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'ringkv-membership-'));
  }

  node(id: string): NodeEndpoints {
    const endpoints = this.endpoints.get(id);
    if (endpoints === undefined) throw new Error(`no node ${id}`);
    return endpoints;
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

  /** Starts the founders of a new cluster and waits until each reports it ready. */
  async startFounders(ids: readonly string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const nodes = await this.allocate(ids);
      const seeds = nodes.map((node) => node.peerAddress).join(',');
      for (const node of nodes) this.spawnNode(node, ['--seeds', seeds]);
      try {
        await this.waitReady(ids);
        return;
      } catch (error) {
        await Promise.all(ids.map((id) => this.stop(id, 'SIGKILL').catch(() => undefined)));
        if (!this.portTaken(ids) || attempt >= START_ATTEMPTS_MAX) throw error;
      }
    }
  }

  /** Starts a node with `--join` through member `via`; it is ready once it holds the map. */
  async startJoiner(id: string, via: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const [node] = await this.allocate([id]);
      this.spawnNode(node!, ['--join', this.node(via).peerAddress]);
      try {
        await this.waitReady([id]);
        return;
      } catch (error) {
        await this.stop(id, 'SIGKILL').catch(() => undefined);
        if (!this.portTaken([id]) || attempt >= START_ATTEMPTS_MAX) throw error;
      }
    }
  }

  /** The last log lines of every node, for a failure message. */
  recentLogs(): string {
    return [...this.logs].map(([id, lines]) => `--- ${id}\n${lines.join('\n')}`).join('\n');
  }

  async status(id: string): Promise<ClusterStatusView> {
    const answer = await http(`${this.node(id).httpUrl}/v1/cluster`);
    if (answer.status !== 200) throw new Error(`${id}: /v1/cluster answered ${answer.status}`);
    return answer.json as ClusterStatusView;
  }

  async ring(id: string): Promise<RingDocument> {
    const answer = await http(`${this.node(id).httpUrl}/v1/cluster/ring`);
    if (answer.status !== 200) throw new Error(`${id}: /v1/cluster/ring answered ${answer.status}`);
    return answer.json as RingDocument;
  }

  /**
   * Sends `name` to a node's process and waits for it to exit; after `timeoutMs` it is
   * killed and the call throws with the node's last log lines.
   */
  async stop(id: string, name: 'SIGKILL' | 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
    const running = this.running.get(id);
    if (running === undefined) return;
    signalChild(running.child, name);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      running.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, true))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      signalChild(running.child, 'SIGKILL');
      await running.exited;
      const lines = (this.logs.get(id) ?? []).join('\n');
      throw new Error(`${id} did not exit within ${timeoutMs} ms of ${name}:\n${lines}`);
    }
  }

  /** Stops every node still running and removes the data. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ids = [...this.running.keys()].filter((id) => this.isRunning(id));
    await Promise.all(
      ids.map((id) => this.stop(id, 'SIGTERM').catch(() => this.stop(id, 'SIGKILL'))),
    );
    rmSync(this.rootDir, { recursive: true, force: true });
  }

  private async allocate(ids: readonly string[]): Promise<NodeEndpoints[]> {
    const ports = await freePorts(ids.length * 3);
    return ids.map((id, index) => {
      const [respPort, httpPort, peerPort] = ports.slice(index * 3, index * 3 + 3) as [
        number,
        number,
        number,
      ];
      const node: NodeEndpoints = {
        id,
        respPort,
        httpPort,
        peerPort,
        httpUrl: `http://${LOOPBACK}:${httpPort}`,
        respAddress: `${LOOPBACK}:${respPort}`,
        peerAddress: `${LOOPBACK}:${peerPort}`,
        // A fresh directory per attempt: a failed start may have written a map there.
        dataDir: path.join(this.rootDir, `${id}-${Date.now().toString(36)}`),
      };
      this.endpoints.set(id, node);
      return node;
    });
  }

  private portTaken(ids: readonly string[]): boolean {
    return ids.some((id) => (this.logs.get(id) ?? []).some((line) => line.includes('EADDRINUSE')));
  }

  private spawnNode(node: NodeEndpoints, clusterArgs: readonly string[]): void {
    if (this.closed) throw new Error('the processes are closed');
    if (this.isRunning(node.id)) throw new Error(`${node.id} is already running`);
    const timings = this.options.timings ?? {};
    const timingArgs = Object.entries({
      'probe-interval-ms': timings.probeIntervalMs,
      'probe-timeout-ms': timings.probeTimeoutMs,
      'suspicion-timeout-ms': timings.suspicionTimeoutMs,
      'tick-ms': timings.tickMs,
      'request-timeout-ms': timings.requestTimeoutMs,
    }).flatMap(([flag, value]) => (value === undefined ? [] : [`--${flag}`, String(value)]));
    const args = [
      LAUNCHER,
      'start',
      '--node-id',
      node.id,
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
      ...clusterArgs,
      ...timingArgs,
      '--log-level',
      this.options.logLevel ?? 'warn',
      ...(this.options.extraArgs ?? []),
    ];
    const lines: string[] = [];
    this.logs.set(node.id, lines);
    const { child, exited } = spawnLoggedNode(args, SECRET, lines);
    this.running.set(node.id, { child, exited });
  }

  private async waitReady(ids: readonly string[]): Promise<void> {
    const pending = new Set(ids);
    await waitFor(
      async () => {
        for (const id of [...pending]) {
          if (!this.isRunning(id)) throw new Error(`${id} exited:\n${this.recentLogs()}`);
          const view = await this.status(id).catch(() => null);
          if (view?.state === 'ready') pending.delete(id);
        }
        return pending.size === 0;
      },
      READY_TIMEOUT_MS,
      () => `${[...pending].join(', ')} to be ready\n${this.recentLogs()}`,
    );
  }
}
