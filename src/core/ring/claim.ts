// The claim algorithm: which member owns each of the Q partitions. Pure and deterministic in
// its inputs; member order does not matter (ids are sorted first).
//
// Guarantees (docs/RING.md has the proofs, test/core/ring/claim.test.ts checks them):
// - Balance: every member owns floor(Q/M) or ceil(Q/M) partitions.
// - A fresh claim keeps the owners of any w consecutive partitions distinct (wrapping around
//   the ring) for every w up to `freshClaimSpacing(M, Q)`; when targetN is at most that, a
//   preference list of targetN nodes is targetN consecutive partitions.
// - An incremental claim (from the owners before a change) moves the fewest partitions that
//   balance allows: after one member joins, exactly floor(Q/(M+1)) partitions move, all to
//   the joiner; after one leaves, exactly the leaver's partitions move. It keeps windows of
//   targetN partitions distinct where it can choose, and never breaks balance for it.

import { assert } from '../bytes.ts';
import { isValidPartitionCount } from './partition.ts';

/** Riak's default target_n_val: replicas spread over 4 distinct nodes when M allows. */
export const TARGET_N_DEFAULT = 4;

export function defaultTargetN(memberCount: number): number {
  return Math.min(memberCount, TARGET_N_DEFAULT);
}

/**
 * The owner of every partition (indexed by partition). With `previousOwners` (the owners
 * before members joined or left), only the partitions that balance requires move. Throws
 * on zero members, duplicate or empty ids, Q not a power of two up to 65536, more members
 * than partitions, or previous owners of another partition count.
 */
export function claimPartitions(
  members: readonly string[],
  partitionCount: number,
  previousOwners: readonly string[] | null,
  targetN: number = defaultTargetN(members.length),
): string[] {
  const sortedMembers = checkedSortedMembers(members, partitionCount);
  if (!(Number.isSafeInteger(targetN) && targetN >= 1)) {
    throw new Error(`targetN ${targetN} is not a positive integer`);
  }
  const windowLength = Math.min(targetN, sortedMembers.length);
  if (previousOwners === null) return freshClaim(sortedMembers, partitionCount);
  if (previousOwners.length !== partitionCount) {
    throw new Error(
      `previous owners name ${previousOwners.length} partitions, the ring has ${partitionCount}`,
    );
  }
  return incrementalClaim(sortedMembers, partitionCount, previousOwners, windowLength);
}

/**
 * The least distance, in partitions, between two partitions of one member in a fresh claim
 * of `partitionCount` partitions over `memberCount` members: any window of that many
 * consecutive partitions has distinct owners. M when M divides Q; otherwise, with
 * Q = k*M + r, M - ceil((M - r) / k).
 */
export function freshClaimSpacing(memberCount: number, partitionCount: number): number {
  assert(memberCount >= 1 && memberCount <= partitionCount, 'between 1 and Q members');
  const laps = Math.floor(partitionCount / memberCount);
  const remainder = partitionCount % memberCount;
  if (remainder === 0) return memberCount;
  return memberCount - Math.ceil((memberCount - remainder) / laps);
}

