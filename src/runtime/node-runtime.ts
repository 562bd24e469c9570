// The real shell around the core Node: it feeds the core the wall clock, ticks on a timer,
// carries out the core's effects against real storage, and hands replies back to the
// protocol layers through callbacks.
//
// Group commit: each persist effect is staged in storage as its step returns, so that the
// core reads its writes back at once; the effects of one event-loop turn (every request
// parsed from every socket in that turn) are persisted by one storage commit, started from
// setImmediate. While a commit is in flight, new batches queue up and go together in the
// next one, so under load one fsync serves many requests. Up to COMMITS_IN_FLIGHT_MAX
// commits overlap. Batches keep their order: the core relies on it.
//
// Failure: if storage fails a commit, the node stops serving (fail-stop). Carrying on after
// a failed fsync risks acknowledging data the disk does not hold.
//
// Peers: `send` effects go to the peer transport through the fault injector (faults.ts);
// messages that arrive become `peer` inputs. A new cluster map updates the transport's
// peer addresses.

import type { Logger } from 'pino';
import type { ClusterMap } from '../core/cluster/cluster-map.ts';
import { ErrorCode, kvError } from '../core/errors.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import { DEFAULT_LIMITS, type Limits } from '../core/limits.ts';
import {
  DEFAULT_CLUSTER_TIMINGS,
  Node,
  PROTOCOL_STAT_NAMES,
  type ClusterConfig,
  type ClusterStatus,
  type Effect,
} from '../core/node.ts';
import type { ClientReply, ClientRequest } from '../core/requests.ts';
import { DEFAULT_SWIM_CONFIG } from '../core/swim/config.ts';
import type { PeerAddress, PeerTransport } from '../net/contract.ts';
import type { Storage } from '../storage/contract.ts';
import { openStorage } from '../storage/open-storage.ts';
import type { NodeConfig } from './config.ts';
import { FaultInjector, type FaultSettings } from './faults.ts';
import { Metrics } from './metrics.ts';
import type { HandoffSettings, NodeApi, NodeStatus, ReplyCallback } from './node-api.ts';
import type { HandoffStatus } from '../core/handoff/handoff-host.ts';
import { AscendingIdMap } from './ascending-id-map.ts';

export const DEFAULT_PARTITION_COUNT = 256;

export interface NodeRuntimeOptions {
  /** Use this storage instead of opening the configured engine (tests). */
  readonly storage?: Storage;
  readonly metrics?: Metrics;
  readonly logger?: Logger;
  readonly keyspaces?: readonly Keyspace[];
  /** Called once if the node stops serving because storage failed. */
  readonly onFatal?: (error: Error) => void;
  /** Cluster mode: the transport to the peers, and what the core needs to form or join. */
  readonly cluster?: RuntimeCluster;
  /** A single node's own client addresses, for the ring it shows clients. */
  readonly self?: { readonly peer: string; readonly http: string; readonly resp: string };
}

export interface RuntimeCluster {
  readonly transport: PeerTransport;
  /**
   * Peer addresses of the other founders, by id, or of the member to join through (used only
   * while no map is stored).
   */
  readonly founders: ReadonlyMap<string, PeerAddress>;
  /** Set when this node joins a running cluster: the id of the member it joins through. */
  readonly joinVia?: string;
  /** Where this node's listeners are, as peers and clients should reach them. */
  readonly self: { readonly peer: string; readonly http: string; readonly resp: string };
  readonly seed: number;
}

type PersistEffect = Extract<Effect, { type: 'persist' }>;

interface InFlightCommit {
  /** The last batch of the group: `persisted` names it. The group itself is not kept. */
  readonly lastBatchId: number;
  done: boolean;
  settled: Promise<void>;
}

/**
 * Commits that may be in flight at once. More than one lets the next transaction be written
 * while the previous one is fsynced (LMDB's overlapping sync); storage applies them in call
 * order, and the core hears of them in that order too.
 */
