// A deterministic world for chain replication alone: one partition's replicas on 3 to 5
// nodes, a master that plays the cluster map, and concurrent clients, on a virtual clock with
// one seeded PRNG. The network delays, loses, duplicates and reorders messages (links are not
// FIFO: the protocol carries sequence numbers and resends, so it assumes nothing about order);
// each node has a disk that makes batches durable in order after a delay; nodes crash (losing
// what their disk had not finished), pause (their inbox fills and is handled on resume), or
// are cut off from the master (which then takes them for failed while they keep running).
//
// The master removes a member it has seen down for `detectionDelayMs`, one change at a time,
// and appends a healthy spare (or a restarted node) at the tail when the chain is short. It
// pushes every new configuration to every node, again periodically, and answers fetches.
// Clients run get, put, delete, compare-and-set and increment on a few keys through the
// ChainRequester and record every operation into a history for the linearizability checker.
// Faults stop at the end of the workload (the liveness phase); then every client reads every
// key once more, and those reads must succeed.
//
// Rules kept: every message crosses the network as a structured clone and is validated on
// arrival by the receiving state machine; a message addressed to an earlier life of a node is
// dropped; a fault never takes the last healthy caught-up member of the chain (the paper's
// assumption: at most N - 1 of N replicas fail).

import { assert, bytesToKeyString, fromUtf8, keyStringToBytes, utf8 } from '../core/bytes.ts';
import {
  foundingChainConfig,
  memberIndex,
  withTail,
  withoutMember,
  type ChainConfig,
} from '../core/chain/chain-config.ts';
import type { ChainMessage, ChainReply, RequesterMemory } from '../core/chain/messages.ts';
import type { ChainOperation } from '../core/chain/operations.ts';
import {
  ChainReplica,
  type ChainBatch,
  type ChainCounters,
  type ChainOutput,
  type ChainReplicaOptions,
  type ChainSend,
  type ChainStoredState,
  type PrecopyReport,
  type StoredKey,
  type UnsafeChainSettings,
} from '../core/chain/replica.ts';
import {
  ChainRequester,
  DEFAULT_REQUESTER_OPTIONS,
  type ChainCompletion,
  type ChainRequest,
  type RequesterOutput,
} from '../core/chain/requester.ts';
import {
  DEFAULT_CHAIN_LIMITS,
  type ChainLimits,
  type ChainTimings,
} from '../core/chain/settings.ts';
import {
  decodeChainEntry,
  decodeChainMeta,
  decodeChainRecord,
  decodeRequesterMemory,
  encodeChainEntry,
  encodeChainMeta,
  encodeChainRecord,
  encodeRequesterMemory,
} from '../core/chain/state-codec.ts';
import { Prng } from '../core/prng.ts';
import type { Operation, Value } from '../check/history.ts';
import { EventQueue } from './event-queue.ts';

export const CHAIN_PARTITION = 7;

/**
 * crash: the node stops, losing what its disk had not finished, and restarts from its disk.
 * pause: the node stops handling anything; its inbox fills and is handled on resume.
 * isolate: the master cannot reach the node (and takes it for failed); everyone else can.
 * partition: the node reaches neither the master nor the other replicas; clients still reach
 * it (the case a tail's lease exists for: it cannot learn that it was removed).
 */
export type ChainFaultKind = 'crash' | 'pause' | 'isolate' | 'partition';

export interface ChainFault {
  readonly kind: ChainFaultKind;
  readonly atMs: number;
  readonly durationMs: number;
}

export interface ChainWorldOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly chainLength: number;
  readonly clientCount: number;
  readonly keyCount: number;
  readonly workloadMs: number;
  /** After the workload: faults are over and the chain heals before the final reads. */
  readonly settleMs: number;
  readonly thinkMsMax: number;
  /** A workload operation unanswered this long ends unknown (it may still land later). */
  readonly clientTimeoutMs: number;
  /** Puts of a value that is not an integer, so that some increments fail. */
  readonly textValueProbability: number;
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  readonly persistMsMax: number;
  readonly tickIntervalMs: number;
  readonly detectionDelayMs: number;
  /** The master waits this long between two changes, and before appending a new node. */
  readonly reconfigureGapMs: number;
  readonly configRepushMs: number;
  /**
   * Whether the master has a node copy the partition from the tail before appending it (the
   * paper's way); without, a node is appended at once and copies as a member.
   */
  readonly precopy: boolean;
  /** The master gives up on a pre-copy that has not reported a small pass in this time. */
  readonly precopyTimeoutMs: number;
  readonly timings: ChainTimings;
  readonly limits: ChainLimits;
  /** Faults, each against a node drawn when it strikes. */
  readonly faults: readonly ChainFault[];
  /** Negative controls: deliberately broken replicas. */
  readonly unsafe: UnsafeChainSettings;
}

