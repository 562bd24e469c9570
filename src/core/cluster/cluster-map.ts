// The cluster map: who the members are, where they listen, who owns each partition, and
// the keyspaces. Every node holds a copy; a change makes a new map with the next epoch, and
// a node that sees a newer epoch adopts it (DESIGN section 4).
//
// Rules kept here:
// - Members are sorted by id, owners come from the deterministic claim, so nodes that agree
//   on the members compute byte-identical maps without talking.
// - Maps are compared by epoch alone: every change is a compare-and-set on a CASPaxos
//   register among the voters, and a map's epoch is the register's version plus one, so two
//   different maps never carry the same epoch.
// - Maps travel and are stored as JSON text: they are small, rare, and readable by people.

import { assert, fromUtf8, utf8 } from '../bytes.ts';
import {
  DEFAULT_KEYSPACE,
  isValidKeyspaceName,
  KEYSPACE_ID_MAX,
  type Keyspace,
} from '../keyspace.ts';
import { claimPartitions } from '../ring/claim.ts';
import { preferenceList } from '../ring/preference-list.ts';
import {
  foundingChainConfig,
  isValidChainConfig,
  type ChainConfig,
} from '../chain/chain-config.ts';

export interface MemberInfo {
  readonly id: string;
  /** host:port of each listener. */
  readonly peer: string;
  readonly http: string;
  readonly resp: string;
  /**
   * Absent for a member that owns partitions (or is joining to). A standby is in the map
   * and runs SWIM, but the claim never gives it partitions (docs/CLUSTER.md).
   */
  readonly role?: 'standby';
}

export type MembershipChangeKind = 'join' | 'leave' | 'remove' | 'replace';

/**
 * The one membership change in progress. While it is in the map, `owners` is still the table
 * reads use and `nextOwners` the table once the change commits; the replicas `nextOwners`
 * adds receive their data first (src/core/cluster/membership.ts).
 */
export interface MembershipChange {
  readonly kind: MembershipChangeKind;
  /** join: the member that joins; leave, remove, replace: the member that goes. */
  readonly subject: string;
  /** replace only: the member that takes exactly the subject's partitions. */
  readonly by?: string;
  /** join and replace: the newcomer was a standby, which an abort makes it again. */
  readonly fromStandby?: true;
  readonly nextOwners: readonly string[];
  /**
   * The epoch of the map that recorded the change: it names the change, so that copies a
   * node made for an earlier change (aborted, then planned again) never count for this one.
   */
  readonly epoch: number;
  /** Members that have made every copy they receive, sorted by id; the last one commits. */
  readonly copied: readonly string[];
  /**
   * The voters once the change commits, sorted by id, when they differ from `voters`: at
   * most one voter goes and one comes. While it is set, every phase of the map register
   * needs a majority of both sets (docs/PAXOS.md, "Changing the voters").
   */
  readonly nextVoters?: readonly string[];
}

export interface ClusterMap {
  readonly clusterId: string;
  readonly epoch: number;
  readonly partitionCount: number;
  /** Sorted by id. */
  readonly members: readonly MemberInfo[];
  /** Owner of each partition. */
  readonly owners: readonly string[];
  /** Sorted by id. */
  readonly keyspaces: readonly Keyspace[];
  /**
   * Each partition's chain, shared by every chain keyspace (their keys carry the keyspace
   * id); absent until the first chain keyspace is created.
   */
  readonly chains?: readonly ChainConfig[];
  /**
   * The acceptors of the map's register, sorted by id; absent until the first membership
   * change, which sets them to what `votersOf` answered before it, so a join never changes
   * them.
   */
  readonly voters?: readonly string[];
  /** The membership change in progress, if any: at most one at a time. */
  readonly change?: MembershipChange;
}

export const NODE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** The first map of a cluster whose members are known. */
export function initialMap(
  clusterId: string,
  partitionCount: number,
  members: readonly MemberInfo[],
  keyspaces: readonly Keyspace[] = [DEFAULT_KEYSPACE],
): ClusterMap {
  assert(members.length > 0, 'a cluster has members');
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    assert(sorted[i - 1]!.id !== sorted[i]!.id, `member ${sorted[i]!.id} twice`);
  }
  const owners = claimPartitions(
    sorted.map((member) => member.id),
    partitionCount,
    null,
  );
  return {
    clusterId,
    epoch: 1,
    partitionCount,
    members: sorted,
    owners,
    keyspaces: [...keyspaces].sort((a, b) => a.id - b.id),
  };
}

