// Membership changes as pure transitions of the cluster map (DESIGN section 4,
// docs/CLUSTER.md "Membership changes"): join, leave, remove and replace, each planned as a
// map that records the change, then committed or aborted by another map; what data must
// move while the change is in progress; which replicas reads and writes use meanwhile; and a
// plan a person can read before the change is proposed.
//
// Rules kept here:
// - One change at a time: a plan is refused while the map holds one.
// - Every function is deterministic in its inputs, so a node that retries a compare-and-set
//   on a newer map computes the same change from it as any other node would.
// - A plan, a commit and an abort each make the next epoch. Refusals change nothing and say
//   why in words an operator can act on.
// - A change moves at most one voter out and one in (`nextVoters`); only the last voter
//   with no member to take its place is refused.

import { assert } from '../bytes.ts';
import type { Keyspace } from '../keyspace.ts';
import { claimPartitions } from '../ring/claim.ts';
import { preferenceList } from '../ring/preference-list.ts';
import { Ring } from '../ring/ring.ts';
import type { ChainConfig, ChainMember } from '../chain/chain-config.ts';
import type { MembershipRequest } from '../requests.ts';
import {
  isStandby,
  mapProblem,
  NODE_ID_PATTERN,
  replicationFactor,
  votersOf,
  type ClusterMap,
  type MemberInfo,
  type MembershipChange,
  type MembershipChangeKind,
} from './cluster-map.ts';

export type MembershipResult =
  | { readonly ok: true; readonly map: ClusterMap }
  | { readonly ok: false; readonly problem: string };

export interface ClaimOptions {
  /** Passed to the claim: replicas spread over this many distinct nodes where it can. */
  readonly targetN?: number;
}

/** Most standbys a map holds: each runs SWIM with every member, so they are not free. */
export const STANDBYS_MAX = 64;

/** One copy that must be made before the change commits. */
export interface Transfer {
  readonly keyspaceId: number;
  readonly partition: number;
  /** The replica the new owner table adds. */
  readonly to: string;
  /**
   * Replicas under the current owners that hold the data, best first: never the member a
   * remove or replace takes away, the leaver last, the others in preference-list order.
   * Empty when the only replica was removed: that data is lost, and the plan says so.
   */
  readonly sources: readonly string[];
}

function refuse(problem: string): MembershipResult {
  return { ok: false, problem };
}

function memberOf(map: ClusterMap, id: string): MemberInfo | undefined {
  return map.members.find((member) => member.id === id);
}

/** The members the claim gives partitions to now: the distinct owners, sorted by id. */
export function ownersOf(map: ClusterMap): string[] {
  return distinctSorted(map.owners);
}

/** The standbys of the map, sorted by id. */
export function standbysOf(map: ClusterMap): MemberInfo[] {
  return map.members.filter(isStandby);
}