/** Draws a world for a seed: sizes, network, timings and faults vary per seed (swarm). */
export function drawChainWorldOptions(
  seed: number,
  overrides: Partial<ChainWorldOptions> = {},
): ChainWorldOptions {
  const prng = new Prng(seed ^ 0x6c1a_17e5);
  const nodeCount = prng.between(3, 5);
  const chainLength = prng.chance(0.6) ? 3 : prng.between(2, nodeCount);
  const leaseMs = prng.between(80, 300);
  const workloadMs = prng.between(1500, 3000);
  const clientCount = prng.between(2, 5);
  const faultKinds: ChainFaultKind[] = ['crash', 'pause', 'isolate', 'partition'];
  const faults: ChainFault[] = [];
  const faultCount = prng.between(0, 4);
  for (let index = 0; index < faultCount; index++) {
    faults.push({
      kind: prng.pick(faultKinds),
      atMs: prng.between(100, workloadMs - 100),
      durationMs: prng.between(50, 1500),
    });
  }
  faults.sort((a, b) => a.atMs - b.atMs);
  return {
    seed,
    nodeCount,
    chainLength,
    clientCount,
    keyCount: prng.between(1, 3),
    workloadMs,
    settleMs: 3000,
    thinkMsMax: prng.between(0, 40),
    // Short timeouts leave writes unknown; with many clients on one key they make histories
    // too hard to check, so only a few clients use them.
    clientTimeoutMs: clientCount <= 3 && prng.chance(0.4) ? prng.between(200, 400) : 1500,
    textValueProbability: prng.chance(0.5) ? 0 : 0.1,
    delayMsMin: 1,
    delayMsMax: prng.between(2, 15),
    lossProbability: prng.chance(0.3) ? 0 : prng.next() * 0.05,
    duplicateProbability: prng.chance(0.3) ? 0 : prng.next() * 0.05,
    persistMsMax: prng.between(0, 5),
    tickIntervalMs: prng.between(2, 10),
    detectionDelayMs: prng.chance(0.3) ? prng.between(10, 80) : prng.between(100, 600),
    reconfigureGapMs: prng.between(20, 100),
    configRepushMs: 300,
    precopy: prng.chance(0.7),
    precopyTimeoutMs: 2000,
    timings: {
      retransmitAfterMs: prng.between(20, 60),
      leaseMs,
      clockDriftMarginMs: 5,
      ackIntervalMs: prng.between(10, Math.floor(leaseMs / 4)),
      copyRetryAfterMs: 100,
    },
    // Small bounds, so that forwards and copies split into many messages.
    limits: {
      ...DEFAULT_CHAIN_LIMITS,
      recordsPerChunkMax: prng.between(1, 3),
      entriesPerForwardMax: prng.between(1, 8),
      forwardValueBytesMax: prng.between(8, 64),
    },
    faults,
    unsafe: {},
    ...overrides,
  };
}

/** A fault as it struck, for reports. */
export interface StruckFault {
  readonly kind: ChainFaultKind;
  readonly node: string;
  readonly atMs: number;
  readonly untilMs: number;
}

interface SimulatedNode {
  readonly id: string;
  replica: ChainReplica;
  up: boolean;
  pausedUntilMs: number | null;
  isolatedUntilMs: number | null;
  partitionedUntilMs: number | null;
  /** Bumped on crash and restart: deliveries to an earlier life are dropped. */
  life: number;
  /** Since when the node is healthy in the master's eyes, or null while it is not. */
  healthySinceMs: number | null;
  /** Since when the master has seen the node down, or null. */
  downSinceMs: number | null;
  /** Work that arrived while paused, handled in order on resume. */
  inbox: NodeWork[];
  disk: PendingWrite[];
  diskBusy: boolean;
  durable: DurableStore;
}

interface PendingWrite {
  readonly batch: ChainBatch | null;
  readonly sends: readonly ChainSend[];
}

/** What one node's disk holds: the encoded rows, as a storage engine would. */
export interface DurableStore {
  meta: Uint8Array | null;
  readonly records: Map<string, Uint8Array>;
  readonly requesters: Map<string, Uint8Array>;
  /** Entry rows by sequence number. */
  readonly entries: Map<number, Uint8Array>;
}

type NodeWork =
  | { readonly kind: 'message'; readonly from: string; readonly message: unknown }
  | { readonly kind: 'config' | 'precopy'; readonly config: ChainConfig }
  | { readonly kind: 'disk-done' };

interface SimulatedClient {
  readonly id: string;
  readonly index: number;
  readonly requester: ChainRequester;
  current: { requestId: number; operation: Operation } | null;
  /** The last value this client saw per key: its compare-and-set guesses. */
  readonly seen: Map<string, Value>;
  writesIssued: number;
  finalReadsLeft: string[];
}

type WorldEvent =
  | { readonly kind: 'node-tick'; readonly node: string; readonly life: number }
  | { readonly kind: 'client-tick'; readonly client: number }
  | { readonly kind: 'client-next'; readonly client: number }
  | {
      readonly kind: 'deliver';
      readonly to: string;
      readonly toLife: number;
      readonly from: string;
      readonly message: unknown;
    }
  | {
      readonly kind: 'config' | 'precopy';
      readonly to: string;
      readonly toLife: number;
      readonly config: ChainConfig;
    }
  | { readonly kind: 'disk-done'; readonly node: string; readonly life: number }
  | { readonly kind: 'master' }
  | { readonly kind: 'fault'; readonly fault: ChainFault }
  | { readonly kind: 'recover'; readonly node: string; readonly fault: ChainFaultKind };

