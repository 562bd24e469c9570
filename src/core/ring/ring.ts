// A ring built from its partition owners, answering the request path's questions without
// allocating: who owns a partition, its N replicas, and the full clockwise walk whose tail
// holds the sloppy-quorum fallbacks. Walks are computed on first use and cached per
// partition (Q x M strings is up to 65536 x 64, too much to build eagerly when most
// partitions of a large ring are never asked about on one node); replica lists are cached
// per (n, partition). A Ring never changes: a new owner table makes a new Ring.

import { assert } from '../bytes.ts';
import { isValidPartitionCount } from './partition.ts';

export interface OwnershipChange {
  readonly partition: number;
  readonly from: string;
  readonly to: string;
}

export class Ring {
  readonly partitionCount: number;
  /** The distinct owners, sorted by id. */
  readonly members: readonly string[];
  private readonly owners: readonly string[];
  /** Index into `members` of each partition's owner. */
  private readonly ownerIndexes: Uint16Array;
  private readonly walks: (readonly string[] | undefined)[];
  private readonly replicaLists = new Map<number, (readonly string[] | undefined)[]>();
  private readonly ownedPartitions = new Map<string, readonly number[]>();
  /** Scratch for walks: the walk number in which each member was last met. */
  private readonly metInWalk: Uint32Array;
  private walkNumber = 0;

  constructor(owners: readonly string[]) {
    if (!isValidPartitionCount(owners.length)) {
      throw new Error(`a ring of ${owners.length} partitions: not a power of two up to 65536`);
    }
    this.partitionCount = owners.length;
    this.owners = [...owners];
    const partitionsByOwner = new Map<string, number[]>();
    for (let partition = 0; partition < owners.length; partition++) {
      const owner = owners[partition]!;
      if (typeof owner !== 'string' || owner.length === 0) {
        throw new Error(`partition ${partition} has no owner`);
      }
      const owned = partitionsByOwner.get(owner);
      if (owned === undefined) partitionsByOwner.set(owner, [partition]);
      else owned.push(partition);
    }
    this.members = [...partitionsByOwner.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const indexOfMember = new Map<string, number>();
    this.members.forEach((member, index) => indexOfMember.set(member, index));
    this.ownerIndexes = new Uint16Array(owners.length);
    for (let partition = 0; partition < owners.length; partition++) {
      this.ownerIndexes[partition] = indexOfMember.get(owners[partition]!)!;
    }
    for (const [owner, owned] of partitionsByOwner) this.ownedPartitions.set(owner, owned);
    this.walks = new Array<readonly string[] | undefined>(owners.length).fill(undefined);
    this.metInWalk = new Uint32Array(this.members.length);
    assert(this.members.length <= this.partitionCount, 'no more members than partitions');
  }

  /** The owner table, indexed by partition. */
  ownerTable(): readonly string[] {
    return this.owners;
  }

  ownerOf(partition: number): string {
    this.checkPartition(partition);
    return this.owners[partition]!;
  }

  /** Every member in the order a clockwise walk from `partition` first meets it. */
  walk(partition: number): readonly string[] {
    this.checkPartition(partition);
    return this.walks[partition] ?? this.computeWalk(partition);
  }

  /** The first min(n, M) members of the walk: the partition's replicas, primary first. */
  replicas(partition: number, n: number): readonly string[] {
    assert(Number.isSafeInteger(n) && n >= 1, `replica count ${n} is a positive integer`);
    const walk = this.walk(partition);
    if (n >= walk.length) return walk;
    let lists = this.replicaLists.get(n);
    if (lists === undefined) {
      lists = new Array<readonly string[] | undefined>(this.partitionCount).fill(undefined);
      this.replicaLists.set(n, lists);
    }
    let list = lists[partition];
    if (list === undefined) {
      list = Object.freeze(walk.slice(0, n));
      lists[partition] = list;
    }
    return list;
  }

  /** The partitions `node` owns, ascending (empty for a node that owns none). */
  partitionsOwnedBy(node: string): readonly number[] {
    return this.ownedPartitions.get(node) ?? [];
  }

  /** How many partitions each member owns. */
  ownedCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const member of this.members) counts.set(member, this.partitionsOwnedBy(member).length);
    return counts;
  }

  /** The partitions whose n replicas include `node`, ascending: what it stores at n. */
  partitionsReplicatedBy(node: string, n: number): number[] {
    const replicated: number[] = [];
    if (!this.ownedPartitions.has(node)) return replicated;
    for (let partition = 0; partition < this.partitionCount; partition++) {
      if (this.replicas(partition, n).includes(node)) replicated.push(partition);
    }
    return replicated;
  }

  private computeWalk(partition: number): readonly string[] {
    const memberCount = this.members.length;
    this.walkNumber += 1;
    if (this.walkNumber === 0xffffffff) {
      this.metInWalk.fill(0);
      this.walkNumber = 1;
    }
    const order: string[] = [];
    for (let step = 0; step < this.partitionCount && order.length < memberCount; step++) {
      const index = this.ownerIndexes[(partition + step) & (this.partitionCount - 1)]!;
      if (this.metInWalk[index] === this.walkNumber) continue;
      this.metInWalk[index] = this.walkNumber;
      order.push(this.members[index]!);
    }
    assert(order.length === memberCount, 'a full walk meets every member');
    const walk = Object.freeze(order);
    this.walks[partition] = walk;
    return walk;
  }

  private checkPartition(partition: number): void {
    assert(
      Number.isInteger(partition) && partition >= 0 && partition < this.partitionCount,
      `partition ${partition} is within 0..${this.partitionCount - 1}`,
    );
  }
}

/** The partitions whose owner differs between two owner tables of one ring, ascending. */
export function ownershipChanges(
  before: readonly string[],
  after: readonly string[],
): OwnershipChange[] {
  assert(before.length === after.length, 'both tables describe the same ring');
  const changes: OwnershipChange[] = [];
  for (let partition = 0; partition < before.length; partition++) {
    const from = before[partition]!;
    const to = after[partition]!;
    if (from !== to) changes.push({ partition, from, to });
  }
  return changes;
}
