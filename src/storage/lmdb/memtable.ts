// Writes that the write-ahead log holds but LMDB does not yet: the newest state of each key
// written since the last checkpoint, with null for a delete (it hides the key in LMDB).
// Reads consult it before LMDB; a checkpoint writes it into LMDB in key order.
//
// Each key has a record (key and value) in an arena of large chunks, written over in place
// or appended anew (below), and a hash index over the keys' bytes holds, per key, the
// position of its newest record. Why:
// - The memtable outlives many young-generation collections, and anything kept as an
//   object of its own is copied by each of them (most of the garbage collector's time
//   under a SET load went there once). Positions are numbers in typed arrays: a write costs
//   the collector nothing.
// - A lookup costs two cache misses, the index's slot and the record, where a JavaScript
//   Map of key strings cost four and a string made of the key first: about a fifth of a
//   GET's time with a hundred thousand keys.
// The key's string is made once, when the key first enters the memtable. The key order
// (for ranges and the checkpoint) is kept lazily, per group of keys that share their first
// byte (the table, in the core's layout): a write only appends a new key to its group, and
// the first range over a group after writes sorts the keys added since and merges them
// into the group's sorted entries. Why: keeping the order on every insert cost a binary
// search over key strings scattered in the heap, a cache miss per comparison, for a third
// of the SETs of a random-key load (about 5% of the node's main thread); the checkpoint's
// one sort costs less than half of that. Groups, because the expiry tick ranges over its
// own table ten times a second, and must not sort the data table's keys each time.
//
// The index is open addressing with linear probing over (hash, entry + 1, position)
// triples, at most half full. Its hash is the ring's murmur3 with a seed drawn per
// memtable, so that clients cannot choose keys that all land in one run of it. Keys are
// never removed: a delete is a record too.
//
// A write whose value fits in the key's current record (its value's bytes and the spare
// bytes after them) is written over it, in place; any other write appends a record. Why:
// under a load that rewrites keys with values of about one size (most of them), the arena
// then stops growing once every key is in it. That spares the new chunks' page faults and
// most checkpoints, and keeps the records that lookups miss on in fewer pages: under
// redis-benchmark -P 16, 3-6% less main-thread CPU per SET for values of equal length,
// and 2-17% less again (median 10%) with eight spare bytes (docs/STORAGE.md). So that a
// value handed out stays valid after later writes, a memtable that takes writes hands out
// copies (views into a 64 KiB slab of its own, which a copy keeps alive as long as it is
// held; a buffer of their own if large). Once frozen (the checkpoint's), it never changes
// again and hands out views of its arena.
//
// Rules: values above INLINE_VALUE_BYTES_MAX are kept as the caller's array (the storage
// contract lets an engine keep what `commit` was given), handed out as they are and never
// written into. Apart from in-place writes the arena only grows: a value replaced by one
// that does not fit stays until the memtable is dropped at the checkpoint, and `bytes`
// counts every record appended, so the bound on the memtable bounds the arena. Positions
// are 31-bit: one memtable holds at most CHUNKS_MAX chunks (2 GiB), far above any bound
// the engine allows.

import { randomInt } from 'node:crypto';
import { bytesToKeyString } from '../../core/bytes.ts';
import { seededHash32 } from '../../core/hash.ts';

const CHUNK_SHIFT = 18;
const CHUNK_BYTES = 1 << CHUNK_SHIFT;
const CHUNKS_MAX = 2 ** (31 - CHUNK_SHIFT);
/**
 * A record: key length u32 | value field u32 | key | value and its spare bytes, or the
 * large value's number.
 */
const RECORD_HEADER_BYTES = 8;
/**
 * Value field of a delete; of a large value LARGE; of an inline value its length + 1 in the
 * low 16 bits and the spare bytes after it in the high 15 (so never LARGE).
 */
const DELETED = 0;
const LARGE = 0xffffffff;
/**
 * Spare bytes after an inline value appended: a later value up to this much longer is
 * written in place. A record's versions and timestamps vary in length by a byte or two
 * between writes of values of one length, which half the writes to a key then appended.
 */
const SPARE_BYTES = 8;
/**
 * Values up to this size are copied into the arena; larger ones are kept as the arrays they
 * came in. At least 16 of the largest fit in a chunk.
 */