const COMMITS_IN_FLIGHT_MAX = 1;

/**
 * A durable group of at most this many bytes of keys and values syncs on the main thread
 * (CommitOptions.syncInline) while the last commit took under INLINE_SYNC_MS_MAX. A small
 * group means a light load, with little for the main thread to do during the sync: the
 * trip through the I/O pool would cost two wake-ups and gain nothing (inline,
 * redis-benchmark -P 1 made about a fifth more durable SETs a second). A larger group means
 * requests waiting, which the main thread serves while the pool syncs: at -P 16, in the
 * steady state, groups of about 60 KiB through the pool made 1.06x the SETs a second of
 * syncing them inline (docs/STORAGE.md). After a slow commit every group goes to the pool.
 */
const INLINE_SYNC_BYTES_MAX = 16 * 1024;
const INLINE_SYNC_MS_MAX = 2;

export class NodeRuntime implements NodeApi {
  readonly limits: Limits;
  readonly metrics: Metrics;
  private readonly config: NodeConfig;
  private readonly storage: Storage;
  private readonly node: Node;
  private readonly logger: Logger | undefined;
  private readonly onFatal: ((error: Error) => void) | undefined;
  /** Callbacks of requests still open after their step (ascending-id-map.ts says why not a Map). */
  private readonly callbacks = new AscendingIdMap<ReplyCallback>();
  private readonly startedAtMs = Date.now();
  private lastNowMs = 0;
  private lastMonotonicMs = performance.now();
  private nextRequestId = 1;
  private commitQueue: PersistEffect[] = [];
  /** The bytes of keys and values in commitQueue (counted as each batch is staged). */
  private commitQueueBytes = 0;
  private commitScheduled = false;
  /** Commits started and not yet delivered to the core, oldest first. */
  private readonly commitsInFlight: InFlightCommit[] = [];
  private tickTimer: NodeJS.Timeout | null = null;
  private failure: Error | null = null;
  private closed = false;
  private commitsTotal = 0;
  /** How long the last commit took, start to durable. */
  private lastCommitMs = 0;
  private commitRequestsTotal = 0;
  private readonly transport: PeerTransport | null;
  readonly faults: FaultInjector;

  private constructor(config: NodeConfig, storage: Storage, options: NodeRuntimeOptions) {
    this.config = config;
    this.storage = storage;
    this.metrics = options.metrics ?? new Metrics();
    this.logger = options.logger;
    this.onFatal = options.onFatal;
    this.limits = limitsOf(config);
    const cluster = options.cluster;
    this.transport = cluster?.transport ?? null;
    this.node = new Node(
      {
        nodeId: config.nodeId,
        keyspaces: options.keyspaces ?? [{ ...DEFAULT_KEYSPACE, durability: config.durability }],
        limits: this.limits,
        partitionCount: DEFAULT_PARTITION_COUNT,
        ...(cluster === undefined ? {} : { cluster: clusterConfigOf(config, cluster) }),
        ...(options.self === undefined ? {} : { self: { id: config.nodeId, ...options.self } }),
      },
      storage,
    );
    this.faults = new FaultInjector((to, message) => this.transport?.send(to, message));
    if (cluster !== undefined) {
      const map = this.node.clusterMap();
      if (map !== null) this.usePeersOf(map);
      else cluster.transport.setPeers(cluster.founders);
      cluster.transport.onPeerLost?.((peer) => {
        if (this.closed || this.failure !== null) return;
        this.run(this.node.step({ type: 'peer-lost', nowMs: this.nowMs(), peer }));
      });
      cluster.transport.onMessage(({ from, message }) => {
        if (this.closed || this.failure !== null || !this.faults.admits(from)) return;
        this.metrics.peerMessagesReceived.increment();
        this.run(this.node.step({ type: 'peer', nowMs: this.nowMs(), from, message }));
      });
    }
    this.tickTimer = setInterval(() => this.tick(), config.tickMs);
    this.metrics.gauges.track(() => this.callbacks.size, { name: 'requests_in_flight' });
    for (const name of PROTOCOL_STAT_NAMES) {
      this.metrics.gauges.track(() => this.node.protocolStats()[name], { name });
    }
  }

