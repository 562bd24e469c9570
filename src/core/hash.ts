// The stable 64-bit hash of (keyspace, key) that places keys on the ring. It must never
// change: data on disk is laid out by it. Two murmur3 x86_32 hashes with different seeds
// give the high and low words; only 32-bit integer arithmetic, so it is identical on every
// platform and fast in JavaScript.

const SEED_HIGH = 0x5f3759df;
const SEED_LOW = 0x2545f491;

/** One block mixed into the running hash `h`; answers the next `h`. */
function mixBlock(h: number, block: number): number {
  let k = Math.imul(block, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function murmur3(bytes: Uint8Array, prefix: number, seed: number): number {
  // The keyspace id goes first, as its own block, so equal keys in two keyspaces differ.
  let h = mixBlock(seed >>> 0, prefix >>> 0);
  const length = bytes.length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    h = mixBlock(
      h,
      bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24),
    );
  }
  const remainder = length & 3;
  if (remainder > 0) {
    let tail = bytes[blocks]!;
    if (remainder > 1) tail |= bytes[blocks + 1]! << 8;
    if (remainder > 2) tail |= bytes[blocks + 2]! << 16;
    let k = Math.imul(tail, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length + 4;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of bytes under a seed the caller picks, for hash tables (the ring uses keyHashHigh). */
export function seededHash32(bytes: Uint8Array, seed: number): number {
  return murmur3(bytes, 0, seed);
}

/** The high 32 bits of the key's 64-bit ring position. */
export function keyHashHigh(keyspaceId: number, key: Uint8Array): number {
  return murmur3(key, keyspaceId, SEED_HIGH);
}

/** The full 64-bit ring position, as a bigint (for display and tests; not the hot path). */
export function keyHash64(keyspaceId: number, key: Uint8Array): bigint {
  return (
    (BigInt(murmur3(key, keyspaceId, SEED_HIGH)) << 32n) |
    BigInt(murmur3(key, keyspaceId, SEED_LOW))
  );
}

/** The partition of a key when the ring has `partitionCount` (a power of two) partitions. */
export function partitionOf(keyspaceId: number, key: Uint8Array, partitionCount: number): number {
  const bits = Math.log2(partitionCount);
  if (!Number.isInteger(bits) || bits < 0 || bits > 16) {
    throw new Error(`partition count ${partitionCount} is not a power of two up to 65536`);
  }
  if (bits === 0) return 0;
  return keyHashHigh(keyspaceId, key) >>> (32 - bits);
}
