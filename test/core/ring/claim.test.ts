// The claim algorithm against its contract: balance, determinism, distinct windows for fresh
// claims exactly up to freshClaimSpacing, and minimal movement on a join or a leave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  claimPartitions,
  defaultTargetN,
  freshClaimSpacing,
} from '../../../src/core/ring/claim.ts';
import {
  isBalanced,
  memberIds,
  naiveCounts,
  permuted,
  seeded,
  windowsDistinct,
} from './reference.ts';

const POWERS_OF_TWO = Array.from({ length: 17 }, (_, bits) => 2 ** bits);

/** (M, Q) with 1 ≤ M ≤ 64 and M ≤ Q, Q up to 2^maxBits. */
function ringShape(maxBits: number): fc.Arbitrary<{ memberCount: number; partitionCount: number }> {
  return fc
    .record({
      memberCount: fc.integer({ min: 1, max: 64 }),
      bits: fc.integer({ min: 0, max: maxBits }),
    })
    .map(({ memberCount, bits }) => {
      const partitionCount = Math.max(2 ** bits, 2 ** Math.ceil(Math.log2(memberCount)));
      return { memberCount, partitionCount };
    });
}

const idArbitrary = fc.string({ minLength: 1, maxLength: 6, unit: 'grapheme-ascii' });

function movedPartitions(before: readonly string[], after: readonly string[]): number[] {
  const moved: number[] = [];
  for (let partition = 0; partition < before.length; partition++) {
    if (before[partition] !== after[partition]) moved.push(partition);
  }
  return moved;
}

test('every member owns floor(Q/M) or ceil(Q/M) partitions, whatever order the members come in', () => {
  fc.assert(
    fc.property(
      ringShape(12),
      fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      ({ memberCount, partitionCount }, shuffleKeys) => {
        const members = memberIds(memberCount);
        const owners = claimPartitions(members, partitionCount, null);
        assert.equal(owners.length, partitionCount);
        assert.ok(isBalanced(owners, members));
        assert.deepEqual(
          claimPartitions(permuted(members, shuffleKeys), partitionCount, null),
          owners,
        );
        assert.deepEqual(claimPartitions(members, partitionCount, null), owners, 'deterministic');
      },
    ),
    seeded(300),
  );
});

test('a fresh claim keeps any w consecutive owners distinct exactly for w up to freshClaimSpacing(M, Q)', () => {
  for (const partitionCount of POWERS_OF_TWO.filter((count) => count <= 1024)) {
    for (let memberCount = 1; memberCount <= Math.min(64, partitionCount); memberCount++) {
      const owners = claimPartitions(memberIds(memberCount), partitionCount, null);
      const spacing = freshClaimSpacing(memberCount, partitionCount);
      const shape = `M=${memberCount} Q=${partitionCount}`;
      assert.ok(windowsDistinct(owners, spacing), `${shape}: windows of ${spacing} distinct`);
      if (memberCount > 1 && spacing < partitionCount) {
        assert.ok(!windowsDistinct(owners, spacing + 1), `${shape}: the bound ${spacing} is exact`);
      }
      if (partitionCount % memberCount === 0) assert.equal(spacing, memberCount, shape);
    }
  }
});

test('with the default targetN, fresh claims on Q ≥ 128 keep every replica window distinct unless M = 3', () => {
  // M = 3 with targetN 3 needs a period-3 ring, impossible when 3 does not divide Q.
  for (const partitionCount of POWERS_OF_TWO.filter((count) => count >= 128)) {
    // Past 8192 the window check costs seconds; the spacing formula covers the larger rings.
    const checkWindows = partitionCount <= 8192;
    for (let memberCount = 1; memberCount <= 64; memberCount++) {
      const targetN = defaultTargetN(memberCount);
      const expected = memberCount !== 3;
      assert.equal(freshClaimSpacing(memberCount, partitionCount) >= targetN, expected);
      if (checkWindows) {
        const owners = claimPartitions(memberIds(memberCount), partitionCount, null);
        assert.equal(
          windowsDistinct(owners, targetN),
          expected,
          `M=${memberCount} Q=${partitionCount}`,
        );
      }
    }
  }
});

test('a join moves exactly floor(Q/(M+1)) partitions, all of them to the joiner', () => {
  fc.assert(
    fc.property(
      ringShape(12),
      idArbitrary,
      fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      ({ memberCount, partitionCount }, joiner, shuffleKeys) => {
        const members = memberIds(Math.min(memberCount, partitionCount - 1), 'n');
        fc.pre(members.length >= 1 && !members.includes(joiner));
        const before = claimPartitions(members, partitionCount, null);
        const joined = permuted([...members, joiner], shuffleKeys);
        const after = claimPartitions(joined, partitionCount, before);
        const moved = movedPartitions(before, after);
        assert.equal(moved.length, Math.floor(partitionCount / joined.length));
        assert.ok(
          moved.every((partition) => after[partition] === joiner),
          'only the joiner gains',
        );
        assert.ok(isBalanced(after, joined));
        assert.deepEqual(claimPartitions([...members, joiner], partitionCount, before), after);
      },
    ),
    seeded(300),
  );
});

