// The CASPaxos proposer as a step function: `submit` and `purge` start operations,
// `receive` takes acceptors' replies, `tick` drives timeouts and backoff; each returns the
// messages to send and the operations completed. No clock, no randomness but the Prng
// handed in, no I/O.
//
// Rules kept:
// - One operation at a time per key; later ones wait in a bounded queue behind it.
// - An operation is a command applied to the value read in the prepare phase (the highest
//   accepted ballot of a quorum of promises), written back in the accept phase, so that what
//   it returns was chosen.
// - A get first asks every acceptor what it holds, promising and writing nothing. If the
//   first quorum of answers name one ballot (not the zero ballot) and one value, that value
//   was chosen (a quorum accepted it) and nothing newer was chosen before the read began (a
//   quorum that had accepted it would overlap this one), so the get returns it: a quorum
//   read. Otherwise the get goes the usual way, writing back what it reads.
// - One round trip: a quorum of accepts of ballot b also promised b's successor, so the
//   next operation on the key may skip the prepare phase and write at the successor the
//   command applied to the value it just wrote. Any failure forgets that promise.
// - An attempt that fails is retried with a fresh ballot above every ballot seen, after a
//   backoff jittered from the seeded Prng, up to attemptsMax attempts; then the operation
//   fails as contention (it was outbid) or unavailable (too few answers in time).
// - A write that an acceptor may hold (sent, and not refused by every acceptor) is never
//   applied a second time. The retry's prepare decides: if the highest value it finds is
//   that write, the write is finished (proposed again, unchanged); if what it finds is older
//   than the write (a lower ballot and a lower version), the write can never be chosen once
//   the retry's own is, so the command is applied afresh; otherwise another proposer may
//   have built on the write, and the operation fails with mayHaveTakenEffect: "outcome
//   unknown".
// - Every message that arrives is validated; a malformed one is dropped and counted.
// - While a register's acceptors change (docs/PAXOS.md, "Acceptor changes"), an operation
//   names both sets, and every phase needs a majority of each (a joint quorum). A request
//   carries the map epoch its acceptors came from; an acceptor fenced past that epoch
//   refuses it, which counts as no answer, and the next attempt takes the acceptors the
//   node's newer map gives (`configurationOf`).

import { assert, bytesToKeyString } from '../bytes.ts';
import type { Prng } from '../prng.ts';
import { ballotsEqual, compareBallots, isValidProposerId, successorBallot } from './ballot.ts';
import type { Ballot } from './ballot.ts';
import {
  CACHED_KEYS_MAX,
  KEYS_IN_FLIGHT_MAX,
  QUEUED_OPERATIONS_PER_KEY_MAX,
  REQUEST_IDS_PER_PROPOSER,
  majority,
  validateProposerConfig,
} from './config.ts';
import type { ProposerConfig } from './config.ts';
import {
  isAcceptorRequest,
  isListMessage,
  isValidPaxosMessage,
  PaxosMessageType,
  REGISTER_KEY_BYTES_MAX,
} from './messages.ts';
import type { AcceptorReply, AcceptorRequest } from './messages.ts';
import { ABSENT_VALUE, applyCommand } from './register.ts';
import type { Command, CommandErrorCode, RegisterValue } from './register.ts';

export type ProposerErrorCode =
  'unavailable' | 'contention' | 'overloaded' | 'invalid' | CommandErrorCode;

export type OperationOutcome =
  | {
      readonly kind: 'ok';
      /** The value the command was applied to. */
      readonly previous: RegisterValue;
      /** The value after it: `previous` itself when nothing changed. */
      readonly current: RegisterValue;
      /** For a compare-and-set, whether it set the value; true otherwise. */
      readonly applied: boolean;
      /** Whether it took the one-round-trip path. */
      readonly oneRoundTrip: boolean;
      /** Whether a quorum read answered it: nothing was written. */
      readonly quorumRead: boolean;
    }
  | {
      readonly kind: 'purge';
      /** False when the key held a value, not a tombstone: nothing was removed. */
      readonly wasTombstone: boolean;
      /** Acceptors that removed the key. */
      readonly removedCount: number;
      /** Every acceptor removed it. Otherwise the purge may simply be run again later. */
      readonly complete: boolean;
    }
  | {
      readonly kind: 'error';
      readonly code: ProposerErrorCode;
      readonly message: string;
      /** The write may still take effect: the client must treat the outcome as unknown. */
      readonly mayHaveTakenEffect: boolean;
    };

export interface ProposerSend {
  readonly to: string;
  readonly message: AcceptorRequest;
  /** The map epoch of the operation's acceptors, when it named one: its envelope's epoch. */
  readonly epoch?: number;
}

/**
 * A register's acceptors as an operation names them: `ids`, and while they change, `nextIds`
 * too (every phase then needs a majority of each); `epoch` is the map epoch they come from.
 */
export interface AcceptorConfiguration {
  readonly ids: readonly string[];
  readonly nextIds?: readonly string[];
  readonly epoch?: number;
}

export interface ProposerCompletion {
  readonly operationId: number;
  readonly outcome: OperationOutcome;
}

