// The client's picture of the cluster: the ring document of `GET /v1/cluster/ring`, checked
// field by field when it arrives, and the routing built on it. A key's candidates are its
// preference list (the replicas, then the fallbacks of the extended list) ordered so that
// the first alive replica comes first; nodes the ring calls down, or that this client
// failed to reach lately, come last but are not dropped, so a stale view can still reach
// the cluster.
//
// A view never changes once built: a newer ring makes a new view. So the routing of each
// partition is computed once (walks from the core's Ring, ranks from the ring's liveness)
// and kept; the request path picks its node from the cached route with one loop, and only
// this client's own list of unreachable nodes is consulted per request.

import { assert } from '../core/bytes.ts';
import { keyHashHigh } from '../core/hash.ts';
import { partitionBitsOf, partitionOfHash } from '../core/ring/partition.ts';
import { Ring } from '../core/ring/ring.ts';
import { RingkvError, ClientErrorCode } from './errors.ts';

export type Liveness = 'alive' | 'suspect' | 'down';

export interface RingNode {
  readonly id: string;
  /** host:port of the node's HTTP interface. */
  readonly http: string;
  readonly resp: string;
  readonly liveness: Liveness;
}

export interface RingKeyspace {
  readonly name: string;
  readonly id: number;
  readonly n: number | 'all';
  readonly r: number;
  readonly w: number;
  readonly consistency: string;
  readonly conflicts: string;
  readonly durability: string;
}

export interface RingDocument {
  readonly clusterId: string;
  readonly epoch: number;
  readonly partitionCount: number;
  readonly owners: readonly string[];
  readonly nodes: readonly RingNode[];
  readonly keyspaces: readonly RingKeyspace[];
}

/** Routing ranks: lower goes first. Within a rank, preference-list order is kept. */
const RANK_ALIVE_REPLICA = 0;
const RANK_SUSPECT_REPLICA = 1;
const RANK_ALIVE_FALLBACK = 2;
const RANK_SUSPECT_FALLBACK = 3;
const RANK_UNREACHABLE = 4;

const PARTITION_COUNT_MAX = 65536;