  static async open(config: NodeConfig, options: NodeRuntimeOptions = {}): Promise<NodeRuntime> {
    const storage = options.storage ?? (await openStorage(config.storage, config.dataDir));
    return new NodeRuntime(config, storage, options);
  }

  submit(request: ClientRequest, onReply: ReplyCallback): void {
    if (this.failure !== null || this.closed) {
      onReply(unavailable(this.failure?.message ?? 'the node is shutting down'));
      return;
    }
    if (this.faults.settings().failed) {
      onReply(unavailable('this node is failed by fault injection'));
      return;
    }
    const limit = this.config.requestsInFlightMax;
    if (this.callbacks.size >= limit) {
      onReply(overloaded(`${this.callbacks.size} requests in flight, the limit is ${limit}`));
      return;
    }
    if (this.commitQueue.length >= limit) {
      // Batches wait here while a commit is in flight, which may itself wait for storage (a
      // checkpoint that writes outrun): relaxed writes, answered at once, would pile up
      // without bound.
      onReply(
        overloaded(`${this.commitQueue.length} batches wait for a commit, the limit is ${limit}`),
      );
      return;
    }
    const requestId = this.nextRequestId++;
    // Most requests are answered within their own step (reads, relaxed writes): their
    // callback waits beside the map, which only holds the ones still open after it. A map
    // that gains and loses an entry per request rebuilds its table every few requests.
    // Saved and restored: a callback may submit another request from inside `run`.
    const outerRequestId = this.answeringRequestId;
    const outerCallback = this.answeringCallback;
    this.answeringRequestId = requestId;
    this.answeringCallback = onReply;
    try {
      this.run(this.node.step({ type: 'request', nowMs: this.nowMs(), requestId, request }));
    } finally {
      if (this.answeringRequestId === requestId) this.callbacks.set(requestId, onReply);
      this.answeringRequestId = outerRequestId;
      this.answeringCallback = outerCallback;
    }
  }

  /** The request being stepped and its callback, until it is answered (-1: none). */
  private answeringRequestId = -1;
  private answeringCallback: ReplyCallback | null = null;

  keyspaces(): readonly Keyspace[] {
    return this.node.keyspaces();
  }

  clusterStatus(): ClusterStatus {
    return this.node.clusterStatus();
  }

  clusterMap(): ClusterMap | null {
    return this.node.clusterMap();
  }

  faultSettings(): FaultSettings {
    return this.faults.settings();
  }

  setHandoff(settings: HandoffSettings): HandoffStatus {
    this.node.setHandoff(settings);
    this.logger?.info({ handoff: settings }, 'handoff settings changed');
    return this.node.clusterStatus().handoff;
  }

  setFaults(settings: Partial<FaultSettings>): FaultSettings {
    const applied = this.faults.set(settings);
    this.logger?.warn({ faults: applied }, 'fault injection changed');
    return applied;
  }

  status(): NodeStatus {
    const now = Date.now();
    return {
      nodeId: this.config.nodeId,
      startedAtMs: this.startedAtMs,
      uptimeMs: now - this.startedAtMs,
      storageEngine: this.config.storage,
      dataDir: this.config.storage === 'memory' ? null : this.config.dataDir,
      requestsInFlight: this.callbacks.size,
      commitsTotal: this.commitsTotal,
      commitBatchSizeMean:
        this.commitsTotal === 0 ? 0 : this.commitRequestsTotal / this.commitsTotal,
    };
  }