export interface ProposerOutput {
  readonly sends: readonly ProposerSend[];
  readonly completions: readonly ProposerCompletion[];
}

export interface ProposerStats {
  /** Operations completed through a prepare and an accept phase. */
  twoRoundTrips: number;
  /** Operations completed by an accept phase alone, on the promise of the previous one. */
  oneRoundTrip: number;
  /** Gets answered by a quorum read, which writes nothing. */
  quorumReads: number;
  /** Gets whose quorum read found answers that disagree, or too few, and went the usual way. */
  quorumReadsFallenBack: number;
  /** Attempts that failed and were retried. */
  retries: number;
  conflicts: number;
  timeouts: number;
  malformedDropped: number;
  /** Well-formed replies to a request no longer current (late, or duplicated). */
  staleReplies: number;
  overloaded: number;
  /** Requests an acceptor refused because they came from a map older than its fence. */
  fenced: number;
}

type Action = { readonly kind: 'command'; readonly command: Command } | { readonly kind: 'purge' };

type Phase = 'backoff' | 'read' | 'prepare' | 'accept' | 'purge';

interface Proposal {
  readonly previous: RegisterValue;
  readonly next: RegisterValue;
  readonly applied: boolean;
  /** A command that failed still writes back the value it read, then reports this. */
  readonly error: { readonly code: CommandErrorCode; readonly message: string } | null;
  readonly oneRoundTrip: boolean;
}

/** The acceptors of a register and the quorums an operation on it needs. */
interface AcceptorGroup {
  /** The ids in order, joined: names the group in the one-round-trip cache. */
  readonly name: string;
  readonly ids: readonly string[];
  readonly idSet: ReadonlySet<string>;
  readonly prepareQuorum: number;
  readonly acceptQuorum: number;
  /** While the acceptors change: both sets, each needing a majority, in every phase. */
  readonly joint: {
    readonly current: ReadonlySet<string>;
    readonly next: ReadonlySet<string>;
  } | null;
}

/** A fenced operation looks for a newer map this often while it waits for one. */
const FENCE_WAIT_STEP_MS = 10;
/** Acceptor groups remembered; past it the table is cleared (groups are rebuilt on use). */
const GROUPS_MAX = 4096;

interface Operation {
  readonly operationId: number;
  /** The acceptors of the current attempt; each attempt may take newer ones. */
  group: AcceptorGroup;
  /** The map epoch `group` comes from; null when the operation named none. */
  epoch: number | null;
  readonly key: Uint8Array;
  readonly keyString: string;
  readonly action: Action;
  attempt: number;
  phase: Phase;
  deadlineMs: number;
  ballot: Ballot;
  requestId: number;
  /** Acceptors that answered the current request positively. */
  readonly granted: Set<string>;
  /** Acceptors that refused it with a conflict. */
  readonly refused: Set<string>;
  /** Acceptors that refused it as coming from a map older than their fence. */
  readonly fenced: Set<string>;
  /** The highest fence epoch any acceptor answered; 0 when none. */
  fenceEpoch: number;
  /** While fenced: how long the operation waits for a newer map before it tries anyway. */
  fenceWaitUntilMs: number;
  highest: { accepted: Ballot; value: RegisterValue } | null;
  proposal: Proposal | null;
  purgeRemoved: number;
  /** A write that may be held by some acceptor, and every ballot it was sent under. */
  landed: { readonly proposal: Proposal; readonly ballots: Ballot[] } | null;
}

interface KeyQueue {
  running: Operation;
  readonly waiting: Operation[];
}

interface CachedPromise {
  /** The acceptor group that promised it: a key whose acceptors changed prepares again. */
  readonly group: string;
  /** The ballot a quorum promised along with accepting `value`. */
  readonly ballot: Ballot;
  readonly value: RegisterValue;
}

export class Proposer {
  readonly id: string;
  readonly stats: ProposerStats = emptyProposerStats();
  private readonly config: ProposerConfig;
  private readonly prng: Prng;
  /** The acceptors of the configuration, for operations that name none of their own. */
  private readonly defaultGroup: AcceptorGroup;
  private readonly groups = new Map<string, AcceptorGroup>();
  private readonly keys = new Map<string, KeyQueue>();
  /** requestId -> key of the operation whose current request it is. */
  private readonly requests = new Map<number, string>();
  /** One-round-trip promises, least recently used first (Map keeps insertion order). */
  private readonly cache = new Map<string, CachedPromise>();
  private highestCounter = 0;
  /** Counts requests; ids are `config.requestIdBase` plus it, wrapping after 2^32. */
  private requestCount = 0;
  private sends: ProposerSend[] = [];
  private completions: ProposerCompletion[] = [];
  /**
   * The acceptors a key has now, asked at the start of every attempt after the first (the
   * node answers from its newest map); undefined keeps those the operation had.
   */
  configurationOf: ((key: Uint8Array) => AcceptorConfiguration | undefined) | null = null;

