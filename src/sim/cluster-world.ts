// A whole cluster in one process on a virtual clock: the real core Node of every member,
// each over the in-memory storage engine, joined by a simulated network with seeded delays
// (and a long tail), loss, duplication, reordering, one-way cuts, partitions of any shape
// (src/sim/network-faults.ts) and clogged links; crash, restart and pause of nodes; and
// skewed and jumping clocks. Everything that varies comes from one seed, so a run replays
// exactly.
//
// Network: links are FIFO, as TCP is, except for the faults that say otherwise. A duplicate
// is a second copy delivered later, outside the link's order; a reordered message skips the
// link's order (a reconnect), so it may overtake earlier messages or be overtaken. A cut
// drops what reaches it; a clogged link holds what reaches it, in order, and delivers all of
// it once unclogged. Faults that are off draw nothing from the Prng, so turning one on never
// changes the runs of seeds that do not use it.
//
// Storage: each node's persist effects are staged at once, as the real shell stages them,
// and complete in order, in group commits as the real shell makes them: one commit at a
// time, of a seeded latency, and the batches emitted while it runs go together in the next
// one, which starts when it ends; only then is the node told. (Committing each batch on its
// own, one after another, capped a node at a few hundred batches a second: a busy run's
// queue of batches grew without bound, every operation timed out and its retries added
// more.) A crash undoes the batches not yet complete (the writes a real crash would lose)
// and drops the node's messages in flight; a restart builds a new Node over the same
// storage, as a real restart does.
//
// No Promises and no real time: `run*` methods advance the clock event by event.

import { DEFAULT_KEYSPACE, type Keyspace } from '../core/keyspace.ts';
import { DEFAULT_LIMITS } from '../core/limits.ts';
import type { ClusterMap, MemberInfo } from '../core/cluster/cluster-map.ts';
import type { ElasticSettings } from '../core/cluster/elastic-host.ts';
import { Node, type Effect, type NodeCoreConfig } from '../core/node.ts';
import { Prng } from '../core/prng.ts';
import type { ClientReply, ClientRequest } from '../core/requests.ts';
import { DEFAULT_SWIM_CONFIG, type SwimConfig } from '../core/swim/config.ts';
import { winningSibling } from '../core/kv/siblings.ts';
import { partitionOf } from '../core/ring/partition.ts';
import { preferenceList } from '../core/ring/preference-list.ts';
import { dataKey } from '../core/store/layout.ts';
import { decodeRecord } from '../core/store/record.ts';
import type { StorageWrite } from '../storage/contract.ts';
import { MemoryStorage } from '../storage/memory/memory-storage.ts';
import { assert, equalBytes } from '../core/bytes.ts';
import { EventQueue } from './event-queue.ts';
import {
  cutsOf,
  describePartition,
  type PartitionShape,
  type SwizzleSchedule,
} from './network-faults.ts';

export interface ClusterWorldOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly keyspaces?: readonly Keyspace[];
  readonly partitionCount?: number;
  /** One-way network delay, uniform in [min, max] ms. */
  readonly delayMsMin?: number;
  readonly delayMsMax?: number;
  /** Probability that a message is lost. */
  readonly lossRate?: number;
  /** Probability that a message takes the long tail: a delay up to `tailDelayMsMax`. */
  readonly tailRate?: number;
  readonly tailDelayMsMax?: number;
  /** Probability that a message is delivered twice; the copy lags up to `duplicateDelayMsMax`. */
  readonly duplicateRate?: number;
  readonly duplicateDelayMsMax?: number;
  /** Probability that a message ignores its link's FIFO order (a reconnect). */
  readonly reorderRate?: number;
  /** Storage commit latency, uniform in [min, max] ms. */
  readonly commitMsMin?: number;
  readonly commitMsMax?: number;
  /**
   * A broken disk for negative controls: every batch is reported durable at once, and
   * kept only after the commit latency, so a crash in between loses acknowledged data.
   */
  readonly skipFsync?: boolean;
  /** Negative controls: nodes that never hand hints back, or never repair on reads. */
  readonly hintedHandoff?: boolean;
  readonly readRepair?: boolean;
  /** Negative control: no Merkle exchanges between replicas. */
  readonly antiEntropy?: boolean;
  /** Tombstones of eventual keyspaces: their grace period (default: the node's, 1 hour). */
  readonly tombstoneGraceMs?: number;
  /** The pause between two sweeps for tombstones (default: the node's). */
  readonly tombstoneSweepIntervalMs?: number;
  /** Negative control: tombstones purged on their age alone, without asking anyone. */
  readonly tombstonePurgeOnGraceAlone?: boolean;
  /** Negative control: strong keyspaces with quorums of one acceptor. */
  readonly strongQuorumOfOne?: boolean;
  /** Negative control: chain replicas that serve requests of older chain epochs. */
  readonly chainAcceptOlderEpochs?: boolean;
  /** Negative control: receivers of a membership change report copies they never made. */
  readonly handoffCopies?: boolean;
  /** Negative controls: strong acceptor changes without fences, or without rewrites. */
  readonly strongAcceptorChangeUnsafe?: 'ignore-fences' | 'skip-rewrite' | null;
  /** Negative control: voter changes without the map register's fence. */
  readonly voterChangeUnsafe?: 'ignore-fences' | null;
  /** Negative control when false: chain tails a membership change adds join after its commit. */
  readonly chainTailsBeforeCommit?: boolean;
  readonly tickMs?: number;
  readonly requestTimeoutMs?: number;
  readonly swim?: Partial<SwimConfig>;
  /** The elastic policy, given to every node; with it, a load count pass of 2 s. */
  readonly elastic?: ElasticSettings;
  /** Virtual unix time at the start. */
  readonly startMs?: number;
}