export const INLINE_VALUE_BYTES_MAX = CHUNK_BYTES / 16 - RECORD_HEADER_BYTES;
/** Records above this get a chunk of their own (long keys). */
const SHARED_CHUNK_RECORD_BYTES_MAX = CHUNK_BYTES / 16;
/** Bytes counted per key beyond its records: its slots in the index and in the order. */
const ENTRY_OVERHEAD_BYTES = 64;
const INITIAL_CAPACITY = 1024;
/** Copies handed out by a memtable that takes writes are cut from slabs of this size. */
const COPY_SLAB_BYTES = 64 * 1024;
/** Larger copies get a buffer of their own: a slab holds at least 16 copies. */
const SLAB_COPY_BYTES_MAX = COPY_SLAB_BYTES / 16;

export class Memtable {
  /** Triples (hash, entry + 1, position); entry + 1 = 0 marks a free one. */
  private table = new Int32Array(3 * INITIAL_CAPACITY);
  private mask = INITIAL_CAPACITY - 1;
  private readonly hash: (key: Uint8Array) => number;
  /** Per entry (key, numbered as they came): its hash and its newest record's position. */
  private hashes = new Int32Array(INITIAL_CAPACITY);
  private positions = new Int32Array(INITIAL_CAPACITY);
  private count = 0;
  /** Per entry: its key as a string (bytesToKeyString). */
  private readonly keyStrings: string[] = [];
  /** Per first byte of the keys: their entries, sorted lazily. */
  private readonly groups: (KeyGroup | undefined)[] = [];
  private readonly chunks: Uint8Array[] = [];
  /** The chunk that takes small records, and the bytes used in it. */
  private fillChunk = -1;
  private fillUsed = CHUNK_BYTES;
  private readonly large: Uint8Array[] = [];
  /** About the bytes of memory the memtable takes: keys, and every record appended. */
  bytes = 0;
  /** No more writes: values are handed out as views of the arena. */
  private frozen = false;
  private copySlab = new ArrayBuffer(COPY_SLAB_BYTES);
  private copySlabUsed = 0;

  /** `hash`: a 32-bit hash of key bytes; tests give one that collides. */
  constructor(hash: (key: Uint8Array) => number = seededHash(randomInt(2 ** 31))) {
    this.hash = hash;
  }

  get size(): number {
    return this.count;
  }

  /** The value of `key`: null if deleted here, undefined if the memtable does not have it. */
  get(key: Uint8Array): Uint8Array | null | undefined {
    const slot = this.find(key, this.hash(key));
    return slot < 0 ? undefined : this.valueAt(this.table[slot + 2]!);
  }

  /** Ends the memtable's writes: from here its values are handed out as views. */
  freeze(): void {
    this.frozen = true;
  }

  /** `keyString`: bytesToKeyString(key), if the caller has it. */
  set(key: Uint8Array, value: Uint8Array | null, keyString?: string): void {
    if (this.frozen) throw new Error('a frozen memtable takes no writes');
    const hash = this.hash(key);
    const slot = this.find(key, hash);
    if (slot >= 0 && this.overwrite(this.table[slot + 2]!, key.length, value)) return;
    const position = this.append(key, value);
    if (slot >= 0) {
      this.table[slot + 2] = position;
      this.positions[this.table[slot + 1]! - 1] = position;
      return;
    }
    const entry = this.count++;
    if (entry === this.positions.length) {
      this.positions = grown(this.positions);
      this.hashes = grown(this.hashes);
    }
    this.positions[entry] = position;
    this.hashes[entry] = hash;
    this.keyStrings.push(keyString ?? bytesToKeyString(key));
    const first = key.length === 0 ? 0 : key[0]!;
    (this.groups[first] ??= { sorted: new Int32Array(0), added: [] }).added.push(entry);
    this.bytes += ENTRY_OVERHEAD_BYTES;
    if (2 * this.count > this.mask + 1) this.growTable();
    else this.place(hash, entry, position);
  }

