// Which partition a key falls in. The ring is cut into Q equal partitions, Q a power of two
// from 1 to 65536, so a partition number fits in a u16 (the storage layout keeps it as one).
// A key's partition is the top log2(Q) bits of the high word of its 64-bit ring hash: each
// partition is one contiguous arc of the ring, and the arcs are numbered clockwise.
// Q is fixed when a cluster is created; changing it would move every key.

import { assert } from '../bytes.ts';
import { keyHashHigh } from '../hash.ts';

export const PARTITION_COUNT_DEFAULT = 256;
export const PARTITION_COUNT_MAX = 65536;

export function isValidPartitionCount(partitionCount: number): boolean {
  return (
    Number.isInteger(partitionCount) &&
    partitionCount >= 1 &&
    partitionCount <= PARTITION_COUNT_MAX &&
    (partitionCount & (partitionCount - 1)) === 0
  );
}

/** log2(partitionCount): how many top bits of the ring hash name the partition. */
export function partitionBitsOf(partitionCount: number): number {
  if (!isValidPartitionCount(partitionCount)) {
    throw new Error(`partition count ${partitionCount} is not a power of two from 1 to 65536`);
  }
  const bits = 31 - Math.clz32(partitionCount);
  assert(1 << bits === partitionCount, 'partition bits match the count');
  return bits;
}

/**
 * The partition of a ring hash's high word, for callers that computed `partitionBitsOf` once
 * (the hot path). A shift by 32 is a shift by 0 in JavaScript, hence the explicit zero case.
 */
export function partitionOfHash(hashHigh: number, partitionBits: number): number {
  assert(partitionBits >= 0 && partitionBits <= 16, 'partition bits within 0..16');
  return partitionBits === 0 ? 0 : hashHigh >>> (32 - partitionBits);
}

/** The partition of `key` in keyspace `keyspaceId` on a ring of `partitionCount` partitions. */
export function partitionOf(keyspaceId: number, key: Uint8Array, partitionCount: number): number {
  return partitionOfHash(keyHashHigh(keyspaceId, key), partitionBitsOf(partitionCount));
}
