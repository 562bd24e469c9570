// The receiving side of partition handoff: one PartitionTransfer per (keyspace, partition,
// source) that a pending owner pulls. It is a pure state machine driven by the node:
//   tick(nowMs)           -> the next page request to send to `source`, when one is due
//   receivePage(reply)    -> the page's records to merge, and the saved state to persist with
//                            them (or after them); null for a stale or invalid reply
//   persisted(pageNumber) -> that page is durable: its cursor becomes the resume point
//
// Rules it keeps:
// - At most one request is outstanding. A request unanswered for requestTimeoutMs is sent
//   again with the same cursor after a doubling backoff; after timeoutsBeforeStalled failed
//   attempts in a row the transfer reports `stalled`, and the node may `changeSource`.
// - The cursor persists only with (or after) the records before it: the saved state handed
//   out with a page describes the transfer once that page is durable, and pages become
//   durable in the order received. A receiver restored from its saved state re-asks at most
//   the pages that were not durable; re-merging a record is harmless (the merge is causal and
//   idempotent), which is all resuming needs.
// - A rate limit in bytes per second spaces the requests: a page of B bytes whose request
//   went out at time s lets the next request go at s + B / rate, never earlier. Idle time
//   earns no credit, so the bytes of pages requested in any window of W ms stay within
//   rate × W plus one page (docs/HANDOFF.md gives the bound on receipt too).
// - No more than unpersistedPagesMax pages wait to become durable at once.
//
//   running ──pause──▶ paused ──resume──▶ running
//   running/paused ──last page durable──▶ done
//   running/paused ──refusal record-too-large──▶ failed

import { assert, compareBytes } from '../bytes.ts';
import { DecodeError } from '../store/byte-codec.ts';
import { decodeRecord, type StoredRecord } from '../store/record.ts';
import {
  COUNT_BYTES_CEILING,
  COUNT_KEYS_CEILING,
  entryBytes,
  HandoffMessageType,
  isTransferId,
  KEYSPACE_ID_MAX,
  PAGE_BYTES_CEILING,
  PAGE_KEYS_CEILING,
  PARTITION_MAX,
  RefusalCode,
  type HandoffReply,
  type PageMessage,
  type PageRequestMessage,
  type RefusalMessage,
} from './messages.ts';
import { ByteRateLimit, isValidRate } from './rate-limit.ts';
import { RateMeter, RATE_WINDOW_MS_MIN } from './rate-meter.ts';
import { decodeSavedTransfer, encodeSavedTransfer, type SavedTransfer } from './state-codec.ts';

export type TransferState = 'running' | 'paused' | 'done' | 'failed';

export interface TransferConfig {
  /** Most rows asked for in one page. */
  readonly pageKeysMax: number;
  /** Most bytes (keys plus records) asked for in one page. */
  readonly pageBytesMax: number;
  /**
   * Under a rate limit a page asks for about pageIntervalMsTarget worth of the rate, so
   * progress stays smooth at low rates; never less than pageBytesMin.
   */
  readonly pageBytesMin: number;
  readonly pageIntervalMsTarget: number;
  /** Rows and bytes each request asks the sender to count ahead (0 rows: never count). */
  readonly countKeysMax: number;
  readonly countBytesMax: number;
  readonly requestTimeoutMs: number;
  /** The wait before the first retry; it doubles with each failure in a row, to the max. */
  readonly retryBackoffMsBase: number;
  readonly retryBackoffMsMax: number;
  /** Failed attempts in a row (timeouts, refusals, bad pages) after which it is stalled. */
  readonly timeoutsBeforeStalled: number;
  /** Pages received but not yet durable, at most. */
  readonly unpersistedPagesMax: number;
  /** The window of the moving average behind the rate and the ETA. */
  readonly rateWindowMs: number;
  /** Bytes per second; 0 or Infinity: unlimited. Changeable at run time with setRate. */
  readonly bytesPerSecondLimit: number;
}

