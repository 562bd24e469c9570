// Preference lists, walks and ownership queries against the naive clockwise walk, on claimed
// rings and on arbitrary owner tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  claimPartitions,
  defaultTargetN,
  freshClaimSpacing,
} from '../../../src/core/ring/claim.ts';
import { preferenceList, walkRing } from '../../../src/core/ring/preference-list.ts';
import { ownershipChanges, Ring } from '../../../src/core/ring/ring.ts';
import { memberIds, naiveWalk, seeded } from './reference.ts';

/** An owner table of 2^bits partitions over up to `poolSize` ids, in any arrangement. */
function arbitraryTable(maxBits: number, poolSize: number): fc.Arbitrary<string[]> {
  return fc
    .integer({ min: 0, max: maxBits })
    .chain((bits) =>
      fc.array(fc.integer({ min: 0, max: poolSize - 1 }), {
        minLength: 2 ** bits,
        maxLength: 2 ** bits,
      }),
    )
    .map((picks) => picks.map((pick) => `node-${pick}`));
}

/** A claimed table: M from 1 to 64, Q ≥ M. */
const claimedTable = fc
  .record({ memberCount: fc.integer({ min: 1, max: 64 }), bits: fc.integer({ min: 0, max: 10 }) })
  .map(({ memberCount, bits }) => {
    const partitionCount = Math.max(2 ** bits, 2 ** Math.ceil(Math.log2(memberCount)));
    return claimPartitions(memberIds(memberCount), partitionCount, null);
  });

const table = fc.oneof(arbitraryTable(8, 12), claimedTable);

test('a preference list is the first min(n, M) distinct owners of the clockwise walk', () => {
  fc.assert(
    fc.property(table, fc.nat(), fc.integer({ min: 0, max: 70 }), (owners, pick, n) => {
      const partition = pick % owners.length;
      const walk = naiveWalk(owners, partition);
      const list = preferenceList(owners, partition, n);
      assert.deepEqual(list, walk.slice(0, n));
      assert.equal(list.length, Math.min(n, new Set(owners).size));
      assert.equal(new Set(list).size, list.length, 'distinct');
      assert.deepEqual(walkRing(owners, partition), walk);
    }),
    seeded(400),
  );
});

test('Ring answers walks and replica lists equal to the naive walk, for every partition', () => {
  fc.assert(
    fc.property(table, fc.integer({ min: 1, max: 70 }), (owners, n) => {
      const ring = new Ring(owners);
      assert.deepEqual(ring.members, [...new Set(owners)].sort());
      for (let partition = 0; partition < owners.length; partition++) {
        const walk = naiveWalk(owners, partition);
        assert.deepEqual(ring.walk(partition), walk);
        assert.deepEqual(ring.replicas(partition, n), walk.slice(0, n));
        assert.equal(ring.ownerOf(partition), owners[partition]);
      }
    }),
    seeded(150),
  );
});

test('Ring answers a repeated replica query with the same array, allocating nothing', () => {
  const ring = new Ring(claimPartitions(memberIds(7), 256, null));
  for (const n of [1, 3, 7, 9]) {
    const first = ring.replicas(42, n);
    assert.equal(ring.replicas(42, n), first);
    assert.ok(Object.isFrozen(first));
  }
  assert.equal(ring.walk(42), ring.walk(42));
  assert.equal(ring.replicas(42, 9), ring.walk(42), 'n past M gives the whole walk');
});

test('on a fresh claim whose spacing reaches n, the n replicas are the owners of n consecutive partitions', () => {
  for (const partitionCount of [64, 256, 1024]) {
    for (let memberCount = 1; memberCount <= 64; memberCount++) {
      const owners = claimPartitions(memberIds(memberCount), partitionCount, null);
      const ring = new Ring(owners);
      const n = Math.min(
        defaultTargetN(memberCount),
        freshClaimSpacing(memberCount, partitionCount),
      );
      for (let partition = 0; partition < partitionCount; partition++) {
        const consecutive = Array.from(
          { length: n },
          (_, offset) => owners[(partition + offset) % partitionCount]!,
        );
        assert.deepEqual(ring.replicas(partition, n), consecutive);
      }
    }
  }
});

test('partitions owned and replicated per node agree with a naive scan, and replicas load spreads evenly', () => {
  fc.assert(
    fc.property(table, fc.integer({ min: 1, max: 5 }), (owners, n) => {
      const ring = new Ring(owners);
      const walks = owners.map((_, partition) => naiveWalk(owners, partition));
      const counts = ring.ownedCounts();
      let replicaSlots = 0;
      for (const member of ring.members) {
        const owned = owners.flatMap((owner, partition) => (owner === member ? [partition] : []));
        assert.deepEqual(ring.partitionsOwnedBy(member), owned);
        assert.equal(counts.get(member), owned.length);
        const replicated = walks.flatMap((walk, partition) =>
          walk.slice(0, n).includes(member) ? [partition] : [],
        );
        assert.deepEqual(ring.partitionsReplicatedBy(member, n), replicated);
        replicaSlots += replicated.length;
      }
      assert.equal(replicaSlots, owners.length * Math.min(n, ring.members.length));
      assert.deepEqual(ring.partitionsOwnedBy('not-a-member'), []);
      assert.deepEqual(ring.partitionsReplicatedBy('not-a-member', n), []);
    }),
    seeded(150),
  );
});

test('on a fresh claim with spread windows, each node replicates n times its share at replication n', () => {
  // Q = 256, M = 8, n = 4: every window of 4 is distinct, so each node holds 4 x 32 partitions.
  const ring = new Ring(claimPartitions(memberIds(8), 256, null));
  for (const member of ring.members) {
    assert.equal(ring.partitionsReplicatedBy(member, 4).length, 128);
  }
});

test('ownership changes list exactly the partitions whose owner differs', () => {
  fc.assert(
    fc.property(
      arbitraryTable(6, 4),
      fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      (before, picks) => {
        const after = before.map((owner, partition) =>
          picks[partition]! % 3 === 0 ? `node-${picks[partition]! % 4}` : owner,
        );
        const changes = ownershipChanges(before, after);
        const expected = before.flatMap((from, partition) =>
          from === after[partition] ? [] : [{ partition, from, to: after[partition]! }],
        );
        assert.deepEqual(changes, expected);
      },
    ),
    seeded(200),
  );
});

test('a ring refuses a table whose length is not a power of two or with an empty owner', () => {
  assert.throws(() => new Ring([]), /power of two/);
  assert.throws(() => new Ring(['a', 'b', 'c']), /power of two/);
  assert.throws(() => new Ring(['a', '']), /no owner/);
  assert.throws(() => preferenceList(['a', 'b'], 2, 1), /within/);
  assert.throws(() => new Ring(['a', 'b']).replicas(0, 0), /positive/);
});