  /**
   * The entries with `start` ≤ key < `end` (end null: no bound) in key order, or in reverse
   * order from the last one below `end` down to `start`. Writes made while a range is being
   * walked are not seen by it (their values may be).
   */
  *range(
    start: string,
    end: string | null,
    reverse = false,
  ): Generator<[string, Uint8Array | null]> {
    const keys = this.keyStrings;
    const low = start.length === 0 ? 0 : start.charCodeAt(0);
    const high = end === null ? 255 : end.length === 0 ? 0 : end.charCodeAt(0);
    if (!reverse) {
      for (let first = low; first <= high; first++) {
        const group = this.groups[first];
        if (group === undefined) continue;
        const sorted = this.sortedEntries(group);
        for (let i = this.lowerBound(sorted, start); i < sorted.length; i++) {
          const key = keys[sorted[i]!]!;
          if (end !== null && key >= end) return;
          yield [key, this.valueAt(this.positions[sorted[i]!]!)];
        }
      }
      return;
    }
    for (let first = high; first >= low; first--) {
      const group = this.groups[first];
      if (group === undefined) continue;
      const sorted = this.sortedEntries(group);
      const last = (end === null ? sorted.length : this.lowerBound(sorted, end)) - 1;
      for (let i = last; i >= 0; i--) {
        const key = keys[sorted[i]!]!;
        if (key < start) return;
        yield [key, this.valueAt(this.positions[sorted[i]!]!)];
      }
    }
  }

  /**
   * Every entry in key order, for the checkpoint, with no string or array made per entry:
   * the key is a view of its newest record's bytes (valid while the memtable is), and one
   * object carries every entry in turn, so read it before asking for the next. Making a
   * buffer of each key's string was about a tenth of the checkpoint's main-thread time.
   * Frozen memtables only: values are views of the arena.
   */
  *records(): Generator<MemtableRecord> {
    if (!this.frozen) throw new Error('records() walks a frozen memtable only');
    const record: MemtableRecord = { key: new Uint8Array(0), value: null };
    for (let first = 0; first <= 255; first++) {
      const group = this.groups[first];
      if (group === undefined) continue;
      for (const entry of this.sortedEntries(group)) {
        const position = this.positions[entry]!;
        const chunk = this.chunks[position >>> CHUNK_SHIFT]!;
        const offset = position & (CHUNK_BYTES - 1);
        const keyAt = offset + RECORD_HEADER_BYTES;
        record.key = chunk.subarray(keyAt, keyAt + readU32(chunk, offset));
        record.value = this.valueAt(position);
        yield record;
      }
    }
  }

  /**
   * A group's entries in key order: the entries added since the last call are sorted among
   * themselves, then each is placed by a binary search in the sorted ones (few comparisons
   * when few were added) and the two are merged by copying runs.
   */
  private sortedEntries(group: KeyGroup): Int32Array {
    if (group.added.length === 0) return group.sorted;
    const keys = this.keyStrings;
    const added = sortedByKey(group.added, keys);
    group.added = [];
    const old = group.sorted;
    // The first range of a group (a checkpoint's, always) has nothing to merge with.
    if (old.length === 0) {
      group.sorted = added;
      return added;
    }
    const merged = new Int32Array(old.length + added.length);
    let from = 0;
    let to = 0;
    for (const entry of added) {
      const at = this.lowerBound(old, keys[entry]!, from);
      merged.set(old.subarray(from, at), to);
      to += at - from;
      from = at;
      merged[to++] = entry;
    }
    merged.set(old.subarray(from), to);
    group.sorted = merged;
    return merged;
  }