  constructor(id: string, config: ProposerConfig, prng: Prng) {
    assert(isValidProposerId(id), 'a proposer id is a valid node id');
    validateProposerConfig(config);
    this.id = id;
    this.config = config;
    this.prng = prng;
    this.defaultGroup = {
      name: config.acceptorIds.join(','),
      ids: config.acceptorIds,
      idSet: new Set(config.acceptorIds),
      prepareQuorum: config.prepareQuorum,
      acceptQuorum: config.acceptQuorum,
      joint: null,
    };
  }

  /**
   * Starts `command` on `key`, or queues it behind the key's running operation. The key's
   * acceptors are `acceptorIds` (majority quorums) when given, else the configuration's; a
   * key must keep its acceptors while operations on it run (changing them needs the
   * membership-change steps of docs/PAXOS.md).
   */
  submit(
    operationId: number,
    key: Uint8Array,
    command: Command,
    nowMs: number,
    acceptorIds?: readonly string[] | AcceptorConfiguration,
  ): ProposerOutput {
    const problem = this.commandProblem(key, command);
    if (problem !== null) {
      this.complete(operationId, {
        kind: 'error',
        code: 'invalid',
        message: problem,
        mayHaveTakenEffect: false,
      });
      return this.flush();
    }
    this.enqueue(operationId, key, { kind: 'command', command }, acceptorIds, nowMs);
    return this.flush();
  }

  /**
   * Removes a deleted key from every acceptor (docs/PAXOS.md): writes its tombstone back to
   * all of them under a fresh ballot, then asks each to remove it if that tombstone is still
   * what it holds. A key that holds a value is left alone.
   */
  purge(
    operationId: number,
    key: Uint8Array,
    nowMs: number,
    acceptorIds?: readonly string[] | AcceptorConfiguration,
  ): ProposerOutput {
    if (!(key.length > 0 && key.length <= REGISTER_KEY_BYTES_MAX)) {
      this.complete(operationId, {
        kind: 'error',
        code: 'invalid',
        message: `a key is 1..${REGISTER_KEY_BYTES_MAX} bytes`,
        mayHaveTakenEffect: false,
      });
      return this.flush();
    }
    this.enqueue(operationId, key, { kind: 'purge' }, acceptorIds, nowMs);
    return this.flush();
  }

  /** Handles one message from acceptor `from`; a malformed one is dropped and counted. */
  receive(from: string, message: unknown, nowMs: number): ProposerOutput {
    if (!isValidPaxosMessage(message) || isAcceptorRequest(message) || isListMessage(message)) {
      this.stats.malformedDropped += 1;
      return this.flush();
    }
    const reply = message as AcceptorReply;
    const keyString = this.requests.get(reply[1]);
    const operation = keyString === undefined ? undefined : this.keys.get(keyString)?.running;
    if (!this.defaultGroup.idSet.has(from) && operation?.group.idSet.has(from) !== true) {
      this.stats.malformedDropped += 1;
      return this.flush();
    }
    // Ballots in any reply, current or late, teach the proposer how high to start.
    if (reply[0] === PaxosMessageType.conflict) this.noteCounter(reply[2]);
    if (reply[0] === PaxosMessageType.promise) this.noteCounter(reply[2]);
    if (operation === undefined || operation.requestId !== reply[1]) {
      this.stats.staleReplies += 1;
      return this.flush();
    }
    this.handleReply(operation, from, reply, nowMs);
    return this.flush();
  }

  /** Drives phase timeouts and the end of backoffs. */
  tick(nowMs: number): ProposerOutput {
    for (const queue of [...this.keys.values()]) {
      const operation = queue.running;
      if (nowMs < operation.deadlineMs) continue;
      if (operation.phase === 'backoff') {
        this.startAttempt(operation, nowMs);
      } else if (operation.phase === 'read') {
        this.readFallsBack(operation, nowMs);
      } else if (operation.phase === 'purge') {
        this.finishPurge(operation, nowMs);
      } else {
        if (operation.refused.size === 0 && operation.fenced.size === 0) this.stats.timeouts += 1;
        const reason =
          operation.refused.size > 0
            ? 'conflict'
            : operation.fenced.size > 0
              ? 'fenced'
              : 'timeout';
        this.failAttempt(operation, reason, nowMs);
      }
    }
    return this.flush();
  }

  /** The earliest time a tick has work to do, if any operation is running. */
  nextDeadlineMs(): number | undefined {
    let earliest: number | undefined;
    for (const queue of this.keys.values()) {
      const deadline = queue.running.deadlineMs;
      if (earliest === undefined || deadline < earliest) earliest = deadline;
    }
    return earliest;
  }

  /** Operations running or queued. */
  get operationCount(): number {
    let count = 0;
    for (const queue of this.keys.values()) count += 1 + queue.waiting.length;
    return count;
  }

  get cachedKeyCount(): number {
    return this.cache.size;
  }

