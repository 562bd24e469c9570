// The Merkle tree of one partition of one keyspace on one replica, kept up to date with
// every write so that anti-entropy never has to read the partition to know its hash.
//
// Shape: a fixed number of leaves (a power of two, 16 to 65536, 1024 by default) and inner
// levels of fanout 16 above them, up to one root. Level 0 is the leaves; the root is the
// last level. A key's leaf comes from its own hash (not the ring's hash, whose high bits
// every key of a partition shares). Every hash is 64 bits, kept as two u32 words.
//
// Rules kept:
// - A leaf's hash is the sum, word by word mod 2^32, of one 64-bit hash per key it holds,
//   taken over (key, record digest). Addition is commutative and has an inverse, so a write
//   updates a leaf in O(1) whatever order the keys came in, and a tree updated key by key
//   equals the tree built from scratch.
// - Inner nodes hash their children in order (a true Merkle hash). They are recomputed
//   lazily: an update marks the leaf's parent dirty, and reading a hash above the leaves
//   first recomputes the dirty nodes, level by level, marking each one's parent in turn.
// - Replicas compare these hashes, so the shape, the fanout and every hash are part of the
//   wire protocol (see docs/ANTI-ENTROPY.md).
//
// Memory per tree: 8 bytes per leaf, 8 bytes and 1 dirty byte per inner node (about 1/15
// of the leaves), plus a few hundred bytes of objects: about 9 KiB with 1024 leaves,
// 35 KiB with 4096, 550 KiB with 65536. Keys are not held; only their hashes are summed.

import { assert } from '../bytes.ts';
import { Hash64 } from './hash64.ts';
import { isValidRecordDigest } from './record-digest.ts';

export const TREE_FANOUT = 16;
export const LEAF_COUNT_DEFAULT = 1024;
export const LEAF_COUNT_MIN = 16;
export const LEAF_COUNT_MAX = 65536;
/** Bytes of one node's hash on the wire: its high word, then its low word, big-endian. */
export const NODE_HASH_BYTES = 8;

const KEY_SEED = 0x6b65_7931;
const ENTRY_SEED = 0x656e_7431;
const NODE_SEED = 0x6e6f_6431;

/** One key of a partition and the digest of its record (record-digest.ts). */
export interface TreeEntry {
  readonly key: Uint8Array;
  readonly digest: number;
}

export function isValidLeafCount(leafCount: unknown): leafCount is number {
  return (
    typeof leafCount === 'number' &&
    Number.isInteger(leafCount) &&
    leafCount >= LEAF_COUNT_MIN &&
    leafCount <= LEAF_COUNT_MAX &&
    (leafCount & (leafCount - 1)) === 0
  );
}

/** The number of nodes at each level, leaves first, root (1) last. */
export function levelSizesOf(leafCount: number): readonly number[] {
  assert(isValidLeafCount(leafCount), `leaf count ${leafCount} is a power of two in range`);
  const sizes = [leafCount];
  while (sizes[sizes.length - 1]! > 1) {
    sizes.push(Math.ceil(sizes[sizes.length - 1]! / TREE_FANOUT));
  }
  assert(sizes.length <= 5, 'at most four levels above 65536 leaves');
  return sizes;
}

export class PartitionTree {
  readonly leafCount: number;
  readonly levelCount: number;
  private readonly leafBits: number;
  private readonly sizes: readonly number[];
  /** Per level, two words per node: high, then low. */
  private readonly hashes: readonly Uint32Array[];
  /** Per level above the leaves, 1 where the node must be recomputed; level 0 unused. */
  private readonly dirty: readonly Uint8Array[];
  private anyDirty: boolean;
  private keys = 0;

  constructor(leafCount: number = LEAF_COUNT_DEFAULT) {
    this.sizes = levelSizesOf(leafCount);
    this.leafCount = leafCount;
    this.levelCount = this.sizes.length;
    this.leafBits = Math.log2(leafCount);
    this.hashes = this.sizes.map((size) => new Uint32Array(2 * size));
    this.dirty = this.sizes.map((size, level) => new Uint8Array(level === 0 ? 0 : size));
    // Every inner node starts dirty, so the empty tree's hashes come from the same code
    // path as every other tree's.
    for (let level = 1; level < this.levelCount; level++) this.dirty[level]!.fill(1);
    this.anyDirty = true;
  }

  /** The tree of a partition's (key, digest) pairs; each key must appear once. */
  static build(
    entries: Iterable<TreeEntry>,
    leafCount: number = LEAF_COUNT_DEFAULT,
  ): PartitionTree {
    const tree = new PartitionTree(leafCount);
    for (const entry of entries) tree.update(entry.key, undefined, entry.digest);
    return tree;
  }

  /** Keys the tree holds. */
  get keyCount(): number {
    return this.keys;
  }

  levelSize(level: number): number {
    const size = this.sizes[level];
    assert(size !== undefined, `level ${level} of ${this.levelCount}`);
    return size;
  }

  leafOf(key: Uint8Array): number {
    const hash = new Hash64(KEY_SEED).bytes(key).finish();
    return hash.high >>> (32 - this.leafBits);
  }

