// Writes that the write-ahead log holds but LMDB does not yet: the newest state of each key
// written since the last checkpoint, with null for a delete (it hides the key in LMDB).
// Reads consult it before LMDB; a checkpoint writes it into LMDB in key order.
//
// Values are copied into an arena of large chunks, and the map holds each value's position
// as a number. Why: the memtable outlives many young-generation collections, and a value
// kept as an array of its own is an object each collection copies (most of the garbage
// collector's time under a SET load went there). A number is no object, so a write costs the
// collector nothing once the key is in the map. The arena only grows: an overwritten value
// stays until the memtable is dropped at the checkpoint, and `bytes` counts it, so the
// bound on the memtable bounds the arena.
//
// Rules: chunks are never rewritten, so a value handed out stays valid after later writes;
// values above INLINE_VALUE_BYTES_MAX are kept as the caller's array (the storage contract
// lets an engine keep what `commit` was given).

import { OrderedMap } from '../memory/ordered-map.ts';

/** Bytes counted per key beyond the key itself: the map slot and the order. */
const ENTRY_OVERHEAD_BYTES = 64;
const CHUNK_BYTES = 256 * 1024;
const LENGTH_BYTES = 4;
/** Larger values are kept as arrays: at least 16 of the largest fit in a chunk. */
const INLINE_VALUE_BYTES_MAX = CHUNK_BYTES / 16 - LENGTH_BYTES;
/** The slot of a deleted key. Positions in the arena are non-negative. */
const DELETED = -1;

/** A position in the arena, DELETED, or a large value kept as it came. */
type Slot = number | Uint8Array;

export class Memtable {
  private readonly slots = new OrderedMap<Slot>();
  private readonly chunks: Uint8Array[] = [];
  /** Bytes used in the last chunk (a full chunk before the first write). */
  private chunkUsed = CHUNK_BYTES;
  /** About the bytes of memory the memtable takes: keys, and every value written to it. */
  bytes = 0;

  get size(): number {
    return this.slots.size;
  }

  get(keyString: string): Uint8Array | null | undefined {
    const slot = this.slots.get(keyString);
    return slot === undefined ? undefined : this.valueOf(slot);
  }

  set(keyString: string, value: Uint8Array | null): void {
    const previous = this.slots.set(keyString, this.slotOf(value));
    if (previous === undefined) this.bytes += keyString.length + ENTRY_OVERHEAD_BYTES;
  }

  /** The entries with `start` ≤ key < `end` in key order, or reversed (see OrderedMap). */
  *range(
    start: string,
    end: string | null,
    reverse = false,
  ): Generator<[string, Uint8Array | null]> {
    for (const [key, slot] of this.slots.range(start, end, reverse)) {
      yield [key, this.valueOf(slot)];
    }
  }

  /** Every entry in key order. */
  entries(): Generator<[string, Uint8Array | null]> {
    return this.range('', null);
  }

  private slotOf(value: Uint8Array | null): Slot {
    if (value === null) return DELETED;
    this.bytes += value.length + LENGTH_BYTES;
    if (value.length > INLINE_VALUE_BYTES_MAX) return value;
    if (this.chunkUsed + LENGTH_BYTES + value.length > CHUNK_BYTES) {
      this.chunks.push(new Uint8Array(CHUNK_BYTES));
      this.chunkUsed = 0;
    }
    const chunk = this.chunks[this.chunks.length - 1]!;
    const offset = this.chunkUsed;
    const length = value.length;
    chunk[offset] = length & 0xff;
    chunk[offset + 1] = (length >>> 8) & 0xff;
    chunk[offset + 2] = (length >>> 16) & 0xff;
    chunk[offset + 3] = length >>> 24;
    chunk.set(value, offset + LENGTH_BYTES);
    this.chunkUsed = offset + LENGTH_BYTES + length;
    return (this.chunks.length - 1) * CHUNK_BYTES + offset;
  }

  private valueOf(slot: Slot): Uint8Array | null {
    if (typeof slot !== 'number') return slot;
    if (slot === DELETED) return null;
    const chunk = this.chunks[Math.floor(slot / CHUNK_BYTES)];
    if (chunk === undefined) throw new Error(`memtable slot ${slot} is past the arena`);
    const offset = slot % CHUNK_BYTES;
    const length =
      chunk[offset]! |
      (chunk[offset + 1]! << 8) |
      (chunk[offset + 2]! << 16) |
      (chunk[offset + 3]! << 24);
    return chunk.subarray(offset + LENGTH_BYTES, offset + LENGTH_BYTES + length);
  }
}