const EVENTS_PER_RUN_MAX = 20_000_000;
/** Final reads wait this long: the chain has healed, and they must succeed. */
const FINAL_READ_TIMEOUT_MS = 3000;
/** How long the end of a run waits for the replicas to agree and the disks to be idle. */
const CONVERGENCE_WAIT_MS = 5000;
const MASTER_INTERVAL_MS = 10;
const INCR_DELTA_MAX = 5;

export class ChainWorld {
  readonly options: ChainWorldOptions;
  readonly nodeIds: readonly string[];
  readonly history: Operation[] = [];
  readonly configs: ChainConfig[] = [];
  readonly struck: StruckFault[] = [];
  private readonly prng: Prng;
  private readonly queue = new EventQueue<WorldEvent>();
  private readonly nodes = new Map<string, SimulatedNode>();
  private readonly clients: SimulatedClient[] = [];
  private readonly keys: string[] = [];
  private config: ChainConfig;
  private lastChangeAtMs = 0;
  /** The node the master is having pre-copy, and whether a pass of it was small enough. */
  private joining: { node: string; startedAtMs: number; ready: boolean } | null = null;
  private clockMs = 0;
  private finalPhase = false;
  messagesSent = 0;
  messagesLost = 0;
  messagesDuplicated = 0;

  constructor(options: ChainWorldOptions) {
    assert(options.nodeCount >= 2 && options.chainLength >= 1, 'a world has nodes and a chain');
    assert(options.chainLength <= options.nodeCount, 'the chain fits on the nodes');
    assert(options.delayMsMax >= options.delayMsMin && options.delayMsMin >= 0, 'delay range');
    this.options = options;
    this.prng = new Prng(options.seed);
    const ids: string[] = [];
    for (let index = 0; index < options.nodeCount; index++) ids.push(`n${index}`);
    this.nodeIds = ids;
    for (let index = 0; index < options.keyCount; index++) this.keys.push(`k${index}`);
    this.config = foundingChainConfig(CHAIN_PARTITION, ids.slice(0, options.chainLength));
    this.configs.push(this.config);
    for (const id of ids) {
      const node: SimulatedNode = {
        id,
        replica: this.freshReplica(id),
        up: true,
        pausedUntilMs: null,
        isolatedUntilMs: null,
        partitionedUntilMs: null,
        life: 0,
        healthySinceMs: 0,
        downSinceMs: null,
        inbox: [],
        disk: [],
        diskBusy: false,
        durable: { meta: null, records: new Map(), requesters: new Map(), entries: new Map() },
      };
      this.nodes.set(id, node);
      // The founding configuration reaches every node before anything else happens.
      this.carryOut(node, node.replica.configure(this.config, 0));
      this.scheduleNodeTick(node, true);
    }
    for (let index = 0; index < options.clientCount; index++) {
      const id = `c${index}`;
      const requester = new ChainRequester({
        ...DEFAULT_REQUESTER_OPTIONS,
        selfId: id,
        resendIntervalMs: Math.max(20, options.timings.retransmitAfterMs),
        configRefreshAfterMs: 200,
      });
      requester.learnConfig(this.config);
      const client: SimulatedClient = {
        id,
        index,
        requester,
        current: null,
        seen: new Map(),
        writesIssued: 0,
        finalReadsLeft: [],
      };
      this.clients.push(client);
      this.queue.push(this.prng.below(options.tickIntervalMs), {
        kind: 'client-tick',
        client: index,
      });
      this.queue.push(this.prng.below(20), { kind: 'client-next', client: index });
    }
    for (const fault of options.faults) this.queue.push(fault.atMs, { kind: 'fault', fault });
    this.queue.push(MASTER_INTERVAL_MS, { kind: 'master' });
  }

  get nowMs(): number {
    return this.clockMs;
  }

  get currentConfig(): ChainConfig {
    return this.config;
  }

  replica(id: string): ChainReplica {
    return this.node(id).replica;
  }

  durableStore(id: string): DurableStore {
    return this.node(id).durable;
  }

  isHealthy(id: string): boolean {
    const node = this.node(id);
    return (
      node.up &&
      node.pausedUntilMs === null &&
      node.isolatedUntilMs === null &&
      node.partitionedUntilMs === null
    );
  }

  /** Whether every disk queue is empty (everything emitted is durable). */
  disksIdle(): boolean {
    for (const node of this.nodes.values()) if (node.disk.length > 0) return false;
    return true;
  }

  /** The sum of every live replica's counters. */
  counters(): ChainCounters {
    const total: Record<string, number> = {};
    for (const node of this.nodes.values()) {
      for (const [name, value] of Object.entries(node.replica.counters)) {
        total[name] = (total[name] ?? 0) + value;
      }
    }
    return total as unknown as ChainCounters;
  }

