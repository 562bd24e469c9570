// The records a replica store has written but storage has not yet persisted, by storage key
// string: reads see them before storage has them.
//
// Why not a Map with one delete per persisted write. V8 replaces a Map's hash table as it
// grows and shrinks, and a replaced table keeps a link to the table that replaced it. Once
// one table of a long-lived Map has reached the old generation, each later table is kept
// alive through that chain in every young-generation collection, with the entries it held,
// until the next full collection: under a write load a Map that gained and lost an entry
// per write had a tenth of all the bytes allocated promoted, and scavenges took a tenth of
// the main thread. So a persisted entry stays in the map and is ignored (its batch is at or
// below the last persisted one), and the map is dropped whole once no batch with keys is
// waiting (after every commit of a relaxed load), or rebuilt from its live entries once
// half of it is dead (under a durable load, where the next group's batches are always
// waiting). Why not later: each dead entry keeps its record alive, and under a durable load
// rebuilding at three quarters dead instead of half (and 4,096 entries instead of 1,024) left
// enough of them to lengthen every scavenge: 1,150 against 800 ms of pauses per 1,000,000
// SETs through bench:resp-path, 0.87 of the CPU per SET (median of five alternating rounds).

import { assert } from '../bytes.ts';
import { decodeRecord, type StoredRecord } from './record.ts';

/**
 * A record as a batch writes it, kept encoded until read. Why: a decoded record is a dozen
 * small objects, and every scavenge copied them for as long as the batch was unpersisted;
 * under a durable load, that is every write in flight. Kept encoded, the bytes that
 * survived a scavenge fell by about 30% (1.6 against 2.2-2.3 MB per scavenge through
 * bench:resp-path with durable writes; its CPU per SET did not move beyond the noise).
 * Reading a pending key is rare (the key was written a moment ago and is read again before
 * its sync), and decodes it as a read from storage would.
 */
export class PendingRecord {
  /** Undefined: the batch removes the key. */
  readonly encoded: Uint8Array | undefined;
  readonly batchId: number;
  readonly durable: boolean;

  constructor(encoded: Uint8Array | undefined, batchId: number, durable: boolean) {
    this.encoded = encoded;
    this.batchId = batchId;
    this.durable = durable;
  }

  /** The record, decoded anew at each call (undefined: the key is removed). */
  get record(): StoredRecord | undefined {
    return this.encoded === undefined ? undefined : decodeRecord(this.encoded);
  }
}

/** Below this many entries a map of half dead ones is left as it is. */
const REBUILD_ENTRIES_MIN = 1024;

export class PendingRecords {
  private map = new Map<string, PendingRecord>();
  private readonly rebuildEntriesMin: number;
  private persistedBatchId = 0;
  /** Entries set by unpersisted batches: at least the live ones (a key set twice counts twice). */
  private liveMax = 0;
  /**
   * The unpersisted batches that set records, oldest first from `head`: each one's id and
   * how many it set, so that persisting them knows how many entries died.
   */
  private batchIds: number[] = [];
  private batchCounts: number[] = [];
  private head = 0;

  /** `rebuildEntriesMin`: tests make it small. */
  constructor(rebuildEntriesMin = REBUILD_ENTRIES_MIN) {
    this.rebuildEntriesMin = rebuildEntriesMin;
  }

  /** Whether no record is pending. */
  get empty(): boolean {
    return this.liveMax === 0;
  }

  /** Entries the map holds, dead ones included (for tests). */
  get held(): number {
    return this.map.size;
  }

  get(keyString: string): PendingRecord | undefined {
    if (this.liveMax === 0) return undefined;
    const entry = this.map.get(keyString);
    return entry !== undefined && entry.batchId > this.persistedBatchId ? entry : undefined;
  }

  /**
   * The record batch `batchId` writes, encoded (undefined: it removes the key); batches are
   * numbered upwards from 1. The bytes must not change while the entry is held.
   */
  set(keyString: string, encoded: Uint8Array | undefined, batchId: number, durable: boolean): void {
    assert(batchId > this.persistedBatchId, `batch ${batchId} is already persisted`);
    const last = this.batchIds.length - 1;
    if (last >= this.head && this.batchIds[last] === batchId) {
      this.batchCounts[last]!++;
    } else {
      assert(last < this.head || this.batchIds[last]! < batchId, 'batches set records in order');
      this.batchIds.push(batchId);
      this.batchCounts.push(1);
    }
    this.map.set(keyString, new PendingRecord(encoded, batchId, durable));
    this.liveMax++;
  }

  /** Every batch up to `batchId` is persisted. */
  persisted(batchId: number): void {
    assert(batchId > this.persistedBatchId, `batch ${batchId} persisted twice`);
    this.persistedBatchId = batchId;
    while (this.head < this.batchIds.length && this.batchIds[this.head]! <= batchId) {
      this.liveMax -= this.batchCounts[this.head++]!;
    }
    if (this.head === this.batchIds.length) {
      this.batchIds.length = 0;
      this.batchCounts.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && 2 * this.head >= this.batchIds.length) {
      this.batchIds = this.batchIds.slice(this.head);
      this.batchCounts = this.batchCounts.slice(this.head);
      this.head = 0;
    }
    if (this.liveMax === 0) {
      if (this.map.size > 0) this.map = new Map();
    } else if (this.map.size >= this.rebuildEntriesMin && this.map.size >= 2 * this.liveMax) {
      const live = new Map<string, PendingRecord>();
      for (const [keyString, entry] of this.map) {
        if (entry.batchId > batchId) live.set(keyString, entry);
      }
      this.map = live;
    }
  }

  /** The pending records, in no particular order. */
  *entries(): Generator<[string, PendingRecord]> {
    if (this.liveMax === 0) return;
    for (const [keyString, entry] of this.map) {
      if (entry.batchId > this.persistedBatchId) yield [keyString, entry];
    }
  }
}
