// A deterministic world for CASPaxos alone: N acceptors and several proposers on a virtual
// clock, a network with seeded delays, loss, duplication, reordering, partitions and
// malformed messages, acceptors whose state is durable only once persisted (a crash loses
// the rest), proposer crashes, pauses, and concurrent clients running get, put, delete,
// compare-and-set and increment on a few keys, recorded as a history (src/check/history.ts)
// for the linearizability checker. One seed decides every draw, so a run replays exactly.
//
// Rules kept, as the node integration must keep them:
// - An acceptor's reply leaves only once the write it came with, and every write before it,
//   is durable (unless the negative control answerBeforeDurable says otherwise).
// - A restarted acceptor knows only what it had persisted, decoded from its bytes.
// - Every message crosses the network as a plain array and is validated on arrival.
// The run ends with a liveness phase: faults stop, everything heals, and a read of every key
// must succeed.

import { assert, bytesToKeyString, fromUtf8, utf8 } from '../core/bytes.ts';
import { Prng } from '../core/prng.ts';
import { INITIAL_FLOORS, stepAcceptor } from '../core/paxos/acceptor.ts';
import type { AcceptorFloors, AcceptorKeyState, AcceptorWrite } from '../core/paxos/acceptor.ts';
import {
  decodeFloors,
  decodeKeyState,
  encodeFloors,
  encodeKeyState,
} from '../core/paxos/acceptor-codec.ts';
import { defaultProposerConfig } from '../core/paxos/config.ts';
import type { ProposerConfig } from '../core/paxos/config.ts';
import { emptyProposerStats, Proposer } from '../core/paxos/proposer.ts';
import type { OperationOutcome, ProposerOutput, ProposerStats } from '../core/paxos/proposer.ts';
import type { Command } from '../core/paxos/register.ts';
import type { History, Operation, Value } from '../check/history.ts';
import { EventQueue } from './event-queue.ts';

/** The faults of one run; drawFaults picks them per seed (swarm testing). */
export interface PaxosFaults {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  /** A message held back this long at most, so that it arrives far out of order. */
  readonly longDelayProbability: number;
  readonly longDelayMsMax: number;
  readonly malformedProbability: number;
  readonly persistMsMin: number;
  readonly persistMsMax: number;
  readonly acceptorCrashes: number;
  readonly proposerCrashes: number;
  readonly pauses: number;
  readonly partitions: number;
  /**
   * Purges started during the run: half at random times, half a few ms after a delete is
   * acknowledged (as a node purges a tombstone), racing the operations that follow it.
   */
  readonly purges: number;
}

export const CALM_FAULTS: PaxosFaults = {
  delayMsMin: 1,
  delayMsMax: 5,
  lossProbability: 0,
  duplicateProbability: 0,
  longDelayProbability: 0,
  longDelayMsMax: 0,
  malformedProbability: 0,
  persistMsMin: 1,
  persistMsMax: 3,
  acceptorCrashes: 0,
  proposerCrashes: 0,
  pauses: 0,
  partitions: 0,
  purges: 0,
};

/** Draws the fault settings of one run: each kind is on or off, and how much, per seed. */
export function drawFaults(prng: Prng): PaxosFaults {
  const delayMsMin = prng.between(0, 3);
  const some = (max: number): number => (prng.chance(0.6) ? prng.between(1, max) : 0);
  return {
    delayMsMin,
    delayMsMax: delayMsMin + prng.between(1, 15),
    lossProbability: prng.chance(0.5) ? prng.next() * 0.1 : 0,
    duplicateProbability: prng.chance(0.5) ? prng.next() * 0.1 : 0,
    longDelayProbability: prng.chance(0.5) ? prng.next() * 0.05 : 0,
    longDelayMsMax: prng.between(50, 400),
    malformedProbability: prng.chance(0.3) ? 0.01 : 0,
    persistMsMin: 1,
    persistMsMax: prng.between(2, 15),
    acceptorCrashes: some(6),
    proposerCrashes: some(4),
    pauses: some(4),
    partitions: some(4),
    purges: prng.chance(0.5) ? prng.between(1, 20) : 0,
  };
}

export type PaxosWorkload = 'mixed' | 'versioned';