  /** Stops taking requests, waits for pending commits, and closes storage. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    this.faults.close();
    await this.transport?.close();
    while (
      this.commitsInFlight.length > 0 ||
      (this.commitQueue.length > 0 && this.failure === null)
    ) {
      if (this.commitsInFlight.length === 0) this.startCommit();
      await this.commitsInFlight[this.commitsInFlight.length - 1]!.settled;
    }
    await this.storage.close();
  }

  private tick(): void {
    if (this.failure !== null) return;
    this.run(this.node.step({ type: 'tick', nowMs: this.nowMs() }));
  }

  /**
   * The node's clock: it advances with elapsed (monotonic) time and follows the wall clock
   * whenever that is ahead. A wall clock set back neither takes it back nor stops it, so
   * the core's timers (failure detection, timeouts) keep running; it is then ahead of the
   * wall clock by the step until the wall clock catches up.
   */
  private nowMs(): number {
    // Read once per run of synchronous work (the commands of one socket read share it):
    // two clock reads per command were a measurable part of a GET.
    if (this.nowCachedMs >= 0) return this.nowCachedMs;
    this.nowCachedMs = this.readClockMs();
    queueMicrotask(this.forgetNow);
    return this.nowCachedMs;
  }

  private nowCachedMs = -1;
  private readonly forgetNow = (): void => {
    this.nowCachedMs = -1;
  };

  private readClockMs(): number {
    const monotonicMs = performance.now();
    const advanced = this.lastNowMs + (monotonicMs - this.lastMonotonicMs);
    this.lastMonotonicMs = monotonicMs;
    this.lastNowMs = Math.max(advanced, Date.now());
    // Whole milliseconds: timestamps and expiry times are integers.
    return Math.floor(this.lastNowMs);
  }

  private usePeersOf(map: ClusterMap): void {
    const peers = new Map<string, PeerAddress>();
    for (const member of map.members) {
      if (member.id !== this.config.nodeId) peers.set(member.id, parseAddress(member.peer));
    }
    this.transport?.setPeers(peers);
  }

  private run(effects: readonly Effect[]): void {
    for (const effect of effects) {
      if (effect.type === 'reply') {
        if (effect.requestId === this.answeringRequestId) {
          const callback = this.answeringCallback!;
          this.answeringRequestId = -1;
          this.answeringCallback = null;
          callback(effect.reply);
          continue;
        }
        const callback = this.callbacks.take(effect.requestId);
        if (callback === undefined) throw new Error(`reply to unknown request ${effect.requestId}`);
        callback(effect.reply);
      } else if (effect.type === 'send') {
        this.metrics.peerMessagesSent.increment();
        this.faults.send(effect.to, effect.message);
      } else if (effect.type === 'map') {
        this.logger?.info({ epoch: effect.map.epoch }, 'cluster map adopted');
        this.usePeersOf(effect.map);
      } else {
        // Readable at once (the core reads its own writes back); durable with the group.
        try {
          this.storage.stage(effect.writes);
        } catch (error) {
          this.fail(error instanceof Error ? error : new Error(String(error)));
          continue;
        }
        this.commitQueue.push(effect);
        for (const write of effect.writes) {
          this.commitQueueBytes += write.key.length + (write.value?.length ?? 0);
        }
        if (!this.commitScheduled && this.commitsInFlight.length < COMMITS_IN_FLIGHT_MAX) {
          this.commitScheduled = true;
          setImmediate(() => {
            this.commitScheduled = false;
            if (this.commitsInFlight.length < COMMITS_IN_FLIGHT_MAX) this.startCommit();
          });
        }
      }
    }
  }