  private commandProblem(key: Uint8Array, command: Command): string | null {
    if (!(key.length > 0 && key.length <= REGISTER_KEY_BYTES_MAX)) {
      return `a key is 1..${REGISTER_KEY_BYTES_MAX} bytes`;
    }
    const valueBytesMax = this.config.valueBytesMax;
    switch (command.kind) {
      case 'get':
      case 'delete':
        return null;
      case 'put':
      case 'put-if-present':
      case 'cas-value':
      case 'cas-version':
        if (command.value.length > valueBytesMax)
          return `a value is at most ${valueBytesMax} bytes`;
        if (
          command.kind === 'cas-version' &&
          !(Number.isSafeInteger(command.expectedVersion) && command.expectedVersion >= 0)
        ) {
          return 'an expected version is a non-negative integer';
        }
        return null;
      case 'incr':
        return typeof command.delta === 'bigint' ? null : 'an increment is an integer';
    }
  }

  private groupOf(acceptors: readonly string[] | AcceptorConfiguration | undefined): AcceptorGroup {
    if (acceptors === undefined) return this.defaultGroup;
    if (!isAcceptorList(acceptors)) {
      const nextIds = acceptors.nextIds;
      if (nextIds === undefined || nextIds.join(',') === acceptors.ids.join(',')) {
        return this.groupOf(acceptors.ids);
      }
      return this.jointGroupOf(acceptors.ids, nextIds);
    }
    const acceptorIds = acceptors;
    const name = acceptorIds.join(',');
    if (name === this.defaultGroup.name) return this.defaultGroup;
    let group = this.groups.get(name);
    if (group === undefined) {
      const quorums =
        this.config.unsafe?.quorumOfOne === true
          ? { acceptorIds, prepareQuorum: 1, acceptQuorum: 1 }
          : majorityQuorums(acceptorIds);
      validateProposerConfig({ ...this.config, ...quorums });
      group = { name, ids: acceptorIds, idSet: new Set(acceptorIds), ...quorums, joint: null };
      if (this.groups.size >= GROUPS_MAX) this.groups.clear();
      this.groups.set(name, group);
    }
    return group;
  }

  /**
   * The group of acceptors that change from `current` to `next`: messages go to both sets,
   * and a quorum is a majority of each. Its name differs from either set's, so a promise
   * cached under one set is never spent under the joint group (it has no majority of the
   * other behind it).
   */
  private jointGroupOf(current: readonly string[], next: readonly string[]): AcceptorGroup {
    const name = `${current.join(',')}|${next.join(',')}`;
    let group = this.groups.get(name);
    if (group === undefined) {
      const ids = [...current, ...next.filter((id) => !current.includes(id))];
      // The union's own majority is only checked for range: quorums are judged by joint rules.
      validateProposerConfig({ ...this.config, ...majorityQuorums(ids) });
      validateProposerConfig({ ...this.config, ...majorityQuorums(next) });
      group = {
        name,
        ids,
        idSet: new Set(ids),
        // Counts no joint quorum is judged by (isQuorum applies the joint rule); apart from
        // the purge's every acceptor, which is ids.length.
        prepareQuorum: ids.length + 1,
        acceptQuorum: ids.length + 1,
        joint: { current: new Set(current), next: new Set(next) },
      };
      if (this.groups.size >= GROUPS_MAX) this.groups.clear();
      this.groups.set(name, group);
    }
    assert(group.joint !== null && group.ids.length <= current.length + next.length, 'joint');
    return group;
  }

  /** Whether `answered` holds a quorum of the group for a phase needing `size` of a plain set. */
  private isQuorum(group: AcceptorGroup, answered: ReadonlySet<string>, size: number): boolean {
    const joint = group.joint;
    // A purge's seal needs every acceptor, of both sets alike.
    if (joint === null || size === group.ids.length) return answered.size >= size;
    let current = 0;
    let next = 0;
    for (const id of answered) {
      if (joint.current.has(id)) current++;
      if (joint.next.has(id)) next++;
    }
    return current >= majority(joint.current.size) && next >= majority(joint.next.size);
  }

  /** Whether the acceptors that have not refused can still make a quorum of `size`. */
  private quorumReachable(operation: Operation, size: number): boolean {
    const group = operation.group;
    if (group.joint === null || size === group.ids.length) {
      return group.ids.length - operation.refused.size - operation.fenced.size >= size;
    }
    const open = new Set(
      group.ids.filter((id) => !operation.refused.has(id) && !operation.fenced.has(id)),
    );
    return this.isQuorum(group, open, size);
  }

  private enqueue(
    operationId: number,
    key: Uint8Array,
    action: Action,
    acceptors: readonly string[] | AcceptorConfiguration | undefined,
    nowMs: number,
  ): void {
    const keyString = bytesToKeyString(key);
    const operation: Operation = {
      operationId,
      group: this.groupOf(acceptors),
      epoch:
        acceptors === undefined || isAcceptorList(acceptors) ? null : (acceptors.epoch ?? null),
      key,
      keyString,
      action,
      attempt: 0,
      phase: 'backoff',
      deadlineMs: nowMs,
      ballot: { counter: 0, proposerId: '' },
      requestId: 0,
      granted: new Set(),
      refused: new Set(),
      fenced: new Set(),
      fenceEpoch: 0,
      fenceWaitUntilMs: 0,
      highest: null,
      proposal: null,
      purgeRemoved: 0,
      landed: null,
    };
    const queue = this.keys.get(keyString);
    if (queue !== undefined) {
      if (queue.waiting.length >= QUEUED_OPERATIONS_PER_KEY_MAX) {
        this.refuseOverloaded(
          operationId,
          `more than ${QUEUED_OPERATIONS_PER_KEY_MAX} operations wait on the key`,
        );
        return;
      }
      queue.waiting.push(operation);
      return;
    }
    if (this.keys.size >= KEYS_IN_FLIGHT_MAX) {
      this.refuseOverloaded(
        operationId,
        `more than ${KEYS_IN_FLIGHT_MAX} keys have operations in flight`,
      );
      return;
    }
    this.keys.set(keyString, { running: operation, waiting: [] });
    this.startAttempt(operation, nowMs);
  }