export interface PaxosWorldOptions {
  readonly seed: number;
  readonly acceptorCount: number;
  readonly proposerCount: number;
  readonly clientCount: number;
  readonly keyCount: number;
  /** Client operations in the faulty phase, all clients together. */
  readonly operationCount: number;
  /**
   * mixed: get, put, delete, compare-and-set on the value, increment.
   * versioned: get, put and compare-and-set on the version, values unique per write, so
   * that each version names one value and the checker's value model can judge it.
   */
  readonly workload: PaxosWorkload;
  readonly faults: PaxosFaults;
  /** Overrides of the proposers' configuration (quorums, timeouts, negative controls). */
  readonly proposer?: Partial<ProposerConfig>;
  /** Negative control: acceptors answer before their state is durable. */
  readonly answerBeforeDurable?: boolean;
  /** Negative control: a purge removes the key but leaves the acceptor's floors as they were. */
  readonly purgeKeepsFloors?: boolean;
}

export interface PaxosRunResult {
  readonly history: History;
  readonly stats: PaxosWorldStats;
  /** Reads of the liveness phase that did not succeed (must be empty). */
  readonly livenessFailures: readonly string[];
  readonly endedAtMs: number;
}

export interface PaxosWorldStats {
  messagesSent: number;
  messagesLost: number;
  messagesDuplicated: number;
  malformedInjected: number;
  malformedDroppedByAcceptors: number;
  malformedDroppedByProposers: number;
  persists: number;
  acceptorCrashes: number;
  proposerCrashes: number;
  pauses: number;
  partitions: number;
  purgesStarted: number;
  purgesComplete: number;
  keysRemoved: number;
  operations: Record<'ok' | 'failed' | 'unknown', number>;
  /** Proposer counters summed over every proposer life. */
  proposers: ProposerStats;
}

const PROPOSER_TICK_MS = 5;
const CLIENT_TIMEOUT_MS = 3_000;
const CLIENT_THINK_MS_MAX = 10;
/** Virtual time a run may take; a run that needs more has stopped making progress. */
const RUN_MS_MAX = 3_600_000;
const EVENTS_PER_RUN_MAX = 20_000_000;
/** The world's proposer settings: LAN-scale timeouts for a network of a few ms. */
const SIM_PROPOSER_DEFAULTS: Partial<ProposerConfig> = {
  phaseTimeoutMs: 80,
  attemptsMax: 6,
  backoffMsBase: 4,
  backoffMsMax: 80,
};

type NodeId = string;

type WorldEvent =
  | {
      readonly kind: 'deliver';
      readonly from: NodeId;
      readonly to: NodeId;
      readonly message: unknown;
    }
  | { readonly kind: 'persisted'; readonly acceptor: NodeId; readonly life: number }
  | { readonly kind: 'tick'; readonly proposer: NodeId; readonly life: number }
  | { readonly kind: 'client'; readonly client: number }
  | { readonly kind: 'client-timeout'; readonly operationId: number }
  | { readonly kind: 'submit'; readonly operationId: number }
  | { readonly kind: 'fault'; readonly fault: Fault }
  | { readonly kind: 'liveness' };

type Fault =
  | { readonly kind: 'crash'; readonly node: NodeId }
  | { readonly kind: 'restart'; readonly node: NodeId }
  | { readonly kind: 'pause'; readonly node: NodeId; readonly untilMs: number }
  | { readonly kind: 'partition'; readonly side: ReadonlySet<NodeId> }
  | { readonly kind: 'heal' }
  | { readonly kind: 'purge'; readonly key: number };

/** One batch on its way to the disk: the write and the sequence number that orders it. */
interface PendingPersist {
  readonly sequence: number;
  readonly write: AcceptorWrite;
  /** When the disk finishes it. */
  readonly doneMs: number;
}

interface SimulatedAcceptor {
  readonly id: NodeId;
  up: boolean;
  life: number;
  pausedUntilMs: number;
  /** What survives a crash: encoded key states and floors. */
  readonly durable: Map<string, Uint8Array>;
  durableFloors: Uint8Array;
  /** The state the acceptor runs on: the durable state plus writes not yet persisted. */
  readonly overlay: Map<string, AcceptorKeyState | null>;
  floors: AcceptorFloors;
  readonly pending: PendingPersist[];
  nextSequence: number;
  durableSequence: number;
  lastPersistDoneMs: number;
  /** Replies waiting for the write they depend on: sent once durableSequence >= barrier. */
  readonly outbox: { readonly barrier: number; readonly to: NodeId; readonly message: unknown }[];
}

interface SimulatedProposer {
  readonly id: NodeId;
  up: boolean;
  life: number;
  pausedUntilMs: number;
  proposer: Proposer;
}

