// Which keys a durable batch not yet persisted has written: a read of such a key waits for
// the batch, so that no client sees a value a crash could still take back.
//
// Storage already holds the value (the shell stages every batch as its step returns); only
// the batch to wait for is kept here, per cell of a table indexed by a hash of the key: the
// newest durable batch that wrote a key of that cell, and a tag (the hash's other bits) of
// the key, or MIXED once keys of two tags have written the cell since it last had nothing
// unsynced. A read waits when the cell is unsynced and its tag is the key's or MIXED. So a
// read of a key that no unsynced batch wrote waits only in a cell that two such keys share
// (or on a tag collision, one in 2^18), a wait of one sync at most and never a wrong answer:
// with CELLS cells and the 800 writes that redis-benchmark's 50 clients keep in flight at
// -P 16, about one read in 800, where without tags one in twenty waited. Why not a Map by
// key string, as the overlay of unpersisted records that this replaced was: that costs a
// string made from each key, its hashing and an entry per write, which outlives the young
// generation's collections until its sync; here a write costs a hash of its key and two
// stores into a typed array.

import { assert } from '../bytes.ts';
import { seededHash32 } from '../hash.ts';

/** A power of two: 256 KiB of batch ids and tags, made at the first durable write. */
const CELLS = 16384;
const CELL_BITS = 14;
/** The tag of a cell written by keys of different tags while it was unsynced. */
const MIXED = -1;

export class UnsyncedKeys {
  /**
   * Per cell, two numbers side by side (one cache line): the newest durable batch that
   * wrote a key of the cell (0: none), and the tag of the keys its unsynced batches wrote.
   */
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
    const cells = (this.cells ??= new Float64Array(2 * CELLS));
    const hash = seededHash32(key, 0);
    const at = 2 * (hash & (CELLS - 1));
    const tag = hash >>> CELL_BITS;
    // Unsynced keys of another tag in the cell: from now on every read of it waits.
    if (cells[at]! > this.persistedBatchId && cells[at + 1] !== tag) cells[at + 1] = MIXED;
    else cells[at + 1] = tag;
    cells[at] = batchId;
    this.newestBatchId = batchId;
  }

  /** The batch a read of `key` waits for, or 0. */
  batchOf(key: Uint8Array): number {
    if (this.newestBatchId <= this.persistedBatchId) return 0;
    const cells = this.cells!;
    const hash = seededHash32(key, 0);
    const at = 2 * (hash & (CELLS - 1));
    const batchId = cells[at]!;
    if (batchId <= this.persistedBatchId) return 0;
    const tag = cells[at + 1]!;
    return tag === hash >>> CELL_BITS || tag === MIXED ? batchId : 0;
  }

  /** Every batch up to `batchId` is persisted. */
  persisted(batchId: number): void {
    this.persistedBatchId = batchId;
  }
}
