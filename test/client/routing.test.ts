// The client's cached routes against a naive reference: for random rings (owners, nodes
// that own nothing, liveness), replication factors, and sets of nodes this client could not
// reach or already tried, the node a request goes to and the whole order of candidates are
// those of a plain walk-rank-sort computed from scratch. Replay a failure with
// CLIENT_TEST_SEED=<seed>.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  bestIndexOf,
  RingView,
  type Liveness,
  type RingDocument,
  type RingKeyspace,
  type RingNode,
} from '../../src/client/ring-view.ts';
import { DEFAULT_RING_KEYSPACE } from './fake-cluster.ts';

const SEED = Number(process.env.CLIENT_TEST_SEED ?? 20240612);
const NODE_IDS = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
const RANK_OF_LIVENESS: Record<Liveness, [number, number]> = {
  alive: [0, 2],
  suspect: [1, 3],
  down: [4, 4],
};

/** Walks the ring from scratch, ranks every node, sorts by rank then position. */
function naiveOrder(
  document: RingDocument,
  partition: number,
  n: number,
  unreachable: ReadonlySet<string>,
): string[] {
  const owners = document.owners;
  const rotated = [...owners.slice(partition), ...owners.slice(0, partition)];
  const walked = rotated.filter((owner, index) => rotated.indexOf(owner) === index);
  const ordered = [
    ...walked,
    ...document.nodes.map((node) => node.id).filter((id) => !walked.includes(id)),
  ];
  const entries = ordered.flatMap((id, position) => {
    const node = document.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) return [];
    const [replicaRank, fallbackRank] = RANK_OF_LIVENESS[node.liveness];
    const rank = unreachable.has(id) ? 4 : position < n ? replicaRank : fallbackRank;
    return [{ id, rank, position }];
  });
  entries.sort((x, y) => x.rank - y.rank || x.position - y.position);
  return entries.map((entry) => entry.id);
}

const ringArbitrary = fc
  .record({
    partitionBits: fc.integer({ min: 0, max: 5 }),
    ownerPool: fc.subarray(NODE_IDS, { minLength: 1 }),
    extraNodes: fc.subarray(NODE_IDS),
    livenessSeed: fc.array(fc.constantFrom<Liveness>('alive', 'alive', 'suspect', 'down'), {
      minLength: NODE_IDS.length,
      maxLength: NODE_IDS.length,
    }),
    ownerPicks: fc.array(fc.nat(), { minLength: 32, maxLength: 32 }),
    describeEveryOwner: fc.boolean(),
  })
  .map((shape): RingDocument => {
    const partitionCount = 2 ** shape.partitionBits;
    const owners = Array.from(
      { length: partitionCount },
      (_, index) => shape.ownerPool[shape.ownerPicks[index]! % shape.ownerPool.length]!,
    );
    // Sometimes an owner is missing from the node list: it has no address and is skipped.
    const described = shape.describeEveryOwner
      ? [...new Set([...owners, ...shape.extraNodes])]
      : [...new Set([...owners.slice(1), ...shape.extraNodes])];
    const ids = described.length === 0 ? [owners[0]!] : described;
    const nodes: RingNode[] = ids.map((id) => ({
      id,
      http: `127.0.0.1:${1000 + NODE_IDS.indexOf(id)}`,
      resp: '',
      liveness: shape.livenessSeed[NODE_IDS.indexOf(id)]!,
    }));
    return {
      clusterId: 'property',
      epoch: 1,
      partitionCount,
      owners,
      nodes,
      keyspaces: [DEFAULT_RING_KEYSPACE],
    };
  });

test('the cached route of every partition orders nodes as a naive walk, rank and sort does', () => {
  fc.assert(
    fc.property(
      ringArbitrary,
      fc.oneof(fc.integer({ min: 1, max: 8 }), fc.constant<'all'>('all')),
      fc.subarray(NODE_IDS),
      (document, n, unreachableIds) => {
        const view = new RingView(document);
        const keyspace: RingKeyspace = { ...DEFAULT_RING_KEYSPACE, n };
        const replication = n === 'all' ? new Set(document.owners).size : n;
        const unreachable = new Set(unreachableIds);
        const isUnreachable = (id: string): boolean => unreachable.has(id);
        for (let partition = 0; partition < document.partitionCount; partition++) {
          const expected = naiveOrder(document, partition, replication, unreachable);
          const route = view.routeOf(keyspace, partition);
          // Asked twice, the route is the very same object: nothing is rebuilt per request.
          assert.equal(view.routeOf(keyspace, partition), route);
          const ordered: string[] = [];
          const tried: string[] = [];
          for (;;) {
            const index = bestIndexOf(route, isUnreachable, tried);
            if (index === -1) break;
            ordered.push(route.nodes[index]!.id);
            tried.push(route.nodes[index]!.id);
          }
          assert.deepEqual(ordered, expected, `partition ${partition}, n ${String(n)}`);
          if (unreachable.size === 0) {
            assert.deepEqual(
              route.nodes.map((node) => node.id),
              expected,
            );
            assert.equal(bestIndexOf(route, null, null), expected.length === 0 ? -1 : 0);
          }
        }
      },
    ),
    { seed: SEED, numRuns: 300 },
  );
});

test('candidatesFor and replicaIds of a key agree with the naive reference', () => {
  fc.assert(
    fc.property(
      ringArbitrary,
      fc.integer({ min: 1, max: 4 }),
      fc.uint8Array({ minLength: 0, maxLength: 16 }),
      fc.subarray(NODE_IDS),
      (document, n, key, unreachableIds) => {
        const view = new RingView(document);
        const keyspace: RingKeyspace = { ...DEFAULT_RING_KEYSPACE, n };
        const partition = view.partitionOf(keyspace, key);
        const unreachable = new Set(unreachableIds);
        const candidates = view.candidatesFor(keyspace, key, (id) => unreachable.has(id));
        assert.deepEqual(
          candidates.map((node) => node.id),
          naiveOrder(document, partition, n, unreachable),
        );
        const owners = document.owners;
        const rotated = [...owners.slice(partition), ...owners.slice(0, partition)];
        const walked = rotated.filter((owner, index) => rotated.indexOf(owner) === index);
        assert.deepEqual([...view.replicaIds(keyspace, key)], walked.slice(0, n));
      },
    ),
    { seed: SEED + 1, numRuns: 300 },
  );
});
