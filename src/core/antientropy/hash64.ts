// A small streaming 64-bit hash for anti-entropy: record digests, key placement in a tree's
// leaves, and the hashes of a tree's nodes. Two 32-bit lanes in the manner of murmur3
// (x86_128's block constants, one pair per lane), fed 32-bit words; only 32-bit integer
// arithmetic, so every platform and every version of the engine computes the same value.
//
// Rules kept:
// - Replicas compare these hashes with each other, so the function is part of the wire
//   protocol: changing a constant or the order of the words fed is a protocol change.
// - The ring's hash (src/core/hash.ts) is not reused: every key of a partition shares its
//   high bits, which would put the whole partition in one leaf.

import { assert } from '../bytes.ts';

const TWO_TO_32 = 0x1_0000_0000;

/** One hash in progress. Feed words, then read `high` and `low` after `finish()`. */
export class Hash64 {
  private laneHigh: number;
  private laneLow: number;
  private wordCount = 0;
  private finished = false;
  high = 0;
  low = 0;

  constructor(seed: number) {
    assert(Number.isInteger(seed), 'a hash seed is an integer');
    this.laneHigh = seed >>> 0;
    this.laneLow = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  }

  /** Mixes one 32-bit word into both lanes, with different constants in each. */
  word(value: number): this {
    assert(!this.finished, 'no words after finish');
    let first = Math.imul(value | 0, 0x239b961b);
    first = (first << 15) | (first >>> 17);
    first = Math.imul(first, 0xab0e9789);
    let high = this.laneHigh ^ first;
    high = (high << 19) | (high >>> 13);
    this.laneHigh = (Math.imul(high, 5) + 0x561ccd1b) | 0;

    let second = Math.imul(value | 0, 0x38b34ae5);
    second = (second << 16) | (second >>> 16);
    second = Math.imul(second, 0xa1e38b93);
    let low = this.laneLow ^ second;
    low = (low << 17) | (low >>> 15);
    this.laneLow = (Math.imul(low, 5) + 0x0bcaa747) | 0;
    this.wordCount++;
    return this;
  }

  /** A non-negative safe integer, as its high and low words. */
  safeInteger(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, `${value} is a non-negative safe integer`);
    return this.word(Math.floor(value / TWO_TO_32)).word(value >>> 0);
  }

  /** A string by its UTF-16 code units, behind its length, so "ab","c" differs from "a","bc". */
  text(value: string): this {
    this.word(value.length);
    let index = 0;
    for (; index + 1 < value.length; index += 2) {
      this.word(value.charCodeAt(index) | (value.charCodeAt(index + 1) << 16));
    }
    if (index < value.length) this.word(value.charCodeAt(index));
    return this;
  }

  /** Bytes behind their length, four to a word, little-endian. */
  bytes(value: Uint8Array): this {
    this.word(value.length);
    const blocks = value.length & ~3;
    for (let i = 0; i < blocks; i += 4) {
      this.word(value[i]! | (value[i + 1]! << 8) | (value[i + 2]! << 16) | (value[i + 3]! << 24));
    }
    const remainder = value.length & 3;
    if (remainder > 0) {
      let tail = value[blocks]!;
      if (remainder > 1) tail |= value[blocks + 1]! << 8;
      if (remainder > 2) tail |= value[blocks + 2]! << 16;
      this.word(tail);
    }
    return this;
  }

  /** Ends the hash: `high` and `low` then hold its two unsigned 32-bit words. */
  finish(): this {
    assert(!this.finished, 'a hash finishes once');
    this.finished = true;
    let high = this.laneHigh ^ this.wordCount;
    let low = this.laneLow ^ this.wordCount;
    high = (high + low) | 0;
    low = (low + high) | 0;
    high = finalMix(high);
    low = finalMix(low);
    high = (high + low) | 0;
    low = (low + high) | 0;
    this.high = high >>> 0;
    this.low = low >>> 0;
    return this;
  }
}

/** murmur3's finaliser: every input bit affects every output bit. */
function finalMix(value: number): number {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