  private refuseOverloaded(operationId: number, message: string): void {
    this.stats.overloaded += 1;
    this.complete(operationId, {
      kind: 'error',
      code: 'overloaded',
      message,
      mayHaveTakenEffect: false,
    });
  }

  private startAttempt(operation: Operation, nowMs: number): void {
    if (!this.takeConfiguration(operation, nowMs)) return;
    operation.attempt += 1;
    assert(operation.attempt <= this.config.attemptsMax, 'attempts are bounded');
    operation.granted.clear();
    operation.refused.clear();
    operation.fenced.clear();
    operation.highest = null;
    operation.proposal = null;
    const action = operation.action;
    if (
      operation.attempt === 1 &&
      action.kind === 'command' &&
      action.command.kind === 'get' &&
      this.config.unsafe?.skipPrepare !== true
    ) {
      operation.phase = 'read';
      operation.ballot = { counter: 0, proposerId: '' };
      operation.deadlineMs = nowMs + this.config.phaseTimeoutMs;
      const requestId = this.newRequest(operation);
      this.toEveryAcceptor(operation, [PaxosMessageType.read, requestId, operation.key]);
      return;
    }
    this.prepareOrAccept(operation, nowMs);
  }

  /**
   * Before a retry: the acceptors the node's map gives the key now. An operation an acceptor
   * fenced waits, in short backoffs, for a map at least as new as the fence (the node fetches
   * it), until `fenceWaitUntilMs`; then it tries anyway. Answers whether to go on now.
   */
  private takeConfiguration(operation: Operation, nowMs: number): boolean {
    const configuration =
      operation.epoch === null ? undefined : this.configurationOf?.(operation.key);
    if (configuration !== undefined) {
      operation.group = this.groupOf(configuration);
      operation.epoch = configuration.epoch ?? operation.epoch;
    }
    const stale = operation.epoch !== null && operation.epoch < operation.fenceEpoch;
    if (stale && nowMs < operation.fenceWaitUntilMs) {
      operation.phase = 'backoff';
      operation.deadlineMs = Math.min(operation.fenceWaitUntilMs, nowMs + FENCE_WAIT_STEP_MS);
      return false;
    }
    assert(operation.group.ids.length > 0, 'an operation has acceptors');
    return true;
  }

  /** The attempt's first phase after any read: an accept on a cached promise, or a prepare. */
  private prepareOrAccept(operation: Operation, nowMs: number): void {
    let cached = this.cache.get(operation.keyString);
    if (cached !== undefined && cached.group !== operation.group.name) {
      this.cache.delete(operation.keyString);
      cached = undefined;
    }
    if (operation.action.kind === 'command' && this.config.unsafe?.skipPrepare === true) {
      // The negative control: a write under a fresh ballot on a value no promise backs.
      this.propose(operation, this.freshBallot(), cached?.value ?? ABSENT_VALUE, false, nowMs);
      return;
    }
    if (cached !== undefined) {
      // Used once: from here on, success caches the next promise and failure forgets it.
      this.cache.delete(operation.keyString);
      if (operation.action.kind === 'command') {
        this.noteCounter(cached.ballot.counter);
        this.propose(operation, cached.ballot, cached.value, true, nowMs);
        return;
      }
    }
    operation.phase = 'prepare';
    operation.ballot = this.freshBallot();
    operation.deadlineMs = nowMs + this.config.phaseTimeoutMs;
    const requestId = this.newRequest(operation);
    this.toEveryAcceptor(operation, [
      PaxosMessageType.prepare,
      requestId,
      operation.key,
      operation.ballot.counter,
      operation.ballot.proposerId,
    ]);
  }

  /** Applies the operation to `base` and sends the result to every acceptor. */
  private propose(
    operation: Operation,
    ballot: Ballot,
    base: RegisterValue,
    oneRoundTrip: boolean,
    nowMs: number,
    again?: Proposal,
  ): void {
    let proposal: Proposal;
    if (again !== undefined) {
      proposal = again;
    } else if (operation.action.kind === 'purge') {
      proposal = { previous: base, next: base, applied: true, error: null, oneRoundTrip };
    } else {
      const result = applyCommand(base, operation.action.command);
      proposal = result.ok
        ? { previous: base, next: result.next, applied: result.applied, error: null, oneRoundTrip }
        : {
            previous: base,
            next: base,
            applied: false,
            error: { code: result.code, message: result.message },
            oneRoundTrip,
          };
    }
    operation.proposal = proposal;
    operation.phase = 'accept';
    operation.ballot = ballot;
    // Acceptors that take this accept promise its successor: fresh ballots start above it.
    this.noteCounter(ballot.counter + 1);
    operation.granted.clear();
    operation.refused.clear();
    operation.deadlineMs = nowMs + this.config.phaseTimeoutMs;
    const requestId = this.newRequest(operation);
    this.toEveryAcceptor(operation, [
      PaxosMessageType.accept,
      requestId,
      operation.key,
      ballot.counter,
      ballot.proposerId,
      proposal.next.bytes,
      proposal.next.version,
    ]);
  }

