// A loopback world for partition handoff: source replicas holding a partition in sorted
// in-memory rows, a receiver node that merges pages and persists them with the transfer's
// saved state after a delay, and a network between them with latency, loss and duplication,
// all on a virtual clock and one seeded PRNG. Faults: the receiver crashes (losing what was
// not durable, while its old messages stay in flight) and restarts from its saved state;
// a source goes down for a while (its requests and replies are lost).
import { bytesToKeyString, compareBytes } from '../../../src/core/bytes.ts';
import { Prng } from '../../../src/core/prng.ts';
import { encodeRecord } from '../../../src/core/store/record.ts';
import {
  isAfter,
  isValidHandoffMessage,
  type HandoffMessage,
  type HandoffReply,
  type PageRequestMessage,
} from '../../../src/core/handoff/messages.ts';
import {
  pageOf,
  type PartitionRow,
  type PartitionScan,
  type SenderLimits,
} from '../../../src/core/handoff/sender.ts';
import {
  PartitionTransfer,
  type AcceptedPage,
  type TransferConfig,
} from '../../../src/core/handoff/transfer.ts';

/** A partition's rows, sorted by key, with a scan as the sender sees it. */
export class SortedRows {
  private readonly rows: PartitionRow[] = [];

  /** The index of the first row with a key after `after`. */
  private firstAfter(after: Uint8Array | null): number {
    if (after === null) return 0;
    let low = 0;
    let high = this.rows.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareBytes(this.rows[middle]!.key, after) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  put(key: Uint8Array, record: Uint8Array): void {
    const index = this.firstAfter(key);
    const previous = this.rows[index - 1];
    if (previous !== undefined && compareBytes(previous.key, key) === 0) {
      this.rows[index - 1] = { key, record };
    } else {
      this.rows.splice(index, 0, { key, record });
    }
  }

  readonly scan: PartitionScan = (after, limit) => {
    const start = this.firstAfter(after);
    return this.rows.slice(start, start + limit);
  };

  all(): readonly PartitionRow[] {
    return this.rows;
  }

  get size(): number {
    return this.rows.length;
  }

  get bytes(): number {
    let total = 0;
    for (const row of this.rows) total += row.key.length + row.record.length;
    return total;
  }
}

export function recordBytes(counter: number, value: Uint8Array): Uint8Array {
  return encodeRecord({
    context: [['n1', counter]],
    siblings: [
      { dot: { node: 'n1', counter }, timestamp: [1_000 + counter, 0], value, expiresAtMs: 0 },
    ],
  });
}

/** `count` distinct random keys with records whose values weigh 1 to valueBytesMax. */
export function randomRows(prng: Prng, count: number, valueBytesMax: number): SortedRows {
  const rows = new SortedRows();
  const seen = new Set<string>();
  while (rows.size < count) {
    const key = new Uint8Array(prng.between(1, 12));
    for (let i = 0; i < key.length; i++) key[i] = prng.below(256);
    const name = bytesToKeyString(key);
    if (seen.has(name)) continue;
    seen.add(name);
    const value = new Uint8Array(prng.between(1, valueBytesMax)).fill(rows.size & 0xff);
    rows.put(key, recordBytes(rows.size + 1, value));
  }
  return rows;
}

export interface Faults {
  readonly latencyMsMin: number;
  readonly latencyMsMax: number;
  readonly lossProbability: number;
  readonly duplicateProbability: number;
  /** Chance, at each event the world handles, that the receiver crashes there. */
  readonly receiverCrashProbability: number;
  readonly receiverDownMsMax: number;
  /** Chance, at each event, that the current source goes down for up to sourceDownMsMax. */
  readonly sourceDownProbability: number;
  readonly sourceDownMsMax: number;
  readonly persistDelayMsMax: number;
}

export const NO_FAULTS: Faults = {
  latencyMsMin: 1,
  latencyMsMax: 1,
  lossProbability: 0,
  duplicateProbability: 0,
  receiverCrashProbability: 0,
  receiverDownMsMax: 0,
  sourceDownProbability: 0,
  sourceDownMsMax: 0,
  persistDelayMsMax: 0,
};

interface InFlight {
  readonly atMs: number;
  readonly order: number;
  readonly to: string;
  readonly from: string;
  readonly message: HandoffMessage;
}

interface PendingBatch {
  readonly durableAtMs: number;
  readonly page: AcceptedPage;
}

/** A page the receiver took: when, from which request time, how many bytes. */
export interface AcceptedLogEntry {
  readonly atMs: number;
  readonly bytes: number;
  readonly keys: number;
}

export interface WorldOptions {
  readonly seed: number;
  readonly sources: readonly string[];
  readonly rows: SortedRows;
  readonly config: TransferConfig;
  readonly senderLimits?: SenderLimits;
  readonly faults: Faults;
  /** Called at each event with the world, to steer it (change the rate, pause...). */
  readonly onEvent?: (world: HandoffWorld) => void;
  /**
   * A negative control: the receiver records a page's saved state as soon as the page
   * arrives, before its records are durable (what the protocol forbids).
   */
  readonly saveStateEarly?: boolean;
}

const RECEIVER = 'receiver';

export class HandoffWorld {
  nowMs = 0;
  readonly prng: Prng;
  readonly options: WorldOptions;
  /** The receiver's durable rows and saved state: what survives its crash. */
  readonly durableRows = new Map<string, Uint8Array>();
  savedState: Uint8Array;
  transfer: PartitionTransfer | null;
  receiverUpAtMs = 0;
  readonly sourceDownUntilMs = new Map<string, number>();
  readonly accepted: AcceptedLogEntry[] = [];
  readonly requestTimesMs: number[] = [];
  receiverCrashes = 0;
  private staleRepliesBeforeCrashes = 0;
  sourceChanges = 0;
  messagesDelivered = 0;
  private inFlight: InFlight[] = [];
  private pendingBatches: PendingBatch[] = [];
  private order = 0;