  /**
   * Runs the whole scenario: the workload with its faults, the liveness phase, then the final
   * reads. Returns whether every final read succeeded.
   */
  runScenario(): boolean {
    const workloadEndMs = this.options.workloadMs;
    this.run(workloadEndMs);
    // Liveness phase: faults are over (recoveries still come), and the chain heals.
    this.finalPhase = true;
    this.endAllFaults();
    this.run(workloadEndMs + this.options.settleMs);
    const finalStartMs = this.clockMs;
    for (const client of this.clients) client.finalReadsLeft = [...this.keys];
    for (const client of this.clients) this.startNextOperation(client);
    this.run(finalStartMs + this.options.settleMs + FINAL_READ_TIMEOUT_MS, () =>
      this.clientsIdle(),
    );
    const live = this.finalReadsSucceeded();
    // Let the last acknowledgements and disk writes land.
    this.run(this.clockMs + CONVERGENCE_WAIT_MS, () => this.replicaProblems().length === 0);
    return live;
  }

  /**
   * What is wrong with the final chain, once quiet: every member of the master's
   * configuration has adopted it, is caught up, has committed all it applied, holds the same
   * records and remembered requests as the others, and its disk decodes to that same state.
   */
  replicaProblems(): string[] {
    const problems: string[] = [];
    if (!this.disksIdle()) problems.push('disk writes are still in progress');
    let reference: { id: string; state: string } | null = null;
    for (const member of this.config.members) {
      const replica = this.node(member.id).replica;
      const name = `${member.id} (${replica.role()} at epoch ${replica.epoch})`;
      if (replica.epoch !== this.config.epoch) problems.push(`${name} has not adopted the map`);
      if (!replica.isCaughtUp) problems.push(`${name} is not caught up`);
      if (replica.committed !== replica.applied) {
        problems.push(`${name} committed ${replica.committed} of ${replica.applied}`);
      }
      const state = describeState(replica.localRecords(), replica.localRequesters());
      reference ??= { id: member.id, state };
      if (state !== reference.state) problems.push(`${name} differs from ${reference.id}`);
      const stored = decodeStore(this.node(member.id).durable);
      if (stored === null) {
        problems.push(`${name} stored nothing`);
        continue;
      }
      const storedState = describeState(stored.records, stored.requesters);
      if (storedState !== state) problems.push(`${name}: its disk differs from its memory`);
      if (stored.meta.appliedSequence !== replica.applied) {
        problems.push(`${name}: its disk holds applied ${stored.meta.appliedSequence}`);
      }
    }
    return problems;
  }

  /** Handles events up to `untilMs`, or until `stop` holds after an event. */
  run(untilMs: number, stop?: () => boolean): void {
    for (let handled = 0; handled < EVENTS_PER_RUN_MAX; handled++) {
      const nextMs = this.queue.peekTime();
      if (nextMs === undefined || nextMs > untilMs) {
        this.clockMs = Math.max(this.clockMs, untilMs);
        return;
      }
      const event = this.queue.pop()!;
      assert(event.atMs >= this.clockMs, 'virtual time does not go back');
      this.clockMs = event.atMs;
      this.handle(event.payload);
      if (stop !== undefined && stop()) return;
    }
    assert(false, `a run handles at most ${EVENTS_PER_RUN_MAX} events`);
  }

  private finalReadsSucceeded(): boolean {
    const finalReads = this.history.filter((operation) => operation.client >= 1000);
    return (
      finalReads.length === this.clients.length * this.keys.length &&
      finalReads.every((operation) => operation.outcome === 'ok')
    );
  }

  private clientsIdle(): boolean {
    return this.clients.every(
      (client) => client.current === null && client.finalReadsLeft.length === 0,
    );
  }

  // --- events ---

  private handle(event: WorldEvent): void {
    switch (event.kind) {
      case 'node-tick': {
        const node = this.node(event.node);
        if (!node.up || node.life !== event.life) return;
        if (node.pausedUntilMs === null) this.carryOut(node, node.replica.tick(this.clockMs));
        this.scheduleNodeTick(node, false);
        return;
      }
      case 'client-tick': {
        const client = this.clients[event.client]!;
        this.carryOutClient(client, client.requester.tick(this.clockMs));
        this.queue.push(this.clockMs + this.options.tickIntervalMs, event);
        return;
      }
      case 'client-next':
        this.startNextOperation(this.clients[event.client]!);
        return;
      case 'deliver':
        this.deliver(event.from, event.to, event.toLife, event.message);
        return;
      case 'config':
      case 'precopy': {
        const node = this.nodes.get(event.to);
        if (node !== undefined) {
          // Cut off from the master.
          if (node.isolatedUntilMs !== null || node.partitionedUntilMs !== null) return;
          this.work(node, event.toLife, { kind: event.kind, config: event.config });
          return;
        }
        this.clientById(event.to).requester.learnConfig(event.config);
        return;
      }
      case 'disk-done':
        this.work(this.node(event.node), event.life, { kind: 'disk-done' });
        return;
      case 'master':
        this.masterStep();
        this.queue.push(this.clockMs + MASTER_INTERVAL_MS, event);
        return;
      case 'fault':
        if (!this.finalPhase) this.strike(event.fault);
        return;
      case 'recover':
        this.recover(this.node(event.node), event.fault);
        return;
    }
  }