  private handleReply(
    operation: Operation,
    from: string,
    reply: AcceptorReply,
    nowMs: number,
  ): void {
    // Only the first answer of each acceptor counts: the network duplicates.
    if (operation.granted.has(from) || operation.refused.has(from) || operation.fenced.has(from)) {
      this.stats.staleReplies += 1;
      return;
    }
    const acceptorCount = operation.group.ids.length;
    switch (reply[0]) {
      case PaxosMessageType.readReply: {
        if (operation.phase !== 'read') break;
        this.noteCounter(reply[2]);
        operation.granted.add(from);
        const accepted: Ballot = { counter: reply[2], proposerId: reply[3] };
        const value: RegisterValue = { bytes: reply[4], version: reply[5] };
        const first = operation.highest;
        if (first === null) {
          operation.highest = { accepted, value };
        } else if (
          !ballotsEqual(first.accepted, accepted) ||
          first.value.version !== value.version
        ) {
          // One ballot carries one value: a different version means a different ballot
          // (the zero ballot's tombstones sit at each acceptor's own floor).
          this.readFallsBack(operation, nowMs);
          return;
        }
        if (!this.isQuorum(operation.group, operation.granted, operation.group.prepareQuorum))
          return;
        assert(operation.highest !== null, 'a quorum of reads names a value');
        const { accepted: agreed, value: read } = operation.highest;
        // Nothing accepted: which floor version the key reads at is only settled by writing
        // it back, so an absent key goes the usual way.
        if (agreed.counter === 0) {
          this.readFallsBack(operation, nowMs);
          return;
        }
        this.stats.quorumReads += 1;
        this.complete(operation.operationId, {
          kind: 'ok',
          previous: read,
          current: read,
          applied: true,
          oneRoundTrip: true,
          quorumRead: true,
        });
        this.next(operation, nowMs);
        return;
      }
      case PaxosMessageType.promise: {
        if (operation.phase !== 'prepare') break;
        const accepted: Ballot = { counter: reply[2], proposerId: reply[3] };
        const value: RegisterValue = { bytes: reply[4], version: reply[5] };
        operation.granted.add(from);
        const highest = operation.highest;
        // Equal ballots carry equal values, except the zero ballot, whose tombstone is at
        // each acceptor's version floor: the highest floor is the one that never repeats.
        if (
          highest === null ||
          compareBallots(accepted, highest.accepted) > 0 ||
          (compareBallots(accepted, highest.accepted) === 0 &&
            value.version > highest.value.version)
        ) {
          operation.highest = { accepted, value };
        }
        if (this.isQuorum(operation.group, operation.granted, operation.group.prepareQuorum)) {
          this.prepared(operation, nowMs);
        }
        return;
      }
      case PaxosMessageType.accepted: {
        if (operation.phase !== 'accept') break;
        operation.granted.add(from);
        if (this.isQuorum(operation.group, operation.granted, this.acceptsNeeded(operation))) {
          this.acceptedByQuorum(operation, nowMs);
        } else if (
          operation.granted.size + operation.refused.size + operation.fenced.size ===
          acceptorCount
        ) {
          // Everyone answered and the quorum was missed: no need to wait for the timeout.
          this.failAttempt(operation, 'conflict', nowMs);
        }
        return;
      }
      case PaxosMessageType.conflict: {
        if (operation.phase !== 'prepare' && operation.phase !== 'accept') break;
        this.stats.conflicts += 1;
        operation.refused.add(from);
        const needed =
          operation.phase === 'prepare'
            ? operation.group.prepareQuorum
            : this.acceptsNeeded(operation);
        if (this.quorumReachable(operation, needed)) return;
        // The quorum is out of reach. A write some acceptor may still hold is waited on until
        // every acceptor has answered or the phase times out: if all refused it, it landed
        // nowhere and the operation may be retried.
        const answered = operation.granted.size + operation.refused.size + operation.fenced.size;
        if (operation.phase === 'accept' && this.isChanging(operation) && answered < acceptorCount)
          return;
        this.failAttempt(operation, 'conflict', nowMs);
        return;
      }
      case PaxosMessageType.fenced: {
        if (operation.phase === 'backoff' || operation.phase === 'purge') break;
        this.stats.fenced += 1;
        operation.fenced.add(from);
        if (reply[2] > operation.fenceEpoch) {
          operation.fenceEpoch = reply[2];
          operation.fenceWaitUntilMs = nowMs + this.config.phaseTimeoutMs;
        }
        const needed =
          operation.phase === 'accept'
            ? this.acceptsNeeded(operation)
            : operation.group.prepareQuorum;
        if (this.quorumReachable(operation, needed)) return;
        const answered = operation.granted.size + operation.refused.size + operation.fenced.size;
        if (operation.phase === 'accept' && this.isChanging(operation) && answered < acceptorCount)
          return;
        this.failAttempt(operation, 'fenced', nowMs);
        return;
      }
      case PaxosMessageType.purgeReply: {
        if (operation.phase !== 'purge') break;
        operation.granted.add(from);
        if (reply[2]) operation.purgeRemoved += 1;
        if (operation.granted.size === acceptorCount) this.finishPurge(operation, nowMs);
        return;
      }
    }
    // A well-formed reply of a kind the current phase does not expect.
    this.stats.staleReplies += 1;
  }