  constructor(options: WorldOptions) {
    this.options = options;
    this.prng = new Prng(options.seed);
    this.transfer = PartitionTransfer.start(
      { transferId: 't1', keyspaceId: 7, partition: 3, source: options.sources[0]! },
      options.config,
      0,
    );
    // The node persists the transfer's existence before it starts streaming.
    this.savedState = this.transfer.saveState();
  }

  private send(from: string, to: string, message: HandoffMessage): void {
    const faults = this.options.faults;
    if (this.prng.chance(faults.lossProbability)) return;
    const copies = this.prng.chance(faults.duplicateProbability) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      const atMs = this.nowMs + this.prng.between(faults.latencyMsMin, faults.latencyMsMax);
      this.inFlight.push({ atMs, order: this.order++, to, from, message });
    }
  }

  private sourceUp(source: string): boolean {
    return (this.sourceDownUntilMs.get(source) ?? 0) <= this.nowMs;
  }

  private nextEventMs(): number {
    let next = Infinity;
    for (const message of this.inFlight) next = Math.min(next, message.atMs);
    const batch = this.pendingBatches[0];
    if (batch !== undefined) next = Math.min(next, batch.durableAtMs);
    if (this.transfer === null) next = Math.min(next, this.receiverUpAtMs);
    else next = Math.min(next, this.transfer.wakeAtMs() ?? Infinity);
    return next;
  }

  /** Handles everything due at the next event's time; false when nothing is left to do. */
  step(): boolean {
    const next = this.nextEventMs();
    if (next === Infinity) return false;
    this.nowMs = Math.max(this.nowMs, next);
    this.options.onEvent?.(this);
    this.maybeFault();
    this.restartReceiver();
    this.completeBatches();
    this.deliverMessages();
    this.tickReceiver();
    return true;
  }

  private maybeFault(): void {
    const faults = this.options.faults;
    if (this.transfer !== null && this.prng.chance(faults.receiverCrashProbability)) {
      this.crashReceiver(this.prng.between(0, faults.receiverDownMsMax));
    }
    const source = this.transfer?.source;
    if (source !== undefined && this.prng.chance(faults.sourceDownProbability)) {
      this.sourceDownUntilMs.set(source, this.nowMs + this.prng.between(1, faults.sourceDownMsMax));
    }
  }

  /** Drops everything not durable; the receiver comes back after downMs. */
  crashReceiver(downMs: number): void {
    this.staleRepliesBeforeCrashes += this.transfer?.counters.staleReplies ?? 0;
    this.transfer = null;
    this.pendingBatches = [];
    this.receiverUpAtMs = this.nowMs + downMs;
    this.receiverCrashes++;
  }