  /** The first index at or after `from` in `sorted` whose key is ≥ `key`. */
  private lowerBound(sorted: Int32Array, key: string, from = 0): number {
    let low = from;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.keyStrings[sorted[middle]!]! < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The index slot (offset of its triple) that holds `key`, or -1. */
  private find(key: Uint8Array, hash: number): number {
    const table = this.table;
    for (let slot = (hash & this.mask) * 3; ; slot = (slot + 3) % table.length) {
      if (table[slot + 1] === 0) return -1;
      if (table[slot] === hash && this.keyAt(table[slot + 2]!, key)) return slot;
    }
  }

  private place(hash: number, entry: number, position: number): void {
    const table = this.table;
    let slot = (hash & this.mask) * 3;
    while (table[slot + 1] !== 0) slot = (slot + 3) % table.length;
    table[slot] = hash;
    table[slot + 1] = entry + 1;
    table[slot + 2] = position;
  }

  private growTable(): void {
    const capacity = 2 * (this.mask + 1);
    this.table = new Int32Array(3 * capacity);
    this.mask = capacity - 1;
    for (let entry = 0; entry < this.count; entry++) {
      this.place(this.hashes[entry]!, entry, this.positions[entry]!);
    }
  }

  /** Whether the record at `position` is of `key`. */
  private keyAt(position: number, key: Uint8Array): boolean {
    const chunk = this.chunks[position >>> CHUNK_SHIFT]!;
    const offset = position & (CHUNK_BYTES - 1);
    if (readU32(chunk, offset) !== key.length) return false;
    const start = offset + RECORD_HEADER_BYTES;
    for (let i = 0; i < key.length; i++) if (chunk[start + i] !== key[i]) return false;
    return true;
  }

  /**
   * Writes `value` over the one of the record at `position` if both are inline and `value`
   * fits in the old one's bytes and their spare ones (a delete over a delete changes
   * nothing); answers whether it did.
   */
  private overwrite(position: number, keyLength: number, value: Uint8Array | null): boolean {
    const chunk = this.chunks[position >>> CHUNK_SHIFT]!;
    const offset = position & (CHUNK_BYTES - 1);
    const field = readU32(chunk, offset + 4);
    if (value === null) return field === DELETED;
    if (field === DELETED || field === LARGE || value.length > INLINE_VALUE_BYTES_MAX) return false;
    const room = (field & 0xffff) - 1 + (field >>> 16);
    if (value.length > room) return false;
    chunk.set(value, offset + RECORD_HEADER_BYTES + keyLength);
    writeU32(chunk, offset + 4, inlineField(value.length, room - value.length));
    return true;
  }

  /** Appends a record of (key, value); answers its position. */
  private append(key: Uint8Array, value: Uint8Array | null): number {
    const inline = value !== null && value.length <= INLINE_VALUE_BYTES_MAX;
    const valueBytes = value === null ? 0 : inline ? value.length + SPARE_BYTES : 4;
    const recordBytes = RECORD_HEADER_BYTES + key.length + valueBytes;
    let chunkIndex: number;
    let offset = 0;
    if (recordBytes > SHARED_CHUNK_RECORD_BYTES_MAX) {
      chunkIndex = this.chunks.push(new Uint8Array(recordBytes)) - 1;
    } else {
      if (this.fillUsed + recordBytes > CHUNK_BYTES) {
        this.fillChunk = this.chunks.push(new Uint8Array(CHUNK_BYTES)) - 1;
        this.fillUsed = 0;
      }
      chunkIndex = this.fillChunk;
      offset = this.fillUsed;
      this.fillUsed += recordBytes;
    }
    if (chunkIndex >= CHUNKS_MAX) throw new Error('the memtable is past 2 GiB');
    const chunk = this.chunks[chunkIndex]!;
    writeU32(chunk, offset, key.length);
    chunk.set(key, offset + RECORD_HEADER_BYTES);
    const valueAt = offset + RECORD_HEADER_BYTES + key.length;
    if (value === null) {
      writeU32(chunk, offset + 4, DELETED);
    } else if (inline) {
      writeU32(chunk, offset + 4, inlineField(value.length, SPARE_BYTES));
      chunk.set(value, valueAt);
    } else {
      writeU32(chunk, offset + 4, LARGE);
      writeU32(chunk, valueAt, this.large.push(value) - 1);
      this.bytes += value.length;
    }
    this.bytes += recordBytes;
    return chunkIndex * CHUNK_BYTES + offset;
  }

  private valueAt(position: number): Uint8Array | null {
    const chunk = this.chunks[position >>> CHUNK_SHIFT];
    if (chunk === undefined) throw new Error(`memtable position ${position} is past the arena`);
    const offset = position & (CHUNK_BYTES - 1);
    const valueAt = offset + RECORD_HEADER_BYTES + readU32(chunk, offset);
    const field = readU32(chunk, offset + 4);
    if (field === DELETED) return null;
    if (field === LARGE) return this.large[readU32(chunk, valueAt)]!;
    const length = (field & 0xffff) - 1;
    if (this.frozen) return chunk.subarray(valueAt, valueAt + length);
    return this.copyOf(chunk, valueAt, length);
  }

  /** A copy of `length` bytes of `chunk` from `start`, for a memtable that takes writes. */
  private copyOf(chunk: Uint8Array, start: number, length: number): Uint8Array {
    if (length > SLAB_COPY_BYTES_MAX) return chunk.slice(start, start + length);
    if (this.copySlabUsed + length > COPY_SLAB_BYTES) {
      this.copySlab = new ArrayBuffer(COPY_SLAB_BYTES);
      this.copySlabUsed = 0;
    }
    const copy = new Uint8Array(this.copySlab, this.copySlabUsed, length);
    copy.set(chunk.subarray(start, start + length));
    this.copySlabUsed += length;
    return copy;
  }
}

/** One entry as `records` hands it out. */
export interface MemtableRecord {
  key: Uint8Array;
  /** Null: a delete. */
  value: Uint8Array | null;
}

/** The entries of the keys that start with one byte. */
interface KeyGroup {
  /** In key order. */
  sorted: Int32Array;
  /** Added since `sorted` was made, in no order. */
  added: number[];
}

/** Doubles per sort key: six bytes of the key in each, so its first 24 bytes. */
const SORT_KEY_DOUBLES = 4;
const SORT_KEY_DIGITS = 6;

/**
 * `entries` in the order of their keys. Each key's first 24 bytes are packed into doubles
 * first, six bytes to a double as base-257 digits (0 past the key's end, byte b as b + 1,
 * so that a key sorts before the longer keys it begins; 257^6 < 2^53, so the doubles are
 * exact), and the sort compares those numbers out of one typed array. Only keys equal in
 * all 24 bytes compare their strings. Comparing the strings cost two cache misses per
 * comparison, the strings being scattered over the heap: sorting a checkpoint of 200,000
 * keys took 1.5-1.7 µs per key that way, 0.7 µs packed.
 */
function sortedByKey(entries: readonly number[], keys: readonly string[]): Int32Array {
  const count = entries.length;
  const packed = new Float64Array(count * SORT_KEY_DOUBLES);
  for (let i = 0; i < count; i++) {
    const key = keys[entries[i]!]!;
    for (let d = 0; d < SORT_KEY_DOUBLES; d++) {
      let value = 0;
      for (let c = d * SORT_KEY_DIGITS; c < (d + 1) * SORT_KEY_DIGITS; c++) {
        value = value * 257 + (c < key.length ? key.charCodeAt(c) + 1 : 0);
      }
      packed[i * SORT_KEY_DOUBLES + d] = value;
    }
  }
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  order.sort((a, b) => {
    for (let d = 0; d < SORT_KEY_DOUBLES; d++) {
      const x = packed[a * SORT_KEY_DOUBLES + d]!;
      const y = packed[b * SORT_KEY_DOUBLES + d]!;
      if (x !== y) return x < y ? -1 : 1;
    }
    // Keys are distinct: no two compare equal.
    return keys[entries[a]!]! < keys[entries[b]!]! ? -1 : 1;
  });
  const sorted = new Int32Array(count);
  for (let i = 0; i < count; i++) sorted[i] = entries[order[i]!]!;
  return sorted;
}

/** A 32-bit hash of key bytes from a seed, as a signed integer (the index is an Int32Array). */
function seededHash(seed: number): (key: Uint8Array) => number {
  return (key) => seededHash32(key, seed) | 0;
}

/** The value field of an inline value of `length` with `spare` bytes after it. */
function inlineField(length: number, spare: number): number {
  return ((length + 1) | (spare << 16)) >>> 0;
}

function readU32(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! |
      (bytes[offset + 1]! << 8) |
      (bytes[offset + 2]! << 16) |
      (bytes[offset + 3]! << 24)) >>>
    0
  );
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
  bytes[offset + 2] = (value >>> 16) & 0xff;
  bytes[offset + 3] = value >>> 24;
}

function grown(array: Int32Array): Int32Array<ArrayBuffer> {
  const next = new Int32Array(2 * array.length);
  next.set(array);
  return next;
}