export const DEFAULT_TRANSFER_CONFIG: TransferConfig = {
  pageKeysMax: 1024,
  pageBytesMax: 1024 * 1024,
  pageBytesMin: 16 * 1024,
  pageIntervalMsTarget: 250,
  countKeysMax: 4 * 1024,
  countBytesMax: 4 * 1024 * 1024,
  requestTimeoutMs: 5_000,
  retryBackoffMsBase: 200,
  retryBackoffMsMax: 10_000,
  timeoutsBeforeStalled: 3,
  unpersistedPagesMax: 2,
  rateWindowMs: 10_000,
  bytesPerSecondLimit: 0,
};

export const UNPERSISTED_PAGES_CEILING = 64;

function isIntegerIn(value: number, min: number, max: number): boolean {
  return Number.isSafeInteger(value) && value >= min && value <= max;
}

export { isValidRate };

/** Throws RangeError naming the first field out of bounds. */
export function checkTransferConfig(config: TransferConfig): void {
  const checks: readonly [string, boolean][] = [
    ['pageKeysMax', isIntegerIn(config.pageKeysMax, 1, PAGE_KEYS_CEILING)],
    ['pageBytesMax', isIntegerIn(config.pageBytesMax, 1, PAGE_BYTES_CEILING)],
    ['pageBytesMin', isIntegerIn(config.pageBytesMin, 1, config.pageBytesMax)],
    ['pageIntervalMsTarget', isIntegerIn(config.pageIntervalMsTarget, 1, 60_000)],
    ['countKeysMax', isIntegerIn(config.countKeysMax, 0, COUNT_KEYS_CEILING)],
    ['countBytesMax', isIntegerIn(config.countBytesMax, 0, COUNT_BYTES_CEILING)],
    ['requestTimeoutMs', isIntegerIn(config.requestTimeoutMs, 1, 600_000)],
    ['retryBackoffMsBase', isIntegerIn(config.retryBackoffMsBase, 1, 600_000)],
    [
      'retryBackoffMsMax',
      isIntegerIn(config.retryBackoffMsMax, config.retryBackoffMsBase, 600_000),
    ],
    ['timeoutsBeforeStalled', isIntegerIn(config.timeoutsBeforeStalled, 1, 1_000)],
    ['unpersistedPagesMax', isIntegerIn(config.unpersistedPagesMax, 1, UNPERSISTED_PAGES_CEILING)],
    ['rateWindowMs', isIntegerIn(config.rateWindowMs, RATE_WINDOW_MS_MIN, 3_600_000)],
    ['bytesPerSecondLimit', isValidRate(config.bytesPerSecondLimit)],
  ];
  for (const [name, ok] of checks) {
    if (!ok) throw new RangeError(`transfer config ${name} out of bounds`);
  }
}

/** Names a new transfer: the node chooses the id, unique among its transfers. */
export interface TransferIdentity {
  readonly transferId: string;
  readonly keyspaceId: number;
  readonly partition: number;
  readonly source: string;
}

/** A received row, ready to merge: the user key, its record, and the record's bytes. */
export interface ReceivedEntry {
  readonly key: Uint8Array;
  readonly record: StoredRecord;
  readonly encodedRecord: Uint8Array;
}

export interface AcceptedPage {
  /** Pass to persisted() once the entries and savedState are durable; pages count from 1. */
  readonly pageNumber: number;
  readonly entries: readonly ReceivedEntry[];
  /** The last key received so far (the resume point once this page is durable). */
  readonly cursor: Uint8Array | null;
  /** This page ends the partition. */
  readonly last: boolean;
  /** The page's bytes, counted as the progress counts them. */
  readonly bytes: number;
  /** The transfer's saved state once this page is durable: persist it with the entries. */
  readonly savedState: Uint8Array;
}

export interface TransferCounters {
  readonly requestsSent: number;
  readonly pagesAccepted: number;
  /** Replies for another transfer or an older request: dropped. */
  readonly staleReplies: number;
  /** Pages whose records do not decode: dropped, and counted as a failed attempt. */
  readonly invalidReplies: number;
  readonly timeouts: number;
  readonly refusals: number;
}