function distinctSorted(owners: readonly string[]): string[] {
  return [...new Set(owners)].sort(compareIds);
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedMembers(members: readonly MemberInfo[]): MemberInfo[] {
  return [...members].sort((a, b) => compareIds(a.id, b.id));
}

function addressesOf(member: MemberInfo): string[] {
  return [member.peer, member.http, member.resp];
}

/** What is wrong with a newcomer's id and addresses, against the members it would join. */
function newcomerProblem(map: ClusterMap, member: MemberInfo, ignoreId: string): string | null {
  if (typeof member.id !== 'string' || !NODE_ID_PATTERN.test(member.id)) {
    return `node id '${String(member.id)}' is not 1 to 64 letters, digits, _, . or -`;
  }
  const own = addressesOf(member);
  if (own.some((address) => typeof address !== 'string' || address.length === 0)) {
    return `node ${member.id} needs a peer, an HTTP and a RESP address`;
  }
  if (new Set(own).size !== own.length) {
    return `node ${member.id} names one address for two listeners`;
  }
  for (const other of map.members) {
    if (other.id === ignoreId) continue;
    const clash = own.find((address) => addressesOf(other).includes(address));
    if (clash !== undefined) return `address ${clash} is already used by member ${other.id}`;
  }
  return null;
}

/**
 * What stops any change from being planned on this map: one in progress, or a map that does
 * not check out (plans assume a valid map, and a corrupt one must not spread further).
 */
function changeBlocked(map: ClusterMap): string | null {
  const problem = mapProblem(map);
  if (problem !== null) return `the cluster map is not valid (${problem})`;
  if (map.change !== undefined) {
    const { kind, subject } = map.change;
    return `a ${kind} of ${subject} is in progress: commit or abort it first (one change at a time)`;
  }
  return null;
}

/** Joins grow the voters while there are fewer than this (a cluster founded with one node). */
export const VOTERS_GROWN_BY_JOINS = 3;

/**
 * The voters once a change commits, when they differ from today's (docs/PAXOS.md, "Changing
 * the voters"): a voter that goes is dropped, and its place taken by the replacement of a
 * replace, or for a leave or remove by the first member by id that owns partitions after the
 * change and is not a voter, so the voters stay min(VOTERS_MAX, owning members); a join adds
 * its joiner while the voters are fewer than VOTERS_GROWN_BY_JOINS. Undefined: they stay.
 */
export function nextVotersOf(
  map: ClusterMap,
  change: Omit<MembershipChange, 'epoch' | 'copied'>,
): string[] | undefined {
  const voters = votersOf(map);
  const { kind, subject } = change;
  if (kind === 'join') {
    if (voters.length >= VOTERS_GROWN_BY_JOINS || voters.includes(subject)) return undefined;
    return distinctSorted([...voters, subject]);
  }
  if (!voters.includes(subject)) return undefined;
  const kept = voters.filter((voter) => voter !== subject);
  const successor =
    kind === 'replace'
      ? change.by
      : distinctSorted(change.nextOwners).find((owner) => !voters.includes(owner));
  const next = distinctSorted(successor === undefined ? kept : [...kept, successor]);
  assert(!next.includes(subject), 'a voter that goes does not vote on');
  assert(next.length <= voters.length, 'a change never adds a voter beside one it drops');
  return next;
}

function voterRefusal(map: ClusterMap, kind: MembershipChangeKind, id: string): string | null {
  const voters = votersOf(map);
  if (!voters.includes(id) || voters.length > 1) return null;
  const successor = kind !== 'replace' && ownersOf(map).some((owner) => owner !== id);
  if (kind === 'replace' || successor) return null;
  return `cannot ${kind} ${id}: it is the last voter (the acceptor of the cluster map's register), and no other member owns partitions to take its place`;
}

function withChange(
  map: ClusterMap,
  members: readonly MemberInfo[],
  change: Omit<MembershipChange, 'epoch' | 'copied' | 'nextVoters'>,
): MembershipResult {
  const nextVoters = nextVotersOf(map, change);
  const next: ClusterMap = {
    ...map,
    epoch: map.epoch + 1,
    members: sortedMembers(members),
    voters: votersOf(map),
    change: {
      ...change,
      epoch: map.epoch + 1,
      copied: [],
      ...(nextVoters !== undefined ? { nextVoters } : {}),
    },
  };
  assert(mapProblem(next) === null, `a planned map is valid: ${String(mapProblem(next))}`);
  assert(next.voters!.length > 0, 'a map has voters');
  return { ok: true, map: next };
}

/**
 * Plans the join of `member`: a new node, or a standby already in the map (same addresses)
 * that becomes a member. The incremental claim gives it about Q/(M+1) partitions, taken from
 * the others; nothing else moves.
 */
export function planJoin(
  map: ClusterMap,
  member: MemberInfo,
  options: ClaimOptions = {},
): MembershipResult {
  const blocked = changeBlocked(map);
  if (blocked !== null) return refuse(blocked);
  const existing = memberOf(map, member.id);
  if (existing !== undefined && !isStandby(existing)) {
    return refuse(`${member.id} is already a member`);
  }
  if (existing !== undefined && addressesOf(existing).join() !== addressesOf(member).join()) {
    return refuse(
      `standby ${member.id} is at ${addressesOf(existing).join(', ')}, not ` +
        `${addressesOf(member).join(', ')}: remove it and join it again to move it`,
    );
  }
  const problem = newcomerProblem(map, member, member.id);
  if (problem !== null) return refuse(problem);
  const owning = ownersOf(map);
  if (owning.length + 1 > map.partitionCount) {
    return refuse(
      `${owning.length + 1} members cannot share ${map.partitionCount} partitions: ` +
        'every member owns at least one',
    );
  }
  const nextOwners = claimPartitions(
    [...owning, member.id],
    map.partitionCount,
    map.owners,
    options.targetN,
  );
  const joiner: MemberInfo = {
    id: member.id,
    peer: member.peer,
    http: member.http,
    resp: member.resp,
  };
  const others = map.members.filter((other) => other.id !== member.id);
  return withChange(map, [...others, joiner], {
    kind: 'join',
    subject: member.id,
    ...(existing !== undefined ? { fromStandby: true as const } : {}),
    nextOwners,
  });
}

/** Plans the leave of a live member: its partitions go to the others, copied from it or them. */
export function planLeave(
  map: ClusterMap,
  id: string,
  options: ClaimOptions = {},
): MembershipResult {
  return planDeparture(map, 'leave', id, options);
}

/**
 * Plans the removal of a member that is gone for good: as a leave, but its data comes from
 * the other replicas only, never from it.
 */
export function planRemove(
  map: ClusterMap,
  id: string,
  options: ClaimOptions = {},
): MembershipResult {
  return planDeparture(map, 'remove', id, options);
}

function planDeparture(
  map: ClusterMap,
  kind: 'leave' | 'remove',
  id: string,
  options: ClaimOptions,
): MembershipResult {
  const blocked = changeBlocked(map);
  if (blocked !== null) return refuse(blocked);
  const member = memberOf(map, id);
  if (member === undefined) return refuse(`${id} is not a member`);
  const voter = voterRefusal(map, kind, id);
  if (voter !== null) return refuse(voter);
  const owning = ownersOf(map);
  if (!isStandby(member) && owning.length === 1) {
    return refuse(`${id} is the last member that owns partitions: it cannot ${kind}`);
  }
  // A standby owns nothing: its change moves no data, and can commit at once.
  const nextOwners = isStandby(member)
    ? [...map.owners]
    : claimPartitions(
        owning.filter((owner) => owner !== id),
        map.partitionCount,
        map.owners,
        options.targetN,
      );
  return withChange(map, map.members, { kind, subject: id, nextOwners });
}

/**
 * Plans the replacement of member `id` (gone, or to be retired) by `by`, a new node or a
 * standby: `by` takes exactly the partitions `id` owns and nothing else moves; its data
 * comes from the other replicas.
 */
export function planReplace(map: ClusterMap, id: string, by: MemberInfo): MembershipResult {
  const blocked = changeBlocked(map);
  if (blocked !== null) return refuse(blocked);
  const member = memberOf(map, id);
  if (member === undefined) return refuse(`${id} is not a member`);
  if (isStandby(member)) {
    return refuse(`${id} is a standby and owns nothing: remove it rather than replace it`);
  }
  if (by.id === id) return refuse(`${id} cannot replace itself`);
  const voter = voterRefusal(map, 'replace', id);
  if (voter !== null) return refuse(voter);
  const existing = memberOf(map, by.id);
  if (existing !== undefined && !isStandby(existing)) {
    return refuse(`${by.id} is already a member: a replacement is a new node or a standby`);
  }
  if (existing !== undefined && addressesOf(existing).join() !== addressesOf(by).join()) {
    return refuse(
      `standby ${by.id} is at ${addressesOf(existing).join(', ')}, not ${addressesOf(by).join(', ')}`,
    );
  }
  const problem = newcomerProblem(map, by, by.id);
  if (problem !== null) return refuse(problem);
  const nextOwners = map.owners.map((owner) => (owner === id ? by.id : owner));
  const newcomer: MemberInfo = { id: by.id, peer: by.peer, http: by.http, resp: by.resp };
  const others = map.members.filter((other) => other.id !== by.id);
  return withChange(map, [...others, newcomer], {
    kind: 'replace',
    subject: id,
    by: by.id,
    ...(existing !== undefined ? { fromStandby: true as const } : {}),
    nextOwners,
  });
}

/**
 * Adds a standby: in the map and in SWIM, owning nothing. Nothing moves, so it records no
 * change and is allowed while one is in progress.
 */
export function addStandby(map: ClusterMap, member: MemberInfo): MembershipResult {
  const problem = mapProblem(map);
  if (problem !== null) return refuse(`the cluster map is not valid (${problem})`);
  if (memberOf(map, member.id) !== undefined) return refuse(`${member.id} is already a member`);
  const newcomer = newcomerProblem(map, member, member.id);
  if (newcomer !== null) return refuse(newcomer);
  if (standbysOf(map).length >= STANDBYS_MAX) {
    return refuse(`the cluster already has ${STANDBYS_MAX} standbys, the most it keeps`);
  }
  const standby: MemberInfo = {
    id: member.id,
    peer: member.peer,
    http: member.http,
    resp: member.resp,
    role: 'standby',
  };
  const next: ClusterMap = {
    ...map,
    epoch: map.epoch + 1,
    members: sortedMembers([...map.members, standby]),
    voters: votersOf(map),
  };
  assert(mapProblem(next) === null, 'a map with a new standby is valid');
  assert(votersOf(next).join() === votersOf(map).join(), 'a standby is never a voter');
  return { ok: true, map: next };
}

/**
 * Ends the change in progress: `nextOwners` become the owners, and a member that leaves, is
 * removed or is replaced is dropped from the members. Every chain keeps, in its order, only
 * the members that are its replicas under the new owners (see `chainsAfterCommit`). Call it
 * once every transfer is done.
 */
export function commitChange(map: ClusterMap): MembershipResult {
  const change = map.change;
  if (change === undefined) return refuse('no membership change is in progress');
  const { change: _done, ...rest } = map;
  const departing = change.kind === 'join' ? null : change.subject;
  const next: ClusterMap = {
    ...rest,
    epoch: map.epoch + 1,
    owners: [...change.nextOwners],
    members: map.members.filter((member) => member.id !== departing),
    ...(change.nextVoters !== undefined ? { voters: [...change.nextVoters] } : {}),
    ...(map.chains !== undefined
      ? { chains: chainsAfterCommit(map, departing, change.nextOwners) }
      : {}),
  };
  assert(next.change === undefined, 'a commit ends the change');
  assert(mapProblem(next) === null, `a committed map is valid: ${String(mapProblem(next))}`);
  return { ok: true, map: next };
}

/**
 * The chains once `nextOwners` own the partitions: each keeps, in order, its members that
 * are replicas under `nextOwners`, one chain epoch up where that drops any. The new replicas
 * joined as tails before the commit (a receiver reports its copies made only once it is a
 * caught-up member), so a chain normally ends with exactly its new replicas; one that missed
 * its tail (it went down after reporting) gets it back by the chains' repair.
 *
 * A chain none of whose members is a new replica keeps its members but the departing one
 * (they hold its data; the repair copies it to the new replicas and then removes them), and
 * only a chain left empty by that takes the partition's new first replica, which holds what
 * its pre-copy brought it, if anything (n = 1 and its one replica gone).
 */
function chainsAfterCommit(
  map: ClusterMap,
  departing: string | null,
  nextOwners: readonly string[],
): ChainConfig[] {
  return map.chains!.map((config) => {
    const wanted = chainReplicas(map, nextOwners, config.partition);
    const epoch = config.epoch + 1;
    let members = config.members.filter((member) => wanted.includes(member.id));
    if (members.length === 0) {
      members = config.members.filter((member) => member.id !== departing);
    }
    if (members.length === 0) members = [restartedChainMember(wanted[0]!)];
    if (sameMembers(members, config.members)) return config;
    assert(!members.some((member) => member.id === departing), 'the member left the chain');
    return { partition: config.partition, epoch, members };
  });
}

/**
 * The one member of a chain that starts over because no member was left to copy from: a
 * member since epoch 1 counts as holding the whole history (a founder's), so it serves what
 * it holds at once, where any later member would copy from a predecessor it does not have.
 */
function restartedChainMember(id: string): ChainMember {
  return { id, sinceEpoch: 1 };
}

function sameMembers(a: readonly ChainMember[], b: readonly ChainMember[]): boolean {
  return a.length === b.length && a.every((member, index) => member.id === b[index]!.id);
}

/**
 * The replicas of a partition's chain under an owner table: its preference list, as long as
 * the chain keyspaces' n (they share it) allows among the owning members. Empty without a
 * chain keyspace.
 */
export function chainReplicas(
  map: ClusterMap,
  owners: readonly string[],
  partition: number,
): string[] {
  const keyspace = map.keyspaces.find((candidate) => candidate.consistency === 'chain');
  if (keyspace === undefined) return [];
  const n = replicationFactor(keyspace, distinctSorted(owners).length);
  assert(n >= 1, 'a chain has a replica');
  return preferenceList(owners, partition, n);
}

/**
 * The members a partition's chain should have: its replicas under `owners`, and while a
 * change is in progress those `nextOwners` adds, which join as tails before the commit.
 */
export function wantedChainMembers(map: ClusterMap, partition: number): string[] {
  const current = chainReplicas(map, map.owners, partition);
  if (map.change === undefined) return current;
  const next = chainReplicas(map, map.change.nextOwners, partition);
  return [...current, ...next.filter((id) => !current.includes(id))];
}

/**
 * Whether a partition's chain has nothing a new replica could copy from: the change in
 * progress removes or replaces a member that is the chain's only one (n = 1, or the others
 * removed while down). Its receivers do not wait to join it; the commit starts the chain over
 * at its new first replica, and what the gone member held is lost, as the plan warns.
 */
export function chainWithoutSource(map: ClusterMap, partition: number): boolean {
  const change = map.change;
  if (change === undefined || (change.kind !== 'remove' && change.kind !== 'replace')) {
    return false;
  }
  const config = map.chains?.[partition];
  return config !== undefined && config.members.every((member) => member.id === change.subject);
}

/**
 * The chains `mayChange` allows without their members that are not wanted
 * (`wantedChainMembers`), one epoch on: tails a change added before it was aborted, members
 * a commit kept because no new replica was in the chain yet. A chain keeps its members when
 * none of them is wanted (they hold its data until wanted ones have joined).
 */
export function chainsTrimmed(
  map: ClusterMap,
  mayChange: (config: ChainConfig) => boolean,
): ChainConfig[] {
  const changed: ChainConfig[] = [];
  for (const config of map.chains ?? []) {
    const wanted = wantedChainMembers(map, config.partition);
    const members = config.members.filter((member) => wanted.includes(member.id));
    if (members.length === config.members.length || members.length === 0) continue;
    if (!mayChange(config)) continue;
    changed.push({ partition: config.partition, epoch: config.epoch + 1, members });
  }
  assert(
    changed.every((config) => config.members.length > 0),
    'a trimmed chain keeps a member',
  );
  return changed;
}

/**
 * Gives up the change in progress: the owners stay, and a newcomer (a joiner, a replacement)
 * is dropped, or made a standby again if it was one. What was copied to it stays there as a
 * stray copy, which nothing reads. The tails the change added to chains are taken out again
 * (see `chainsAfterAbort`).
 */
export function abortChange(map: ClusterMap): MembershipResult {
  const change = map.change;
  if (change === undefined) return refuse('no membership change is in progress');
  const { change: _abandoned, ...rest } = map;
  const newcomer =
    change.kind === 'join' ? change.subject : change.kind === 'replace' ? change.by! : null;
  const members = map.members.flatMap((member): MemberInfo[] => {
    if (member.id !== newcomer) return [member];
    return change.fromStandby === true ? [{ ...member, role: 'standby' }] : [];
  });
  const gone = newcomer !== null && change.fromStandby !== true ? newcomer : null;
  const next: ClusterMap = {
    ...rest,
    epoch: map.epoch + 1,
    members,
    ...(map.chains !== undefined ? { chains: chainsAfterAbort(map, gone) } : {}),
  };
  assert(next.owners === map.owners, 'an abort keeps the owners');
  assert(mapProblem(next) === null, `an aborted map is valid: ${String(mapProblem(next))}`);
  return { ok: true, map: next };
}

/**
 * The chains once a change is given up: each without the members the change was adding
 * (replicas under `nextOwners` that are not replicas under `owners`), order kept, one chain
 * epoch up where that drops any. Were that to empty a chain (its old replicas all removed
 * while down), the chain stays as it is, unless `gone` (a newcomer leaving the cluster) is
 * in it: then it takes the partition's first replica.
 */
function chainsAfterAbort(map: ClusterMap, gone: string | null): ChainConfig[] {
  const nextOwners = map.change!.nextOwners;
  return map.chains!.map((config) => {
    const current = chainReplicas(map, map.owners, config.partition);
    const added = chainReplicas(map, nextOwners, config.partition).filter(
      (id) => !current.includes(id),
    );
    const epoch = config.epoch + 1;
    let members = config.members.filter((member) => !added.includes(member.id));
    if (members.length === 0) {
      members = config.members.filter((member) => member.id !== gone);
      if (members.length === 0) members = [restartedChainMember(current[0]!)];
    }
    if (sameMembers(members, config.members)) return config;
    assert(!members.some((member) => member.id === gone), 'a newcomer that goes left its chains');
    return { partition: config.partition, epoch, members };
  });
}

/** The replicas a partition's reads use: its preference list under the current owners. */
export function readReplicas(map: ClusterMap, keyspace: Keyspace, partition: number): string[] {
  const n = replicationFactor(keyspace, ownersOf(map).length);
  return preferenceList(map.owners, partition, n);
}

/**
 * The replicas a partition's writes go to: the current ones first, then those the change in
 * progress adds. Without a change, the read replicas.
 */
export function writeReplicas(map: ClusterMap, keyspace: Keyspace, partition: number): string[] {
  const current = readReplicas(map, keyspace, partition);
  if (map.change === undefined) return current;
  const nextOwners = map.change.nextOwners;
  const n = replicationFactor(keyspace, distinctSorted(nextOwners).length);
  const added = preferenceList(nextOwners, partition, n).filter(
    (replica) => !current.includes(replica),
  );
  return [...current, ...added];
}

/**
 * Every copy the change in progress needs: for each keyspace and partition, each replica
 * under `nextOwners` that is not one under `owners`, with where to copy from. Empty without
 * a change. Keyspaces with the same replica counts share one computation.
 */
export function transfersOf(map: ClusterMap): Transfer[] {
  const change = map.change;
  if (change === undefined) return [];
  const currentRing = new Ring(map.owners);
  const nextRing = new Ring(change.nextOwners);
  const currentCount = currentRing.members.length;
  const nextCount = nextRing.members.length;
  const gone = change.kind === 'remove' || change.kind === 'replace' ? change.subject : null;
  const leaver = change.kind === 'leave' ? change.subject : null;
  // Per (n now, n next): each partition's added replicas and their sources.
  const byCounts = new Map<string, { to: string; sources: string[] }[][]>();
  const transfers: Transfer[] = [];
  for (const keyspace of map.keyspaces) {
    const nCurrent = replicationFactor(keyspace, currentCount);
    const nNext = replicationFactor(keyspace, nextCount);
    const countsKey = `${nCurrent}/${nNext}`;
    let perPartition = byCounts.get(countsKey);
    if (perPartition === undefined) {
      perPartition = [];
      for (let partition = 0; partition < map.partitionCount; partition++) {
        const current = currentRing.replicas(partition, nCurrent);
        const sources = current.filter((replica) => replica !== gone && replica !== leaver);
        if (leaver !== null && current.includes(leaver)) sources.push(leaver);
        perPartition.push(
          nextRing
            .replicas(partition, nNext)
            .filter((replica) => !current.includes(replica))
            .map((to) => ({ to, sources })),
        );
      }
      byCounts.set(countsKey, perPartition);
    }
    for (let partition = 0; partition < map.partitionCount; partition++) {
      for (const { to, sources } of perPartition[partition]!) {
        assert(!sources.includes(to), 'a replica never copies from itself');
        transfers.push({ keyspaceId: keyspace.id, partition, to, sources: [...sources] });
      }
    }
  }
  return transfers;
}

/** How much data one partition of one keyspace holds, as a replica measured it. */
export interface PartitionSize {
  readonly keys: number;
  readonly bytes: number;
}

export type SizeOf = (keyspaceId: number, partition: number) => PartitionSize | undefined;

/** The copies from one member to another: `from` is the first source, null for none. */
export interface PlanFlow {
  readonly from: string | null;
  readonly to: string;
  /** Partition copies, one per keyspace and partition. */
  readonly copies: number;
  /** Distinct partitions among them. */
  readonly partitions: number;
  /** Sums over the copies whose size is known. */
  readonly keys: number;
  readonly bytes: number;
  readonly sizesUnknown: number;
}

export interface PlanSummary {
  readonly kind: MembershipChangeKind;
  readonly subject: string;
  readonly by?: string;
  /** The epoch of the map that holds the change. */
  readonly epoch: number;
  readonly partitionCount: number;
  /** Partitions whose owner changes, per (from, to) pair, largest first. */
  readonly ownership: readonly { from: string; to: string; partitions: number }[];
  /** Data copies per (first source, receiver) pair, largest first. */
  readonly flows: readonly PlanFlow[];
  readonly totals: {
    readonly copies: number;
    readonly keys: number;
    readonly bytes: number;
    readonly sizesUnknown: number;
    /**
     * Keys and bytes with each copy of unknown size counted at the mean of its keyspace's
     * measured copies (keys spread over partitions by hash); equal to keys and bytes when
     * every size is known, null when a keyspace has unknown copies and none measured.
     */
    readonly estimate: { readonly keys: number; readonly bytes: number } | null;
    /** Copies with no source left: the only replica was removed, and its data with it. */
    readonly withoutSource: number;
  };
  /** Partitions owned by each member before and after, sorted by id. */
  readonly owned: readonly { id: string; before: number; after: number }[];
}

/** What the change in progress moves, for a person to read before it goes ahead; null without one. */
export function planSummary(map: ClusterMap, sizeOf?: SizeOf): PlanSummary | null {
  const change = map.change;
  if (change === undefined) return null;
  const ownershipCounts = new Map<string, { from: string; to: string; partitions: number }>();
  for (let partition = 0; partition < map.partitionCount; partition++) {
    const from = map.owners[partition]!;
    const to = change.nextOwners[partition]!;
    if (from === to) continue;
    const key = `${from}\n${to}`;
    const entry = ownershipCounts.get(key) ?? { from, to, partitions: 0 };
    ownershipCounts.set(key, { ...entry, partitions: entry.partitions + 1 });
  }
  const flows = new Map<string, { flow: PlanFlow; partitions: Set<number> }>();
  let keys = 0;
  let bytes = 0;
  let sizesUnknown = 0;
  let withoutSource = 0;
  const transfers = transfersOf(map);
  /** Per keyspace: copies measured, their keys and bytes, and copies not measured. */
  const byKeyspace = new Map<
    number,
    { known: number; keys: number; bytes: number; unknown: number }
  >();
  for (const transfer of transfers) {
    const from = transfer.sources[0] ?? null;
    if (from === null) withoutSource++;
    const size = sizeOf?.(transfer.keyspaceId, transfer.partition);
    const sizes = byKeyspace.get(transfer.keyspaceId) ?? {
      known: 0,
      keys: 0,
      bytes: 0,
      unknown: 0,
    };
    byKeyspace.set(transfer.keyspaceId, {
      known: sizes.known + (size === undefined ? 0 : 1),
      keys: sizes.keys + (size?.keys ?? 0),
      bytes: sizes.bytes + (size?.bytes ?? 0),
      unknown: sizes.unknown + (size === undefined ? 1 : 0),
    });
    const key = `${from ?? ''}\n${transfer.to}`;
    const entry = flows.get(key) ?? {
      flow: { from, to: transfer.to, copies: 0, partitions: 0, keys: 0, bytes: 0, sizesUnknown: 0 },
      partitions: new Set<number>(),
    };
    entry.partitions.add(transfer.partition);
    entry.flow = {
      ...entry.flow,
      copies: entry.flow.copies + 1,
      partitions: entry.partitions.size,
      keys: entry.flow.keys + (size?.keys ?? 0),
      bytes: entry.flow.bytes + (size?.bytes ?? 0),
      sizesUnknown: entry.flow.sizesUnknown + (size === undefined ? 1 : 0),
    };
    flows.set(key, entry);
    keys += size?.keys ?? 0;
    bytes += size?.bytes ?? 0;
    if (size === undefined) sizesUnknown++;
  }
  const before = countOwned(map.owners);
  const after = countOwned(change.nextOwners);
  const ids = distinctSorted([...before.keys(), ...after.keys()]);
  const largestFirst = <T extends { from: string | null; to: string }>(
    count: (item: T) => number,
  ) => {
    return (a: T, b: T): number =>
      count(b) - count(a) || compareIds(a.from ?? '', b.from ?? '') || compareIds(a.to, b.to);
  };
  const summary: PlanSummary = {
    kind: change.kind,
    subject: change.subject,
    ...(change.by !== undefined ? { by: change.by } : {}),
    epoch: map.epoch,
    partitionCount: map.partitionCount,
    ownership: [...ownershipCounts.values()].sort(largestFirst((item) => item.partitions)),
    flows: [...flows.values()].map((entry) => entry.flow).sort(largestFirst((flow) => flow.copies)),
    totals: {
      copies: transfers.length,
      keys,
      bytes,
      sizesUnknown,
      estimate: estimateSizes(byKeyspace.values()),
      withoutSource,
    },
    owned: ids.map((id) => ({ id, before: before.get(id) ?? 0, after: after.get(id) ?? 0 })),
  };
  assert(summary.flows.reduce((sum, flow) => sum + flow.copies, 0) === transfers.length, 'flows');
  return summary;
}

/** Totals with each unknown copy at its keyspace's mean; null if a keyspace has no measure. */
function estimateSizes(
  keyspaces: Iterable<{ known: number; keys: number; bytes: number; unknown: number }>,
): { keys: number; bytes: number } | null {
  let keys = 0;
  let bytes = 0;
  for (const sizes of keyspaces) {
    if (sizes.unknown > 0 && sizes.known === 0) return null;
    const scale = sizes.known === 0 ? 0 : (sizes.known + sizes.unknown) / sizes.known;
    keys += Math.round(sizes.keys * scale);
    bytes += Math.round(sizes.bytes * scale);
  }
  return { keys, bytes };
}

function countOwned(owners: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/** A plan as lines of text, for the CLI and logs. */
export function formatPlan(summary: PlanSummary): string[] {
  const { kind, subject, by, partitionCount, totals } = summary;
  const title = kind === 'replace' ? `replace ${subject} by ${by ?? '?'}` : `${kind} ${subject}`;
  const moving = summary.ownership.reduce((sum, item) => sum + item.partitions, 0);
  const lines = [
    `${title} (map epoch ${summary.epoch})`,
    `ownership: ${moving} of ${partitionCount} partitions change owner`,
  ];
  for (const item of summary.ownership) {
    lines.push(`  ${item.from} -> ${item.to}: ${item.partitions} partitions`);
  }
  lines.push(`data: ${totals.copies} partition copies${sizeText(totals)}`);
  if (totals.sizesUnknown > 0 && totals.sizesUnknown < totals.copies && totals.estimate !== null) {
    lines.push(
      `  about ${totals.estimate.keys} keys, ${formatBytes(totals.estimate.bytes)} in all, ` +
        `counting the copies of unknown size at the mean of their keyspace's measured ones`,
    );
  }
  for (const flow of summary.flows) {
    lines.push(
      `  ${flow.from ?? '(no source left)'} -> ${flow.to}: ${flow.copies} copies of ` +
        `${flow.partitions} partitions${sizeText(flow)}`,
    );
  }
  if (totals.withoutSource > 0) {
    lines.push(
      `warning: ${totals.withoutSource} partition copies have no replica left to copy from; ` +
        'their data is lost',
    );
  }
  lines.push('partitions owned, before -> after:');
  for (const item of summary.owned) lines.push(`  ${item.id}: ${item.before} -> ${item.after}`);
  return lines;
}

function sizeText(size: {
  keys: number;
  bytes: number;
  sizesUnknown: number;
  copies: number;
}): string {
  if (size.copies === 0) return '';
  if (size.sizesUnknown === size.copies) return ', size unknown';
  const known = `, ${size.keys} keys, ${formatBytes(size.bytes)}`;
  return size.sizesUnknown === 0 ? known : `${known} (size of ${size.sizesUnknown} unknown)`;
}

/** Bytes in binary units, three significant digits at most: 1.21 MiB. */
export function formatBytes(bytes: number): string {
  assert(Number.isFinite(bytes) && bytes >= 0, 'a byte count is finite and not negative');
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${Number(value.toPrecision(3))} ${units[unit]!}`;
}

/**
 * The map a membership request makes from `map`: the plan of a join, leave, remove or
 * replace (the newcomer of a join or a replace must be a standby, which names its
 * addresses), or the abort of the change in progress.
 */
export function planMembership(map: ClusterMap, request: MembershipRequest): MembershipResult {
  // Strong keyspaces' registers change acceptors by joint quorums, fences and rewrites
  // (docs/PAXOS.md, "Acceptor changes"); the voters, the map register's acceptors, stay.
  switch (request.kind) {
    case 'join': {
      const standby = memberOf(map, request.id);
      if (standby === undefined) {
        return refuse(
          `${request.id} is not in the cluster: start it with --join first, and it becomes a standby`,
        );
      }
      return planJoin(map, standby);
    }
    case 'leave':
      return planLeave(map, request.id);
    case 'remove':
      return planRemove(map, request.id);
    case 'replace': {
      const standby = memberOf(map, request.by);
      if (standby === undefined || !isStandby(standby)) {
        return refuse(
          `${request.by} is not a standby: start it with --join first, then replace ${request.id} by it`,
        );
      }
      return planReplace(map, request.id, standby);
    }
    case 'abort':
      return abortChange(map);
  }
}

/**
 * The members the change in progress copies to, sorted by id: the ones whose reports the
 * commit waits for. A receiver reports once it holds everything its new partitions need:
 * an eventual keyspace's copies made, a strong keyspace's registers rewritten through joint
 * quorums (docs/PAXOS.md), and each chain it joins joined as a caught-up tail (it pre-copies
 * from the tail, then is appended), so no chain runs with fewer than its replicas through
 * the commit. Every keyspace's added replicas count, so this is every transfer's receiver.
 */
export function receiversOf(map: ClusterMap): string[] {
  // Nodes ask this on every tick while a change runs, and listing the transfers walks every
  // partition of every keyspace: maps are never changed in place, so one answer per map.
  const known = receiversByMap.get(map);
  if (known !== undefined) return [...known];
  // A voter the change adds is a receiver too: its copy is the map register's fence step.
  const receivers = distinctSorted([
    ...transfersOf(map).map((transfer) => transfer.to),
    ...newVotersOf(map),
  ]);
  receiversByMap.set(map, receivers);
  return [...receivers];
}

/** The voters the change in progress adds (at most one), sorted by id. */
export function newVotersOf(map: ClusterMap): string[] {
  const nextVoters = map.change?.nextVoters;
  if (nextVoters === undefined) return [];
  const voters = votersOf(map);
  return nextVoters.filter((voter) => !voters.includes(voter));
}

const receiversByMap = new WeakMap<ClusterMap, readonly string[]>();

/**
 * Records that member `id` has made every copy it receives. When that makes every receiver
 * done, the change commits in the same map change (one epoch either way).
 */
export function markCopied(map: ClusterMap, id: string): MembershipResult {
  const change = map.change;
  if (change === undefined) return refuse('no membership change is in progress');
  const receivers = receiversOf(map);
  if (!receivers.includes(id)) return refuse(`${id} receives no copies in this change`);
  if (change.copied.includes(id)) return refuse(`${id} has already reported its copies made`);
  const copied = distinctSorted([...change.copied, id]);
  const marked: ClusterMap = { ...map, change: { ...change, copied } };
  if (receivers.every((receiver) => copied.includes(receiver))) return commitChange(marked);
  const next: ClusterMap = { ...marked, epoch: map.epoch + 1 };
  assert(
    mapProblem(next) === null,
    `a map with copies marked is valid: ${String(mapProblem(next))}`,
  );
  return { ok: true, map: next };
}
