// One replica of one partition's chain as a pure state machine (chain replication, van Renesse
// and Schneider, OSDI 2004). The driver hands it configurations from the cluster map
// (`configure`, `precopy`), messages from the network (`receive`) and the passing of time
// (`tick`); each call returns a batch to make durable and the messages to send once it is.
//
// The protocol as built:
// - The head orders writes with a sequence number per partition, evaluates each against its
//   current copy, applies the result and passes it down; every replica applies entries in
//   sequence order and keeps those not yet known committed (its "sent" list). The tail
//   commits: it answers the requester and acknowledges up the chain, and each replica trims
//   its sent list to the acknowledged point. Reads are answered by the tail alone.
// - Links may lose, repeat and reorder messages: entries carry their sequence number, a
//   replica applies only the next one, acknowledgements are cumulative, and a predecessor
//   resends from what its successor last acknowledged as applied.
// - Every message carries the chain epoch. A message of an older epoch is refused and the
//   sender is told the newer configuration; a newer epoch means this replica is behind, and it
//   asks for the map (`configWanted`).
// - Reconfiguration: a removed head's successor becomes head; a removed middle's predecessor
//   resends its sent list to its new successor; a removed tail's predecessor becomes tail and
//   commits (answers) what its sent list holds. To extend the chain, a replica first copies
//   the partition from the tail while not a member (`precopy`, in passes), is appended, then
//   copies what changed since its last pass from its predecessor and receives the entries that
//   arrived meanwhile from that predecessor's sent list. A replica appended without a pre-copy
//   does the same from nothing.
// - A pre-copy keeps the node's handoff rate limit and pause (docs/CHAIN.md, "Membership
//   changes"): it asks for its next chunk only while not paused and while its ByteRateLimit
//   allows, each chunk charged on arrival against the time it was asked for. The copy of a
//   member (after the append) is not held back: the chain waits on it.
// - A tail answers only while it holds a lease from its predecessor (the head needs none), and
//   a replica whose successor changed grants no lease and acts as no tail until every lease it
//   granted before has run out. So a tail that was removed without knowing it, and still
//   believes an older configuration, stops answering before any other replica starts.
// - Nothing here is durable by itself: a step's batch must be stored before its sends go out.
//   So an entry is durable at a replica before its successor sees it, and a committed entry is
//   durable at every replica of the chain.
// No clock, no randomness, no I/O.

import { assert, bytesToKeyString, keyStringToBytes } from '../bytes.ts';
import { ByteRateLimit } from '../handoff/rate-limit.ts';
import {
  headOf,
  isValidNodeId,
  memberIndex,
  predecessorOf,
  successorOf,
  tailOf,
  type ChainConfig,
} from './chain-config.ts';
import {
  isValidChainMessage,
  type AckMessage,
  type ChainEntry,
  type ChainMessage,
  type ChainReply,
  type CopiedRecord,
  type CopyChunkMessage,
  type CopyRequestMessage,
  type ForwardMessage,
  type LeaseMessage,
  type ReadRequestMessage,
  type RememberedRequest,
  type RequesterMemory,
  type WriteRequestMessage,
} from './messages.ts';
import {
  ABSENT_RECORD,
  evaluateOperation,
  operationProblem,
  problemCode,
  recordOf,
  type ChainRecord,
} from './operations.ts';
import {
  CONFIGS_REMEMBERED_MAX,
  DEFAULT_CHAIN_LIMITS,
  DEFAULT_CHAIN_TIMINGS,
  validateChainLimits,
  validateChainTimings,
  type ChainLimits,
  type ChainTimings,
} from './settings.ts';
import type { ChainMeta } from './state-codec.ts';

/**
 * Deliberately broken settings, for the simulator's negative controls only: each removes one
 * safeguard, and the linearizability checker must then find violations.
 */
export interface UnsafeChainSettings {
  /** Serve a request of an older epoch by the role this replica had in that epoch. */
  readonly acceptOlderEpochs?: boolean;
  /** Any caught-up member answers reads from its own copy, not the tail alone. */
  readonly readsAtAnyReplica?: boolean;
}

export interface ChainReplicaOptions {
  readonly selfId: string;
  readonly partition: number;
  readonly timings?: ChainTimings;
  readonly limits?: ChainLimits;
  readonly unsafe?: UnsafeChainSettings;
}

export interface ChainSend {
  readonly to: string;
  readonly message: ChainMessage;
}

export interface StoredKey {
  readonly key: Uint8Array;
  readonly record: ChainRecord;
}

/**
 * What to store, in this order: the wipe, the meta row, records, requesters (stored, then
 * forgotten), entries (stored, then removed through `entriesCommittedThrough`).
 */
export interface ChainBatch {
  readonly partition: number;
  /** Drop every record, requester and entry of the partition first (a membership restarts). */
  readonly wipe: boolean;
  /** The new meta row, or null when it did not change. */
  readonly meta: ChainMeta | null;
  readonly records: readonly StoredKey[];
  readonly requesters: readonly RequesterMemory[];
  readonly forgottenRequesters: readonly string[];
  /** Entries applied and not yet known committed: a restarted replica must pass them on. */
  readonly entries: readonly ChainEntry[];
  /** Entry rows up to this sequence number are no longer needed; null: none to remove. */
  readonly entriesCommittedThrough: number | null;
}

/** What a replica stored, decoded, for restore. */
export interface ChainStoredState {
  readonly meta: ChainMeta;
  readonly records: readonly StoredKey[];
  readonly requesters: readonly RequesterMemory[];
  /** In any order; they must be the consecutive entries that end at the applied sequence. */
  readonly entries: readonly ChainEntry[];
}

export interface ChainOutput {
  /** To make durable before any of `sends` goes out; null when there is nothing new. */
  readonly batch: ChainBatch | null;
  /** To send once this batch and every batch emitted before it are durable. */
  readonly sends: readonly ChainSend[];
  /** An epoch newer than this replica's was seen: fetch this partition's configuration. */
  readonly configWanted: number | null;
  /** A pre-copy pass finished (see `precopy`). */
  readonly precopied: PrecopyReport | null;
}