  private deliver(from: string, to: string, toLife: number, message: unknown): void {
    const node = this.nodes.get(to);
    if (node !== undefined) {
      this.work(node, toLife, { kind: 'message', from, message });
      return;
    }
    const client = this.clientById(to);
    this.carryOutClient(client, client.requester.receive(from, message, this.clockMs));
  }

  /** Hands work to a node now, or to its inbox while it is paused. */
  private work(node: SimulatedNode, life: number, work: NodeWork): void {
    if (!node.up || node.life !== life) return;
    if (node.pausedUntilMs !== null) {
      node.inbox.push(work);
      return;
    }
    this.perform(node, work);
  }

  private perform(node: SimulatedNode, work: NodeWork): void {
    switch (work.kind) {
      case 'message':
        this.carryOut(node, node.replica.receive(work.from, work.message, this.clockMs));
        return;
      case 'config':
        this.carryOut(node, node.replica.configure(work.config, this.clockMs));
        return;
      case 'precopy':
        this.carryOut(node, node.replica.precopy(work.config, this.clockMs));
        return;
      case 'disk-done':
        this.completeDiskWrite(node);
        return;
    }
  }

  // --- the shell: disk and network ---

  private carryOut(node: SimulatedNode, output: ChainOutput): void {
    if (output.configWanted !== null) this.sendConfig(node.id, node.life);
    if (output.precopied !== null) this.precopyReported(node, output.precopied);
    if (output.batch === null && output.sends.length === 0) return;
    node.disk.push({ batch: output.batch, sends: output.sends });
    if (!node.diskBusy) this.startDiskWrite(node);
  }

  private startDiskWrite(node: SimulatedNode): void {
    const next = node.disk[0];
    assert(next !== undefined && !node.diskBusy, 'a write to start');
    node.diskBusy = true;
    // A step with nothing to store waits only for the writes before it.
    const delayMs = next.batch === null ? 0 : this.prng.between(0, this.options.persistMsMax);
    this.queue.push(this.clockMs + delayMs, { kind: 'disk-done', node: node.id, life: node.life });
  }

  private completeDiskWrite(node: SimulatedNode): void {
    const write = node.disk.shift();
    assert(write !== undefined && node.diskBusy, 'a write was in progress');
    node.diskBusy = false;
    if (write.batch !== null) applyBatch(node.durable, write.batch);
    for (const send of write.sends) this.send(node.id, send.to, send.message);
    if (node.disk.length > 0) this.startDiskWrite(node);
  }

  private carryOutClient(client: SimulatedClient, output: RequesterOutput): void {
    for (const send of output.sends) {
      const routed = this.misroute(send);
      this.send(client.id, routed.to, routed.message);
    }
    for (const partition of output.configWanted) {
      assert(partition === CHAIN_PARTITION, 'one partition in this world');
      this.sendConfig(client.id, 0);
    }
    for (const completion of output.completions) this.completeOperation(client, completion);
  }

  /** The negative control for reads: a broken shell sends reads to any node. */
  private misroute(send: ChainSend): ChainSend {
    const message = send.message;
    if (this.options.unsafe.readsAtAnyReplica !== true || message.type !== 'read') return send;
    return { to: this.prng.pick(this.nodeIds), message };
  }

  private send(from: string, to: string, message: ChainMessage): void {
    this.messagesSent += 1;
    if (this.cutOff(from, to)) {
      this.messagesLost += 1;
      return;
    }
    if (this.prng.chance(this.options.lossProbability)) {
      this.messagesLost += 1;
      return;
    }
    const copies = this.prng.chance(this.options.duplicateProbability) ? 2 : 1;
    if (copies === 2) this.messagesDuplicated += 1;
    const toLife = this.nodes.get(to)?.life ?? 0;
    for (let copy = 0; copy < copies; copy++) {
      const delayMs = this.prng.between(this.options.delayMsMin, this.options.delayMsMax);
      this.queue.push(this.clockMs + delayMs, {
        kind: 'deliver',
        to,
        toLife,
        from,
        // What crosses the wire is a copy: nothing is shared between the two ends.
        message: structuredClone(message),
      });
    }
  }

  /** Whether a partition separates two nodes (clients are never cut off). */
  private cutOff(from: string, to: string): boolean {
    const sender = this.nodes.get(from);
    const receiver = this.nodes.get(to);
    if (sender === undefined || receiver === undefined) return false;
    return sender.partitionedUntilMs !== null || receiver.partitionedUntilMs !== null;
  }