  /**
   * A key's record changed: from `oldDigest` (undefined: the key was absent) to `newDigest`
   * (undefined: the key is gone). O(1) plus the key's length.
   */
  update(key: Uint8Array, oldDigest: number | undefined, newDigest: number | undefined): void {
    assert(oldDigest === undefined || isValidRecordDigest(oldDigest), 'old digest valid');
    assert(newDigest === undefined || isValidRecordDigest(newDigest), 'new digest valid');
    if (oldDigest === newDigest) return;
    const keyHash = new Hash64(KEY_SEED).bytes(key).finish();
    const leaf = keyHash.high >>> (32 - this.leafBits);
    const words = this.hashes[0]!;
    if (oldDigest !== undefined) {
      const old = entryHash(keyHash, oldDigest);
      words[2 * leaf] = (words[2 * leaf]! - old.high) >>> 0;
      words[2 * leaf + 1] = (words[2 * leaf + 1]! - old.low) >>> 0;
      this.keys--;
    }
    if (newDigest !== undefined) {
      const added = entryHash(keyHash, newDigest);
      words[2 * leaf] = (words[2 * leaf]! + added.high) >>> 0;
      words[2 * leaf + 1] = (words[2 * leaf + 1]! + added.low) >>> 0;
      this.keys++;
    }
    assert(this.keys >= 0, 'a key was removed that the tree never held');
    if (this.levelCount > 1) {
      this.dirty[1]![Math.floor(leaf / TREE_FANOUT)] = 1;
      this.anyDirty = true;
    }
  }

  /** The root's hash, 8 bytes. */
  root(): Uint8Array {
    return this.levelHashes(this.levelCount - 1);
  }

  leafHashes(): Uint8Array {
    return this.levelHashes(0);
  }

  /** Every hash of one level, 8 bytes per node in order. A copy. */
  levelHashes(level: number): Uint8Array {
    const size = this.levelSize(level);
    this.refresh();
    const bytes = new Uint8Array(size * NODE_HASH_BYTES);
    const view = new DataView(bytes.buffer);
    const words = this.hashes[level]!;
    for (let index = 0; index < size; index++) {
      view.setUint32(index * NODE_HASH_BYTES, words[2 * index]!);
      view.setUint32(index * NODE_HASH_BYTES + 4, words[2 * index + 1]!);
    }
    return bytes;
  }

  /** The first child (at `level - 1`) of node `index` at `level`, and how many it has. */
  childRange(level: number, index: number): { readonly first: number; readonly count: number } {
    assert(level >= 1 && level < this.levelCount, `level ${level} has children`);
    assert(Number.isInteger(index) && index >= 0 && index < this.sizes[level]!, 'node exists');
    const first = index * TREE_FANOUT;
    return { first, count: Math.min(TREE_FANOUT, this.sizes[level - 1]! - first) };
  }

  /** The hashes of the children of each of `nodes` (at `level`), in order, 8 bytes each. */
  childHashes(level: number, nodes: readonly number[]): Uint8Array {
    let total = 0;
    for (const node of nodes) total += this.childRange(level, node).count;
    this.refresh();
    const bytes = new Uint8Array(total * NODE_HASH_BYTES);
    const view = new DataView(bytes.buffer);
    const words = this.hashes[level - 1]!;
    let offset = 0;
    for (const node of nodes) {
      const { first, count } = this.childRange(level, node);
      for (let child = first; child < first + count; child++) {
        view.setUint32(offset, words[2 * child]!);
        view.setUint32(offset + 4, words[2 * child + 1]!);
        offset += NODE_HASH_BYTES;
      }
    }
    assert(offset === bytes.length, 'every child hash written');
    return bytes;
  }

  /** Whether node `index` at `level` has the hash found at `offset` in `bytes`. */
  hashEquals(level: number, index: number, bytes: Uint8Array, offset: number): boolean {
    assert(index >= 0 && index < this.levelSize(level), `node ${index} of level ${level}`);
    assert(offset >= 0 && offset + NODE_HASH_BYTES <= bytes.length, 'the hash is in the bytes');
    this.refresh();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const words = this.hashes[level]!;
    return (
      view.getUint32(offset) === words[2 * index] &&
      view.getUint32(offset + 4) === words[2 * index + 1]
    );
  }

  /** Recomputes the dirty inner nodes, lowest level first. */
  private refresh(): void {
    if (!this.anyDirty) return;
    for (let level = 1; level < this.levelCount; level++) {
      const marks = this.dirty[level]!;
      for (let index = 0; index < marks.length; index++) {
        if (marks[index] === 0) continue;
        marks[index] = 0;
        this.recompute(level, index);
        if (level + 1 < this.levelCount)
          this.dirty[level + 1]![Math.floor(index / TREE_FANOUT)] = 1;
      }
    }
    this.anyDirty = false;
  }

  private recompute(level: number, index: number): void {
    const { first, count } = this.childRange(level, index);
    const children = this.hashes[level - 1]!;
    const hash = new Hash64(NODE_SEED).word(level).word(count);
    for (let child = first; child < first + count; child++) {
      hash.word(children[2 * child]!).word(children[2 * child + 1]!);
    }
    hash.finish();
    const words = this.hashes[level]!;
    words[2 * index] = hash.high;
    words[2 * index + 1] = hash.low;
  }
}

/** The 64-bit hash one key with one record digest adds to its leaf. */
function entryHash(keyHash: Hash64, digest: number): Hash64 {
  return new Hash64(ENTRY_SEED).word(keyHash.high).word(keyHash.low).safeInteger(digest).finish();
}