export type ChainRole = 'none' | 'copying' | 'head' | 'middle' | 'tail' | 'single';

export interface ChainCounters {
  malformedDropped: number;
  olderEpochRefused: number;
  newerEpochSeen: number;
  unexpectedSenderDropped: number;
  duplicateEntriesSkipped: number;
  gapsDropped: number;
  duplicateRequests: number;
  staleRequestsDropped: number;
  overloadedRefusals: number;
  entriesApplied: number;
  entriesCommitted: number;
  readsAnswered: number;
  leasesGranted: number;
  retransmissions: number;
  precopyPasses: number;
  copiesFinished: number;
  /** Of copiesFinished: those that began from a pre-copy, needing only a delta pass. */
  copiesFromPrecopy: number;
}

interface CopyProgress {
  readonly fromSequence: number;
  afterKey: Uint8Array | null;
  /** From the chunk that started the pass; null until it has come. */
  passApplied: number | null;
  passCommitted: number | null;
  recordsInPass: number;
  requestedAtMs: number;
}

function newCopy(fromSequence: number): CopyProgress {
  return {
    fromSequence,
    afterKey: null,
    passApplied: null,
    passCommitted: null,
    recordsInPass: 0,
    requestedAtMs: -Infinity,
  };
}

/** A pre-copy pass is done: the map may now append this replica as the tail. */
export interface PrecopyReport {
  readonly epoch: number;
  /** The records held cover the chain's history up to here. */
  readonly throughSequence: number;
  /** Records the pass brought; the smaller, the shorter the copy after joining. */
  readonly recordsInPass: number;
}

export class ChainReplica {
  readonly selfId: string;
  readonly partition: number;
  readonly counters: ChainCounters = {
    malformedDropped: 0,
    olderEpochRefused: 0,
    newerEpochSeen: 0,
    unexpectedSenderDropped: 0,
    duplicateEntriesSkipped: 0,
    gapsDropped: 0,
    duplicateRequests: 0,
    staleRequestsDropped: 0,
    overloadedRefusals: 0,
    entriesApplied: 0,
    entriesCommitted: 0,
    readsAnswered: 0,
    leasesGranted: 0,
    retransmissions: 0,
    precopyPasses: 0,
    copiesFinished: 0,
    copiesFromPrecopy: 0,
  };
  private readonly timings: ChainTimings;
  private readonly limits: ChainLimits;
  private readonly unsafe: UnsafeChainSettings;

  private config: ChainConfig | null = null;
  private readonly previousConfigs: ChainConfig[] = [];
  /** The `sinceEpoch` of the membership the data belongs to; 0 when not a member. */
  private memberSinceEpoch = 0;
  private caughtUp = false;
  private readonly records = new Map<string, ChainRecord>();
  private sortedKeys: string[] | null = null;
  /** Kept in order of lastSequence, oldest first: the first is forgotten first. */
  private readonly requesters = new Map<string, RequesterMemory>();
  private appliedSequence = 0;
  private committedSequence = 0;
  /** Entries committedSequence + 1 .. appliedSequence, in order. */
  private sent: ChainEntry[] = [];
  /** A new tail acts only once it has applied what its predecessor held when the copy began. */
  private readyAtSequence = 0;

  private successorApplied: number | null = null;
  private sentThrough = 0;
  private lastForwardAtMs = -Infinity;

  private leaseExpiresAtMs = -Infinity;
  private lastGrantAtMs = -Infinity;
  private grantsBlockedUntilMs = -Infinity;
  private lastAckAtMs = -Infinity;
  private ackDue = false;

  private copy: CopyProgress | null = null;
  /** While a non-member copies the partition before joining: the tail it copies from. */
  private precopySource: string | null = null;
  /** Where the next pass of a pre-copy starts: the start of the last finished pass. */
  private precopiedThrough: number | null = null;
  private precopied: PrecopyReport | null = null;
  /** The node's handoff limit and pause, which pre-copies keep. */
  private readonly precopyLimit = new ByteRateLimit(0);
  private precopyPaused = false;
  /** A pre-copy's next request is due but held back by the limit or a pause. */
  private precopyHeld = false;
  /** Bytes (keys and values) this replica's pre-copies received. */
  precopyBytesReceived = 0;
  private lastNowMs = -Infinity;

  // The step's output, gathered as it runs.
  private sends: ChainSend[] = [];
  private wipePending = false;
  private metaChanged = false;
  private readonly changedRecords = new Map<string, ChainRecord>();
  private readonly changedRequesters = new Set<string>();
  private readonly forgottenRequesters = new Set<string>();
  private readonly changedEntries: ChainEntry[] = [];
  private entriesCommittedThrough: number | null = null;
  private configWanted: number | null = null;

  constructor(options: ChainReplicaOptions) {
    assert(isValidNodeId(options.selfId), 'selfId is a valid node id');
    this.selfId = options.selfId;
    this.partition = options.partition;
    this.timings = options.timings ?? DEFAULT_CHAIN_TIMINGS;
    this.limits = options.limits ?? DEFAULT_CHAIN_LIMITS;
    this.unsafe = options.unsafe ?? {};
    validateChainTimings(this.timings);
    validateChainLimits(this.limits);
  }