/** Most voters: the acceptors of the map's register. */
export const VOTERS_MAX = 5;

/**
 * The voters: the acceptors of the register that holds the map, which every map change is
 * a compare-and-set on. A map that names them (every map since the first membership change)
 * has them stored; before that they are the first members by id, up to VOTERS_MAX (the
 * founders of a cluster formed with that many or fewer), so every node computes the same set.
 */
export function votersOf(map: ClusterMap): string[] {
  if (map.voters !== undefined) return [...map.voters];
  return map.members.slice(0, VOTERS_MAX).map((member) => member.id);
}

/**
 * The acceptors of the map's register under `map`, with its epoch: the voters, and while a
 * change replaces them, the next voters as well (joint quorums).
 */
export function mapRegisterAcceptors(map: ClusterMap): {
  ids: readonly string[];
  nextIds?: readonly string[];
  epoch: number;
} {
  const ids = votersOf(map);
  assert(ids.length > 0, 'a map has voters');
  const nextVoters = map.change?.nextVoters;
  if (nextVoters === undefined) return { ids, epoch: map.epoch };
  assert(nextVoters.length > 0, 'a change keeps some voters');
  return { ids, nextIds: [...nextVoters], epoch: map.epoch };
}

export function isStandby(member: MemberInfo): boolean {
  return member.role === 'standby';
}

export type KeyspaceSpec = Omit<Keyspace, 'id'>;

/** Checks a keyspace's properties; answers what is wrong, or null. */
export function keyspaceProblem(spec: KeyspaceSpec): string | null {
  if (!isValidKeyspaceName(spec.name)) {
    return 'keyspace names are 1 to 64 letters, digits, _ or -';
  }
  if (spec.n !== 'all' && !(Number.isInteger(spec.n) && spec.n >= 1 && spec.n <= 64)) {
    return 'n must be an integer from 1 to 64, or "all"';
  }
  const nMax = spec.n === 'all' ? 64 : spec.n;
  for (const [name, value] of [
    ['r', spec.r],
    ['w', spec.w],
  ] as const) {
    if (!(Number.isInteger(value) && value >= 1 && value <= nMax)) {
      return `${name} must be an integer from 1 to n`;
    }
  }
  if (!['eventual', 'strong', 'chain'].includes(spec.consistency)) {
    return 'consistency must be eventual, strong or chain';
  }
  if (spec.consistency !== 'eventual') {
    if (spec.n === 'all') {
      return `n "all" is for eventual keyspaces: a ${spec.consistency} keyspace needs a fixed number of replicas`;
    }
    if (spec.conflicts !== 'lww' || spec.durability !== 'sync') {
      return `conflicts and durability are options of eventual keyspaces: a ${spec.consistency} keyspace keeps one value per key, durably`;
    }
  }
  if (!['lww', 'siblings'].includes(spec.conflicts)) return 'conflicts must be lww or siblings';
  if (!['sync', 'relaxed'].includes(spec.durability)) return 'durability must be sync or relaxed';
  return null;
}

/**
 * Why a keyspace cannot be added to this map, beyond its own properties: chain keyspaces
 * share the partitions' chains, so they all have the n of the first one.
 */
export function keyspaceFitProblem(map: ClusterMap, spec: KeyspaceSpec): string | null {
  if (spec.consistency !== 'chain') return null;
  const first = map.keyspaces.find((keyspace) => keyspace.consistency === 'chain');
  if (first !== undefined && first.n !== spec.n) {
    return `chain keyspaces share their chains: n must be ${String(first.n)}, as keyspace '${first.name}' has`;
  }
  return null;
}