function checkedSortedMembers(members: readonly string[], partitionCount: number): string[] {
  if (!isValidPartitionCount(partitionCount)) {
    throw new Error(`partition count ${partitionCount} is not a power of two from 1 to 65536`);
  }
  if (members.length === 0) throw new Error('a ring needs at least one member');
  if (members.length > partitionCount) {
    throw new Error(`${members.length} members cannot share ${partitionCount} partitions`);
  }
  const sortedMembers = [...members].sort(compareIds);
  for (let i = 0; i < sortedMembers.length; i++) {
    const id = sortedMembers[i]!;
    if (typeof id !== 'string' || id.length === 0) throw new Error('a member id is empty');
    if (i > 0 && sortedMembers[i - 1] === id) throw new Error(`member ${id} is listed twice`);
  }
  return sortedMembers;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Laps of the sorted members, one after another. When M does not divide Q, k = floor(Q/M)
 * full laps are not enough and k + 1 are too many by s = M - r places: laps 1..k skip s
 * members between them, each member at most once, in contiguous runs that advance with the
 * laps (lap j skips members floor((j-1)s/k) .. floor(js/k) - 1). A skip shortens the gap
 * between two turns of one member by one, and a member's gap spans the skips of at most one
 * lap, which is at most ceil(s/k): hence `freshClaimSpacing`. Lap 0 skips nobody, so the wrap
 * from lap k back to lap 0 is no worse than any other lap boundary.
 */
function freshClaim(sortedMembers: readonly string[], partitionCount: number): string[] {
  const memberCount = sortedMembers.length;
  const laps = Math.floor(partitionCount / memberCount);
  const skips =
    partitionCount % memberCount === 0 ? 0 : memberCount - (partitionCount % memberCount);
  const owners: string[] = [];
  const lapCount = skips === 0 ? laps : laps + 1;
  for (let lap = 0; lap < lapCount; lap++) {
    const skipFrom = lap === 0 ? 0 : Math.floor(((lap - 1) * skips) / laps);
    const skipTo = lap === 0 ? 0 : Math.floor((lap * skips) / laps);
    for (let member = 0; member < memberCount; member++) {
      if (member >= skipFrom && member < skipTo) continue;
      owners.push(sortedMembers[member]!);
    }
  }
  assert(owners.length === partitionCount, 'the laps fill the ring exactly');
  return owners;
}

/** No owner yet: the previous owner is no longer a member. */
const UNOWNED = -1;

/**
 * Targets first: each member ends with floor(Q/M) or that plus one, the extra ones going to
 * the members that own most now (ties to the earlier id), which makes the number of moves
 * the least possible. Then partitions whose owner left are handed out in ring order, each to
 * a member still short of its target; then members still short take partitions from
 * members over theirs. Taking a partition away never puts two equal owners in a window, so
 * the window property only constrains the receiver, and every choice prefers a receiver
 * (or position) with no partition of its own within targetN - 1 places.
 */
function incrementalClaim(
  sortedMembers: readonly string[],
  partitionCount: number,
  previousOwners: readonly string[],
  windowLength: number,
): string[] {
  const memberCount = sortedMembers.length;
  const indexOfMember = new Map<string, number>();
  for (let i = 0; i < memberCount; i++) indexOfMember.set(sortedMembers[i]!, i);
  const owner = new Int32Array(partitionCount);
  const counts = new Int32Array(memberCount);
  for (let partition = 0; partition < partitionCount; partition++) {
    const index = indexOfMember.get(previousOwners[partition]!) ?? UNOWNED;
    owner[partition] = index;
    if (index !== UNOWNED) counts[index]! += 1;
  }
  const need = targetNeeds(counts, partitionCount);
  const state: ClaimState = { owner, need, windowLength, partitionCount, memberCount };
  handOutUnowned(state);
  for (let member = 0; member < memberCount; member++) {
    if (need[member]! > 0) takeFromSurplus(state, member);
  }
  const owners: string[] = [];
  for (let partition = 0; partition < partitionCount; partition++) {
    assert(owner[partition] !== UNOWNED, `partition ${partition} has an owner`);
    owners.push(sortedMembers[owner[partition]!]!);
  }
  for (let member = 0; member < memberCount; member++) assert(need[member] === 0, 'targets met');
  return owners;
}

interface ClaimState {
  /** Member index owning each partition, or UNOWNED. */
  readonly owner: Int32Array;
  /** Per member: target minus owned; positive is short, negative is over. */
  readonly need: Int32Array;
  readonly windowLength: number;
  readonly partitionCount: number;
  readonly memberCount: number;
}

function targetNeeds(counts: Int32Array, partitionCount: number): Int32Array {
  const memberCount = counts.length;
  const base = Math.floor(partitionCount / memberCount);
  const extra = partitionCount % memberCount;
  const order = Array.from({ length: memberCount }, (_, index) => index);
  order.sort((a, b) => counts[b]! - counts[a]! || a - b);
  const need = new Int32Array(memberCount);
  let total = 0;
  for (let rank = 0; rank < memberCount; rank++) {
    const member = order[rank]!;
    const target = base + (rank < extra ? 1 : 0);
    need[member] = target - counts[member]!;
    total += target;
  }
  assert(total === partitionCount, 'targets add up to Q');
  return need;
}

/**
 * Each unowned partition, in ring order, goes to a member short of its target: first one
 * with no partition within windowLength - 1 places, then the one furthest short (so the last
 * partitions are not left to a single member that may sit next to them), then the one whose
 * nearest partition is furthest away, then the earlier id.
 */
function handOutUnowned(state: ClaimState): void {
  const { owner, need, partitionCount, memberCount } = state;
  // The scan for nearby partitions stops here: beyond a few laps every member is "far".
  const radius = Math.min(Math.floor(partitionCount / 2), 4 * memberCount);
  const nearest = new Int32Array(memberCount);
  for (let partition = 0; partition < partitionCount; partition++) {
    if (owner[partition] !== UNOWNED) continue;
    nearest.fill(radius + 1);
    for (let distance = radius; distance >= 1; distance--) {
      const after = owner[(partition + distance) % partitionCount]!;
      const before = owner[(partition - distance + partitionCount) % partitionCount]!;
      if (after !== UNOWNED) nearest[after] = distance;
      if (before !== UNOWNED) nearest[before] = distance;
    }
    let chosen = UNOWNED;
    for (let member = 0; member < memberCount; member++) {
      if (need[member]! <= 0) continue;
      if (chosen === UNOWNED || betterReceiver(state, nearest, member, chosen)) chosen = member;
    }
    assert(chosen !== UNOWNED, 'an unowned partition always has a member short of target');
    owner[partition] = chosen;
    need[chosen]! -= 1;
  }
}

function betterReceiver(
  state: ClaimState,
  nearest: Int32Array,
  member: number,
  chosen: number,
): boolean {
  // A receiver d < windowLength places from its own partition breaks windowLength - d
  // windows; d at or past windowLength breaks none.
  const closeness = Math.min(nearest[member]!, state.windowLength);
  const chosenCloseness = Math.min(nearest[chosen]!, state.windowLength);
  if (closeness !== chosenCloseness) return closeness > chosenCloseness;
  const need = state.need[member]!;
  const chosenNeed = state.need[chosen]!;
  if (need !== chosenNeed) return need > chosenNeed;
  return nearest[member]! > nearest[chosen]!;
}

/**
 * A member short of its target takes partitions from members over theirs. It aims at evenly
 * spaced points around the ring and takes the nearest partition of a member with surplus that
 * keeps its own partitions windowLength apart; failing that, any such partition anywhere;
 * failing that (balance comes first), any partition of a member with surplus.
 */
function takeFromSurplus(state: ClaimState, member: number): void {
  const { owner, need, partitionCount } = state;
  const wanted = need[member]!;
  assert(wanted > 0, 'the member is short');
  const radius = Math.floor(partitionCount / (2 * wanted));
  const take = (partition: number): void => {
    need[owner[partition]!]! += 1;
    owner[partition] = member;
    need[member]! -= 1;
  };
  // One pass clockwise: the earliest usable partition from each aim on (less half a spacing),
  // never before the previous pick, so picks stay in order and the scan is O(Q).
  let cursor = 0;
  for (let point = 0; point < wanted && need[member]! > 0; point++) {
    const aim = Math.floor((point * partitionCount) / wanted);
    for (let partition = Math.max(aim - radius, cursor); partition < partitionCount; partition++) {
      if (hasSurplus(state, partition) && isClearFor(state, member, partition)) {
        take(partition);
        cursor = partition + 1;
        break;
      }
    }
  }
  for (let partition = 0; partition < partitionCount && need[member]! > 0; partition++) {
    if (hasSurplus(state, partition) && isClearFor(state, member, partition)) take(partition);
  }
  for (let partition = 0; partition < partitionCount && need[member]! > 0; partition++) {
    if (hasSurplus(state, partition)) take(partition);
  }
  assert(need[member] === 0, 'surpluses cover every shortfall');
}

function hasSurplus(state: ClaimState, partition: number): boolean {
  const current = state.owner[partition]!;
  return current !== UNOWNED && state.need[current]! < 0;
}

/** Whether `member` owns nothing within windowLength - 1 places of `partition`. */
function isClearFor(state: ClaimState, member: number, partition: number): boolean {
  const { owner, partitionCount, windowLength } = state;
  const reach = Math.min(windowLength - 1, Math.floor(partitionCount / 2));
  for (let distance = 1; distance <= reach; distance++) {
    if (owner[(partition + distance) % partitionCount] === member) return false;
    if (owner[(partition - distance + partitionCount) % partitionCount] === member) return false;
  }
  return true;
}
