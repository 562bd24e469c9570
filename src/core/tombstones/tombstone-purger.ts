// Tombstone collection for eventual keyspaces (docs/ANTI-ENTROPY.md, "Tombstones"): a sweep
// over the partitions this node replicates finds tombstones past their grace period; for a
// batch of them (one partition at a time) a purge round asks every member of the cluster how
// its copy of each key compares with the tombstone, and only the keys every member holds
// exactly as that tombstone, or not at all, are purged, everywhere at once.
//
// Rules kept:
// - A round starts only when the node says nothing forbids it (no membership change in
//   progress, every member alive), and finishes only when every member answered; a timeout
//   or a member that declines ends it with nothing purged, and its keys are swept again.
// - Members are asked about their data row and about hints: a hint may still carry an older
//   version to a replica, which the tombstone must be there to cover.
// - A purge names the tombstone; a member removes its row only if it still holds exactly
//   that record, so a write that came after the answers wins.
// - The partition's first replica sweeps with the grace period; the others with twice it,
//   so that a tombstone whose purge the first replica missed still goes, and in the common
//   case one round runs per key, not one per replica.
// - Work is bounded: rows examined per tick, keys per round, one round at a time, and keys
//   purged per second by a token bucket.
// - Round ids are drawn from a range per life of the node, as anti-entropy's session ids.

import { assert } from '../bytes.ts';
import type { Keyspace } from '../keyspace.ts';
import { TokenBucket } from '../antientropy/rate-limit.ts';
import { DecodeError } from '../store/byte-codec.ts';
import { decodeRecord, encodeRecord, type StoredRecord } from '../store/record.ts';
import type { Outcome } from '../store/replica-store.ts';
import {
  isValidTombstoneMessage,
  KEYS_PER_ROUND_CEILING,
  TombstoneMessageType,
  type TombstoneMessage,
} from './messages.ts';
import {
  copyStateOf,
  CopyState,
  isTombstone,
  isTombstonePastGrace,
  mayPurge,
} from './tombstone-rules.ts';

export interface TombstoneSettings {
  /** How old a tombstone must be before a round may purge it. */
  readonly graceMs: number;
  /** A round whose answers are not all in by then ends with nothing purged. */
  readonly roundTimeoutMs: number;
  /** Keys named in one round (one partition). */
  readonly keysPerRoundMax: number;
  /** Rows the sweep examines per tick. */
  readonly rowsPerTickMax: number;
  /** The pause between two passes of the sweep over every partition. */
  readonly passIntervalMs: number;
  /** The pause after a round that was refused or timed out. */
  readonly retryIntervalMs: number;
  /** Keys purged per second, at most. */
  readonly purgesPerSecond: number;
  /**
   * A negative control only: purge a tombstone on its age alone, without asking anyone,
   * and tell every member to do the same. A replica that missed the delete then brings the
   * old value back; a test shows it.
   */
  readonly purgeOnGraceAlone: boolean;
}

export const DEFAULT_TOMBSTONE_SETTINGS: TombstoneSettings = {
  graceMs: 3_600_000,
  roundTimeoutMs: 5_000,
  keysPerRoundMax: 256,
  rowsPerTickMax: 512,
  passIntervalMs: 60_000,
  retryIntervalMs: 1_000,
  purgesPerSecond: 1_000,
  purgeOnGraceAlone: false,
};

/** Partitions one tick visits at most, however few rows they hold. */
const PARTITIONS_PER_TICK_MAX = 64;
const LIVES_IN_ROUND_IDS = 2 ** 21;
const ROUND_IDS_PER_LIFE = 2 ** 32;

/** Why a round did not run or purged nothing. */
export type PurgeRefusal = 'change' | 'unreachable' | 'timeout' | 'declined';

/** What the purger needs of the node's store (ReplicaStore has each). */
export interface TombstoneStore {
  partitionRecordsAfter(
    keyspaceId: number,
    partition: number,
    afterKey: Uint8Array | null,
    limit: number,
  ): {
    records: readonly { key: Uint8Array; record: StoredRecord }[];
    more: boolean;
    lastKey: Uint8Array | null;
  };
  holdsHintFor(owners: readonly string[], keyspaceId: number, key: Uint8Array): boolean;
  readRecord(keyspace: Keyspace, key: Uint8Array): Outcome<StoredRecord | undefined>;
  purgeIfEqual(keyspaceId: number, key: Uint8Array, expected: StoredRecord): boolean;
}