export interface TransferProgress {
  readonly state: TransferState;
  readonly stalled: boolean;
  readonly source: string;
  readonly keysReceived: number;
  readonly bytesReceived: number;
  readonly keysDurable: number;
  readonly bytesDurable: number;
  /** Moving average over rateWindowMs. */
  readonly bytesPerSecond: number;
  /** The partition's size, once the sources' count has reached its end; else null. */
  readonly keysTotalEstimate: number | null;
  readonly bytesTotalEstimate: number | null;
  /** Rows counted so far: a lower bound of the size while the count goes on. */
  readonly keysCounted: number;
  /** Milliseconds to the end at the measured rate; null when not running or unknown. */
  readonly etaMs: number | null;
  readonly pagesUnpersisted: number;
  readonly counters: TransferCounters;
}

interface PendingPage {
  readonly pageNumber: number;
  readonly saved: SavedTransfer;
}

function sameCursor(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return compareBytes(a, b) === 0;
}

export class PartitionTransfer {
  readonly transferId: string;
  readonly keyspaceId: number;
  readonly partition: number;
  private readonly config: TransferConfig;
  private sourceId: string;
  private stateNow: TransferState;
  private failureCode: RefusalCode | null = null;
  private clockMs: number;

  /** As of the last durable page. */
  private durable: SavedTransfer;
  private readonly pending: PendingPage[] = [];
  private nextPageNumber = 1;
  /** As of the last page received, durable or not. */
  private cursor: Uint8Array | null;
  private lastPageReceived: boolean;
  private keysReceived: number;
  private bytesReceived: number;
  private countedKeys: number;
  private countedBytes: number;
  private countCursor: Uint8Array | null;
  private countComplete: boolean;

  /** When the outstanding request went out; null when none is. */
  private outstandingSentMs: number | null = null;
  private lastRequestSentMs = 0;
  private retryAtMs = -Infinity;
  private failuresInRow = 0;
  private stalledNow = false;

  /** Each page is charged against the time of its latest request. */
  private readonly limit: ByteRateLimit;
  private readonly meter: RateMeter;
  private readonly counts = {
    requestsSent: 0,
    pagesAccepted: 0,
    staleReplies: 0,
    invalidReplies: 0,
    timeouts: 0,
    refusals: 0,
  };

  private constructor(saved: SavedTransfer, config: TransferConfig, nowMs: number) {
    checkTransferConfig(config);
    assert(Number.isFinite(nowMs), 'a transfer starts at a time');
    this.config = config;
    this.transferId = saved.transferId;
    this.keyspaceId = saved.keyspaceId;
    this.partition = saved.partition;
    this.sourceId = saved.source;
    this.stateNow = saved.complete ? 'done' : 'running';
    this.clockMs = nowMs;
    this.durable = saved;
    this.cursor = saved.cursor;
    this.lastPageReceived = saved.complete;
    this.keysReceived = saved.keysDurable;
    this.bytesReceived = saved.bytesDurable;
    this.countedKeys = saved.countedKeys;
    this.countedBytes = saved.countedBytes;
    this.countCursor = saved.countCursor;
    this.countComplete = saved.countComplete;
    this.limit = new ByteRateLimit(config.bytesPerSecondLimit);
    this.meter = new RateMeter(config.rateWindowMs, nowMs);
  }

  /** A new transfer, from the partition's first key. */
  static start(
    identity: TransferIdentity,
    config: TransferConfig,
    nowMs: number,
  ): PartitionTransfer {
    assert(isTransferId(identity.transferId), 'a transfer id within bounds');
    assert(
      isIntegerIn(identity.keyspaceId, 0, KEYSPACE_ID_MAX) &&
        isIntegerIn(identity.partition, 0, PARTITION_MAX) &&
        identity.source.length > 0,
      'a keyspace, a partition and a source',
    );
    const saved: SavedTransfer = {
      ...identity,
      cursor: null,
      complete: false,
      keysDurable: 0,
      bytesDurable: 0,
      countedKeys: 0,
      countedBytes: 0,
      countCursor: null,
      countComplete: false,
    };
    return new PartitionTransfer(saved, config, nowMs);
  }