type WorldEvent =
  | DeliverEvent
  /** An unclogged link hands over what it held, in order. */
  | { readonly kind: 'release'; readonly from: string; readonly to: string }
  | { readonly kind: 'tick'; readonly node: string; readonly generation: number }
  | { readonly kind: 'persisted'; readonly node: string; readonly generation: number }
  /** Under `skipFsync`: the node is told a batch is durable before it is. */
  | {
      readonly kind: 'early-ack';
      readonly node: string;
      readonly generation: number;
      readonly batchId: number;
    }
  | { readonly kind: 'call'; readonly action: () => void };

interface DeliverEvent {
  readonly kind: 'deliver';
  readonly from: string;
  readonly to: string;
  readonly message: unknown;
  readonly generation: number;
  /** The message's place among those sent on its link (a duplicate shares it). */
  readonly sequence: number;
  readonly duplicate: boolean;
  readonly reordered: boolean;
}

/** A message as it reaches a node, for observers (tests, transcripts). */
export interface Delivery {
  readonly atMs: number;
  readonly from: string;
  readonly to: string;
  readonly message: unknown;
  /** The message's place among those sent on its link, from 1; a duplicate shares it. */
  readonly sequence: number;
  readonly duplicate: boolean;
  readonly reordered: boolean;
}

/** A bound on what a clogged link holds; past it the run is wrong, not slow. */
const HELD_MESSAGES_MAX = 1_000_000;

type PersistEffect = Extract<Effect, { type: 'persist' }>;

interface SimNode {
  readonly id: string;
  readonly storage: MemoryStorage;
  node: Node | null;
  /** Bumped by every crash: events of an earlier life are ignored. */
  generation: number;
  /**
   * Persist effects staged and waiting for their commit, oldest first, each with the writes
   * that undo it.
   */
  persisting: { readonly effect: PersistEffect; readonly undo: StorageWrite[] }[];
  /** The last commit scheduled: batches emitted by its start join it. */
  lastCommitStartMs: number;
  lastCommitDoneMs: number;
  callbacks: Map<number, (reply: ClientReply) => void>;
  /** This node's wall clock minus the world's (skew); its clock never goes back. */
  clockOffsetMs: number;
  lastNodeNowMs: number;
  lastWorldMs: number;
  /** While paused, the node's events wait until this time. */
  pausedUntilMs: number;
}

export class ClusterWorld {
  readonly ids: readonly string[];
  nowMs: number;
  private options: Required<Omit<ClusterWorldOptions, 'swim' | 'keyspaces' | 'elastic'>> & {
    swim: SwimConfig;
    keyspaces: readonly Keyspace[];
    elastic?: ElasticSettings;
  };
  private readonly prng: Prng;
  private readonly events = new EventQueue<WorldEvent>();
  private readonly nodes = new Map<string, SimNode>();
  /** Nodes added after the start, and the member each joins through. */
  private readonly joinVia = new Map<string, string>();
  /** Directed cuts: "a>b" drops every message from a to b. */
  private readonly cuts = new Set<string>();
  /** The delivery time of the last message sent on each link "a>b". */
  private readonly linkFreeAtMs = new Map<string, number>();
  /** Messages sent on each link "a>b" so far. */
  private readonly linkSentCount = new Map<string, number>();
  /** Clogged links "a>b", and nodes every link to and from which is clogged. */
  private readonly cloggedLinks = new Set<string>();
  private readonly cloggedNodes = new Set<string>();
  /** What each clogged (or just unclogged) link holds, oldest first. */
  private readonly held = new Map<string, DeliverEvent[]>();
  private readonly deliveryListeners: ((delivery: Delivery) => void)[] = [];
  private readonly mapListeners: ((id: string, map: ClusterMap) => void)[] = [];
  private nextRequestId = 1;
  /** Drops the messages it names, whatever the links do; null: none. */
  private dropFilter: ((from: string, to: string, message: unknown) => boolean) | null = null;
  /** Counts calmNetwork calls, so that a scheduled fault knows it was called off. */
  private calms = 0;
  messagesSent = 0;
  messagesDropped = 0;
  messagesDuplicated = 0;
  messagesReordered = 0;