interface ClientOperation {
  readonly operationId: number;
  readonly client: number;
  readonly keyIndex: number;
  readonly command: Command;
  readonly record: HistoryRecord;
  proposer: NodeId;
  done: boolean;
  /** The liveness phase's reads: their failure fails the run. */
  readonly final: boolean;
}

/** An operation of the history while it runs: completed in place when it ends. */
interface HistoryRecord {
  client: number;
  key: string;
  invokedAt: number;
  completedAt: number | null;
  outcome: Operation['outcome'];
  op: Operation['op'];
  input: unknown;
  output: unknown;
}

type OperationDraw = Pick<HistoryRecord, 'op' | 'input'>;

interface SimulatedClient {
  readonly id: number;
  home: number;
  issued: number;
  busy: boolean;
  /** What this client last learned of each key: value and version. */
  readonly known: ({ value: Value; version: number } | undefined)[];
}

export class PaxosWorld {
  readonly options: PaxosWorldOptions;
  readonly acceptorIds: readonly NodeId[];
  readonly proposerIds: readonly NodeId[];
  readonly stats: PaxosWorldStats;
  private readonly network: Prng;
  private readonly workload: Prng;
  private readonly faultDraws: Prng;
  private readonly queue = new EventQueue<WorldEvent>();
  private readonly acceptors = new Map<NodeId, SimulatedAcceptor>();
  private readonly proposers = new Map<NodeId, SimulatedProposer>();
  private readonly clients: SimulatedClient[] = [];
  private readonly operations = new Map<number, ClientOperation>();
  private readonly history: Operation[] = [];
  private readonly livenessFailures: string[] = [];
  private readonly proposerConfig: ProposerConfig;
  private partitionSide: ReadonlySet<NodeId> | null = null;
  private calm = false;
  private clockMs = 0;
  private nextOperationId = 1;
  private issuedTotal = 0;
  private finalReadsLeft = 0;
  private finished = false;
  private purgesAfterDeletes = 0;

  constructor(options: PaxosWorldOptions) {
    assert(options.acceptorCount >= 1 && options.proposerCount >= 1, 'a world has nodes');
    assert(options.clientCount >= 1 && options.keyCount >= 1, 'a world has clients and keys');
    this.options = options;
    this.network = new Prng(options.seed ^ 0x4e7);
    this.workload = new Prng(options.seed ^ 0x3a1d);
    this.faultDraws = new Prng(options.seed ^ 0x7f5);
    this.acceptorIds = Array.from({ length: options.acceptorCount }, (_, i) => `a${i}`);
    this.proposerIds = Array.from({ length: options.proposerCount }, (_, i) => `p${i}`);
    this.proposerConfig = defaultProposerConfig(this.acceptorIds, {
      ...SIM_PROPOSER_DEFAULTS,
      ...options.proposer,
    });
    this.stats = {
      messagesSent: 0,
      messagesLost: 0,
      messagesDuplicated: 0,
      malformedInjected: 0,
      malformedDroppedByAcceptors: 0,
      malformedDroppedByProposers: 0,
      persists: 0,
      acceptorCrashes: 0,
      proposerCrashes: 0,
      pauses: 0,
      partitions: 0,
      purgesStarted: 0,
      purgesComplete: 0,
      keysRemoved: 0,
      operations: { ok: 0, failed: 0, unknown: 0 },
      proposers: emptyProposerStats(),
    };
    for (const id of this.acceptorIds) {
      this.acceptors.set(id, {
        id,
        up: true,
        life: 0,
        pausedUntilMs: 0,
        durable: new Map(),
        durableFloors: encodeFloors(INITIAL_FLOORS),
        overlay: new Map(),
        floors: INITIAL_FLOORS,
        pending: [],
        nextSequence: 1,
        durableSequence: 0,
        lastPersistDoneMs: 0,
        outbox: [],
      });
    }
    for (const id of this.proposerIds) {
      this.proposers.set(id, {
        id,
        up: true,
        life: 0,
        pausedUntilMs: 0,
        proposer: this.freshProposer(id),
      });
      this.queue.push(this.faultDraws.below(PROPOSER_TICK_MS), {
        kind: 'tick',
        proposer: id,
        life: 0,
      });
    }
    for (let client = 0; client < options.clientCount; client++) {
      this.clients.push({
        id: client,
        home: client % options.proposerCount,
        issued: 0,
        busy: false,
        known: Array.from({ length: options.keyCount }, () => undefined),
      });
      this.queue.push(this.workload.below(CLIENT_THINK_MS_MAX), { kind: 'client', client });
    }
    this.scheduleFaults();
  }

  get nowMs(): number {
    return this.clockMs;
  }