  /**
   * A transfer continued from its saved state (saveState, or an AcceptedPage's savedState
   * once durable), after a crash or restart. Throws DecodeError on bytes that are not one.
   * Pause and the rate are not saved: the node applies its own settings again.
   */
  static restore(savedState: Uint8Array, config: TransferConfig, nowMs: number): PartitionTransfer {
    return new PartitionTransfer(decodeSavedTransfer(savedState), config, nowMs);
  }

  get state(): TransferState {
    return this.stateNow;
  }

  get source(): string {
    return this.sourceId;
  }

  /** Several attempts in a row failed: the node may pick another source. */
  get stalled(): boolean {
    return this.stalledNow;
  }

  /** Why the transfer failed; null unless it did. */
  get failure(): RefusalCode | null {
    return this.failureCode;
  }

  get counters(): TransferCounters {
    return { ...this.counts };
  }

  /** The durable state, to persist when the transfer starts or its source changes. */
  saveState(): Uint8Array {
    return encodeSavedTransfer({ ...this.durable, source: this.sourceId });
  }

  /** The next page request to send to `source`, when one is due; else null. */
  tick(nowMs: number): PageRequestMessage | null {
    const now = this.advanceClock(nowMs);
    if (this.stateNow !== 'running' || this.lastPageReceived) return null;
    if (this.outstandingSentMs !== null) {
      if (now < this.outstandingSentMs + this.config.requestTimeoutMs) return null;
      this.outstandingSentMs = null;
      this.counts.timeouts++;
      this.failAttempt(now);
    }
    if (this.pending.length >= this.config.unpersistedPagesMax) return null;
    if (now < this.retryAtMs || now < this.requestDueMs()) return null;
    return this.sendRequest(now);
  }

  /**
   * When tick next has something to do (a request due, a timeout), or null when only an
   * input can move the transfer on (a reply, persisted, resume).
   */
  wakeAtMs(): number | null {
    if (this.stateNow !== 'running' || this.lastPageReceived) return null;
    if (this.outstandingSentMs !== null) {
      return this.outstandingSentMs + this.config.requestTimeoutMs;
    }
    if (this.pending.length >= this.config.unpersistedPagesMax) return null;
    return Math.max(this.clockMs, this.retryAtMs, this.requestDueMs());
  }

  /**
   * A (validated) reply from a sender. A page that answers the request the transfer waits on
   * comes back ready to merge; anything else (another transfer's, an older request's, one
   * whose records do not decode, a refusal) returns null and is counted.
   */
  receivePage(reply: HandoffReply, nowMs: number): AcceptedPage | null {
    const now = this.advanceClock(nowMs);
    if (!this.answersCurrentRequest(reply)) {
      this.counts.staleReplies++;
      return null;
    }
    if (reply[0] === HandoffMessageType.refusal) {
      this.receiveRefusal(reply, now);
      return null;
    }
    const entries = this.decodeEntries(reply);
    if (entries === null) {
      this.counts.invalidReplies++;
      this.outstandingSentMs = null;
      this.failAttempt(now);
      return null;
    }
    return this.acceptPage(reply, entries, now);
  }

  /** The page numbered `pageNumber` (and its saved state) is durable. In order received. */
  persisted(pageNumber: number): void {
    const first = this.pending[0];
    assert(first !== undefined, 'persisted answers a page received');
    assert(first.pageNumber === pageNumber, 'pages become durable in the order received');
    this.pending.shift();
    this.durable = first.saved;
    if (this.durable.complete && this.stateNow !== 'failed') this.stateNow = 'done';
  }

  /** Streams from another replica from now on, from the same cursor. */
  changeSource(source: string, nowMs: number): void {
    const now = this.advanceClock(nowMs);
    assert(source.length > 0, 'a source is a node id');
    this.sourceId = source;
    // A late reply from the old source still answers the same cursor and is as good as any.
    this.outstandingSentMs = null;
    this.failuresInRow = 0;
    this.stalledNow = false;
    this.retryAtMs = now;
  }