  constructor(options: ClusterWorldOptions) {
    const tickMs = options.tickMs ?? 20;
    this.options = {
      seed: options.seed,
      nodeCount: options.nodeCount,
      keyspaces: options.keyspaces ?? [DEFAULT_KEYSPACE],
      partitionCount: options.partitionCount ?? 64,
      delayMsMin: options.delayMsMin ?? 1,
      delayMsMax: options.delayMsMax ?? 5,
      lossRate: options.lossRate ?? 0,
      tailRate: options.tailRate ?? 0,
      tailDelayMsMax: options.tailDelayMsMax ?? 500,
      duplicateRate: options.duplicateRate ?? 0,
      duplicateDelayMsMax: options.duplicateDelayMsMax ?? 200,
      reorderRate: options.reorderRate ?? 0,
      commitMsMin: options.commitMsMin ?? 1,
      commitMsMax: options.commitMsMax ?? 4,
      skipFsync: options.skipFsync ?? false,
      hintedHandoff: options.hintedHandoff ?? true,
      readRepair: options.readRepair ?? true,
      antiEntropy: options.antiEntropy ?? true,
      tombstoneGraceMs: options.tombstoneGraceMs ?? 0,
      tombstoneSweepIntervalMs: options.tombstoneSweepIntervalMs ?? 0,
      tombstonePurgeOnGraceAlone: options.tombstonePurgeOnGraceAlone ?? false,
      strongQuorumOfOne: options.strongQuorumOfOne ?? false,
      chainAcceptOlderEpochs: options.chainAcceptOlderEpochs ?? false,
      ...(options.elastic === undefined ? {} : { elastic: options.elastic }),
      handoffCopies: options.handoffCopies ?? true,
      strongAcceptorChangeUnsafe: options.strongAcceptorChangeUnsafe ?? null,
      voterChangeUnsafe: options.voterChangeUnsafe ?? null,
      chainTailsBeforeCommit: options.chainTailsBeforeCommit ?? true,
      tickMs,
      requestTimeoutMs: options.requestTimeoutMs ?? 500,
      startMs: options.startMs ?? 1_700_000_000_000,
      swim: {
        ...DEFAULT_SWIM_CONFIG,
        probeIntervalMs: 200,
        probeTimeoutMs: 80,
        suspicionTimeoutMs: 600,
        downProbeIntervalMs: 400,
        tickIntervalMsMax: tickMs,
        ...options.swim,
      },
    };
    this.prng = new Prng(options.seed);
    this.nowMs = this.options.startMs;
    this.ids = Array.from({ length: options.nodeCount }, (_, i) => `n${i + 1}`);
    for (const id of this.ids) this.addSimNode(id);
  }

  /**
   * Starts a new node that joins the running cluster through member `via`: it becomes a
   * standby, and a membership change makes it a member.
   */
  addNode(id: string, via: string): void {
    if (this.nodes.has(id)) throw new Error(`${id} exists`);
    this.joinVia.set(id, via);
    this.addSimNode(id);
  }

  private addSimNode(id: string): void {
    this.nodes.set(id, {
      id,
      storage: new MemoryStorage(),
      node: null,
      generation: 0,
      persisting: [],
      lastCommitStartMs: 0,
      lastCommitDoneMs: 0,
      callbacks: new Map(),
      clockOffsetMs: 0,
      lastNodeNowMs: 0,
      lastWorldMs: 0,
      pausedUntilMs: 0,
    });
    this.boot(id);
  }

  /** The core node of a member that is up (tests inspect it). */
  node(id: string): Node {
    const node = this.simNode(id).node;
    if (node === null) throw new Error(`${id} is down`);
    return node;
  }