  private startCommit(): void {
    if (this.commitQueue.length === 0 || this.failure !== null) return;
    const group = this.commitQueue;
    const bytes = this.commitQueueBytes;
    this.commitQueue = [];
    this.commitQueueBytes = 0;
    let durable = false;
    let writeCount = 0;
    for (const batch of group) {
      durable ||= batch.durable;
      writeCount += batch.writes.length;
    }
    const startedAt = performance.now();
    // Only numbers outlive this call: the batches and their writes are garbage once storage
    // has them, not kept through the sync (what a durable load's scavenges would copy).
    const batches = group.length;
    const commit: InFlightCommit = {
      lastBatchId: group[batches - 1]!.batchId,
      done: false,
      settled: Promise.resolve(),
    };
    this.commitsInFlight.push(commit);
    const syncInline =
      durable && bytes <= INLINE_SYNC_BYTES_MAX && this.lastCommitMs < INLINE_SYNC_MS_MAX;
    // Every batch of the group is staged: the commit persists them.
    commit.settled = this.storage.commit([], { durable, syncInline }).then(
      () => {
        this.lastCommitMs = performance.now() - startedAt;
        this.commitsTotal += 1;
        this.commitRequestsTotal += batches;
        this.metrics.commits.increment();
        this.metrics.commitWrites.increment({}, writeCount);
        this.metrics.commitSeconds.observe(this.lastCommitMs / 1000);
        commit.done = true;
        this.deliverFinishedCommits();
      },
      (error: unknown) => {
        this.fail(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** Tells the core about finished commits, strictly in the order they were started. */
  private deliverFinishedCommits(): void {
    while (this.commitsInFlight.length > 0 && this.commitsInFlight[0]!.done) {
      const commit = this.commitsInFlight.shift()!;
      // One step for the whole group: `persisted` covers every batch up to the one named.
      const batchId = commit.lastBatchId;
      this.run(this.node.step({ type: 'persisted', nowMs: this.nowMs(), batchId }));
    }
    // What queued up meanwhile goes out now, as one group.
    if (
      this.commitQueue.length > 0 &&
      !this.commitScheduled &&
      this.commitsInFlight.length < COMMITS_IN_FLIGHT_MAX
    ) {
      this.startCommit();
    }
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = new Error(`storage failed, the node has stopped serving: ${error.message}`);
    this.logger?.fatal({ err: error }, 'storage commit failed; refusing further requests');
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    const callbacks = [...this.callbacks.values()];
    this.callbacks.clear();
    this.commitQueue = [];
    this.commitQueueBytes = 0;
    for (const callback of callbacks) callback(unavailable(this.failure.message));
    this.onFatal?.(this.failure);
  }
}

export function limitsOf(config: NodeConfig): Limits {
  return {
    ...DEFAULT_LIMITS,
    keyBytesMax: config.keyBytesMax,
    valueBytesMax: config.valueBytesMax,
  };
}

function clusterConfigOf(config: NodeConfig, cluster: RuntimeCluster): ClusterConfig {
  return {
    clusterId: config.clusterId,
    self: { id: config.nodeId, ...cluster.self },
    founders: cluster.joinVia === undefined ? [...cluster.founders.keys()] : [],
    ...(cluster.joinVia === undefined ? {} : { joinVia: cluster.joinVia }),
    seed: cluster.seed,
    swim: {
      ...DEFAULT_SWIM_CONFIG,
      probeIntervalMs: config.probeIntervalMs,
      probeTimeoutMs: config.probeTimeoutMs,
      suspicionTimeoutMs: config.suspicionTimeoutMs,
      tickIntervalMsMax: config.tickMs,
    },
    requestTimeoutMs: config.requestTimeoutMs,
    hintsMax: config.hintsMax,
    tombstoneGraceMs: config.tombstoneGraceMs,
    handoffIntervalMs: DEFAULT_CLUSTER_TIMINGS.handoffIntervalMs,
    handoffBatchMax: DEFAULT_CLUSTER_TIMINGS.handoffBatchMax,
    ...(config.elastic === null ? {} : { elastic: config.elastic }),
  };
}

/** host:port (IPv6 hosts in brackets) to an address. */
export function parseAddress(text: string): PeerAddress {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`'${text}' is not HOST:PORT`);
  }
  return { host, port };
}

function unavailable(message: string): ClientReply {
  return { ok: false, error: kvError(ErrorCode.UNAVAILABLE, message) };
}

function overloaded(message: string): ClientReply {
  return { ok: false, error: kvError(ErrorCode.OVERLOADED, message) };
}
