// The client's picture of the cluster: the ring document of `GET /v1/cluster/ring`, checked
// field by field when it arrives, and the routing built on it. A key's candidates are its
// preference list (the replicas, then the fallbacks of the extended list) ordered so that
// the first alive replica comes first; nodes the ring calls down, or that this client
// failed to reach lately, come last but are not dropped, so a stale view can still reach
// the cluster.

import { partitionOf } from '../core/ring/partition.ts';
import { preferenceList, walkRing } from '../core/ring/preference-list.ts';
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

export class RingView {
  readonly document: RingDocument;
  private readonly nodesById: ReadonlyMap<string, RingNode>;
  private readonly keyspacesByName: ReadonlyMap<string, RingKeyspace>;
  /** Distinct owners: the replication factor 'all' stands for all of them. */
  private readonly ownerCount: number;

  constructor(document: RingDocument) {
    this.document = document;
    this.nodesById = new Map(document.nodes.map((node) => [node.id, node]));
    this.keyspacesByName = new Map(document.keyspaces.map((keyspace) => [keyspace.name, keyspace]));
    this.ownerCount = new Set(document.owners).size;
    if (this.nodesById.size !== document.nodes.length) throw badRing('names a node twice');
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

  /** The ids of the key's N replicas, in preference-list order. */
  replicaIds(keyspace: RingKeyspace, key: Uint8Array): readonly string[] {
    const partition = partitionOf(keyspace.id, key, this.document.partitionCount);
    const n = keyspace.n === 'all' ? this.ownerCount : keyspace.n;
    return preferenceList(this.document.owners, partition, n);
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
    const partition = partitionOf(keyspace.id, key, this.document.partitionCount);
    const n = keyspace.n === 'all' ? this.ownerCount : keyspace.n;
    // The extended list walks the whole ring; nodes that own nothing come after it.
    const walked = walkRing(this.document.owners, partition);
    const ordered = [...walked];
    for (const node of this.document.nodes) if (!walked.includes(node.id)) ordered.push(node.id);
    const ranked: { node: RingNode; rank: number; position: number }[] = [];
    ordered.forEach((id, position) => {
      const node = this.nodesById.get(id);
      if (node === undefined) return; // an owner the document does not describe: no address
      ranked.push({ node, rank: this.rankOf(node, position < n, isUnreachable), position });
    });
    ranked.sort((a, b) => a.rank - b.rank || a.position - b.position);
    return ranked.map((entry) => entry.node);
  }

  /** Every node for requests that are not about one key (listing): the ring's node order, alive first. */
  anyNodeCandidates(isUnreachable: (nodeId: string) => boolean): readonly RingNode[] {
    const ranked = this.document.nodes.map((node, position) => ({
      node,
      rank: this.rankOf(node, true, isUnreachable),
      position,
    }));
    ranked.sort((a, b) => a.rank - b.rank || a.position - b.position);
    return ranked.map((entry) => entry.node);
  }

  private rankOf(
    node: RingNode,
    isReplica: boolean,
    isUnreachable: (nodeId: string) => boolean,
  ): number {
    if (node.liveness === 'down' || isUnreachable(node.id)) return RANK_UNREACHABLE;
    if (isReplica) return node.liveness === 'alive' ? RANK_ALIVE_REPLICA : RANK_SUSPECT_REPLICA;
    return node.liveness === 'alive' ? RANK_ALIVE_FALLBACK : RANK_SUSPECT_FALLBACK;
  }
}