  /**
   * A node's storage as the node reads it: batches staged and not yet durable included
   * (`unpersistedBatches` counts them; a crash undoes them).
   */
  storage(id: string): MemoryStorage {
    return this.simNode(id).storage;
  }

  /** Batches a node has staged whose commit has not completed yet. */
  unpersistedBatches(id: string): number {
    return this.simNode(id).persisting.length;
  }

  /** Whether a batch a node has staged, and not yet completed, writes `key`: a crash undoes it. */
  writesUnpersisted(id: string, key: Uint8Array): boolean {
    return this.simNode(id).persisting.some(({ effect }) =>
      effect.writes.some((write) => equalBytes(write.key, key)),
    );
  }

  isUp(id: string): boolean {
    return this.simNode(id).node !== null;
  }

  /** Runs until every node holds a cluster map; answers whether they did in time. */
  waitFormed(timeoutMs = 5_000): boolean {
    return this.runUntil(
      () => this.ids.every((id) => this.isUp(id) && this.node(id).clusterMap() !== null),
      timeoutMs,
    );
  }

  /** Runs until every node sees every other alive and no node holds hints. */
  waitSettled(timeoutMs: number): boolean {
    return this.runUntil(
      () =>
        this.ids.every(
          (id) =>
            this.isUp(id) &&
            this.node(id).clusterStatus().hintsTotal === 0 &&
            this.ids.every((other) => this.node(id).liveness(other) === 'alive'),
        ),
      timeoutMs,
    );
  }

  /** The first `n` replicas of a key, by the map of the first node that is up. */
  replicasOf(keyspaceId: number, key: Uint8Array, n: number): string[] {
    const map = this.node(this.ids.find((id) => this.isUp(id))!).clusterMap()!;
    return preferenceList(map.owners, partitionOf(keyspaceId, key, map.partitionCount), n);
  }

  /** The partition a key of a keyspace falls in, in this world. */
  partitionOfKey(keyspaceId: number, key: Uint8Array): number {
    return partitionOf(keyspaceId, key, this.options.partitionCount);
  }

  /** The winning value a node's own storage holds for a key (null: none live). */
  storedWinner(id: string, keyspaceId: number, key: Uint8Array): Uint8Array | null {
    const partition = partitionOf(keyspaceId, key, this.options.partitionCount);
    const bytes = this.storage(id).get(dataKey(keyspaceId, partition, key));
    if (bytes === undefined) return null;
    const policy =
      this.options.keyspaces.find((keyspace) => keyspace.id === keyspaceId)?.conflicts ?? 'lww';
    return winningSibling(decodeRecord(bytes), this.nowMs, policy)?.value ?? null;
  }

  /** Whether a node's own storage holds a row for a key: a value or a tombstone. */
  holdsRow(id: string, keyspaceId: number, key: Uint8Array): boolean {
    const partition = partitionOf(keyspaceId, key, this.options.partitionCount);
    return this.storage(id).get(dataKey(keyspaceId, partition, key)) !== undefined;
  }

  /** Sends a client request to a node; `onReply` is called once, in virtual time. */
  submit(id: string, request: ClientRequest, onReply: (reply: ClientReply) => void): void {
    const sim = this.simNode(id);
    if (this.nowMs < sim.pausedUntilMs) {
      this.at(sim.pausedUntilMs, () => this.submit(id, request, onReply));
      return;
    }
    if (sim.node === null) {
      onReply({ ok: false, error: { code: 'RINGKV_UNAVAILABLE', message: `${id} is down` } });
      return;
    }
    const requestId = this.nextRequestId++;
    sim.callbacks.set(requestId, onReply);
    this.apply(
      sim,
      sim.node.step({ type: 'request', nowMs: this.nodeNowMs(sim), requestId, request }),
    );
  }

  /** Submits and runs the world until the reply arrives (or `timeoutMs` passes). */
  call(id: string, request: ClientRequest, timeoutMs = 10_000): ClientReply {
    let reply: ClientReply | null = null;
    this.submit(id, request, (answer) => (reply = answer));
    this.runUntil(() => reply !== null, timeoutMs);
    if (reply === null) throw new Error(`no reply from ${id} within ${timeoutMs} ms`);
    return reply;
  }