  /** Stops sending requests; a reply already on its way is still taken. */
  pause(): void {
    if (this.stateNow === 'running') this.stateNow = 'paused';
  }

  resume(nowMs: number): void {
    const now = this.advanceClock(nowMs);
    if (this.stateNow !== 'paused') return;
    this.stateNow = 'running';
    // A request that went unanswered across the pause is simply sent again, with no penalty.
    const sent = this.outstandingSentMs;
    if (sent !== null && now >= sent + this.config.requestTimeoutMs) this.outstandingSentMs = null;
    this.failuresInRow = 0;
    this.stalledNow = false;
    this.retryAtMs = now;
  }

  /** Bytes per second; 0 or Infinity: unlimited. The next request is spaced by the new rate. */
  setRate(bytesPerSecond: number): void {
    this.limit.setRate(bytesPerSecond);
  }

  /** Bytes per second, Infinity when unlimited. */
  get rate(): number {
    return this.limit.rate;
  }

  progress(nowMs: number): TransferProgress {
    const now = this.advanceClock(nowMs);
    const done = this.stateNow === 'done';
    const bytesPerSecond = this.meter.bytesPerSecond(now);
    const known = done || this.countComplete;
    const keysTotal = done ? this.keysReceived : Math.max(this.countedKeys, this.keysReceived);
    const bytesTotal = done ? this.bytesReceived : Math.max(this.countedBytes, this.bytesReceived);
    let etaMs: number | null = null;
    if (done) etaMs = 0;
    else if (this.stateNow === 'running' && known && bytesPerSecond > 0) {
      etaMs = Math.ceil(((bytesTotal - this.bytesReceived) * 1000) / bytesPerSecond);
    }
    assert(etaMs === null || etaMs >= 0, 'an ETA lies ahead');
    return {
      state: this.stateNow,
      stalled: this.stalledNow,
      source: this.sourceId,
      keysReceived: this.keysReceived,
      bytesReceived: this.bytesReceived,
      keysDurable: this.durable.keysDurable,
      bytesDurable: this.durable.bytesDurable,
      bytesPerSecond,
      keysTotalEstimate: known ? keysTotal : null,
      bytesTotalEstimate: known ? bytesTotal : null,
      keysCounted: this.countedKeys,
      etaMs,
      pagesUnpersisted: this.pending.length,
      counters: this.counters,
    };
  }

  // ---- inside ----

  /** Time never goes back for the transfer, whatever clock the node hands in. */
  private advanceClock(nowMs: number): number {
    assert(!Number.isNaN(nowMs), 'a time is a number');
    this.clockMs = Math.max(this.clockMs, nowMs);
    return this.clockMs;
  }

  private counting(): boolean {
    return !this.countComplete && this.config.countKeysMax > 0;
  }

  /** The earliest a request may go out under the rate limit. */
  private requestDueMs(): number {
    return this.limit.dueMs();
  }

  /** The bytes a page asks for: at a limited rate, about pageIntervalMsTarget of it. */
  private pageBytesAsked(): number {
    const { pageBytesMax, pageBytesMin, pageIntervalMsTarget } = this.config;
    if (!this.limit.limited) return pageBytesMax;
    const target = Math.floor((this.limit.rate * pageIntervalMsTarget) / 1000);
    return Math.min(pageBytesMax, Math.max(pageBytesMin, target));
  }

  private sendRequest(now: number): PageRequestMessage {
    assert(this.outstandingSentMs === null, 'at most one request is outstanding');
    this.outstandingSentMs = now;
    this.lastRequestSentMs = now;
    this.counts.requestsSent++;
    const counting = this.counting();
    return [
      HandoffMessageType.pageRequest,
      this.transferId,
      this.keyspaceId,
      this.partition,
      this.cursor,
      this.config.pageKeysMax,
      this.pageBytesAsked(),
      counting ? this.countCursor : null,
      counting ? this.config.countKeysMax : 0,
      counting ? this.config.countBytesMax : 0,
    ];
  }