/** A partition of an eventual keyspace this node replicates, and its place among the replicas. */
export interface SweptPartition {
  readonly keyspace: Keyspace;
  readonly partition: number;
  /** 0 for the partition's first replica. */
  readonly position: number;
}

/** What the node tells the purger when a round is about to start. */
export interface PurgeGate {
  /** Null: a round may start now; else why not. */
  readonly refusal: () => 'change' | 'unreachable' | null;
  /** Every member of the map, this node included. */
  readonly members: () => readonly string[];
}

/** What the node tells the purger when a message arrives. */
export interface PurgeReceiveContext {
  /** The keyspace, if this node knows it as an eventual one and takes part in purges now. */
  readonly keyspaceOf: (keyspaceId: number) => Keyspace | null;
  /** Every member of the map: the owners hints may be held for. */
  readonly members: readonly string[];
}

export interface TombstoneSend {
  readonly to: string;
  readonly message: TombstoneMessage;
}

export interface TombstoneStats {
  /** Tombstones found by the latest sweep of each partition. */
  tombstonesHeld: number;
  /** Rows this node removed, in its own rounds and on others' purges. */
  tombstonesPurged: number;
  roundsStarted: number;
  roundsCompleted: number;
  roundsRefusedChange: number;
  roundsRefusedUnreachable: number;
  roundsRefusedTimeout: number;
  roundsRefusedDeclined: number;
  /** Keys a completed round kept because some member held another record for them. */
  keysKeptDiffering: number;
  /** Keys a completed round kept because some member held a hint for them. */
  keysKeptHinted: number;
}

interface Candidate {
  readonly key: Uint8Array;
  readonly record: StoredRecord;
}

interface Round {
  readonly id: number;
  readonly keyspace: Keyspace;
  readonly partition: number;
  readonly candidates: readonly Candidate[];
  readonly encoded: readonly Uint8Array[];
  readonly waiting: Set<string>;
  readonly answers: Map<string, readonly CopyState[]>;
  readonly deadlineMs: number;
  /** Where the sweep goes back to if the round purges nothing. */
  readonly start: SweepPosition | null;
}

/** Where the sweep is: a partition of the list, the last key examined, and the batch so far. */
interface SweepPosition {
  index: number;
  afterKey: Uint8Array | null;
  heldInPartition: number;
}

export class TombstonePurger {
  readonly settings: TombstoneSettings;
  private readonly nodeId: string;
  private readonly store: TombstoneStore;
  private readonly counters = {
    tombstonesPurged: 0,
    roundsStarted: 0,
    roundsCompleted: 0,
    roundsRefusedChange: 0,
    roundsRefusedUnreachable: 0,
    roundsRefusedTimeout: 0,
    roundsRefusedDeclined: 0,
    keysKeptDiffering: 0,
    keysKeptHinted: 0,
  };
  /** Tombstones each partition held at its latest sweep, by partition key. */
  private readonly heldByPartition = new Map<number, number>();
  private sweep: SweepPosition = { index: 0, afterKey: null, heldInPartition: 0 };
  /** Where the sweep was before the batch's first candidate: a refused round goes back. */
  private batchStart: SweepPosition | null = null;
  private batch: Candidate[] = [];
  private round: Round | null = null;
  private nextSweepMs = 0;
  private readonly roundIdBase: number;
  private roundCount = 0;
  private readonly bucket: TokenBucket;