  private sendConfig(to: string, toLife: number): void {
    if (this.prng.chance(this.options.lossProbability)) return;
    const delayMs = this.prng.between(this.options.delayMsMin, this.options.delayMsMax);
    this.queue.push(this.clockMs + delayMs, { kind: 'config', to, toLife, config: this.config });
  }

  // --- the master ---

  private masterStep(): void {
    for (const node of this.nodes.values()) {
      const healthy = this.isHealthy(node.id);
      if (healthy) {
        node.downSinceMs = null;
        node.healthySinceMs ??= this.clockMs;
      } else {
        node.healthySinceMs = null;
        node.downSinceMs ??= this.clockMs;
      }
    }
    if (this.clockMs - this.lastChangeAtMs >= this.options.reconfigureGapMs) {
      const next = this.nextConfig();
      if (next !== null) {
        this.config = next;
        this.configs.push(next);
        this.lastChangeAtMs = this.clockMs;
        for (const node of this.nodes.values()) this.sendConfig(node.id, node.life);
        return;
      }
    }
    if (this.clockMs % this.options.configRepushMs < MASTER_INTERVAL_MS) {
      for (const node of this.nodes.values()) this.sendConfig(node.id, node.life);
    }
  }

  private nextConfig(): ChainConfig | null {
    const config = this.config;
    if (config.members.length > 1) {
      for (const member of config.members) {
        const node = this.node(member.id);
        if (
          node.downSinceMs !== null &&
          this.clockMs - node.downSinceMs >= this.options.detectionDelayMs
        ) {
          return withoutMember(config, member.id);
        }
      }
    }
    if (config.members.length >= this.options.chainLength) return null;
    const joining = this.joining;
    if (joining !== null) {
      if (!this.isHealthy(joining.node) || memberIndex(config, joining.node) >= 0) {
        this.joining = null;
      } else if (joining.ready) {
        this.joining = null;
        return withTail(config, joining.node);
      } else if (this.clockMs - joining.startedAtMs >= this.options.precopyTimeoutMs) {
        this.joining = null;
      }
      return null;
    }
    const candidates = this.nodeIds.filter((id) => {
      const node = this.node(id);
      return (
        memberIndex(config, id) < 0 &&
        node.healthySinceMs !== null &&
        this.clockMs - node.healthySinceMs >= this.options.reconfigureGapMs
      );
    });
    if (candidates.length === 0) return null;
    const chosen = this.prng.pick(candidates);
    if (!this.options.precopy) return withTail(config, chosen);
    this.joining = { node: chosen, startedAtMs: this.clockMs, ready: false };
    const node = this.node(chosen);
    const delayMs = this.prng.between(this.options.delayMsMin, this.options.delayMsMax);
    this.queue.push(this.clockMs + delayMs, {
      kind: 'precopy',
      to: chosen,
      toLife: node.life,
      config: this.config,
    });
    return null;
  }

  /** A pass that fit in one chunk leaves little for the copy after joining. */
  private precopyReported(node: SimulatedNode, report: PrecopyReport): void {
    const joining = this.joining;
    if (joining === null || joining.node !== node.id) return;
    if (report.recordsInPass <= this.options.limits.recordsPerChunkMax) joining.ready = true;
  }

  // --- faults ---

  private strike(fault: ChainFault): void {
    // Never the last healthy member that holds the whole partition.
    const safe = this.nodeIds.filter((id) => this.isHealthy(id) && this.survivorsWithout(id) >= 1);
    if (safe.length === 0) return;
    const node = this.node(this.prng.pick(safe));
    const untilMs = this.clockMs + fault.durationMs;
    this.struck.push({ kind: fault.kind, node: node.id, atMs: this.clockMs, untilMs });
    switch (fault.kind) {
      case 'crash':
        node.up = false;
        node.life += 1;
        node.inbox = [];
        node.disk = []; // what the disk had not finished is lost
        node.diskBusy = false;
        break;
      case 'pause':
        node.pausedUntilMs = untilMs;
        break;
      case 'isolate':
        node.isolatedUntilMs = untilMs;
        break;
      case 'partition':
        node.partitionedUntilMs = untilMs;
        break;
    }
    this.queue.push(untilMs, { kind: 'recover', node: node.id, fault: fault.kind });
  }

  /** Healthy, caught-up members of the master's configuration other than `id`. */
  private survivorsWithout(id: string): number {
    let count = 0;
    for (const member of this.config.members) {
      if (member.id === id || !this.isHealthy(member.id)) continue;
      const replica = this.node(member.id).replica;
      if (replica.epoch === this.config.epoch && replica.isCaughtUp) count += 1;
    }
    return count;
  }