  private restartReceiver(): void {
    if (this.transfer !== null || this.nowMs < this.receiverUpAtMs) return;
    this.transfer = PartitionTransfer.restore(this.savedState, this.options.config, this.nowMs);
  }

  private completeBatches(): void {
    while (
      this.pendingBatches[0] !== undefined &&
      this.pendingBatches[0].durableAtMs <= this.nowMs
    ) {
      const { page } = this.pendingBatches.shift()!;
      // The records and the saved state land in one atomic batch.
      for (const entry of page.entries) {
        this.durableRows.set(bytesToKeyString(entry.key), entry.encodedRecord);
      }
      this.savedState = page.savedState;
      this.transfer!.persisted(page.pageNumber);
    }
  }

  private deliverMessages(): void {
    const due = this.inFlight.filter((message) => message.atMs <= this.nowMs);
    if (due.length === 0) return;
    this.inFlight = this.inFlight.filter((message) => message.atMs > this.nowMs);
    due.sort((a, b) => a.atMs - b.atMs || a.order - b.order);
    for (const message of due) {
      if (!isValidHandoffMessage(message.message)) throw new Error('an invalid message travelled');
      this.messagesDelivered++;
      if (message.to === RECEIVER) this.receiverGets(message.message as HandoffReply);
      else this.sourceGets(message.to, message.message as PageRequestMessage);
    }
  }

  private sourceGets(source: string, request: PageRequestMessage): void {
    if (!this.sourceUp(source)) return;
    const reply = pageOf(this.options.rows.scan, request, this.options.senderLimits);
    this.send(source, RECEIVER, reply);
  }

  private receiverGets(reply: HandoffReply): void {
    if (this.transfer === null) return;
    const page = this.transfer.receivePage(reply, this.nowMs);
    if (page === null) return;
    let bytes = 0;
    for (const entry of page.entries) bytes += entry.key.length + entry.encodedRecord.length;
    this.accepted.push({ atMs: this.nowMs, bytes, keys: page.entries.length });
    if (this.options.saveStateEarly === true) this.savedState = page.savedState;
    const previous = this.pendingBatches[this.pendingBatches.length - 1]?.durableAtMs ?? this.nowMs;
    const delay = this.prng.between(0, this.options.faults.persistDelayMsMax);
    // Batches become durable in the order they were made.
    const durableAtMs = Math.max(previous, this.nowMs + delay);
    this.pendingBatches.push({ durableAtMs, page });
    if (durableAtMs <= this.nowMs) this.completeBatches();
  }

  private tickReceiver(): void {
    const transfer = this.transfer;
    if (transfer === null) return;
    if (transfer.stalled) {
      // The node picks another replica of the partition.
      const sources = this.options.sources;
      const next = sources[(sources.indexOf(transfer.source) + 1) % sources.length]!;
      transfer.changeSource(next, this.nowMs);
      this.sourceChanges++;
    }
    const request = transfer.tick(this.nowMs);
    if (request === null) return;
    this.requestTimesMs.push(this.nowMs);
    this.send(RECEIVER, transfer.source, request);
  }

  /** Stale replies over every life of the receiver. */
  staleReplies(): number {
    return this.staleRepliesBeforeCrashes + (this.transfer?.counters.staleReplies ?? 0);
  }

  /** Runs until the transfer is done and durable, or `stepsMax` events; true when done. */
  run(stepsMax: number): boolean {
    for (let steps = 0; steps < stepsMax && !this.isDone(); steps++) {
      if (!this.step()) break;
    }
    return this.isDone();
  }

  isDone(): boolean {
    return this.transfer?.state === 'done';
  }

  /** The keys the source holds that the receiver's durable copy lacks or holds otherwise. */
  missingKeys(): string[] {
    const missing: string[] = [];
    for (const row of this.options.rows.all()) {
      const held = this.durableRows.get(bytesToKeyString(row.key));
      if (held === undefined || compareBytes(held, row.record) !== 0) {
        missing.push(Array.from(row.key).join(','));
      }
    }
    return missing;
  }
}

/** The rows of `rows` after `after`, for checks that do not trust the scan under test. */
export function rowsAfter(rows: SortedRows, after: Uint8Array | null): PartitionRow[] {
  return rows.all().filter((row) => isAfter(row.key, after));
}