  constructor(
    nodeId: string,
    store: TombstoneStore,
    incarnation: number,
    nowMs: number,
    settings: Partial<TombstoneSettings> = {},
  ) {
    this.nodeId = nodeId;
    this.store = store;
    this.settings = { ...DEFAULT_TOMBSTONE_SETTINGS, ...settings };
    const { keysPerRoundMax, purgesPerSecond, graceMs } = this.settings;
    assert(
      keysPerRoundMax >= 1 && keysPerRoundMax <= KEYS_PER_ROUND_CEILING,
      `a round names 1 to ${KEYS_PER_ROUND_CEILING} keys`,
    );
    assert(purgesPerSecond > 0 && graceMs >= 0, 'purges go out at some rate after a grace');
    this.roundIdBase = (incarnation % LIVES_IN_ROUND_IDS) * ROUND_IDS_PER_LIFE;
    this.bucket = new TokenBucket({
      ratePerSecond: purgesPerSecond,
      burst: Math.max(keysPerRoundMax, Math.ceil(purgesPerSecond / 10)),
      nowMs,
    });
  }

  stats(): TombstoneStats {
    let held = 0;
    for (const count of this.heldByPartition.values()) held += count;
    return { tombstonesHeld: held, ...this.counters };
  }

  get roundRunning(): boolean {
    return this.round !== null;
  }

  /** The map changed: the partitions swept, their replicas and the members may have too. */
  forget(): void {
    this.round = null;
    this.batch = [];
    this.batchStart = null;
    this.sweep = { index: 0, afterKey: null, heldInPartition: 0 };
    this.heldByPartition.clear();
  }

  /**
   * Ends a late round, and otherwise moves the sweep on by a bounded number of rows,
   * starting a round when a batch is ready. `partitions` is asked only when the sweep runs.
   */
  tick(
    nowMs: number,
    partitions: () => readonly SweptPartition[],
    gate: PurgeGate,
  ): TombstoneSend[] {
    const round = this.round;
    if (round !== null) {
      if (nowMs < round.deadlineMs) return [];
      this.refuse('timeout', nowMs);
      return [];
    }
    if (nowMs < this.nextSweepMs) return [];
    const list = partitions();
    let rows = 0;
    for (let visited = 0; visited < PARTITIONS_PER_TICK_MAX; visited++) {
      if (this.sweep.index >= list.length) {
        // A pass is over; the next starts after a pause.
        this.sweep = { index: 0, afterKey: null, heldInPartition: 0 };
        this.nextSweepMs = nowMs + this.settings.passIntervalMs;
        return [];
      }
      const swept = list[this.sweep.index]!;
      const graceMs = this.settings.graceMs * (swept.position === 0 ? 1 : 2);
      const room = this.settings.rowsPerTickMax - rows;
      if (room <= 0) return [];
      const page = this.store.partitionRecordsAfter(
        swept.keyspace.id,
        swept.partition,
        this.sweep.afterKey,
        room,
      );
      for (const { key, record } of page.records) {
        if (isTombstone(record)) {
          if (isTombstonePastGrace(record, nowMs, graceMs)) {
            // Where the sweep goes back to if this batch's round purges nothing.
            if (this.batch.length === 0) this.batchStart = { ...this.sweep };
            this.batch.push({ key, record });
          }
          this.sweep.heldInPartition++;
        }
        this.sweep.afterKey = key;
        if (this.batch.length >= this.settings.keysPerRoundMax) {
          return this.startRound(swept, nowMs, gate);
        }
      }
      rows += Math.max(1, page.records.length);
      if (page.lastKey !== null) this.sweep.afterKey = page.lastKey;
      if (page.more) continue;
      // The partition is done: what it held is known, and its batch goes out.
      this.heldByPartition.set(
        partitionKey(swept.keyspace.id, swept.partition),
        this.sweep.heldInPartition,
      );
      this.sweep = { index: this.sweep.index + 1, afterKey: null, heldInPartition: 0 };
      if (this.batch.length > 0) return this.startRound(swept, nowMs, gate);
    }
    return [];
  }