  /**
   * A replica as it was stored, after a restart. It keeps its membership and its sent list.
   * It grants no lease and acts as no tail for a full lease from now, since it cannot know
   * what it granted just before it stopped. A member that was still copying starts over.
   */
  static restore(
    options: ChainReplicaOptions,
    stored: ChainStoredState,
    nowMs: number,
  ): ChainReplica {
    const replica = new ChainReplica(options);
    const meta = stored.meta;
    assert(meta.partition === options.partition, 'stored state of this partition');
    replica.lastNowMs = nowMs;
    replica.config = meta.config;
    replica.memberSinceEpoch = meta.memberSinceEpoch;
    replica.grantsBlockedUntilMs =
      nowMs + replica.timings.leaseMs + replica.timings.clockDriftMarginMs;
    if (replica.isMember() && !meta.caughtUp) {
      replica.wipe();
      replica.copy = newCopy(0);
      replica.metaChanged = true;
      return replica;
    }
    replica.caughtUp = meta.caughtUp;
    for (const { key, record } of stored.records) {
      replica.records.set(bytesToKeyString(key), record);
    }
    const requesters = [...stored.requesters].sort((a, b) => a.lastSequence - b.lastSequence);
    for (const memory of requesters) replica.requesters.set(memory.requester, memory);
    const entries = [...stored.entries].sort((a, b) => a.sequence - b.sequence);
    replica.appliedSequence = meta.appliedSequence;
    replica.committedSequence = meta.appliedSequence - entries.length;
    replica.readyAtSequence = meta.readyAtSequence;
    entries.forEach((entry, index) => {
      assert(
        entry.sequence === replica.committedSequence + 1 + index,
        'stored entries are the consecutive ones up to the applied sequence',
      );
    });
    replica.sent = entries;
    replica.sentThrough = replica.committedSequence;
    return replica;
  }

  // --- inputs ---

  /** A configuration from the cluster map; adopted when its epoch is newer than ours. */
  configure(config: ChainConfig, nowMs: number): ChainOutput {
    this.advanceClock(nowMs);
    assert(config.partition === this.partition, 'a configuration of this partition');
    if (this.config === null || config.epoch > this.config.epoch) this.adopt(config, nowMs);
    return this.finishStep(nowMs);
  }

  /**
   * Asks a replica that is not a member to copy the partition from the tail of `config`
   * before the map appends it (the paper's way to extend a chain): it copies in passes, each
   * bringing only what changed since the previous one began, and reports each finished pass.
   * Once appended, it needs one more short pass from its predecessor. Any earlier data of a
   * replica that starts a pre-copy is dropped.
   */
  precopy(config: ChainConfig, nowMs: number): ChainOutput {
    this.advanceClock(nowMs);
    assert(config.partition === this.partition, 'a configuration of this partition');
    if (this.config === null || config.epoch > this.config.epoch) this.adopt(config, nowMs);
    if (this.isMember() || this.precopySource !== null) return this.finishStep(nowMs);
    this.wipe();
    this.precopySource = tailOf(this.config!);
    this.precopiedThrough = null;
    this.copy = newCopy(0);
    this.requestCopyPaced(nowMs);
    return this.finishStep(nowMs);
  }

  /** One message off the network; malformed ones are dropped and counted. */
  receive(from: string, message: unknown, nowMs: number): ChainOutput {
    this.advanceClock(nowMs);
    if (!isValidNodeId(from) || !isValidChainMessage(message) || message.type === 'reply') {
      this.counters.malformedDropped += 1;
      return this.finishStep(nowMs);
    }
    if (message.partition !== this.partition) {
      this.counters.malformedDropped += 1;
      return this.finishStep(nowMs);
    }
    switch (message.type) {
      case 'write':
        this.handleWrite(from, message);
        break;
      case 'read':
        this.handleRead(from, message, nowMs);
        break;
      case 'refused':
        if (this.config === null || message.epoch > this.config.epoch) {
          this.adopt(message.config, nowMs);
        }
        break;
      case 'copy-chunk':
        if (this.precopySource !== null) {
          if (from === this.precopySource && message.epoch === this.epoch) {
            this.handleCopyChunk(message, nowMs);
          } else if (message.epoch > this.epoch) {
            this.wantConfig(message.epoch);
          }
        } else if (this.checkPeerEpoch(from, message.epoch)) {
          this.handlePeer(from, message, nowMs);
        }
        break;
      default:
        if (this.checkPeerEpoch(from, message.epoch)) this.handlePeer(from, message, nowMs);
    }
    return this.finishStep(nowMs);
  }

  /** Timers: acknowledgements and lease requests, retransmission, copy requests. */
  tick(nowMs: number): ChainOutput {
    this.advanceClock(nowMs);
    if (this.isMember() && this.caughtUp) {
      if (nowMs - this.lastAckAtMs >= this.timings.ackIntervalMs) this.ackDue = true;
      this.retransmitIfStalled(nowMs);
    }
    if (this.copy !== null && this.precopyHeld) {
      if (this.precopyMayRequest(nowMs)) this.requestCopy(nowMs);
    } else if (
      this.copy !== null &&
      nowMs - this.copy.requestedAtMs >= this.timings.copyRetryAfterMs
    ) {
      this.requestCopyPaced(nowMs);
    }
    return this.finishStep(nowMs);
  }

  /** The pre-copy's share of the node's handoff limit, bytes per second; 0: unlimited. */
  setPrecopyRate(bytesPerSecond: number): void {
    this.precopyLimit.setRate(bytesPerSecond);
  }

  /** A paused pre-copy asks for no chunk; one already asked for is still taken. */
  setPrecopyPaused(paused: boolean): void {
    this.precopyPaused = paused;
  }

  /** Whether this replica pre-copies the partition (not a member yet). */
  get precopying(): boolean {
    return this.precopySource !== null;
  }

  // --- inspection ---

  get epoch(): number {
    return this.config?.epoch ?? 0;
  }

  get currentConfig(): ChainConfig | null {
    return this.config;
  }

  get applied(): number {
    return this.appliedSequence;
  }

  get committed(): number {
    return this.committedSequence;
  }

  get sentLength(): number {
    return this.sent.length;
  }

  get isCaughtUp(): boolean {
    return this.caughtUp;
  }

  role(): ChainRole {
    if (!this.isMember()) return 'none';
    if (!this.caughtUp) return 'copying';
    const config = this.config!;
    const head = headOf(config) === this.selfId;
    const tail = tailOf(config) === this.selfId;
    if (head && tail) return 'single';
    return head ? 'head' : tail ? 'tail' : 'middle';
  }