function badRing(what: string): RingkvError {
  return new RingkvError(ClientErrorCode.BAD_RESPONSE, `the ring document ${what}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(record: Record<string, unknown>, name: string, where: string): string {
  const value = record[name];
  if (typeof value !== 'string') throw badRing(`has no string '${name}' in ${where}`);
  return value;
}

function integerField(record: Record<string, unknown>, name: string, where: string): number {
  const value = record[name];
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw badRing(`has no non-negative integer '${name}' in ${where}`);
  }
  return value as number;
}

function parseNode(value: unknown, index: number): RingNode {
  const where = `nodes[${index}]`;
  if (!isRecord(value)) throw badRing(`has a ${where} that is not an object`);
  const liveness = value.liveness;
  if (liveness !== 'alive' && liveness !== 'suspect' && liveness !== 'down') {
    throw badRing(`has a liveness that is not alive, suspect or down in ${where}`);
  }
  return {
    id: stringField(value, 'id', where),
    http: stringField(value, 'http', where),
    resp: typeof value.resp === 'string' ? value.resp : '',
    liveness,
  };
}

function parseKeyspace(value: unknown, index: number): RingKeyspace {
  const where = `keyspaces[${index}]`;
  if (!isRecord(value)) throw badRing(`has a ${where} that is not an object`);
  const n = value.n;
  if (n !== 'all' && !(Number.isSafeInteger(n) && (n as number) >= 1)) {
    throw badRing(`has an n that is neither 'all' nor a positive integer in ${where}`);
  }
  return {
    name: stringField(value, 'name', where),
    id: integerField(value, 'id', where),
    n: n as number | 'all',
    r: integerField(value, 'r', where),
    w: integerField(value, 'w', where),
    consistency: stringField(value, 'consistency', where),
    conflicts: stringField(value, 'conflicts', where),
    durability: stringField(value, 'durability', where),
  };
}

/** Checks an answer of `GET /v1/cluster/ring`; throws BAD_RESPONSE naming the first fault. */
export function parseRingDocument(value: unknown): RingDocument {
  if (!isRecord(value)) throw badRing('is not a JSON object');
  const partitionCount = integerField(value, 'partitionCount', 'the document');
  if (
    partitionCount < 1 ||
    partitionCount > PARTITION_COUNT_MAX ||
    (partitionCount & (partitionCount - 1)) !== 0
  ) {
    throw badRing(`has a partitionCount ${partitionCount} that is not a power of two`);
  }
  const owners = value.owners;
  if (
    !Array.isArray(owners) ||
    owners.length !== partitionCount ||
    !owners.every((owner) => typeof owner === 'string')
  ) {
    throw badRing(`has no 'owners' list of ${partitionCount} node ids`);
  }
  if (!Array.isArray(value.nodes) || value.nodes.length === 0) {
    throw badRing("has no 'nodes' list");
  }
  if (!Array.isArray(value.keyspaces)) throw badRing("has no 'keyspaces' list");
  return {
    clusterId: stringField(value, 'clusterId', 'the document'),
    epoch: integerField(value, 'epoch', 'the document'),
    partitionCount,
    owners: owners as string[],
    nodes: value.nodes.map(parseNode),
    keyspaces: value.keyspaces.map(parseKeyspace),
  };
}

/**
 * Where requests for the keys of one partition go, before this client's own failures are
 * taken into account: every known node, sorted by rank (the ring's liveness and whether the
 * node is a replica), then by position in the partition's extended preference list.
 */
export interface Route {
  readonly nodes: readonly RingNode[];
  /** The rank of each node of `nodes`, from the ring alone. */
  readonly ranks: Uint8Array;
  /** The position of each node of `nodes` in the extended preference list. */
  readonly positions: Uint16Array;
}

export class RingView {
  readonly document: RingDocument;
  private readonly ring: Ring;
  private readonly nodesById: ReadonlyMap<string, RingNode>;
  private readonly keyspacesByName: ReadonlyMap<string, RingKeyspace>;
  /** Distinct owners: the replication factor 'all' stands for all of them. */
  private readonly ownerCount: number;
  private readonly partitionBits: number;
  /** Routes by replication factor, then partition, built on first use. */
  private readonly routes = new Map<number, (Route | undefined)[]>();
  /** The route of requests about no key in particular (listing). */
  private readonly anyNodeRoute: Route;

  constructor(document: RingDocument) {
    this.document = document;
    try {
      this.ring = new Ring(document.owners);
    } catch (error) {
      throw badRing(`has an owner table the ring refuses: ${String(error)}`);
    }
    this.nodesById = new Map(document.nodes.map((node) => [node.id, node]));
    this.keyspacesByName = new Map(document.keyspaces.map((keyspace) => [keyspace.name, keyspace]));
    this.ownerCount = this.ring.members.length;
    this.partitionBits = partitionBitsOf(document.partitionCount);
    if (this.nodesById.size !== document.nodes.length) throw badRing('names a node twice');
    this.anyNodeRoute = this.buildRoute(
      document.nodes.map((node) => node.id),
      document.nodes.length,
    );
  }

  get epoch(): number {
    return this.document.epoch;
  }

  keyspace(name: string): RingKeyspace | undefined {
    return this.keyspacesByName.get(name);
  }

  node(id: string): RingNode | undefined {
    return this.nodesById.get(id);
  }

  /** The key's partition on this ring. */
  partitionOf(keyspace: RingKeyspace, key: Uint8Array): number {
    return partitionOfHash(keyHashHigh(keyspace.id, key), this.partitionBits);
  }

  /** The ids of the key's N replicas, in preference-list order. */
  replicaIds(keyspace: RingKeyspace, key: Uint8Array): readonly string[] {
    return this.ring.replicas(this.partitionOf(keyspace, key), this.replicationOf(keyspace));
  }

  /**
   * The route of a partition's keys in a keyspace: built once per (n, partition) and kept
   * for the life of the view, so the request path allocates nothing to find its node.
   */
  routeOf(keyspace: RingKeyspace, partition: number): Route {
    const n = this.replicationOf(keyspace);
    let routes = this.routes.get(n);
    if (routes === undefined) {
      routes = new Array<Route | undefined>(this.document.partitionCount).fill(undefined);
      this.routes.set(n, routes);
    }
    let route = routes[partition];
    if (route === undefined) {
      // The extended list walks the whole ring; nodes that own nothing come after it.
      const walked = this.ring.walk(partition);
      const ordered = [...walked];
      for (const node of this.document.nodes) {
        if (!walked.includes(node.id)) ordered.push(node.id);
      }
      route = this.buildRoute(ordered, n);
      routes[partition] = route;
    }
    return route;
  }

  /** The route of requests that are not about one key: the ring's node order, alive first. */
  anyNodeRouteOf(): Route {
    return this.anyNodeRoute;
  }

  /**
   * Every known node, in the order a request for this key should try them: alive
   * replicas, suspect replicas, alive then suspect fallbacks (any node coordinates any key),
   * and last whatever is down or was unreachable from here.
   */
  candidatesFor(
    keyspace: RingKeyspace,
    key: Uint8Array,
    isUnreachable: (nodeId: string) => boolean,
  ): readonly RingNode[] {
    return ordered(this.routeOf(keyspace, this.partitionOf(keyspace, key)), isUnreachable);
  }

  /** Every node for requests that are not about one key (listing): the ring's node order, alive first. */
  anyNodeCandidates(isUnreachable: (nodeId: string) => boolean): readonly RingNode[] {
    return ordered(this.anyNodeRoute, isUnreachable);
  }

  private replicationOf(keyspace: RingKeyspace): number {
    return keyspace.n === 'all' ? this.ownerCount : keyspace.n;
  }

  /** Ranks `ids` (in preference order; the first `n` are replicas) and sorts them. */
  private buildRoute(ids: readonly string[], n: number): Route {
    const ranked: { node: RingNode; rank: number; position: number }[] = [];
    for (let position = 0; position < ids.length; position++) {
      const node = this.nodesById.get(ids[position]!);
      if (node === undefined) continue; // an owner the document does not describe: no address
      ranked.push({ node, rank: rankOf(node, position < n), position });
    }
    ranked.sort((a, b) => a.rank - b.rank || a.position - b.position);
    assert(ranked.length <= this.document.nodes.length, 'a route names each node once');
    return {
      nodes: Object.freeze(ranked.map((entry) => entry.node)),
      ranks: Uint8Array.from(ranked, (entry) => entry.rank),
      positions: Uint16Array.from(ranked, (entry) => entry.position),
    };
  }
}

function rankOf(node: RingNode, isReplica: boolean): number {
  if (node.liveness === 'down') return RANK_UNREACHABLE;
  if (isReplica) return node.liveness === 'alive' ? RANK_ALIVE_REPLICA : RANK_SUSPECT_REPLICA;
  return node.liveness === 'alive' ? RANK_ALIVE_FALLBACK : RANK_SUSPECT_FALLBACK;
}

/**
 * The index in `route` of the node a request should try next: the lowest rank once this
 * client's unreachable nodes are ranked with the down ones, then the earliest position;
 * nodes in `tried` are skipped. -1 when every node was tried.
 */
export function bestIndexOf(
  route: Route,
  isUnreachable: ((nodeId: string) => boolean) | null,
  tried: readonly string[] | null,
): number {
  const nodes = route.nodes;
  let best = -1;
  let bestRank = RANK_UNREACHABLE + 1;
  let bestPosition = 0;
  for (let index = 0; index < nodes.length; index++) {
    const id = nodes[index]!.id;
    if (tried !== null && tried.includes(id)) continue;
    let rank = route.ranks[index]!;
    // Sorted by rank from the ring: past the best found, only unreachable ones could tie.
    if (rank > bestRank) break;
    if (isUnreachable !== null && rank < RANK_UNREACHABLE && isUnreachable(id)) {
      rank = RANK_UNREACHABLE;
    }
    const position = route.positions[index]!;
    if (rank < bestRank || (rank === bestRank && position < bestPosition)) {
      best = index;
      bestRank = rank;
      bestPosition = position;
    }
  }
  return best;
}

/** The whole route in the order requests try it, this client's unreachable nodes last. */
function ordered(route: Route, isUnreachable: (nodeId: string) => boolean): RingNode[] {
  const ranked = route.nodes.map((node, index) => ({
    node,
    rank: isUnreachable(node.id) ? RANK_UNREACHABLE : route.ranks[index]!,
    position: route.positions[index]!,
  }));
  ranked.sort((a, b) => a.rank - b.rank || a.position - b.position);
  return ranked.map((entry) => entry.node);
}