  /** A quorum read that cannot answer: the same attempt goes on the usual way. */
  private readFallsBack(operation: Operation, nowMs: number): void {
    this.stats.quorumReadsFallenBack += 1;
    operation.granted.clear();
    operation.refused.clear();
    operation.fenced.clear();
    operation.highest = null;
    this.prepareOrAccept(operation, nowMs);
  }

  private prepared(operation: Operation, nowMs: number): void {
    const highest = operation.highest;
    assert(highest !== null, 'a quorum of promises names a value');
    if (operation.action.kind === 'purge' && highest.value.bytes !== null) {
      this.complete(operation.operationId, {
        kind: 'purge',
        wasTombstone: false,
        removedCount: 0,
        complete: false,
      });
      this.next(operation, nowMs);
      return;
    }
    const landed = operation.landed;
    if (landed !== null) {
      if (landed.ballots.some((ballot) => ballotsEqual(ballot, highest.accepted))) {
        // The write is the highest a quorum holds: finish it, unchanged.
        const again = { ...landed.proposal, oneRoundTrip: false };
        this.propose(operation, operation.ballot, highest.value, false, nowMs, again);
        return;
      }
      // Older by ballot, and by version too: a purge leaves a key that reads as nothing
      // accepted (the zero ballot) at the floor version, which hides every ballot it had.
      const older =
        landed.ballots.every((ballot) => compareBallots(highest.accepted, ballot) < 0) &&
        highest.value.version < landed.proposal.next.version;
      if (!older) {
        this.complete(operation.operationId, {
          kind: 'error',
          code: 'contention',
          message: 'another proposer wrote after a write of this operation that may have landed',
          mayHaveTakenEffect: true,
        });
        this.next(operation, nowMs);
        return;
      }
      // Nothing a quorum holds is as new as the write: once this attempt's value is chosen,
      // the write never can be, so the command is applied afresh.
    }
    this.propose(operation, operation.ballot, highest.value, false, nowMs);
  }

  private acceptedByQuorum(operation: Operation, nowMs: number): void {
    const proposal = operation.proposal;
    assert(proposal !== null, 'an accept phase has a proposal');
    if (operation.action.kind === 'purge') {
      // Every acceptor holds the tombstone at this ballot: ask each to remove it.
      operation.phase = 'purge';
      operation.granted.clear();
      operation.refused.clear();
      operation.purgeRemoved = 0;
      operation.deadlineMs = nowMs + this.config.phaseTimeoutMs;
      const requestId = this.newRequest(operation);
      this.toEveryAcceptor(operation, [
        PaxosMessageType.purge,
        requestId,
        operation.key,
        operation.ballot.counter,
        operation.ballot.proposerId,
        proposal.next.version,
      ]);
      return;
    }
    // The accepts also promised the successor: enough of them make a prepare quorum for it.
    if (this.isQuorum(operation.group, operation.granted, operation.group.prepareQuorum)) {
      this.remember(operation.keyString, {
        group: operation.group.name,
        ballot: successorBallot(operation.ballot),
        value: proposal.next,
      });
    }
    if (proposal.oneRoundTrip) this.stats.oneRoundTrip += 1;
    else this.stats.twoRoundTrips += 1;
    const outcome: OperationOutcome =
      proposal.error === null
        ? {
            kind: 'ok',
            previous: proposal.previous,
            current: proposal.next,
            applied: proposal.applied,
            oneRoundTrip: proposal.oneRoundTrip,
            quorumRead: false,
          }
        : {
            kind: 'error',
            code: proposal.error.code,
            message: proposal.error.message,
            mayHaveTakenEffect: false,
          };
    this.complete(operation.operationId, outcome);
    this.next(operation, nowMs);
  }

  private finishPurge(operation: Operation, nowMs: number): void {
    const acceptorCount = operation.group.ids.length;
    this.complete(operation.operationId, {
      kind: 'purge',
      wasTombstone: true,
      removedCount: operation.purgeRemoved,
      complete: operation.purgeRemoved === acceptorCount,
    });
    this.next(operation, nowMs);
  }