  /** Whether this replica would answer a read now. */
  canActAsTail(nowMs: number): boolean {
    if (!this.isMember() || !this.caughtUp) return false;
    const config = this.config!;
    if (tailOf(config) !== this.selfId) return false;
    if (nowMs < this.grantsBlockedUntilMs) return false;
    if (this.appliedSequence < this.readyAtSequence) return false;
    return headOf(config) === this.selfId || nowMs < this.leaseExpiresAtMs;
  }

  /** This replica's own copy of a key, whatever its role (for tests and diagnostics). */
  localRecord(key: Uint8Array): ChainRecord {
    return this.records.get(bytesToKeyString(key)) ?? ABSENT_RECORD;
  }

  /** Every record held, keys in bytewise order (for tests and diagnostics). */
  localRecords(): StoredKey[] {
    return this.sortedKeyList().map((keyString) => ({
      key: keyStringToBytes(keyString),
      record: this.records.get(keyString)!,
    }));
  }

  localRequesters(): RequesterMemory[] {
    return [...this.requesters.values()];
  }

  meta(): ChainMeta {
    return {
      partition: this.partition,
      config: this.config,
      memberSinceEpoch: this.memberSinceEpoch,
      appliedSequence: this.appliedSequence,
      readyAtSequence: this.readyAtSequence,
      caughtUp: this.caughtUp,
    };
  }

  // --- configuration ---

  private isMember(): boolean {
    return this.memberSinceEpoch !== 0;
  }

  private adopt(config: ChainConfig, nowMs: number): void {
    const previous = this.config;
    assert(previous === null || config.epoch > previous.epoch, 'epochs only go forward');
    const wasMember = previous !== null && this.isMember();
    const oldSuccessor = wasMember ? successorOf(previous, this.selfId) : null;
    const oldPredecessor = wasMember ? predecessorOf(previous, this.selfId) : null;
    if (previous !== null) {
      this.previousConfigs.push(previous);
      if (this.previousConfigs.length > CONFIGS_REMEMBERED_MAX) this.previousConfigs.shift();
    }
    this.config = config;
    this.metaChanged = true;
    const index = memberIndex(config, this.selfId);
    const member = index >= 0 ? config.members[index]! : null;
    if (member === null || member.sinceEpoch !== this.memberSinceEpoch) {
      this.endMembership();
      if (member !== null) {
        this.beginMembership(member.sinceEpoch, nowMs);
      } else if (this.precopySource !== null) {
        // The chain changed under a pre-copy: carry on from the new tail.
        this.precopySource = tailOf(config);
        this.restartPass(nowMs);
      }
      return;
    }
    const newSuccessor = successorOf(config, this.selfId);
    if (newSuccessor !== oldSuccessor) this.changeSuccessor();
    if (this.copy !== null && predecessorOf(config, this.selfId) !== oldPredecessor) {
      // A pass is only consistent with one source's sent list: start over from the new one.
      this.restartPass(nowMs);
    }
  }

  private restartPass(nowMs: number): void {
    const copy = this.copy;
    assert(copy !== null, 'a copy is under way');
    copy.afterKey = null;
    copy.passApplied = null;
    copy.passCommitted = null;
    copy.recordsInPass = 0;
    this.requestCopyPaced(nowMs);
  }

  /** Leaves whatever role this replica had; its data stays but is trusted no more. */
  private endMembership(): void {
    if (this.isMember()) this.blockGrants();
    this.memberSinceEpoch = 0;
    this.caughtUp = false;
    if (this.precopySource === null) this.copy = null;
    this.leaseExpiresAtMs = -Infinity;
    this.successorApplied = null;
    this.sentThrough = 0;
  }

  private beginMembership(sinceEpoch: number, nowMs: number): void {
    assert(sinceEpoch >= 1, 'a membership starts at an epoch');
    // What a pre-copy brought is a prefix of the chain's history, up to a point the next pass
    // starts from. Anything else this replica held may include writes the chain never
    // committed (it may have been a head that was cut off): it starts from nothing.
    const fromSequence = this.precopySource !== null ? this.precopiedThrough : null;
    this.precopySource = null;
    this.precopiedThrough = null;
    this.precopyHeld = false;
    if (fromSequence === null) this.wipe();
    else this.forgetSequencing();
    this.memberSinceEpoch = sinceEpoch;
    if (sinceEpoch === 1) {
      // Members of the founding configuration: nothing was written before it existed. (A
      // chain the map starts over, its one member gone, names its new member so too: that
      // member keeps what a pre-copy brought and copies no more.)
      this.copy = null;
      this.caughtUp = true;
      return;
    }
    assert(predecessorOf(this.config!, this.selfId) !== null, 'a new member has a predecessor');
    this.caughtUp = false;
    this.copy = newCopy(fromSequence ?? 0);
    this.requestCopy(nowMs);
  }

  private changeSuccessor(): void {
    this.blockGrants();
    this.successorApplied = null;
    this.sentThrough = this.committedSequence;
  }

  /** No lease granted before may still be held when this replica next acts or grants. */
  private blockGrants(): void {
    const until = this.lastGrantAtMs + this.timings.leaseMs + this.timings.clockDriftMarginMs;
    if (until > this.grantsBlockedUntilMs) this.grantsBlockedUntilMs = until;
  }

  /** Keeps the records (a pre-copy) but nothing of any earlier place in a chain. */
  private forgetSequencing(): void {
    this.requesters.clear();
    this.appliedSequence = 0;
    this.committedSequence = 0;
    this.sent = [];
    this.readyAtSequence = 0;
    this.sentThrough = 0;
    this.successorApplied = null;
    this.metaChanged = true;
  }

  /** Forgets everything, records included: the stored rows go too, in the next batch. */
  private wipe(): void {
    this.forgetSequencing();
    this.records.clear();
    this.sortedKeys = null;
    this.wipePending = true;
    this.changedRecords.clear();
    this.changedRequesters.clear();
    this.forgottenRequesters.clear();
    this.changedEntries.length = 0;
    this.entriesCommittedThrough = null;
  }