test("a leave moves exactly the leaver's partitions (at most ceil(Q/M)) and none between the others", () => {
  fc.assert(
    fc.property(
      ringShape(12),
      fc.nat(),
      fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
      ({ memberCount, partitionCount }, leaverPick, shuffleKeys) => {
        fc.pre(memberCount >= 2);
        const members = memberIds(memberCount);
        const leaver = members[leaverPick % memberCount]!;
        const before = claimPartitions(members, partitionCount, null);
        const remaining = permuted(
          members.filter((member) => member !== leaver),
          shuffleKeys,
        );
        const after = claimPartitions(remaining, partitionCount, before);
        const moved = movedPartitions(before, after);
        assert.equal(moved.length, naiveCounts(before).get(leaver));
        assert.ok(moved.length <= Math.ceil(partitionCount / memberCount));
        assert.ok(
          moved.every((partition) => before[partition] === leaver),
          'only the leaver loses',
        );
        assert.ok(isBalanced(after, remaining));
        // The minimal move cannot always keep windows distinct (docs/RING.md), but a window
        // that repeats an owner must hold a moved partition: nothing else changed.
        const targetN = defaultTargetN(remaining.length);
        if (windowsDistinct(before, targetN)) {
          for (let start = 0; start < partitionCount; start++) {
            const window = Array.from(
              { length: targetN },
              (_, offset) => (start + offset) % partitionCount,
            );
            const owners = window.map((partition) => after[partition]!);
            if (new Set(owners).size < targetN) {
              assert.ok(window.some((partition) => moved.includes(partition)));
            }
          }
        }
      },
    ),
    seeded(300),
  );
});

test('a join to a fresh claim keeps replica windows distinct wherever a fresh claim of M+1 has them', () => {
  for (const partitionCount of POWERS_OF_TWO.filter((count) => count >= 2 && count <= 4096)) {
    for (let memberCount = 1; memberCount < Math.min(64, partitionCount); memberCount++) {
      const members = memberIds(memberCount);
      const targetN = defaultTargetN(memberCount + 1);
      if (freshClaimSpacing(memberCount + 1, partitionCount) < targetN) continue;
      const before = claimPartitions(members, partitionCount, null);
      if (!windowsDistinct(before, targetN)) continue;
      for (const joiner of ['a-first', 'node-5x', 'z-last']) {
        const after = claimPartitions([...members, joiner], partitionCount, before);
        assert.ok(
          windowsDistinct(after, targetN),
          `M=${memberCount} Q=${partitionCount} joiner ${joiner}`,
        );
      }
    }
  }
});

test('through a history of joins and leaves, every step keeps balance and moves at most ceil(Q/M) partitions', () => {
  const change = fc.record({ join: fc.boolean(), pick: fc.nat() });
  fc.assert(
    fc.property(
      ringShape(10),
      fc.array(change, { minLength: 1, maxLength: 10 }),
      ({ memberCount, partitionCount }, changes) => {
        let members = memberIds(memberCount);
        let owners = claimPartitions(members, partitionCount, null);
        let nextId = memberCount;
        for (const { join, pick } of changes) {
          let next: string[];
          const joining = join && members.length < Math.min(64, partitionCount);
          if (joining) {
            next = [...members, `node-${nextId++}`];
          } else if (members.length > 1) {
            const leaver = members[pick % members.length]!;
            next = members.filter((member) => member !== leaver);
          } else {
            continue;
          }
          const after = claimPartitions(next, partitionCount, owners);
          assert.ok(isBalanced(after, next));
          const moved = movedPartitions(owners, after).length;
          const larger = Math.max(members.length, next.length);
          const smaller = Math.min(members.length, next.length);
          assert.ok(moved <= Math.ceil(partitionCount / smaller), `moved ${moved}`);
          if (joining) assert.equal(moved, Math.floor(partitionCount / larger));
          members = next;
          owners = after;
        }
      },
    ),
    seeded(200),
  );
});

test('an unchanged membership moves nothing', () => {
  fc.assert(
    fc.property(ringShape(12), ({ memberCount, partitionCount }) => {
      const members = memberIds(memberCount);
      const owners = claimPartitions(members, partitionCount, null);
      assert.deepEqual(claimPartitions([...members].reverse(), partitionCount, owners), owners);
    }),
    seeded(100),
  );
});

test('a claim from arbitrary previous owners still balances and keeps members that stay', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 8 }),
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 256, maxLength: 256 }),
      fc.integer({ min: 1, max: 10 }),
      (bits, previousPicks, memberCount) => {
        const partitionCount = 2 ** bits;
        fc.pre(memberCount <= partitionCount);
        const previous = previousPicks.slice(0, partitionCount).map((pick) => `node-${pick}`);
        const members = memberIds(memberCount);
        const owners = claimPartitions(members, partitionCount, previous);
        assert.ok(isBalanced(owners, members));
        // A partition moves only if its owner left or was over its target.
        const counts = naiveCounts(previous);
        for (let partition = 0; partition < partitionCount; partition++) {
          const owner = previous[partition]!;
          if (owners[partition] !== owner && members.includes(owner)) {
            assert.ok(counts.get(owner)! > Math.floor(partitionCount / memberCount));
          }
        }
      },
    ),
    seeded(200),
  );
});

test('claims refuse no members, duplicate or empty ids, bad partition counts and more members than partitions', () => {
  assert.throws(() => claimPartitions([], 256, null), /at least one member/);
  assert.throws(() => claimPartitions(['a', 'b', 'a'], 256, null), /listed twice/);
  assert.throws(() => claimPartitions(['a', ''], 256, null), /empty/);
  assert.throws(() => claimPartitions(['a'], 100, null), /power of two/);
  assert.throws(() => claimPartitions(['a'], 0, null), /power of two/);
  assert.throws(() => claimPartitions(['a'], 131072, null), /power of two/);
  assert.throws(() => claimPartitions(['a', 'b', 'c'], 2, null), /cannot share/);
  assert.throws(() => claimPartitions(['a'], 4, ['a', 'a']), /previous owners/);
  assert.throws(() => claimPartitions(['a'], 4, null, 0), /targetN/);
  assert.deepEqual(claimPartitions(['only'], 1, null), ['only']);
});