/** The map with one more keyspace (the next free id), and chains for the first chain one. */
export function withKeyspace(map: ClusterMap, spec: KeyspaceSpec): ClusterMap {
  assert(keyspaceProblem(spec) === null, 'keyspace checked before');
  assert(keyspaceFitProblem(map, spec) === null, 'keyspace fits the map');
  assert(!map.keyspaces.some((k) => k.name === spec.name), `keyspace ${spec.name} exists`);
  const id = map.keyspaces.reduce((max, k) => Math.max(max, k.id), -1) + 1;
  assert(id <= KEYSPACE_ID_MAX, 'keyspace ids left');
  const next: ClusterMap = {
    ...map,
    epoch: map.epoch + 1,
    keyspaces: [...map.keyspaces, { id, ...spec }].sort((a, b) => a.id - b.id),
  };
  if (spec.consistency !== 'chain' || map.chains !== undefined) return next;
  // The first chain keyspace: each chain starts as its partition's preference list.
  const n = Math.min(spec.n as number, map.members.length);
  const chains = map.owners.map((_, partition) =>
    foundingChainConfig(partition, preferenceList(map.owners, partition, n)),
  );
  return { ...next, chains };
}

/** The map with some partitions' chains replaced (each with its next epoch). */
export function withChains(map: ClusterMap, changed: readonly ChainConfig[]): ClusterMap {
  assert(map.chains !== undefined, 'the map has chains');
  const chains = [...map.chains];
  for (const config of changed) {
    assert(config.epoch === chains[config.partition]!.epoch + 1, 'a chain moves one epoch');
    chains[config.partition] = config;
  }
  return { ...map, epoch: map.epoch + 1, chains };
}

/** The replication factor of a keyspace in a cluster of `memberCount` members. */
export function replicationFactor(keyspace: Keyspace, memberCount: number): number {
  return keyspace.n === 'all' ? memberCount : Math.min(keyspace.n, memberCount);
}

export function encodeMap(map: ClusterMap): Uint8Array {
  return utf8(JSON.stringify(map));
}

/** Decodes and checks a map that came from storage or a peer; throws on anything else. */
export function decodeMap(bytes: Uint8Array): ClusterMap {
  const value = JSON.parse(fromUtf8(bytes)) as ClusterMap;
  const problem = mapProblem(value);
  if (problem !== null) throw new Error(`not a cluster map: ${problem}`);
  return value;
}

export function mapProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'not an object';
  const map = value as Partial<ClusterMap>;
  if (typeof map.clusterId !== 'string') return 'clusterId';
  if (!(Number.isSafeInteger(map.epoch) && map.epoch! >= 1)) return 'epoch';
  const q = map.partitionCount;
  if (!(Number.isInteger(q) && q! >= 1 && q! <= 65536 && Number.isInteger(Math.log2(q!)))) {
    return 'partitionCount';
  }
  if (!Array.isArray(map.members) || map.members.length === 0) return 'members';
  const ids = new Set<string>();
  const standbys = new Set<string>();
  for (const member of map.members as unknown[]) {
    const m = member as Partial<MemberInfo>;
    if (typeof m !== 'object' || m === null) return 'member';
    if (typeof m.id !== 'string' || !NODE_ID_PATTERN.test(m.id)) return 'member id';
    for (const field of [m.peer, m.http, m.resp]) if (typeof field !== 'string') return 'address';
    if (m.role !== undefined && m.role !== 'standby') return 'member role';
    ids.add(m.id);
    if (m.role === 'standby') standbys.add(m.id);
  }
  if (!Array.isArray(map.owners) || map.owners.length !== q) return 'owners';
  for (const owner of map.owners) if (!ids.has(owner)) return 'owner not a member';
  for (const owner of map.owners) if (standbys.has(owner)) return 'owner is a standby';
  const membershipProblem = votersAndChangeProblem(map, ids, standbys);
  if (membershipProblem !== null) return membershipProblem;
  if (!Array.isArray(map.keyspaces)) return 'keyspaces';
  for (const keyspace of map.keyspaces as Keyspace[]) {
    if (!(Number.isInteger(keyspace.id) && keyspace.id >= 0)) return 'keyspace id';
    if (keyspaceProblem(keyspace) !== null) return `keyspace ${String(keyspace.name)}`;
  }
  if (map.chains !== undefined) {
    if (!Array.isArray(map.chains) || map.chains.length !== q) return 'chains';
    for (const [partition, config] of (map.chains as unknown[]).entries()) {
      if (!isValidChainConfig(config) || config.partition !== partition) return 'chain';
      if (!config.members.every((member) => ids.has(member.id))) return 'chain member';
    }
  }
  return null;
}