  /** Runs the faulty phase and the liveness phase to the end. */
  run(): PaxosRunResult {
    for (let handled = 0; handled < EVENTS_PER_RUN_MAX && !this.finished; handled++) {
      const event = this.queue.pop();
      assert(event !== undefined, 'proposer ticks keep the agenda from running dry');
      assert(event.atMs >= this.clockMs, 'virtual time does not go back');
      assert(event.atMs <= RUN_MS_MAX, `a run ends within ${RUN_MS_MAX} virtual ms`);
      this.clockMs = event.atMs;
      this.handle(event.payload);
    }
    assert(this.finished, `a run handles at most ${EVENTS_PER_RUN_MAX} events`);
    for (const simulated of this.proposers.values()) this.addProposerStats(simulated.proposer);
    return {
      history: this.history,
      stats: this.stats,
      livenessFailures: this.livenessFailures,
      endedAtMs: this.clockMs,
    };
  }

  private handle(event: WorldEvent): void {
    switch (event.kind) {
      case 'deliver':
        this.deliver(event.from, event.to, event.message);
        return;
      case 'persisted':
        this.persisted(event.acceptor, event.life);
        return;
      case 'tick': {
        const simulated = this.proposer(event.proposer);
        if (!simulated.up || simulated.life !== event.life) return;
        if (simulated.pausedUntilMs <= this.clockMs) {
          this.carryOut(simulated, simulated.proposer.tick(this.clockMs));
        }
        this.queue.push(this.clockMs + PROPOSER_TICK_MS, event);
        return;
      }
      case 'client':
        this.clientTurn(this.clients[event.client]!);
        return;
      case 'client-timeout': {
        const operation = this.operations.get(event.operationId);
        if (operation !== undefined && !operation.done) this.finishUnknown(operation);
        return;
      }
      case 'submit':
        this.submit(event.operationId);
        return;
      case 'fault':
        this.applyFault(event.fault);
        return;
      case 'liveness':
        this.startLiveness();
        return;
    }
  }

  // ---- network ----

  private send(from: NodeId, to: NodeId, message: unknown): void {
    this.stats.messagesSent += 1;
    const faults = this.calm ? CALM_FAULTS : this.options.faults;
    if (this.isCut(from, to) || this.network.chance(faults.lossProbability)) {
      this.stats.messagesLost += 1;
      return;
    }
    const copies = this.network.chance(faults.duplicateProbability) ? 2 : 1;
    if (copies === 2) this.stats.messagesDuplicated += 1;
    for (let copy = 0; copy < copies; copy++) {
      let delayMs = this.network.between(faults.delayMsMin, faults.delayMsMax);
      if (this.network.chance(faults.longDelayProbability)) {
        delayMs += this.network.between(0, faults.longDelayMsMax);
      }
      let wire = message;
      if (this.network.chance(faults.malformedProbability)) {
        wire = this.malformed(message);
        this.stats.malformedInjected += 1;
      }
      this.queue.push(this.clockMs + delayMs, { kind: 'deliver', from, to, message: wire });
    }
  }

  /** A copy of `message` damaged so that no receiver may accept it. */
  private malformed(message: unknown): unknown {
    assert(Array.isArray(message), 'paxos messages are arrays');
    const fields = [...(message as unknown[])];
    switch (this.network.below(4)) {
      case 0:
        return fields.slice(0, -1);
      case 1:
        return [...fields, 0];
      case 2:
        fields[0] = 'zz';
        return fields;
      default:
        fields[1] = -1;
        return fields;
    }
  }

  private isCut(from: NodeId, to: NodeId): boolean {
    const side = this.partitionSide;
    return side !== null && side.has(from) !== side.has(to);
  }

  private deliver(from: NodeId, to: NodeId, message: unknown): void {
    const acceptor = this.acceptors.get(to);
    const target = acceptor ?? this.proposer(to);
    if (!target.up) return;
    if (target.pausedUntilMs > this.clockMs) {
      // A paused process reads its socket when it wakes.
      this.queue.push(target.pausedUntilMs, { kind: 'deliver', from, to, message });
      return;
    }
    if (acceptor !== undefined) {
      this.acceptorReceive(acceptor, from, message);
      return;
    }
    const simulated = this.proposer(to);
    this.carryOut(simulated, simulated.proposer.receive(from, message, this.clockMs));
  }

  // ---- acceptors ----