  // --- requests from requesters ---

  private handleWrite(from: string, message: WriteRequestMessage): void {
    const config = this.config;
    if (config === null || message.epoch > config.epoch) {
      this.wantConfig(message.epoch);
      this.reply(from, message.requestId, { status: 'retry', reason: 'behind' });
      return;
    }
    // A copy of a request this replica already ordered must not be refused: the refusal
    // would tell the requester that nothing was done.
    const remembered = this.rememberedRequest(from, message.requestId);
    if (remembered === 'stale') {
      this.counters.staleRequestsDropped += 1;
      return;
    }
    if (remembered !== null) {
      this.answerDuplicate(from, message.requestId, remembered);
      return;
    }
    if (message.epoch < config.epoch && !this.servesOlderEpoch(message.epoch, 'head')) {
      this.refuseRequest(from, message.requestId);
      return;
    }
    if (!this.isMember() || !this.caughtUp || headOf(config) !== this.selfId) {
      this.refuseRequest(from, message.requestId);
      return;
    }
    const problem = operationProblem(message.operation, this.limits);
    if (problem !== null) {
      const code = problemCode(message.operation, this.limits);
      this.reply(from, message.requestId, { status: 'invalid', code, message: problem });
      return;
    }
    if (this.appliedSequence - this.committedSequence >= this.limits.sentEntriesMax) {
      this.counters.overloadedRefusals += 1;
      this.reply(from, message.requestId, { status: 'retry', reason: 'overloaded' });
      return;
    }
    const keyString = bytesToKeyString(message.operation.key);
    const current = this.records.get(keyString) ?? ABSENT_RECORD;
    const evaluation = evaluateOperation(current, message.operation);
    this.applyEntry({
      sequence: this.appliedSequence + 1,
      requester: from,
      requestId: message.requestId,
      change: evaluation.change,
      outcome: evaluation.outcome,
    });
  }

  private answerDuplicate(from: string, requestId: number, remembered: RememberedRequest): void {
    this.counters.duplicateRequests += 1;
    // Not yet committed: the tail answers when it is.
    if (remembered.sequence > this.committedSequence) return;
    this.reply(from, requestId, { status: 'written', outcome: remembered.outcome });
  }

  private handleRead(from: string, message: ReadRequestMessage, nowMs: number): void {
    const config = this.config;
    if (config === null || message.epoch > config.epoch) {
      this.wantConfig(message.epoch);
      this.reply(from, message.requestId, { status: 'retry', reason: 'behind' });
      return;
    }
    const olderServed =
      message.epoch < config.epoch && this.servesOlderEpoch(message.epoch, 'tail');
    if (
      olderServed ||
      (this.unsafe.readsAtAnyReplica === true && this.caughtUp && this.isMember())
    ) {
      this.answerRead(from, message);
      return;
    }
    if (message.epoch < config.epoch || !this.isMember() || tailOf(config) !== this.selfId) {
      this.refuseRequest(from, message.requestId);
      return;
    }
    if (!this.canActAsTail(nowMs)) {
      this.reply(from, message.requestId, { status: 'retry', reason: 'not-ready' });
      return;
    }
    this.answerRead(from, message);
  }

  private answerRead(from: string, message: ReadRequestMessage): void {
    const record = this.records.get(bytesToKeyString(message.key)) ?? ABSENT_RECORD;
    this.counters.readsAnswered += 1;
    this.reply(from, message.requestId, {
      status: 'read',
      value: record.value,
      version: record.version,
    });
  }

  /** Only under the negative-control setting: did this replica have `role` in that epoch? */
  private servesOlderEpoch(epoch: number, role: 'head' | 'tail'): boolean {
    if (this.unsafe.acceptOlderEpochs !== true) return false;
    const old = this.previousConfigs.find((config) => config.epoch === epoch);
    if (old === undefined) return false;
    const holder = role === 'head' ? headOf(old) : tailOf(old);
    if (holder !== this.selfId) return false;
    // A write can only be ordered by the replica that heads the chain now.
    if (role === 'head') return this.config !== null && headOf(this.config) === this.selfId;
    return true;
  }

  private refuseRequest(to: string, requestId: number): void {
    this.reply(to, requestId, { status: 'refused', config: this.config! });
  }

  private reply(to: string, requestId: number, reply: ChainReply): void {
    this.sends.push({
      to,
      message: { type: 'reply', partition: this.partition, epoch: this.epoch, requestId, reply },
    });
  }

  // --- messages between replicas ---

  /** Whether a peer message of `epoch` may be handled; refuses older, notes newer. */
  private checkPeerEpoch(from: string, epoch: number): boolean {
    const config = this.config;
    if (config === null || epoch > config.epoch) {
      this.wantConfig(epoch);
      return false;
    }
    if (epoch < config.epoch) {
      this.counters.olderEpochRefused += 1;
      this.sends.push({
        to: from,
        message: { type: 'refused', partition: this.partition, epoch: config.epoch, config },
      });
      return false;
    }
    return this.isMember();
  }

  private handlePeer(
    from: string,
    message: ForwardMessage | AckMessage | LeaseMessage | CopyRequestMessage | CopyChunkMessage,
    nowMs: number,
  ): void {
    const config = this.config!;
    const predecessor = predecessorOf(config, this.selfId);
    const successor = successorOf(config, this.selfId);
    // A copy may be asked for by anyone of this epoch (a replica about to be appended).
    const expected =
      message.type === 'copy-request' ? from : message.type === 'ack' ? successor : predecessor;
    if (from !== expected) {
      this.counters.unexpectedSenderDropped += 1;
      return;
    }
    switch (message.type) {
      case 'forward':
        this.handleForward(message);
        break;
      case 'ack':
        this.handleAck(message, nowMs);
        break;
      case 'lease':
        this.handleLease(message, nowMs);
        break;
      case 'copy-request':
        this.handleCopyRequest(from, message);
        break;
      case 'copy-chunk':
        this.handleCopyChunk(message, nowMs);
        break;
    }
  }

