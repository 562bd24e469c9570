// The checkers' causal order on plain versions, against a naive reference: two versions
// are compared node by node over the union of their nodes, a missing node counting as 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Version } from '../../src/check/history.ts';
import {
  compareVersions,
  descends,
  formatVersion,
  joinVersions,
  strictlyBefore,
} from '../../src/check/version.ts';

const SEED = 4_242;
const NODES = ['n1', 'n2', 'n3'];

const versionArbitrary: fc.Arbitrary<Version> = fc
  .array(fc.tuple(fc.constantFrom(...NODES), fc.integer({ min: 1, max: 3 })), { maxLength: 4 })
  .map((entries) => Object.fromEntries(entries));

function naiveOrder(a: Version, b: Version): string {
  let less = false;
  let greater = false;
  for (const node of NODES) {
    const left = a[node] ?? 0;
    const right = b[node] ?? 0;
    if (left < right) less = true;
    if (left > right) greater = true;
  }
  if (less && greater) return 'concurrent';
  if (less) return 'before';
  if (greater) return 'after';
  return 'equal';
}

test('causal order agrees with a node-by-node comparison (seeded; replay with the seed printed on failure)', () => {
  fc.assert(
    fc.property(versionArbitrary, versionArbitrary, (a, b) => {
      const order = compareVersions(a, b);
      assert.equal(order, naiveOrder(a, b));
      assert.equal(strictlyBefore(a, b), order === 'before');
      assert.equal(descends(a, b), order === 'after' || order === 'equal');
    }),
    { seed: SEED, numRuns: 500 },
  );
});

test('the join descends both versions and is the least that does', () => {
  fc.assert(
    fc.property(versionArbitrary, versionArbitrary, versionArbitrary, (a, b, c) => {
      const join = joinVersions(a, b);
      assert.ok(descends(join, a) && descends(join, b));
      if (descends(c, a) && descends(c, b)) assert.ok(descends(c, join));
    }),
    { seed: SEED, numRuns: 500 },
  );
});

test('an absent node counts as zero and versions print sorted', () => {
  assert.equal(compareVersions({}, { n1: 1 }), 'before');
  assert.equal(compareVersions({ n2: 1 }, { n1: 1 }), 'concurrent');
  assert.equal(formatVersion({ n2: 1, n1: 3 }), '{n1:3,n2:1}');
});