  private acceptorReceive(acceptor: SimulatedAcceptor, from: NodeId, message: unknown): void {
    const output = stepAcceptor(message, (key) => this.keyState(acceptor, key), acceptor.floors);
    if (output === null) {
      this.stats.malformedDroppedByAcceptors += 1;
      return;
    }
    let write = output.write;
    if (write.kind !== 'none') {
      const sequence = acceptor.nextSequence++;
      if (write.kind === 'put') {
        acceptor.overlay.set(bytesToKeyString(write.key), write.state);
      } else {
        if (this.options.purgeKeepsFloors === true) write = { ...write, floors: acceptor.floors };
        acceptor.overlay.set(bytesToKeyString(write.key), null);
        acceptor.floors = write.floors;
      }
      // One disk: batches complete in the order they were issued.
      const doneMs = Math.max(
        acceptor.lastPersistDoneMs,
        this.clockMs +
          this.network.between(this.options.faults.persistMsMin, this.options.faults.persistMsMax),
      );
      acceptor.lastPersistDoneMs = doneMs;
      acceptor.pending.push({ sequence, write, doneMs });
      this.queue.push(doneMs, { kind: 'persisted', acceptor: acceptor.id, life: acceptor.life });
    }
    // The reply depends on every write issued so far, this one included.
    const barrier = acceptor.nextSequence - 1;
    if (this.options.answerBeforeDurable === true || barrier <= acceptor.durableSequence) {
      this.send(acceptor.id, from, output.reply);
    } else {
      acceptor.outbox.push({ barrier, to: from, message: output.reply });
    }
  }

  private keyState(acceptor: SimulatedAcceptor, key: Uint8Array): AcceptorKeyState | undefined {
    const keyString = bytesToKeyString(key);
    const pending = acceptor.overlay.get(keyString);
    if (pending !== undefined) return pending ?? undefined;
    const bytes = acceptor.durable.get(keyString);
    return bytes === undefined ? undefined : decodeKeyState(bytes);
  }

  private persisted(id: NodeId, life: number): void {
    const acceptor = this.acceptors.get(id)!;
    if (!acceptor.up || acceptor.life !== life) return;
    if (acceptor.pausedUntilMs > this.clockMs) {
      // The disk finished, but the process learns of it when it wakes.
      this.queue.push(acceptor.pausedUntilMs, { kind: 'persisted', acceptor: id, life });
      return;
    }
    // Every batch the disk has finished by now completes, in the order it was issued, so
    // an event deferred by a pause cannot be overtaken by a later batch's.
    while (acceptor.pending.length > 0 && acceptor.pending[0]!.doneMs <= this.clockMs) {
      this.completeBatch(acceptor, acceptor.pending.shift()!);
    }
  }

  private completeBatch(acceptor: SimulatedAcceptor, batch: PendingPersist): void {
    assert(batch.sequence === acceptor.durableSequence + 1, 'batches persist in order');
    this.stats.persists += 1;
    const write = batch.write;
    assert(write.kind !== 'none', 'only writes are persisted');
    const keyString = bytesToKeyString(write.key);
    if (write.kind === 'put') {
      acceptor.durable.set(keyString, encodeKeyState(write.state));
      if (acceptor.overlay.get(keyString) === write.state) acceptor.overlay.delete(keyString);
    } else {
      acceptor.durable.delete(keyString);
      acceptor.durableFloors = encodeFloors(write.floors);
      this.stats.keysRemoved += 1;
      if (acceptor.overlay.get(keyString) === null) acceptor.overlay.delete(keyString);
    }
    acceptor.durableSequence = batch.sequence;
    while (acceptor.outbox.length > 0 && acceptor.outbox[0]!.barrier <= batch.sequence) {
      const reply = acceptor.outbox.shift()!;
      this.send(acceptor.id, reply.to, reply.message);
    }
  }

  private crashAcceptor(acceptor: SimulatedAcceptor): void {
    acceptor.up = false;
    acceptor.life += 1;
    // Whatever was not persisted is gone: the overlay, the writes in flight, the replies.
    acceptor.overlay.clear();
    acceptor.pending.length = 0;
    acceptor.outbox.length = 0;
  }

  private restartAcceptor(acceptor: SimulatedAcceptor): void {
    acceptor.up = true;
    acceptor.life += 1;
    acceptor.pausedUntilMs = 0;
    acceptor.floors = decodeFloors(acceptor.durableFloors);
    acceptor.nextSequence = 1;
    acceptor.durableSequence = 0;
    acceptor.lastPersistDoneMs = this.clockMs;
    // Every stored state is read back from its bytes, as a restarted node would.
    for (const bytes of acceptor.durable.values()) decodeKeyState(bytes);
  }