  private handleForward(message: ForwardMessage): void {
    if (!this.caughtUp) {
      // Still copying: the predecessor resends these once the copy is done.
      this.counters.gapsDropped += 1;
      return;
    }
    for (const entry of message.entries) {
      if (entry.sequence <= this.appliedSequence) {
        this.counters.duplicateEntriesSkipped += 1;
        continue;
      }
      if (entry.sequence !== this.appliedSequence + 1) {
        // A gap: an earlier forward was lost or overtaken. The acknowledgement below tells the
        // predecessor where to resume.
        this.counters.gapsDropped += 1;
        break;
      }
      this.applyEntry(entry);
    }
    // Acknowledge whatever came, duplicates too: the predecessor may have missed an earlier ack.
    this.ackDue = true;
  }

  private handleAck(message: AckMessage, nowMs: number): void {
    // A successor can only hold what this replica passed on to it.
    if (message.appliedSequence > this.appliedSequence) {
      this.counters.unexpectedSenderDropped += 1;
      return;
    }
    if (this.successorApplied === null) {
      // The first word from a new successor: resume from what it holds.
      assert(
        message.appliedSequence >= this.committedSequence,
        'a new successor holds everything committed',
      );
      this.successorApplied = message.appliedSequence;
      this.sentThrough = message.appliedSequence;
    } else if (message.appliedSequence > this.successorApplied) {
      this.successorApplied = message.appliedSequence;
      if (this.sentThrough < this.successorApplied) this.sentThrough = this.successorApplied;
    }
    if (message.committedSequence > this.committedSequence) {
      this.trimCommitted(message.committedSequence);
      if (!this.isHead()) this.ackDue = true;
    }
    if (message.leaseRequestedAtMs !== null) this.grantLease(message.leaseRequestedAtMs, nowMs);
  }

  private grantLease(requestedAtMs: number, nowMs: number): void {
    if (!this.caughtUp || nowMs < this.grantsBlockedUntilMs) return;
    let durationMs = this.timings.leaseMs;
    if (!this.isHead()) {
      // A lease is only as good as the one it rests on.
      durationMs = Math.min(durationMs, Math.floor(this.leaseExpiresAtMs - nowMs));
      if (!(durationMs > 0)) return;
    }
    this.lastGrantAtMs = nowMs;
    this.counters.leasesGranted += 1;
    const successor = successorOf(this.config!, this.selfId)!;
    this.sends.push({
      to: successor,
      message: {
        type: 'lease',
        partition: this.partition,
        epoch: this.epoch,
        requestedAtMs,
        durationMs,
      },
    });
  }

  private handleLease(message: LeaseMessage, nowMs: number): void {
    // The lease runs from when it was asked for, by this replica's own clock.
    if (message.requestedAtMs > nowMs) return;
    const expiresAtMs = message.requestedAtMs + message.durationMs;
    if (expiresAtMs > this.leaseExpiresAtMs) this.leaseExpiresAtMs = expiresAtMs;
  }

  private handleCopyRequest(from: string, message: CopyRequestMessage): void {
    // Only a replica that holds the whole partition may be copied.
    if (!this.caughtUp) return;
    const keys = this.sortedKeyList();
    let index = 0;
    if (message.afterKey !== null) {
      index = upperBound(keys, bytesToKeyString(message.afterKey));
    }
    const records: CopiedRecord[] = [];
    let valueBytes = 0;
    let nextKey: Uint8Array | null = null;
    for (; index < keys.length; index++) {
      const keyString = keys[index]!;
      const record = this.records.get(keyString)!;
      if (record.sequence <= message.fromSequence) continue;
      const size = record.value?.length ?? 0;
      if (
        records.length >= this.limits.recordsPerChunkMax ||
        (records.length > 0 && valueBytes + size > this.limits.chunkValueBytesMax)
      ) {
        nextKey = keyStringToBytes(keys[index - 1]!);
        break;
      }
      valueBytes += size;
      records.push({
        key: keyStringToBytes(keyString),
        value: record.value,
        version: record.version,
        sequence: record.sequence,
      });
    }
    this.sends.push({
      to: from,
      message: {
        type: 'copy-chunk',
        partition: this.partition,
        epoch: this.epoch,
        fromSequence: message.fromSequence,
        afterKey: message.afterKey,
        appliedSequence: this.appliedSequence,
        committedSequence: this.committedSequence,
        records,
        nextKey,
        requesters: nextKey === null ? [...this.requesters.values()] : [],
      },
    });
  }

  private handleCopyChunk(message: CopyChunkMessage, nowMs: number): void {
    const copy = this.copy;
    if (copy === null || message.fromSequence !== copy.fromSequence) return;
    const expectedAfter = copy.afterKey === null ? null : bytesToKeyString(copy.afterKey);
    const gotAfter = message.afterKey === null ? null : bytesToKeyString(message.afterKey);
    if (expectedAfter !== gotAfter) return; // an answer to an earlier question
    if (message.afterKey === null) {
      copy.passApplied = message.appliedSequence;
      copy.passCommitted = message.committedSequence;
    }
    assert(copy.passApplied !== null && copy.passCommitted !== null, 'a pass has begun');
    copy.recordsInPass += message.records.length;
    if (this.precopySource !== null) {
      let bytes = 0;
      for (const copied of message.records)
        bytes += copied.key.length + (copied.value?.length ?? 0);
      this.precopyBytesReceived += bytes;
      this.precopyLimit.charge(copy.requestedAtMs, bytes);
    }
    for (const copied of message.records) {
      this.storeRecord(bytesToKeyString(copied.key), {
        value: copied.value,
        version: copied.version,
        sequence: copied.sequence,
      });
    }
    if (message.nextKey !== null) {
      copy.afterKey = message.nextKey;
      this.requestCopyPaced(nowMs);
      return;
    }
    if (this.precopySource !== null) {
      this.finishPrecopyPass(copy, nowMs);
      return;
    }
    this.finishCopy(copy, message.requesters);
  }