  private failAttempt(now: number): void {
    this.failuresInRow++;
    const exponent = Math.min(this.failuresInRow - 1, 30);
    const backoffMs = Math.min(
      this.config.retryBackoffMsMax,
      this.config.retryBackoffMsBase * 2 ** exponent,
    );
    this.retryAtMs = now + backoffMs;
    if (this.failuresInRow >= this.config.timeoutsBeforeStalled) this.stalledNow = true;
  }

  /** Whether a reply answers the request now awaited: this transfer, the current cursors. */
  private answersCurrentRequest(reply: HandoffReply): boolean {
    if (this.stateNow === 'done' || this.stateNow === 'failed' || this.lastPageReceived) {
      return false;
    }
    if (reply[1] !== this.transferId || !sameCursor(reply[2], this.cursor)) return false;
    if (reply[0] === HandoffMessageType.page) {
      return sameCursor(reply[5], this.counting() ? this.countCursor : null);
    }
    return true;
  }

  private receiveRefusal(refusal: RefusalMessage, now: number): void {
    this.counts.refusals++;
    this.outstandingSentMs = null;
    if (refusal[3] === RefusalCode.recordTooLarge) {
      // Every replica holds the same row: no source can send it, so retrying cannot help.
      this.stateNow = 'failed';
      this.failureCode = RefusalCode.recordTooLarge;
      return;
    }
    // The source cannot serve the partition: say so at once, and keep trying meanwhile.
    this.failAttempt(now);
    this.stalledNow = true;
  }

  private decodeEntries(page: PageMessage): ReceivedEntry[] | null {
    const entries: ReceivedEntry[] = [];
    try {
      for (const [key, encodedRecord] of page[3]) {
        entries.push({ key, record: decodeRecord(encodedRecord), encodedRecord });
      }
    } catch (error) {
      if (error instanceof DecodeError) return null;
      throw error;
    }
    return entries;
  }

  private acceptPage(page: PageMessage, entries: ReceivedEntry[], now: number): AcceptedPage {
    assert(this.pending.length < UNPERSISTED_PAGES_CEILING, 'pages awaiting durability bounded');
    let pageBytes = 0;
    for (const entry of entries) pageBytes += entryBytes(entry.key, entry.encodedRecord);
    const lastEntry = entries[entries.length - 1];
    if (lastEntry !== undefined) this.cursor = lastEntry.key;
    const last = page[4] === null;
    this.lastPageReceived = last;
    this.keysReceived += entries.length;
    this.bytesReceived += pageBytes;
    if (this.counting()) {
      this.countedKeys += page[6];
      this.countedBytes += page[7];
      this.countCursor = page[8];
      this.countComplete = page[8] === null;
    }
    // The page takes its slot on the rate's timeline from its latest request.
    this.limit.charge(this.lastRequestSentMs, pageBytes);
    this.meter.add(now, pageBytes);
    this.outstandingSentMs = null;
    this.failuresInRow = 0;
    this.stalledNow = false;
    this.retryAtMs = -Infinity;
    this.counts.pagesAccepted++;

    const saved: SavedTransfer = {
      transferId: this.transferId,
      keyspaceId: this.keyspaceId,
      partition: this.partition,
      source: this.sourceId,
      cursor: this.cursor,
      complete: last,
      keysDurable: this.keysReceived,
      bytesDurable: this.bytesReceived,
      countedKeys: this.countedKeys,
      countedBytes: this.countedBytes,
      countCursor: this.countCursor,
      countComplete: this.countComplete,
    };
    const pageNumber = this.nextPageNumber++;
    this.pending.push({ pageNumber, saved });
    assert(this.pending.length <= this.config.unpersistedPagesMax, 'pages awaiting durability');
    return {
      pageNumber,
      entries,
      cursor: this.cursor,
      last,
      bytes: pageBytes,
      savedState: encodeSavedTransfer(saved),
    };
  }
}