  // ---- proposers ----

  private freshProposer(id: NodeId): Proposer {
    return new Proposer(id, this.proposerConfig, new Prng(this.faultDraws.nextUint32()));
  }

  private proposer(id: NodeId): SimulatedProposer {
    const simulated = this.proposers.get(id);
    if (simulated === undefined) assert(false, `${id} is a node of this world`);
    return simulated;
  }

  private carryOut(simulated: SimulatedProposer, output: ProposerOutput): void {
    for (const send of output.sends) this.send(simulated.id, send.to, send.message);
    for (const completion of output.completions) {
      this.completed(simulated.id, completion.operationId, completion.outcome);
    }
  }

  private addProposerStats(proposer: Proposer): void {
    const total = this.stats.proposers;
    for (const field of Object.keys(total) as (keyof ProposerStats)[]) {
      total[field] += proposer.stats[field];
    }
    this.stats.malformedDroppedByProposers = total.malformedDropped;
  }

  // ---- clients ----

  private clientTurn(client: SimulatedClient): void {
    if (client.busy || this.calm) return;
    if (this.issuedTotal >= this.options.operationCount) {
      if (this.operationsOpen() === 0) this.queue.push(this.clockMs, { kind: 'liveness' });
      return;
    }
    this.issuedTotal += 1;
    client.issued += 1;
    const keyIndex = this.workload.below(this.options.keyCount);
    const { command, record } = this.drawOperation(client, keyIndex);
    this.invoke(client, keyIndex, command, record, false);
  }

  private operationsOpen(): number {
    let open = 0;
    for (const operation of this.operations.values()) if (!operation.done) open += 1;
    return open;
  }

  private drawOperation(
    client: SimulatedClient,
    keyIndex: number,
  ): { command: Command; record: OperationDraw } {
    const draw = this.workload.below(100);
    const fresh = `c${client.id}.${client.issued}`;
    const known = client.known[keyIndex];
    if (this.options.workload === 'versioned') {
      if (draw < 35) return { command: { kind: 'get' }, record: { op: 'get', input: null } };
      if (draw < 55 || known === undefined) {
        return {
          command: { kind: 'put', value: utf8(fresh) },
          record: { op: 'put', input: { value: fresh } },
        };
      }
      // Each version names one value here (values are unique per write and nothing is
      // deleted), so a compare-and-set on the version is one on the value it named.
      return {
        command: { kind: 'cas-version', expectedVersion: known.version, value: utf8(fresh) },
        record: { op: 'cas', input: { expected: known.value, value: fresh } },
      };
    }
    if (draw < 30) return { command: { kind: 'get' }, record: { op: 'get', input: null } };
    if (draw < 50) {
      // Half the writes are integers, so that increments have something to add to.
      const value = this.workload.chance(0.5) ? String(this.workload.between(0, 50)) : fresh;
      return {
        command: { kind: 'put', value: utf8(value) },
        record: { op: 'put', input: { value } },
      };
    }
    if (draw < 60) return { command: { kind: 'delete' }, record: { op: 'delete', input: null } };
    if (draw < 78) {
      const expected = known === undefined || this.workload.chance(0.2) ? null : known.value;
      return {
        command: {
          kind: 'cas-value',
          expected: expected === null ? null : utf8(expected),
          value: utf8(fresh),
        },
        record: { op: 'cas', input: { expected, value: fresh } },
      };
    }
    const delta = this.workload.between(-3, 9);
    return {
      command: { kind: 'incr', delta: BigInt(delta) },
      record: { op: 'incr', input: { delta } },
    };
  }

  private invoke(
    client: SimulatedClient,
    keyIndex: number,
    command: Command,
    partial: OperationDraw,
    final: boolean,
  ): void {
    const operationId = this.nextOperationId++;
    const record: HistoryRecord = {
      client: client.id,
      key: `k${keyIndex}`,
      op: partial.op,
      input: partial.input,
      output: null,
      invokedAt: this.clockMs,
      completedAt: null,
      outcome: 'unknown',
    };
    // The history holds the record itself, completed in place; it is checked once whole.
    this.history.push(record as unknown as Operation);
    client.busy = true;
    const operation: ClientOperation = {
      operationId,
      client: client.id,
      keyIndex,
      command,
      record,
      proposer: this.pickProposer(client),
      done: false,
      final,
    };
    this.operations.set(operationId, operation);
    this.queue.push(this.clockMs, { kind: 'submit', operationId });
    this.queue.push(this.clockMs + CLIENT_TIMEOUT_MS, { kind: 'client-timeout', operationId });
  }