  /**
   * A pre-copy pass is over: every key holds at least its state at the pass's start (the
   * source was the tail, so all of it committed). The next pass, after a pause, brings what
   * changed since then.
   */
  private finishPrecopyPass(copy: CopyProgress, nowMs: number): void {
    const through = copy.passApplied!;
    assert(through >= (this.precopiedThrough ?? 0), 'passes move forward');
    this.precopiedThrough = through;
    this.counters.precopyPasses += 1;
    this.precopied = {
      epoch: this.epoch,
      throughSequence: through,
      recordsInPass: copy.recordsInPass,
    };
    this.copy = newCopy(through);
    this.copy.requestedAtMs = nowMs;
  }

  /**
   * The pass is over. Keys the pass visited before a later change were brought up to date by
   * no chunk, so this replica counts as holding only what its predecessor had committed when
   * the pass began; the predecessor's sent list holds every entry after that, and resends it.
   * Entries whose change this replica already holds are skipped key by key (by sequence).
   */
  private finishCopy(copy: CopyProgress, requesters: readonly RequesterMemory[]): void {
    this.counters.copiesFinished += 1;
    if (copy.fromSequence > 0) this.counters.copiesFromPrecopy += 1;
    this.requesters.clear();
    const ordered = [...requesters].sort((a, b) => a.lastSequence - b.lastSequence);
    for (const memory of ordered) {
      this.requesters.set(memory.requester, memory);
      this.changedRequesters.add(memory.requester);
    }
    this.appliedSequence = copy.passCommitted!;
    this.committedSequence = copy.passCommitted!;
    this.readyAtSequence = copy.passApplied!;
    this.sent = [];
    this.caughtUp = true;
    this.copy = null;
    this.metaChanged = true;
    this.ackDue = true;
    assert(this.readyAtSequence >= this.appliedSequence, 'the pass began at or after its commit');
  }

  /** Whether a pre-copy may ask for a chunk now: not paused, and within its limit. */
  private precopyMayRequest(nowMs: number): boolean {
    if (this.precopySource === null) return true;
    return !this.precopyPaused && this.precopyLimit.allows(nowMs);
  }

  /** Asks for the next chunk, or, for a pre-copy held back, marks it due for a later tick. */
  private requestCopyPaced(nowMs: number): void {
    if (this.precopyMayRequest(nowMs)) return this.requestCopy(nowMs);
    this.precopyHeld = true;
  }

  private requestCopy(nowMs: number): void {
    const copy = this.copy;
    assert(copy !== null, 'a copy is under way');
    this.precopyHeld = false;
    const source = this.isMember() ? predecessorOf(this.config!, this.selfId) : this.precopySource;
    assert(source !== null, 'a copying replica has a source');
    copy.requestedAtMs = nowMs;
    this.sends.push({
      to: source,
      message: {
        type: 'copy-request',
        partition: this.partition,
        epoch: this.epoch,
        fromSequence: copy.fromSequence,
        afterKey: copy.afterKey,
      },
    });
  }

  // --- applying and committing ---

  private applyEntry(entry: ChainEntry): void {
    assert(entry.sequence === this.appliedSequence + 1, 'entries apply in sequence order');
    if (entry.change !== null) {
      this.storeRecord(bytesToKeyString(entry.change.key), recordOf(entry.change, entry.sequence));
    }
    this.rememberRequest(entry);
    this.appliedSequence = entry.sequence;
    this.sent.push(entry);
    this.changedEntries.push(entry);
    this.metaChanged = true;
    this.counters.entriesApplied += 1;
    assert(
      this.sent.length === this.appliedSequence - this.committedSequence,
      'the sent list holds exactly the entries not known committed',
    );
  }

  /** Keeps the newer of two copies of a key: records only move forward in sequence. */
  private storeRecord(keyString: string, record: ChainRecord): void {
    const current = this.records.get(keyString);
    if (current !== undefined && current.sequence >= record.sequence) return;
    if (current === undefined) this.sortedKeys = null;
    this.records.set(keyString, record);
    this.changedRecords.set(keyString, record);
  }

  private trimCommitted(sequence: number): void {
    const through = Math.min(sequence, this.appliedSequence);
    if (through <= this.committedSequence) return;
    const count = through - this.committedSequence;
    this.sent = this.sent.slice(count);
    this.committedSequence = through;
    this.entriesCommittedThrough = through;
    assert(this.sent.length === this.appliedSequence - this.committedSequence, 'trimmed exactly');
  }

  /** The acting tail commits everything it has applied and answers the requesters. */
  private commitAtTail(nowMs: number): void {
    if (this.committedSequence >= this.appliedSequence || !this.canActAsTail(nowMs)) return;
    for (const entry of this.sent) {
      this.reply(entry.requester, entry.requestId, { status: 'written', outcome: entry.outcome });
      this.counters.entriesCommitted += 1;
    }
    this.trimCommitted(this.appliedSequence);
    if (!this.isHead()) this.ackDue = true;
  }

  private isHead(): boolean {
    return this.config !== null && headOf(this.config) === this.selfId;
  }

  // --- deduplication ---

  /**
   * What this partition remembers of a request: its entry, 'stale' when the request is older
   * than everything remembered for a requester whose memory is full (the requester keeps no
   * more outstanding writes than it remembers, so it has long stopped waiting), or null.
   */
  private rememberedRequest(
    requester: string,
    requestId: number,
  ): RememberedRequest | 'stale' | null {
    const memory = this.requesters.get(requester);
    if (memory === undefined) return null;
    for (const request of memory.requests) if (request.requestId === requestId) return request;
    const oldest = memory.requests[0];
    if (
      oldest !== undefined &&
      memory.requests.length >= this.limits.requestsPerRequesterMax &&
      requestId < oldest.requestId
    ) {
      return 'stale';
    }
    return null;
  }