  private recover(node: SimulatedNode, fault: ChainFaultKind): void {
    switch (fault) {
      case 'crash':
        if (node.up) return;
        // A restarted node comes back with what its disk holds, and nothing else.
        node.up = true;
        node.life += 1;
        node.replica = this.restoredReplica(node);
        this.scheduleNodeTick(node, true);
        this.sendConfig(node.id, node.life);
        return;
      case 'pause': {
        if (node.pausedUntilMs === null) return;
        node.pausedUntilMs = null;
        const inbox = node.inbox;
        node.inbox = [];
        for (const work of inbox) {
          if (!node.up || node.pausedUntilMs !== null) break;
          this.perform(node, work);
        }
        return;
      }
      case 'isolate':
        node.isolatedUntilMs = null;
        return;
      case 'partition':
        node.partitionedUntilMs = null;
        return;
    }
  }

  private endAllFaults(): void {
    for (const node of this.nodes.values()) {
      if (!node.up) this.recover(node, 'crash');
      if (node.pausedUntilMs !== null) this.recover(node, 'pause');
      if (node.isolatedUntilMs !== null) this.recover(node, 'isolate');
      if (node.partitionedUntilMs !== null) this.recover(node, 'partition');
    }
  }

  // --- clients ---

  private startNextOperation(client: SimulatedClient): void {
    if (client.current !== null) return;
    let operation: Operation;
    let request: ChainRequest;
    if (this.finalPhase) {
      const key = client.finalReadsLeft.shift();
      if (key === undefined) return;
      operation = this.newOperation(client, key, 'get');
      request = { kind: 'read', key: utf8(key) };
      // Final reads carry a client number of their own, so the test can find them.
      operation = { ...operation, client: 1000 + client.index };
    } else {
      if (this.clockMs >= this.options.workloadMs) return;
      const key = this.prng.pick(this.keys);
      const roll = this.prng.next();
      const kind: Operation['op'] =
        roll < 0.35
          ? 'get'
          : roll < 0.6
            ? 'put'
            : roll < 0.75
              ? 'cas'
              : roll < 0.9
                ? 'incr'
                : 'delete';
      operation = this.newOperation(client, key, kind);
      request =
        operation.op === 'get'
          ? { kind: 'read', key: utf8(key) }
          : { kind: 'write', operation: this.chainOperation(operation) };
    }
    const timeoutMs = this.finalPhase ? FINAL_READ_TIMEOUT_MS : this.options.clientTimeoutMs;
    const requestId = client.requester.submit(CHAIN_PARTITION, request, this.clockMs, timeoutMs);
    assert(requestId !== null, 'one operation at a time fits every bound');
    client.current = { requestId, operation };
    this.carryOutClient(client, client.requester.takeOutput());
  }

  private newOperation(client: SimulatedClient, key: string, kind: Operation['op']): Operation {
    const timing = {
      client: client.index,
      key,
      invokedAt: this.clockMs,
      completedAt: null,
      outcome: 'unknown' as const,
    };
    switch (kind) {
      case 'get':
        return { ...timing, op: 'get', input: null, output: null };
      case 'put':
        return { ...timing, op: 'put', input: { value: this.freshValue(client) }, output: null };
      case 'delete':
        return { ...timing, op: 'delete', input: null, output: null };
      case 'cas': {
        // Guess what the client last saw, sometimes absent: both outcomes should happen.
        const expected = this.prng.chance(0.2) ? null : (client.seen.get(key) ?? null);
        return {
          ...timing,
          op: 'cas',
          input: { expected, value: this.freshValue(client) },
          output: null,
        };
      }
      case 'incr':
        return {
          ...timing,
          op: 'incr',
          input: { delta: this.prng.between(1, INCR_DELTA_MAX) },
          output: null,
        };
    }
  }

  /** Unique values, integers mostly, so that an increment after a put usually works. */
  private freshValue(client: SimulatedClient): string {
    client.writesIssued += 1;
    const unique = client.writesIssued * 100 + client.index;
    return this.prng.chance(this.options.textValueProbability) ? `text${unique}` : String(unique);
  }

  private chainOperation(operation: Operation): ChainOperation {
    const key = utf8(operation.key);
    switch (operation.op) {
      case 'put':
        return { kind: 'put', key, value: utf8(operation.input.value) };
      case 'delete':
        return { kind: 'delete', key };
      case 'cas':
        return {
          kind: 'cas',
          key,
          expected: operation.input.expected === null ? null : utf8(operation.input.expected),
          value: utf8(operation.input.value),
        };
      case 'incr':
        return { kind: 'incr', key, delta: operation.input.delta };
      case 'get':
        assert(false, 'a get is a read, not a write');
    }
  }

  private completeOperation(client: SimulatedClient, completion: ChainCompletion): void {
    const current = client.current;
    assert(current !== null && current.requestId === completion.requestId, 'the pending operation');
    client.current = null;
    const recorded = this.recordOutcome(current.operation, completion);
    this.history.push(recorded);
    if (recorded.outcome === 'ok') this.learn(client, recorded);
    const thinkMs = this.prng.between(0, this.options.thinkMsMax);
    this.queue.push(this.clockMs + thinkMs, { kind: 'client-next', client: client.index });
  }