  /** The client's own proposer, or the next one up when it is down. */
  private pickProposer(client: SimulatedClient): NodeId {
    for (let step = 0; step < this.proposerIds.length; step++) {
      const index = (client.home + step) % this.proposerIds.length;
      if (this.proposer(this.proposerIds[index]!).up) {
        client.home = index;
        return this.proposerIds[index]!;
      }
    }
    return this.proposerIds[client.home]!;
  }

  private submit(operationId: number): void {
    const operation = this.operations.get(operationId);
    // Ended before it reached its proposer (the proposer crashed while it was paused).
    if (operation === undefined) return;
    const simulated = this.proposer(operation.proposer);
    // A client cannot reach a crashed proposer: the request never ran.
    if (!simulated.up) {
      this.finish(operation, 'failed', null);
      return;
    }
    if (simulated.pausedUntilMs > this.clockMs) {
      this.queue.push(simulated.pausedUntilMs, { kind: 'submit', operationId });
      return;
    }
    const key = utf8(`k${operation.keyIndex}`);
    this.carryOut(
      simulated,
      simulated.proposer.submit(operationId, key, operation.command, this.clockMs),
    );
  }

  private completed(proposerId: NodeId, operationId: number, outcome: OperationOutcome): void {
    if (outcome.kind === 'purge') {
      if (outcome.complete) this.stats.purgesComplete += 1;
      return;
    }
    const operation = this.operations.get(operationId);
    if (operation === undefined || operation.done) return;
    assert(operation.proposer === proposerId, 'an operation completes where it was submitted');
    if (outcome.kind === 'error') {
      this.finish(operation, outcome.mayHaveTakenEffect ? 'unknown' : 'failed', null);
      return;
    }
    const client = this.clients[operation.client]!;
    const current = outcome.current;
    const currentValue = current.bytes === null ? null : fromUtf8(current.bytes);
    client.known[operation.keyIndex] = { value: currentValue, version: current.version };
    if (operation.command.kind === 'delete' && this.purgesAfterDeletes > 0) {
      this.purgesAfterDeletes -= 1;
      this.queue.push(this.clockMs + this.faultDraws.between(0, 20), {
        kind: 'fault',
        fault: { kind: 'purge', key: operation.keyIndex },
      });
    }
    switch (operation.record.op) {
      case 'get':
        this.finish(operation, 'ok', currentValue);
        return;
      case 'cas':
        this.finish(operation, 'ok', outcome.applied);
        return;
      case 'incr':
        this.finish(operation, 'ok', currentValue);
        return;
      default:
        this.finish(operation, 'ok', null);
    }
  }

  private finishUnknown(operation: ClientOperation): void {
    this.finish(operation, 'unknown', null);
  }

  private finish(operation: ClientOperation, outcome: Operation['outcome'], output: unknown): void {
    operation.done = true;
    const record = operation.record;
    record.outcome = outcome;
    record.completedAt = outcome === 'unknown' ? null : this.clockMs;
    record.output = outcome === 'ok' ? output : null;
    this.stats.operations[outcome] += 1;
    this.operations.delete(operation.operationId);
    const client = this.clients[operation.client]!;
    client.busy = false;
    if (operation.final) {
      if (outcome !== 'ok') this.livenessFailures.push(`final read of ${record.key}: ${outcome}`);
      this.finalReadsLeft -= 1;
      if (this.finalReadsLeft === 0) this.finished = true;
      else this.finalRead(client);
      return;
    }
    this.queue.push(this.clockMs + this.workload.between(0, CLIENT_THINK_MS_MAX), {
      kind: 'client',
      client: client.id,
    });
  }

  // ---- faults ----

