// The replicas of a partition as DESIGN section 3 defines them: walk the ring clockwise from
// the partition and take owners until `n` distinct nodes are found; the walk past `n` gives
// the fallback nodes. This mirrors `preferenceList(owners, partition, n)` of the cluster's
// ring module with the same signature, so the client can import that one instead once it
// is available; until then the two must agree, and the client tests check this copy
// against a naive reference.

/** The first `n` distinct owners met walking clockwise from `partition` (fewer if the ring has fewer). */
export function preferenceList(
  owners: readonly string[],
  partition: number,
  n: number,
): readonly string[] {
  if (!(Number.isInteger(partition) && partition >= 0 && partition < owners.length)) {
    throw new Error(`partition ${partition} is not on a ring of ${owners.length} partitions`);
  }
  if (!(n >= 1)) throw new Error(`replication factor ${n} is not at least 1`);
  const nodes: string[] = [];
  const seen = new Set<string>();
  for (let step = 0; step < owners.length && nodes.length < n; step++) {
    const owner = owners[(partition + step) % owners.length]!;
    if (seen.has(owner)) continue;
    seen.add(owner);
    nodes.push(owner);
  }
  return nodes;
}
