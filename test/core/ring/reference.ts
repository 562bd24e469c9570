// Naive, obviously correct references for the ring tests, and the seeded property settings
// they share. Slow on purpose: each is the definition written out as a loop.
import fc from 'fast-check';

/**
 * fast-check settings with a fixed seed, so every run draws the same cases. A failure prints
 * the seed and path; replay it with RING_PROPERTY_SEED=<seed>.
 */
export function seeded(numRuns: number): fc.Parameters<unknown> {
  const seed = Number(process.env['RING_PROPERTY_SEED'] ?? 20240501);
  return { seed, numRuns, endOnFailure: false };
}

export function memberIds(count: number, prefix = 'node-'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}${index}`);
}

export function naiveCounts(owners: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/** Whether every run of `width` consecutive partitions (wrapping) has distinct owners. */
export function windowsDistinct(owners: readonly string[], width: number): boolean {
  return brokenWindows(owners, width) === 0;
}

/** How many runs of `width` consecutive partitions (one starting at each partition) repeat an owner. */
export function brokenWindows(owners: readonly string[], width: number): number {
  let broken = 0;
  for (let start = 0; start < owners.length; start++) {
    const seen: string[] = [];
    for (let offset = 0; offset < width; offset++) {
      const owner = owners[(start + offset) % owners.length]!;
      if (seen.includes(owner)) {
        broken++;
        break;
      }
      seen.push(owner);
    }
  }
  return broken;
}

/** The clockwise walk: step by step, each owner the first time it appears. */
export function naiveWalk(owners: readonly string[], partition: number): string[] {
  const walk: string[] = [];
  for (let step = 0; step < owners.length; step++) {
    const owner = owners[(partition + step) % owners.length]!;
    if (!walk.includes(owner)) walk.push(owner);
  }
  return walk;
}

/** Balance as the contract states it: every member owns floor(Q/M) or ceil(Q/M). */
export function isBalanced(owners: readonly string[], members: readonly string[]): boolean {
  const counts = naiveCounts(owners);
  const low = Math.floor(owners.length / members.length);
  const high = Math.ceil(owners.length / members.length);
  if (counts.size !== members.length) return false;
  return members.every((member) => {
    const count = counts.get(member) ?? 0;
    return count === low || count === high;
  });
}

/** A random permutation drawn from a seeded fast-check integer list. */
export function permuted<T>(items: readonly T[], keys: readonly number[]): T[] {
  return items
    .map((item, index) => ({ item, key: keys[index % Math.max(1, keys.length)]! * 1000 + index }))
    .sort((a, b) => a.key - b.key)
    .map(({ item }) => item);
}
