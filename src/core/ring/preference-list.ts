// Preference lists: walking the ring clockwise from a key's partition (partition,
// partition + 1, ... wrapping at Q) and taking each owner the first time it is met. The first
// N owners of the walk are the key's replicas; the rest, in order, are the fallbacks that a
// sloppy quorum uses in place of unreachable replicas. These are the plain, allocating forms;
// `Ring` (ring.ts) caches the same walks for the request path.

import { assert } from '../bytes.ts';

/** Every distinct owner, in the order a clockwise walk from `partition` first meets it. */
export function walkRing(owners: readonly string[], partition: number): string[] {
  checkPartition(owners, partition);
  return walk(owners, partition, owners.length);
}

/**
 * The first `n` distinct owners met walking clockwise from `partition`: the partition's
 * replicas. Fewer than `n` distinct owners on the ring gives all of them.
 */
export function preferenceList(owners: readonly string[], partition: number, n: number): string[] {
  checkPartition(owners, partition);
  assert(Number.isSafeInteger(n) && n >= 0, `replica count ${n} is a non-negative integer`);
  return walk(owners, partition, n);
}

function walk(owners: readonly string[], partition: number, n: number): string[] {
  const partitionCount = owners.length;
  const seen = new Set<string>();
  const order: string[] = [];
  for (let step = 0; step < partitionCount && order.length < n; step++) {
    const owner = owners[(partition + step) % partitionCount]!;
    if (seen.has(owner)) continue;
    seen.add(owner);
    order.push(owner);
  }
  return order;
}

function checkPartition(owners: readonly string[], partition: number): void {
  assert(owners.length > 0, 'the ring has partitions');
  assert(
    Number.isInteger(partition) && partition >= 0 && partition < owners.length,
    `partition ${partition} is within 0..${owners.length - 1}`,
  );
}