  /** Stops a node at once: unapplied writes and in-flight messages to and from it are lost. */
  crash(id: string): void {
    const sim = this.simNode(id);
    sim.node = null;
    sim.generation++;
    // Newest first: each undo takes its keys back to what the batch before it left.
    for (let i = sim.persisting.length - 1; i >= 0; i--) {
      sim.storage.apply(sim.persisting[i]!.undo);
    }
    sim.persisting = [];
    for (const callback of sim.callbacks.values()) {
      callback({ ok: false, error: { code: 'RINGKV_UNAVAILABLE', message: `${id} crashed` } });
    }
    sim.callbacks.clear();
  }

  /** Starts a crashed node again over its storage. */
  restart(id: string): void {
    const sim = this.simNode(id);
    if (sim.node !== null) throw new Error(`${id} is up`);
    this.boot(id);
  }

  /**
   * Drops every message `filter` names (by sender, receiver and content) until set to null:
   * a fault aimed at one kind of message, such as the maps a node would learn from. It draws
   * nothing from the Prng for the messages it drops.
   */
  dropWhere(filter: ((from: string, to: string, message: unknown) => boolean) | null): void {
    this.dropFilter = filter;
  }

  /** Drops every message from `from` to `to` (one way) until healed. */
  cut(from: string, to: string): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Every node of the world, founders first, then those added, in the order they came. */
  get nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  /** Cuts a node off from every other node (those added after the start too), both ways. */
  isolate(id: string): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut(id, other);
      this.cut(other, id);
    }
  }

  healAll(): void {
    this.cuts.clear();
  }

  /** Splits the nodes into groups that cannot reach each other (both ways). */
  partition(groups: readonly (readonly string[])[]): void {
    for (const group of groups) {
      for (const other of groups) {
        if (other === group) continue;
        for (const from of group) for (const to of other) this.cut(from, to);
      }
    }
  }

  /**
   * Applies a partition shape (src/sim/network-faults.ts) in place of every cut there is:
   * a shape describes the whole network.
   */
  applyPartition(shape: PartitionShape): void {
    assert(
      shape.nodes.every((id) => this.nodes.has(id)),
      `the shape names nodes of this world: ${describePartition(shape)}`,
    );
    this.healAll();
    for (const cut of cutsOf(shape)) this.cut(cut.from, cut.to);
  }

  /** Clogs the link from `from` to `to` (one way): it holds its messages, in order. */
  clog(from: string, to: string): void {
    assert(this.nodes.has(from) && this.nodes.has(to), `no link ${from}>${to}`);
    this.cloggedLinks.add(`${from}>${to}`);
  }

  /** Unclogs a link: it delivers what it held, in order, unless one of its nodes is clogged. */
  unclog(from: string, to: string): void {
    this.cloggedLinks.delete(`${from}>${to}`);
    this.releaseUnclogged();
  }

  /** Clogs every link to and from a node. */
  clogNode(id: string): void {
    this.simNode(id);
    this.cloggedNodes.add(id);
  }

  /** Unclogs the links of a node, but not those still clogged by their other end or by `clog`. */
  unclogNode(id: string): void {
    this.cloggedNodes.delete(id);
    this.releaseUnclogged();
  }

  unclogAll(): void {
    this.cloggedLinks.clear();
    this.cloggedNodes.clear();
    this.releaseUnclogged();
  }

  isClogged(from: string, to: string): boolean {
    return (
      this.cloggedLinks.has(`${from}>${to}`) ||
      this.cloggedNodes.has(from) ||
      this.cloggedNodes.has(to)
    );
  }

  /** Schedules every step of a swizzle (src/sim/network-faults.ts) at its time. */
  scheduleSwizzle(schedule: SwizzleSchedule): void {
    const calms = this.calms;
    for (const step of schedule.steps) {
      this.simNode(step.node);
      this.at(step.atMs, () => {
        // A calmed network stays calm: steps still to come when it was calmed are dropped.
        if (this.calms !== calms) return;
        if (step.action === 'clog') this.clogNode(step.node);
        else this.unclogNode(step.node);
      });
    }
  }

  /** Calls `listener` with every message as it reaches its node, duplicates included. */
  onDeliver(listener: (delivery: Delivery) => void): void {
    this.deliveryListeners.push(listener);
  }

  /** Calls `listener` with every map a node installs (adopted, or loaded at start-up). */
  onMap(listener: (id: string, map: ClusterMap) => void): void {
    this.mapListeners.push(listener);
  }

  /**
   * Sets a node's wall clock to the world's plus `offsetMs`. As in the real shell, the node's
   * own clock never goes back: set back, it keeps advancing from where it was.
   */
  skewClock(id: string, offsetMs: number): void {
    this.simNode(id).clockOffsetMs = offsetMs;
  }

  /**
   * Moves a node's wall clock by `deltaMs` (back when negative) from now on, on top of any
   * skew. A jump back does not take the node's own clock back: it keeps advancing from
   * where it was, and follows the wall clock again once that catches up.
   */
  jumpClock(id: string, deltaMs: number): void {
    assert(Number.isFinite(deltaMs), 'a clock jumps by a finite amount');
    this.simNode(id).clockOffsetMs += deltaMs;
  }

  /** What a node's own clock reads now (reading it changes nothing). */
  nodeClockMs(id: string): number {
    const sim = this.simNode(id);
    return Math.max(
      sim.lastNodeNowMs + (this.nowMs - sim.lastWorldMs),
      this.nowMs + sim.clockOffsetMs,
    );
  }

  /** Stops a node from running (a long GC pause, SIGSTOP) for `durationMs`; nothing is lost. */
  pause(id: string, durationMs: number): void {
    const sim = this.simNode(id);
    sim.pausedUntilMs = Math.max(sim.pausedUntilMs, this.nowMs + durationMs);
  }

  setLossRate(lossRate: number): void {
    this.options = { ...this.options, lossRate };
  }

  setDuplicateRate(duplicateRate: number): void {
    assert(duplicateRate >= 0 && duplicateRate <= 1, 'a rate is a probability');
    this.options = { ...this.options, duplicateRate };
  }

  setReorderRate(reorderRate: number): void {
    assert(reorderRate >= 0 && reorderRate <= 1, 'a rate is a probability');
    this.options = { ...this.options, reorderRate };
  }

  /**
   * Ends every network fault: no loss, long tails, duplication or reordering, no cuts, no
   * clogs (clogged links deliver what they held), and swizzle steps still to come are called
   * off. Copies already on their way still arrive.
   */
  /** How many times the network was calmed: faults scheduled before a calm are called off. */
  get calmCount(): number {
    return this.calms;
  }

  calmNetwork(): void {
    this.calms++;
    this.options = { ...this.options, lossRate: 0, tailRate: 0, duplicateRate: 0, reorderRate: 0 };
    this.healAll();
    this.unclogAll();
  }

  /** Runs `action` at virtual time `atMs` (or now, if past). */
  at(atMs: number, action: () => void): void {
    this.events.push(Math.max(atMs, this.nowMs), { kind: 'call', action });
  }

  runFor(durationMs: number): void {
    const endMs = this.nowMs + durationMs;
    this.runUntil(() => false, durationMs);
    this.nowMs = Math.max(this.nowMs, endMs);
  }

  /** Runs events until `done()` holds; answers whether it did within `timeoutMs`. */
  runUntil(done: () => boolean, timeoutMs: number): boolean {
    const endMs = this.nowMs + timeoutMs;
    while (!done()) {
      const next = this.events.peekTime();
      if (next === undefined || next > endMs) {
        this.nowMs = endMs;
        return done();
      }
      const event = this.events.pop()!;
      this.nowMs = event.atMs;
      this.handle(event.payload);
    }
    return true;
  }

  private boot(id: string): void {
    const sim = this.simNode(id);
    const self: MemberInfo = { id, peer: `${id}:7000`, http: `${id}:8080`, resp: `${id}:6379` };
    const config: NodeCoreConfig = {
      nodeId: id,
      keyspaces: this.options.keyspaces,
      limits: DEFAULT_LIMITS,
      partitionCount: this.options.partitionCount,
      cluster: {
        clusterId: 'sim',
        self,
        founders: this.joinVia.has(id) ? [] : this.ids.filter((other) => other !== id),
        ...(this.joinVia.has(id) ? { joinVia: this.joinVia.get(id)! } : {}),
        seed: this.prng.nextUint32(),
        swim: this.options.swim,
        requestTimeoutMs: this.options.requestTimeoutMs,
        hintsMax: 100_000,
        handoffIntervalMs: 200,
        handoffBatchMax: 64,
        hintedHandoff: this.options.hintedHandoff,
        readRepair: this.options.readRepair,
        antiEntropy: this.options.antiEntropy,
        ...(this.options.tombstoneGraceMs === 0
          ? {}
          : { tombstoneGraceMs: this.options.tombstoneGraceMs }),
        ...(this.options.tombstoneSweepIntervalMs === 0
          ? {}
          : { tombstoneSweepIntervalMs: this.options.tombstoneSweepIntervalMs }),
        tombstonePurgeOnGraceAlone: this.options.tombstonePurgeOnGraceAlone,
        strongQuorumOfOne: this.options.strongQuorumOfOne,
        chainAcceptOlderEpochs: this.options.chainAcceptOlderEpochs,
        ...(this.options.elastic === undefined
          ? {}
          : { elastic: this.options.elastic, loadCensusPassMs: 2_000 }),
        handoffCopies: this.options.handoffCopies,
        ...(this.options.strongAcceptorChangeUnsafe === null
          ? {}
          : { strongAcceptorChangeUnsafe: this.options.strongAcceptorChangeUnsafe }),
        ...(this.options.voterChangeUnsafe === null
          ? {}
          : { voterChangeUnsafe: this.options.voterChangeUnsafe }),
        chainTailsBeforeCommit: this.options.chainTailsBeforeCommit,
      },
    };
    sim.node = new Node(config, sim.storage);
    sim.lastCommitStartMs = this.nowMs;
    sim.lastCommitDoneMs = this.nowMs;
    this.events.push(this.nowMs + this.prng.between(0, this.options.tickMs), {
      kind: 'tick',
      node: id,
      generation: sim.generation,
    });
  }

  private handle(event: WorldEvent): void {
    if (event.kind !== 'call') {
      // A paused node runs nothing; what arrives for it waits, in order, until it resumes.
      const sim = this.simNode(
        event.kind === 'deliver' || event.kind === 'release' ? event.to : event.node,
      );
      // (early acknowledgements of a paused node wait too)
      if (this.nowMs < sim.pausedUntilMs) {
        this.events.push(sim.pausedUntilMs, event);
        return;
      }
    }
    switch (event.kind) {
      case 'call':
        return event.action();
      case 'tick': {
        const sim = this.simNode(event.node);
        if (sim.generation !== event.generation || sim.node === null) return;
        this.apply(sim, sim.node.step({ type: 'tick', nowMs: this.nodeNowMs(sim) }));
        this.events.push(this.nowMs + this.options.tickMs, event);
        return;
      }
      case 'deliver': {
        const link = `${event.from}>${event.to}`;
        const held = this.held.get(link);
        // A clogged link holds what reaches it; a link that still holds messages (it was
        // just unclogged) queues newcomers behind them, so its order is kept.
        if (held !== undefined || this.isClogged(event.from, event.to)) {
          const queue = held ?? [];
          assert(queue.length < HELD_MESSAGES_MAX, `link ${link} holds too many messages`);
          queue.push(event);
          this.held.set(link, queue);
          return;
        }
        this.deliver(event);
        return;
      }
      case 'release': {
        // Clogged again before its turn came: the next unclog releases it.
        if (this.isClogged(event.from, event.to)) return;
        const link = `${event.from}>${event.to}`;
        const held = this.held.get(link);
        if (held === undefined) return;
        this.held.delete(link);
        for (const message of held) this.deliver(message);
        return;
      }
      case 'persisted': {
        const sim = this.simNode(event.node);
        if (sim.generation !== event.generation || sim.node === null) return;
        // Staged when emitted: from now on a crash keeps it.
        const batch = sim.persisting.shift()!.effect;
        if (this.options.skipFsync) return; // the node was told long ago
        this.apply(
          sim,
          sim.node.step({ type: 'persisted', nowMs: this.nodeNowMs(sim), batchId: batch.batchId }),
        );
        return;
      }
      case 'early-ack': {
        const sim = this.simNode(event.node);
        if (sim.generation !== event.generation || sim.node === null) return;
        this.apply(
          sim,
          sim.node.step({ type: 'persisted', nowMs: this.nodeNowMs(sim), batchId: event.batchId }),
        );
        return;
      }
    }
  }

  /** Hands a message to its node, unless the node restarted since the send or the link is cut. */
  private deliver(event: DeliverEvent): void {
    const sim = this.simNode(event.to);
    if (sim.generation !== event.generation || sim.node === null) return;
    if (this.cuts.has(`${event.from}>${event.to}`)) {
      this.messagesDropped++;
      return;
    }
    for (const listener of this.deliveryListeners) {
      listener({
        atMs: this.nowMs,
        from: event.from,
        to: event.to,
        message: event.message,
        sequence: event.sequence,
        duplicate: event.duplicate,
        reordered: event.reordered,
      });
    }
    this.apply(
      sim,
      sim.node.step({
        type: 'peer',
        nowMs: this.nodeNowMs(sim),
        from: event.from,
        message: event.message,
      }),
    );
  }

  /** Schedules the release of every link that holds messages and is no longer clogged. */
  private releaseUnclogged(): void {
    for (const [link, held] of this.held) {
      const first = held[0];
      assert(first !== undefined, `link ${link} holds something`);
      if (this.isClogged(first.from, first.to)) continue;
      this.events.push(this.nowMs, { kind: 'release', from: first.from, to: first.to });
    }
  }

  private apply(sim: SimNode, effects: readonly Effect[]): void {
    for (const effect of effects) {
      switch (effect.type) {
        case 'persist': {
          const undo = sim.storage.undoOf(effect.writes);
          sim.storage.stage(effect.writes);
          sim.persisting.push({ effect, undo });
          // The last commit scheduled takes the batch if it has not started yet (it waits
          // for the one before to end) or starts now; else the batch starts the next one.
          if (sim.lastCommitStartMs < this.nowMs || sim.lastCommitDoneMs <= this.nowMs) {
            sim.lastCommitStartMs = Math.max(sim.lastCommitDoneMs, this.nowMs);
            sim.lastCommitDoneMs =
              sim.lastCommitStartMs +
              this.prng.between(this.options.commitMsMin, this.options.commitMsMax);
          }
          this.events.push(sim.lastCommitDoneMs, {
            kind: 'persisted',
            node: sim.id,
            generation: sim.generation,
          });
          if (this.options.skipFsync) {
            this.events.push(this.nowMs, {
              kind: 'early-ack',
              node: sim.id,
              generation: sim.generation,
              batchId: effect.batchId,
            });
          }
          break;
        }
        case 'reply': {
          const callback = sim.callbacks.get(effect.requestId);
          if (callback === undefined)
            throw new Error(`reply to unknown request ${effect.requestId}`);
          sim.callbacks.delete(effect.requestId);
          callback(effect.reply);
          break;
        }
        case 'send': {
          this.messagesSent++;
          const target = this.nodes.get(effect.to);
          const filtered = this.dropFilter?.(sim.id, effect.to, effect.message) === true;
          if (target === undefined || filtered || this.prng.chance(this.options.lossRate)) {
            this.messagesDropped++;
            break;
          }
          let delay = this.prng.between(this.options.delayMsMin, this.options.delayMsMax);
          if (this.prng.chance(this.options.tailRate)) {
            delay = this.prng.between(this.options.delayMsMax, this.options.tailDelayMsMax);
          }
          // Links are FIFO, as TCP is: a message never overtakes an earlier one on its link
          // (a slow one holds back those behind it). Equal times keep their push order.
          // A reordered message (a reconnect) keeps its own delay and does not hold back
          // those behind it: it may overtake earlier ones, and later ones may overtake it.
          const link = `${sim.id}>${effect.to}`;
          const sequence = (this.linkSentCount.get(link) ?? 0) + 1;
          this.linkSentCount.set(link, sequence);
          const reordered =
            this.options.reorderRate > 0 && this.prng.chance(this.options.reorderRate);
          let atMs = this.nowMs + delay;
          if (reordered) {
            this.messagesReordered++;
          } else {
            atMs = Math.max(atMs, this.linkFreeAtMs.get(link) ?? 0);
            this.linkFreeAtMs.set(link, atMs);
          }
          const event: DeliverEvent = {
            kind: 'deliver',
            from: sim.id,
            to: effect.to,
            message: effect.message,
            generation: target.generation,
            sequence,
            duplicate: false,
            reordered,
          };
          this.events.push(atMs, event);
          // The copy comes later and outside the link's order, as a retransmission would.
          if (this.options.duplicateRate > 0 && this.prng.chance(this.options.duplicateRate)) {
            this.messagesDuplicated++;
            const lagMs = this.prng.between(1, this.options.duplicateDelayMsMax);
            this.events.push(atMs + lagMs, { ...event, duplicate: true });
          }
          break;
        }
        case 'map':
          for (const listener of this.mapListeners) listener(sim.id, effect.map);
          break;
      }
    }
  }

  /**
   * What the node's own clock reads now, as the real shell computes it: it advances with
   * elapsed time and follows the (skewed) wall clock when that is ahead; a wall clock set
   * back does not take it back or stop it.
   */
  private nodeNowMs(sim: SimNode): number {
    const advanced = sim.lastNodeNowMs + (this.nowMs - sim.lastWorldMs);
    sim.lastWorldMs = this.nowMs;
    sim.lastNodeNowMs = Math.max(advanced, this.nowMs + sim.clockOffsetMs);
    return sim.lastNodeNowMs;
  }

  private simNode(id: string): SimNode {
    const sim = this.nodes.get(id);
    if (sim === undefined) throw new Error(`no node ${id}`);
    return sim;
  }
}