  private scheduleFaults(): void {
    const faults = this.options.faults;
    const draws = this.faultDraws;
    // Faults land while the workload runs: a few ms per operation and client.
    const horizonMs = Math.max(
      200,
      Math.ceil((this.options.operationCount * 25) / this.options.clientCount),
    );
    const at = (): number => draws.between(0, horizonMs);
    const outageMs = (): number => draws.between(5, 300);
    const plan = (atMs: number, fault: Fault): void => {
      this.queue.push(atMs, { kind: 'fault', fault });
    };
    for (let i = 0; i < faults.acceptorCrashes; i++) {
      const node = draws.pick(this.acceptorIds);
      const startMs = at();
      plan(startMs, { kind: 'crash', node });
      plan(startMs + outageMs(), { kind: 'restart', node });
    }
    for (let i = 0; i < faults.proposerCrashes; i++) {
      const node = draws.pick(this.proposerIds);
      const startMs = at();
      plan(startMs, { kind: 'crash', node });
      plan(startMs + outageMs(), { kind: 'restart', node });
    }
    const everyone = [...this.acceptorIds, ...this.proposerIds];
    for (let i = 0; i < faults.pauses; i++) {
      const startMs = at();
      plan(startMs, { kind: 'pause', node: draws.pick(everyone), untilMs: startMs + outageMs() });
    }
    for (let i = 0; i < faults.partitions; i++) {
      const side = new Set(everyone.filter(() => draws.chance(0.5)));
      const startMs = at();
      plan(startMs, { kind: 'partition', side });
      plan(startMs + outageMs(), { kind: 'heal' });
    }
    for (let i = 0; i < Math.ceil(faults.purges / 2); i++) {
      plan(at(), { kind: 'purge', key: draws.below(this.options.keyCount) });
    }
    this.purgesAfterDeletes = Math.floor(faults.purges / 2);
  }

  private applyFault(fault: Fault): void {
    if (this.calm) return;
    switch (fault.kind) {
      case 'crash': {
        const acceptor = this.acceptors.get(fault.node);
        if (acceptor !== undefined) {
          if (!acceptor.up) return;
          this.stats.acceptorCrashes += 1;
          this.crashAcceptor(acceptor);
          return;
        }
        const simulated = this.proposer(fault.node);
        if (!simulated.up) return;
        this.stats.proposerCrashes += 1;
        this.crashProposer(simulated);
        return;
      }
      case 'restart':
        this.restart(fault.node);
        return;
      case 'pause': {
        const target = this.acceptors.get(fault.node) ?? this.proposer(fault.node);
        if (!target.up) return;
        this.stats.pauses += 1;
        target.pausedUntilMs = Math.max(target.pausedUntilMs, fault.untilMs);
        return;
      }
      case 'partition':
        this.stats.partitions += 1;
        this.partitionSide = fault.side;
        return;
      case 'heal':
        this.partitionSide = null;
        return;
      case 'purge': {
        const simulated = this.proposer(this.faultDraws.pick(this.proposerIds));
        if (!simulated.up || simulated.pausedUntilMs > this.clockMs) return;
        this.stats.purgesStarted += 1;
        const operationId = this.nextOperationId++;
        const key = utf8(`k${fault.key}`);
        this.carryOut(simulated, simulated.proposer.purge(operationId, key, this.clockMs));
        return;
      }
    }
  }

  private crashProposer(simulated: SimulatedProposer): void {
    this.addProposerStats(simulated.proposer);
    simulated.up = false;
    simulated.life += 1;
    // Its clients see their connections drop: whatever they had asked may or may not land.
    for (const operation of [...this.operations.values()]) {
      if (operation.proposer === simulated.id && !operation.done) this.finishUnknown(operation);
    }
  }

  private restart(node: NodeId): void {
    const acceptor = this.acceptors.get(node);
    if (acceptor !== undefined) {
      if (!acceptor.up) this.restartAcceptor(acceptor);
      return;
    }
    const simulated = this.proposer(node);
    if (simulated.up) return;
    simulated.up = true;
    simulated.life += 1;
    simulated.pausedUntilMs = 0;
    // A new life remembers nothing: no counters, no promises, no operations.
    simulated.proposer = this.freshProposer(node);
    this.queue.push(this.clockMs, { kind: 'tick', proposer: node, life: simulated.life });
  }

  // ---- liveness ----

  private startLiveness(): void {
    if (this.calm) return;
    this.calm = true;
    this.partitionSide = null;
    // Pauses run to their end: cutting one short would let new disk writes overtake the
    // completions deferred to its end.
    for (const id of [...this.acceptorIds, ...this.proposerIds]) this.restart(id);
    // Operations still running at proposers (their clients gave up) finish first; then one
    // client reads every key, each read after the one before.
    this.finalReadsLeft = this.options.keyCount;
    this.finalRead(this.clients[0]!);
  }

  private finalRead(client: SimulatedClient): void {
    const keyIndex = this.options.keyCount - this.finalReadsLeft;
    this.invoke(client, keyIndex, { kind: 'get' }, { op: 'get', input: null }, true);
  }
}

/** Runs one world to its end. */
export function runPaxosWorld(options: PaxosWorldOptions): PaxosRunResult {
  return new PaxosWorld(options).run();
}