  private failAttempt(
    operation: Operation,
    reason: 'timeout' | 'conflict' | 'fenced',
    nowMs: number,
  ): void {
    this.cache.delete(operation.keyString);
    const proposal = operation.proposal;
    // A fenced acceptor, like one that refused, took nothing.
    const mayHaveLanded =
      operation.phase === 'accept' &&
      proposal !== null &&
      this.isChanging(operation) &&
      operation.refused.size + operation.fenced.size < operation.group.ids.length;
    // Two different writes of one operation may be held: no prepare can tell them apart.
    let ambiguous = false;
    if (mayHaveLanded) {
      const landed = operation.landed;
      if (landed === null) operation.landed = { proposal, ballots: [operation.ballot] };
      else if (landed.proposal.next === proposal.next) landed.ballots.push(operation.ballot);
      else ambiguous = true;
    }
    if (ambiguous || operation.attempt >= this.config.attemptsMax) {
      const code = reason === 'conflict' ? 'contention' : 'unavailable';
      const message =
        reason === 'conflict'
          ? `outbid by another proposer after ${operation.attempt} attempts`
          : `no quorum of acceptors answered after ${operation.attempt} attempts`;
      this.complete(operation.operationId, {
        kind: 'error',
        code,
        message,
        mayHaveTakenEffect: operation.landed !== null,
      });
      this.next(operation, nowMs);
      return;
    }
    this.stats.retries += 1;
    this.requests.delete(operation.requestId);
    operation.phase = 'backoff';
    const ceilingMs = Math.min(
      this.config.backoffMsMax,
      this.config.backoffMsBase * 2 ** (operation.attempt - 1),
    );
    operation.deadlineMs = nowMs + this.prng.between(0, ceilingMs);
    assert(operation.phase === 'backoff', 'a failed attempt waits before the next');
  }

  /** Whether the current proposal writes something new (a read's write-back does not). */
  private isChanging(operation: Operation): boolean {
    const proposal = operation.proposal;
    return proposal !== null && proposal.next !== proposal.previous;
  }

  private acceptsNeeded(operation: Operation): number {
    // A purge seals the tombstone on every acceptor, so none holds an older value.
    return operation.action.kind === 'purge'
      ? operation.group.ids.length
      : operation.group.acceptQuorum;
  }

  /** Ends the key's running operation and starts the next one queued, if any. */
  private next(operation: Operation, nowMs: number): void {
    this.requests.delete(operation.requestId);
    const queue = this.keys.get(operation.keyString);
    assert(queue !== undefined && queue.running === operation, 'the running operation ends');
    const following = queue.waiting.shift();
    if (following === undefined) {
      this.keys.delete(operation.keyString);
      return;
    }
    queue.running = following;
    this.startAttempt(following, nowMs);
  }

  private complete(operationId: number, outcome: OperationOutcome): void {
    this.completions.push({ operationId, outcome });
  }

  private remember(keyString: string, promise: CachedPromise): void {
    this.cache.delete(keyString);
    this.cache.set(keyString, promise);
    if (this.cache.size > CACHED_KEYS_MAX) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    assert(this.cache.size <= CACHED_KEYS_MAX, 'the cache is bounded');
  }

  private toEveryAcceptor(operation: Operation, message: ProposerSend['message']): void {
    const epoch = operation.epoch;
    for (const to of operation.group.ids) {
      this.sends.push(epoch === null ? { to, message } : { to, message, epoch });
    }
  }

  private freshBallot(): Ballot {
    this.highestCounter += 1;
    assert(this.highestCounter < Number.MAX_SAFE_INTEGER, 'ballot counters stay below 2^53');
    return { counter: this.highestCounter, proposerId: this.id };
  }

  private noteCounter(counter: number): void {
    if (counter > this.highestCounter) this.highestCounter = counter;
  }

  /**
   * A request id from this proposer's range that no operation uses: for requests of the
   * node's own (a copy's list requests), unique in this life as the proposer's are.
   */
  newRequestId(): number {
    this.requestCount = (this.requestCount % REQUEST_IDS_PER_PROPOSER) + 1;
    return (this.config.requestIdBase ?? 0) + this.requestCount;
  }

  private newRequest(operation: Operation): number {
    this.requests.delete(operation.requestId);
    const requestId = this.newRequestId();
    operation.requestId = requestId;
    this.requests.set(requestId, operation.keyString);
    return requestId;
  }

  private flush(): ProposerOutput {
    const output: ProposerOutput = { sends: this.sends, completions: this.completions };
    this.sends = [];
    this.completions = [];
    return output;
  }
}

function majorityQuorums(acceptorIds: readonly string[]): {
  acceptorIds: readonly string[];
  prepareQuorum: number;
  acceptQuorum: number;
} {
  const quorum = majority(acceptorIds.length);
  return { acceptorIds, prepareQuorum: quorum, acceptQuorum: quorum };
}

/** Every counter of a proposer's stats at zero. */
export function emptyProposerStats(): ProposerStats {
  return {
    twoRoundTrips: 0,
    oneRoundTrip: 0,
    quorumReads: 0,
    quorumReadsFallenBack: 0,
    retries: 0,
    conflicts: 0,
    timeouts: 0,
    malformedDropped: 0,
    staleReplies: 0,
    overloaded: 0,
    fenced: 0,
  };
}

function isAcceptorList(
  acceptors: readonly string[] | AcceptorConfiguration,
): acceptors is readonly string[] {
  return Array.isArray(acceptors);
}