  private rememberRequest(entry: ChainEntry): void {
    const previous = this.requesters.get(entry.requester);
    const requests = previous === undefined ? [] : [...previous.requests];
    if (requests.some((request) => request.requestId === entry.requestId)) return;
    requests.push({ requestId: entry.requestId, sequence: entry.sequence, outcome: entry.outcome });
    requests.sort((a, b) => a.requestId - b.requestId);
    while (requests.length > this.limits.requestsPerRequesterMax) requests.shift();
    // Re-inserting moves the requester to the end: the map stays ordered by lastSequence.
    this.requesters.delete(entry.requester);
    this.requesters.set(entry.requester, {
      requester: entry.requester,
      lastSequence: entry.sequence,
      requests,
    });
    this.changedRequesters.add(entry.requester);
    this.forgottenRequesters.delete(entry.requester);
    while (this.requesters.size > this.limits.requestersMax) {
      const oldest = this.requesters.keys().next().value!;
      this.requesters.delete(oldest);
      this.changedRequesters.delete(oldest);
      this.forgottenRequesters.add(oldest);
    }
  }

  // --- output ---

  private retransmitIfStalled(nowMs: number): void {
    if (this.successorApplied === null || this.successorApplied >= this.appliedSequence) return;
    if (nowMs - this.lastForwardAtMs < this.timings.retransmitAfterMs) return;
    // Everything past what the successor acknowledged goes again.
    this.sentThrough = this.successorApplied;
    this.counters.retransmissions += 1;
  }

  private forwardPending(nowMs: number): void {
    const config = this.config;
    if (config === null || !this.isMember() || !this.caughtUp) return;
    const successor = successorOf(config, this.selfId);
    if (successor === null || this.successorApplied === null) return;
    if (this.sentThrough >= this.appliedSequence) return;
    assert(this.sentThrough >= this.committedSequence, 'the sent list holds what is resent');
    let start = this.sentThrough - this.committedSequence;
    while (start < this.sent.length) {
      // As many entries as fit the count and byte bounds, and always at least one.
      let end = start + 1;
      let valueBytes = entryValueBytes(this.sent[start]!);
      while (end < this.sent.length && end - start < this.limits.entriesPerForwardMax) {
        const size = entryValueBytes(this.sent[end]!);
        if (valueBytes + size > this.limits.forwardValueBytesMax) break;
        valueBytes += size;
        end += 1;
      }
      const entries = this.sent.slice(start, end);
      this.sends.push({
        to: successor,
        message: { type: 'forward', partition: this.partition, epoch: config.epoch, entries },
      });
      start = end;
    }
    this.sentThrough = this.appliedSequence;
    this.lastForwardAtMs = nowMs;
  }

  private sendAck(nowMs: number): void {
    this.ackDue = false;
    const config = this.config;
    if (config === null || !this.isMember() || !this.caughtUp) return;
    const predecessor = predecessorOf(config, this.selfId);
    if (predecessor === null) return;
    this.lastAckAtMs = nowMs;
    this.sends.push({
      to: predecessor,
      message: {
        type: 'ack',
        partition: this.partition,
        epoch: config.epoch,
        appliedSequence: this.appliedSequence,
        committedSequence: this.committedSequence,
        leaseRequestedAtMs: nowMs,
      },
    });
  }

  private wantConfig(epoch: number): void {
    this.counters.newerEpochSeen += 1;
    if (this.configWanted === null || epoch > this.configWanted) this.configWanted = epoch;
  }

  private finishStep(nowMs: number): ChainOutput {
    this.commitAtTail(nowMs);
    this.forwardPending(nowMs);
    if (this.ackDue) this.sendAck(nowMs);
    const hasBatch =
      this.wipePending ||
      this.metaChanged ||
      this.changedRecords.size > 0 ||
      this.changedRequesters.size > 0 ||
      this.forgottenRequesters.size > 0 ||
      this.changedEntries.length > 0 ||
      this.entriesCommittedThrough !== null;
    const batch: ChainBatch | null = hasBatch
      ? {
          partition: this.partition,
          wipe: this.wipePending,
          meta: this.metaChanged ? this.meta() : null,
          records: [...this.changedRecords].map(([keyString, record]) => ({
            key: keyStringToBytes(keyString),
            record,
          })),
          requesters: [...this.changedRequesters].map((id) => this.requesters.get(id)!),
          forgottenRequesters: [...this.forgottenRequesters],
          entries: [...this.changedEntries],
          entriesCommittedThrough: this.entriesCommittedThrough,
        }
      : null;
    const output: ChainOutput = {
      batch,
      sends: this.sends,
      configWanted: this.configWanted,
      precopied: this.precopied,
    };
    this.precopied = null;
    this.sends = [];
    this.wipePending = false;
    this.metaChanged = false;
    this.changedRecords.clear();
    this.changedRequesters.clear();
    this.forgottenRequesters.clear();
    this.changedEntries.length = 0;
    this.entriesCommittedThrough = null;
    this.configWanted = null;
    return output;
  }

  private sortedKeyList(): string[] {
    // Key strings hold one char per byte, so string order is bytewise order.
    this.sortedKeys ??= [...this.records.keys()].sort();
    return this.sortedKeys;
  }

  private advanceClock(nowMs: number): void {
    assert(Number.isFinite(nowMs), 'nowMs is a finite number');
    assert(nowMs >= this.lastNowMs, 'time does not go back');
    this.lastNowMs = nowMs;
  }
}

function entryValueBytes(entry: ChainEntry): number {
  const change = entry.change;
  const outcomeBytes = entry.outcome.kind === 'done' ? (entry.outcome.value?.length ?? 0) : 0;
  return (change === null ? 0 : change.key.length + (change.value?.length ?? 0)) + outcomeBytes;
}

/** The index of the first key greater than `key` in a sorted list. */
function upperBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}