  /**
   * A purge message from a peer: a query is answered from this node's copies and hints, an
   * answer moves the running round on, a purge removes the rows still equal to the
   * tombstones it names. Null: malformed.
   */
  receive(
    from: string,
    message: unknown,
    context: PurgeReceiveContext,
    nowMs: number,
  ): TombstoneSend[] | null {
    if (!isValidTombstoneMessage(message)) return null;
    switch (message[0]) {
      case TombstoneMessageType.query: {
        const [, roundId, keyspaceId, , keys, encoded] = message;
        const tombstones = decodeTombstones(encoded);
        if (tombstones === null) return null;
        const keyspace = context.keyspaceOf(keyspaceId);
        if (keyspace === null) {
          return [{ to: from, message: [TombstoneMessageType.answer, roundId, null] }];
        }
        const states = keys.map((key, i) => {
          if (this.store.holdsHintFor(context.members, keyspaceId, key)) return CopyState.hinted;
          const held = this.store.readRecord(keyspace, key);
          assert(held.ok, 'a local read cannot fail');
          return copyStateOf(held.value, tombstones[i]!);
        });
        return [{ to: from, message: [TombstoneMessageType.answer, roundId, states] }];
      }
      case TombstoneMessageType.purge: {
        const [, , keyspaceId, partition, keys, encoded] = message;
        const tombstones = decodeTombstones(encoded);
        if (tombstones === null) return null;
        if (context.keyspaceOf(keyspaceId) === null) return [];
        keys.forEach((key, i) => this.purgeLocally(keyspaceId, partition, key, tombstones[i]!));
        return [];
      }
      case TombstoneMessageType.answer:
        return this.onAnswer(from, message[1], message[2], nowMs);
    }
  }

  private startRound(swept: SweptPartition, nowMs: number, gate: PurgeGate): TombstoneSend[] {
    const candidates = this.batch;
    assert(candidates.length > 0, 'a round names keys');
    this.batch = [];
    if (!this.settings.purgeOnGraceAlone) {
      const refusal = gate.refusal();
      if (refusal !== null) {
        this.refuse(refusal, nowMs);
        return [];
      }
    }
    if (!this.bucket.take(candidates.length, nowMs)) {
      // Not refused, only paced: the same keys are swept again once the bucket allows.
      this.rewind();
      this.nextSweepMs = this.bucket.nextAvailableMs(candidates.length, nowMs);
      return [];
    }
    const start = this.batchStart;
    this.batchStart = null;
    const { keyspace, partition } = swept;
    const others = gate.members().filter((id) => id !== this.nodeId);
    this.roundCount++;
    const id = this.roundIdBase + (this.roundCount % ROUND_IDS_PER_LIFE);
    const keys = candidates.map((candidate) => candidate.key);
    const encoded = candidates.map((candidate) => encodeRecord(candidate.record));
    if (this.settings.purgeOnGraceAlone) {
      for (const candidate of candidates) {
        this.purgeLocally(keyspace.id, partition, candidate.key, candidate.record);
      }
      return others.map((to) => ({
        to,
        message: [TombstoneMessageType.purge, id, keyspace.id, partition, keys, encoded],
      }));
    }
    this.counters.roundsStarted++;
    this.round = {
      id,
      keyspace,
      partition,
      candidates,
      encoded,
      waiting: new Set(others),
      answers: new Map(),
      deadlineMs: nowMs + this.settings.roundTimeoutMs,
      start,
    };
    if (others.length === 0) return this.decide(nowMs);
    return others.map((to) => ({
      to,
      message: [TombstoneMessageType.query, id, keyspace.id, partition, keys, encoded],
    }));
  }

  private onAnswer(
    from: string,
    roundId: number,
    states: readonly CopyState[] | null,
    nowMs: number,
  ): TombstoneSend[] {
    const round = this.round;
    if (round === null || round.id !== roundId || !round.waiting.has(from)) return [];
    if (states === null) {
      this.refuse('declined', nowMs);
      return [];
    }
    // An answer that does not fit its query ends the round as declined: nothing is purged.
    if (states.length !== round.candidates.length) {
      this.refuse('declined', nowMs);
      return [];
    }
    round.waiting.delete(from);
    round.answers.set(from, states);
    return round.waiting.size === 0 ? this.decide(nowMs) : [];
  }