/** What is wrong with a change's next voters: one voter out and one in at most. */
function nextVotersProblemOf(
  nextVoters: unknown,
  voters: readonly string[],
  ids: ReadonlySet<string>,
  standbys: ReadonlySet<string>,
): string | null {
  if (nextVoters === undefined) return null;
  if (!Array.isArray(nextVoters) || nextVoters.length < 1 || nextVoters.length > VOTERS_MAX) {
    return 'change nextVoters';
  }
  for (const [index, voter] of (nextVoters as unknown[]).entries()) {
    if (typeof voter !== 'string' || !ids.has(voter)) return 'next voter not a member';
    if (standbys.has(voter)) return 'next voter is a standby';
    if (index > 0 && !((nextVoters[index - 1] as string) < voter)) return 'nextVoters not sorted';
  }
  const next = nextVoters as string[];
  const leaving = voters.filter((voter) => !next.includes(voter)).length;
  const coming = next.filter((voter) => !voters.includes(voter)).length;
  if (leaving > 1 || coming > 1 || leaving + coming === 0) return 'change nextVoters';
  return null;
}

/**
 * The fields membership changes add. Maps written before them have neither `voters`, a
 * `change` nor standbys, and pass unchanged; a map with any of them must name its voters,
 * since from the first change on they no longer follow from the members.
 */
function votersAndChangeProblem(
  map: Partial<ClusterMap>,
  ids: ReadonlySet<string>,
  standbys: ReadonlySet<string>,
): string | null {
  const q = map.partitionCount!;
  if (map.voters === undefined) {
    return map.change !== undefined || standbys.size > 0 ? 'voters missing' : null;
  }
  const voters = map.voters as unknown;
  if (!Array.isArray(voters) || voters.length < 1 || voters.length > VOTERS_MAX) return 'voters';
  for (const [index, voter] of (voters as unknown[]).entries()) {
    if (typeof voter !== 'string' || !ids.has(voter)) return 'voter not a member';
    if (standbys.has(voter)) return 'voter is a standby';
    if (index > 0 && !((voters[index - 1] as string) < voter)) return 'voters not sorted';
  }
  if (map.change === undefined) return null;
  const change = map.change as Partial<MembershipChange> | null;
  if (typeof change !== 'object' || change === null) return 'change';
  const { kind, subject, by, fromStandby, nextOwners, epoch, copied, nextVoters } = change;
  const nextVotersProblem = nextVotersProblemOf(nextVoters, voters as string[], ids, standbys);
  if (nextVotersProblem !== null) return nextVotersProblem;
  if (epoch !== map.epoch && !(Number.isSafeInteger(epoch) && epoch! >= 1 && epoch! < map.epoch!)) {
    return 'change epoch';
  }
  if (!Array.isArray(copied) || !copied.every((id) => typeof id === 'string' && ids.has(id))) {
    return 'change copied';
  }
  if (kind !== 'join' && kind !== 'leave' && kind !== 'remove' && kind !== 'replace') {
    return 'change kind';
  }
  if (typeof subject !== 'string' || !ids.has(subject)) return 'change subject not a member';
  if (!Array.isArray(nextOwners) || nextOwners.length !== q) return 'change nextOwners';
  for (const owner of nextOwners as unknown[]) {
    if (typeof owner !== 'string' || !ids.has(owner)) return 'next owner not a member';
    if (standbys.has(owner)) return 'next owner is a standby';
  }
  if (
    fromStandby !== undefined &&
    (fromStandby !== true || kind === 'leave' || kind === 'remove')
  ) {
    return 'change fromStandby';
  }
  const owned = new Set(map.owners);
  if (kind === 'replace') {
    if (typeof by !== 'string' || !ids.has(by) || by === subject) return 'change by';
    if (standbys.has(by) || standbys.has(subject)) return 'replace of or by a standby';
    if (owned.has(by)) return 'change by already owns partitions';
  } else if (by !== undefined) {
    return 'change by';
  }
  if (kind === 'join') {
    if (standbys.has(subject)) return 'joining member is a standby';
    if (owned.has(subject)) return 'joining member already owns partitions';
  } else if (nextOwners.includes(subject)) {
    return 'a member that goes is a next owner';
  }
  if (kind !== 'join' && (voters as string[]).includes(subject)) {
    if (nextVoters === undefined || nextVoters.includes(subject))
      return 'a voter that goes votes on';
  }
  return null;
}
