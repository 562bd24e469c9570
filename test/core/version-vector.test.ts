// Version-vector operations checked against a naive Map-based reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  coversDot,
  descends,
  isValidVector,
  mergeVectors,
  withDot,
  type VersionVector,
} from '../../src/core/versions/version-vector.ts';

const nodeArbitrary = fc.constantFrom('a', 'b', 'c', 'd', 'n1', 'n10', 'n2');
const vectorArbitrary = fc
  .dictionary(nodeArbitrary, fc.integer({ min: 1, max: 20 }))
  .map((entries): VersionVector =>
    Object.entries(entries).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)),
  );

function naiveMerge(a: VersionVector, b: VersionVector): Map<string, number> {
  const result = new Map<string, number>(a);
  for (const [node, counter] of b) result.set(node, Math.max(result.get(node) ?? 0, counter));
  return result;
}

function naiveDescends(a: VersionVector, b: VersionVector): boolean {
  const left = new Map(a);
  return b.every(([node, counter]) => (left.get(node) ?? 0) >= counter);
}

test('merge is the pointwise maximum and stays sorted', () => {
  fc.assert(
    fc.property(vectorArbitrary, vectorArbitrary, (a, b) => {
      const merged = mergeVectors(a, b);
      assert.ok(isValidVector(merged));
      assert.deepEqual(new Map(merged), naiveMerge(a, b));
    }),
  );
});

test('descends agrees with the naive reference and merge descends both inputs', () => {
  fc.assert(
    fc.property(vectorArbitrary, vectorArbitrary, (a, b) => {
      assert.equal(descends(a, b), naiveDescends(a, b));
      const merged = mergeVectors(a, b);
      assert.ok(descends(merged, a) && descends(merged, b));
    }),
  );
});

test('a vector with a dot added covers that dot and nothing it did not before', () => {
  fc.assert(
    fc.property(
      vectorArbitrary,
      nodeArbitrary,
      fc.integer({ min: 1, max: 30 }),
      (vector, node, counter) => {
        const next = withDot(vector, { node, counter });
        assert.ok(coversDot(next, { node, counter }));
        assert.ok(descends(next, vector));
        assert.equal(
          coversDot(next, { node, counter: Math.max(counter, new Map(vector).get(node) ?? 0) + 1 }),
          false,
        );
      },
    ),
  );
});

test('adding a dot gives exactly the merge with the vector of that one dot', () => {
  fc.assert(
    fc.property(
      vectorArbitrary,
      nodeArbitrary,
      fc.integer({ min: 1, max: 30 }),
      (vector, node, counter) => {
        const next = withDot(vector, { node, counter });
        assert.ok(isValidVector(next));
        assert.deepEqual(next, mergeVectors(vector, [[node, counter]]));
      },
    ),
    { seed: 5, numRuns: 300 },
  );
});

test('unsorted or zero-counter vectors are invalid', () => {
  assert.equal(
    isValidVector([
      ['b', 1],
      ['a', 1],
    ]),
    false,
  );
  assert.equal(isValidVector([['a', 0]]), false);
  assert.equal(
    isValidVector([
      ['a', 1],
      ['a', 2],
    ]),
    false,
  );
  assert.equal(
    isValidVector([
      ['a', 1],
      ['b', 2],
    ]),
    true,
  );
});