  /** Every member answered: the keys all of them let go are purged, here and there. */
  private decide(nowMs: number): TombstoneSend[] {
    const round = this.round!;
    assert(round.waiting.size === 0, 'every member answered');
    this.round = null;
    this.counters.roundsCompleted++;
    this.nextSweepMs = nowMs;
    const purgedBy = new Map<string, number[]>();
    round.candidates.forEach((candidate, i) => {
      const states = [...round.answers.values()].map((answer) => answer[i]!);
      if (!mayPurge(states)) {
        if (states.includes(CopyState.hinted)) this.counters.keysKeptHinted++;
        else this.counters.keysKeptDiffering++;
        return;
      }
      this.purgeLocally(round.keyspace.id, round.partition, candidate.key, candidate.record);
      for (const [member, answer] of round.answers) {
        if (answer[i] !== CopyState.same) continue;
        let indexes = purgedBy.get(member);
        if (indexes === undefined) purgedBy.set(member, (indexes = []));
        indexes.push(i);
      }
    });
    const sends: TombstoneSend[] = [];
    for (const [to, indexes] of purgedBy) {
      sends.push({
        to,
        message: [
          TombstoneMessageType.purge,
          round.id,
          round.keyspace.id,
          round.partition,
          indexes.map((i) => round.candidates[i]!.key),
          indexes.map((i) => round.encoded[i]!),
        ],
      });
    }
    return sends;
  }

  private purgeLocally(
    keyspaceId: number,
    partition: number,
    key: Uint8Array,
    tombstone: StoredRecord,
  ): void {
    if (!this.store.purgeIfEqual(keyspaceId, key, tombstone)) return;
    this.counters.tombstonesPurged++;
    // The count held stays right between two sweeps of the partition.
    const counted = partitionKey(keyspaceId, partition);
    const held = this.heldByPartition.get(counted);
    if (held !== undefined && held > 0) this.heldByPartition.set(counted, held - 1);
  }

  /** A round that did not run, or ended with nothing purged: its keys are swept again later. */
  private refuse(reason: PurgeRefusal, nowMs: number): void {
    switch (reason) {
      case 'change':
        this.counters.roundsRefusedChange++;
        break;
      case 'unreachable':
        this.counters.roundsRefusedUnreachable++;
        break;
      case 'timeout':
        this.counters.roundsRefusedTimeout++;
        break;
      case 'declined':
        this.counters.roundsRefusedDeclined++;
        break;
    }
    const start = this.round?.start ?? null;
    this.round = null;
    this.rewind();
    if (start !== null) this.sweep = start;
    this.nextSweepMs = nowMs + this.settings.retryIntervalMs;
  }

  /** Takes the sweep back to where the batch (or the refused round's batch) began. */
  private rewind(): void {
    this.batch = [];
    if (this.batchStart !== null) this.sweep = this.batchStart;
    this.batchStart = null;
  }
}

function decodeTombstones(encoded: readonly Uint8Array[]): StoredRecord[] | null {
  const records: StoredRecord[] = [];
  for (const bytes of encoded) {
    let record: StoredRecord;
    try {
      record = decodeRecord(bytes);
    } catch (error) {
      if (error instanceof DecodeError) return null;
      throw error;
    }
    if (!isTombstone(record)) return null;
    records.push(record);
  }
  return records;
}

function partitionKey(keyspaceId: number, partition: number): number {
  return keyspaceId * 65_536 + partition;
}

/** A grace period is at least this many request timeouts and hint handoff intervals. */
export const GRACE_FACTOR_MIN = 10;

/**
 * Why a grace period is too short for the cluster's other timings, or null. The grace
 * covers what no answer can: a message carrying an older version still in flight (a write
 * or a repair, which gives up after a request timeout), and a hint whose owner is back but
 * whose handoff has not come round yet.
 */
export function tombstoneGraceProblem(
  graceMs: number,
  requestTimeoutMs: number,
  handoffIntervalMs: number,
): string | null {
  const floorMs = GRACE_FACTOR_MIN * Math.max(requestTimeoutMs, handoffIntervalMs);
  if (!Number.isSafeInteger(graceMs) || graceMs < floorMs) {
    return `tombstoneGraceMs must be an integer of at least ${floorMs} ms (${GRACE_FACTOR_MIN} times the longer of requestTimeoutMs and handoffIntervalMs)`;
  }
  return null;
}
