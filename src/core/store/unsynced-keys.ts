// Which keys a durable batch not yet persisted has written: a read of such a key waits for
// the batch, so that no client sees a value a crash could still take back.
//
// Storage already holds the value (the shell stages every batch as its step returns); only
// the batch to wait for is kept here, per cell of a table indexed by a hash of the key: the
// newest durable batch that wrote a key of that cell. Keys that share a cell make a read
// wait for another key's batch, a wait of one sync at most and never a wrong answer; with
// CELLS cells and the 800 writes that redis-benchmark's 50 clients keep in flight at -P 16,
// about one read in twenty waits so. Why not a Map by key string, as the overlay of
// unpersisted records that this replaced was: that costs a string made from each key, its
// hashing and an entry per write, which outlives the young generation's collections until
// its sync; here a write costs a hash of its key and one store into a typed array.

import { assert } from '../bytes.ts';
import { seededHash32 } from '../hash.ts';

/** A power of two: 128 KiB of batch ids, made at the first durable write. */
const CELLS = 16384;

export class UnsyncedKeys {
  /** Per cell, the newest durable batch that wrote a key of the cell (0: none). */
  private cells: Float64Array | null = null;
  private newestBatchId = 0;
  private persistedBatchId = 0;

  /** Whether no durable batch awaits its sync. */
  get empty(): boolean {
    return this.newestBatchId <= this.persistedBatchId;
  }

  /** Durable batch `batchId` (numbered upwards, in the order they are emitted) writes `key`. */
  mark(key: Uint8Array, batchId: number): void {
    assert(batchId >= this.newestBatchId, 'batches are marked in the order they are emitted');
    this.cells ??= new Float64Array(CELLS);
    this.cells[cellOf(key)] = batchId;
    this.newestBatchId = batchId;
  }

  /** The batch a read of `key` waits for, or 0. */
  batchOf(key: Uint8Array): number {
    if (this.newestBatchId <= this.persistedBatchId) return 0;
    const batchId = this.cells![cellOf(key)]!;
    return batchId > this.persistedBatchId ? batchId : 0;
  }

  /** Every batch up to `batchId` is persisted. */
  persisted(batchId: number): void {
    this.persistedBatchId = batchId;
  }
}

function cellOf(key: Uint8Array): number {
  return seededHash32(key, 0) & (CELLS - 1);
}