  private recordOutcome(operation: Operation, completion: ChainCompletion): Operation {
    if (completion.outcome === 'unknown')
      return { ...operation, outcome: 'unknown', completedAt: null };
    const completedAt = this.clockMs;
    if (completion.outcome === 'failed') return { ...operation, outcome: 'failed', completedAt };
    const reply = completion.reply as ChainReply;
    switch (operation.op) {
      case 'get': {
        assert(reply.status === 'read', 'a get is answered by a read');
        const output = reply.value === null ? null : fromUtf8(reply.value);
        return { ...operation, outcome: 'ok', completedAt, output };
      }
      case 'put':
      case 'delete':
        return { ...operation, outcome: 'ok', completedAt };
      case 'cas': {
        assert(reply.status === 'written' && reply.outcome.kind === 'done', 'a cas result');
        return { ...operation, outcome: 'ok', completedAt, output: reply.outcome.applied };
      }
      case 'incr': {
        assert(reply.status === 'written' && reply.outcome.kind === 'done', 'an incr result');
        assert(reply.outcome.value !== null, 'an increment answers its new value');
        return { ...operation, outcome: 'ok', completedAt, output: fromUtf8(reply.outcome.value) };
      }
    }
  }

  private learn(client: SimulatedClient, operation: Operation): void {
    switch (operation.op) {
      case 'get':
        client.seen.set(operation.key, operation.output);
        return;
      case 'put':
        client.seen.set(operation.key, operation.input.value);
        return;
      case 'delete':
        client.seen.set(operation.key, null);
        return;
      case 'cas':
        if (operation.output === true) client.seen.set(operation.key, operation.input.value);
        return;
      case 'incr':
        client.seen.set(operation.key, operation.output);
        return;
    }
  }

  // --- helpers ---

  private freshReplica(id: string): ChainReplica {
    return new ChainReplica(this.replicaOptions(id));
  }

  private replicaOptions(id: string): ChainReplicaOptions {
    return {
      selfId: id,
      partition: CHAIN_PARTITION,
      timings: this.options.timings,
      limits: this.options.limits,
      unsafe: this.options.unsafe,
    };
  }

  private restoredReplica(node: SimulatedNode): ChainReplica {
    const stored = decodeStore(node.durable);
    if (stored === null) return this.freshReplica(node.id);
    return ChainReplica.restore(this.replicaOptions(node.id), stored, this.clockMs);
  }

  private scheduleNodeTick(node: SimulatedNode, randomPhase: boolean): void {
    const delayMs = randomPhase
      ? this.prng.below(this.options.tickIntervalMs)
      : this.options.tickIntervalMs;
    this.queue.push(this.clockMs + delayMs, { kind: 'node-tick', node: node.id, life: node.life });
  }

  private node(id: string): SimulatedNode {
    const node = this.nodes.get(id);
    if (node === undefined) assert(false, `${id} is a node of this world`);
    return node;
  }

  private clientById(id: string): SimulatedClient {
    const client = this.clients.find((candidate) => candidate.id === id);
    if (client === undefined) assert(false, `${id} is a client of this world`);
    return client;
  }
}

/** Stores a batch's rows as a storage engine would: wipe first, then every row. */
export function applyBatch(store: DurableStore, batch: ChainBatch): void {
  if (batch.wipe) {
    store.records.clear();
    store.requesters.clear();
    store.entries.clear();
  }
  if (batch.meta !== null) store.meta = encodeChainMeta(batch.meta);
  for (const { key, record } of batch.records) {
    store.records.set(bytesToKeyString(key), encodeChainRecord(record));
  }
  for (const memory of batch.requesters) {
    store.requesters.set(memory.requester, encodeRequesterMemory(memory));
  }
  for (const requester of batch.forgottenRequesters) store.requesters.delete(requester);
  for (const entry of batch.entries) store.entries.set(entry.sequence, encodeChainEntry(entry));
  const through = batch.entriesCommittedThrough;
  if (through !== null) {
    for (const sequence of [...store.entries.keys()]) {
      if (sequence <= through) store.entries.delete(sequence);
    }
  }
}

/** A canonical text of records and requesters, to compare replicas with each other. */
function describeState(
  records: readonly StoredKey[],
  requesters: readonly RequesterMemory[],
): string {
  const recordLines = records
    .map(
      ({ key, record }) =>
        `${bytesToKeyString(key)}=${bytesToKeyString(encodeChainRecord(record))}`,
    )
    .sort();
  const requesterLines = requesters
    .map((memory) => bytesToKeyString(encodeRequesterMemory(memory)))
    .sort();
  return [...recordLines, '--', ...requesterLines].join('\n');
}

/** Decodes every row of a store (throwing on malformed bytes), or null for an empty disk. */
export function decodeStore(store: DurableStore): ChainStoredState | null {
  if (store.meta === null) return null;
  return {
    meta: decodeChainMeta(store.meta),
    records: [...store.records].map(([keyString, bytes]) => ({
      key: keyStringToBytes(keyString),
      record: decodeChainRecord(bytes),
    })),
    requesters: [...store.requesters.values()].map(decodeRequesterMemory),
    entries: [...store.entries.values()].map(decodeChainEntry),
  };
}
