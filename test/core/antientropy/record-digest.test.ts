// The record digest is canonical (the order of siblings and context entries does not matter)
// and tells apart the records that a merge would treat differently: another dot, a tombstone,
// another expiry, another context counter. Replayed with DIGEST_PROPERTY_SEED=<seed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../../src/core/bytes.ts';
import { recordDigest, RECORD_DIGEST_MAX } from '../../../src/core/antientropy/record-digest.ts';
import type { Sibling, StoredRecord } from '../../../src/core/store/record.ts';

function seeded(numRuns: number): fc.Parameters<unknown> {
  return { seed: Number(process.env['DIGEST_PROPERTY_SEED'] ?? 20240611), numRuns };
}

const nodeArbitrary = fc.oneof(
  fc.constantFrom('n1', 'n2', 'n3', 'n10', 'node-é'),
  fc.string({ minLength: 1, maxLength: 12 }),
);
const counterArbitrary = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 1 });

const siblingArbitrary: fc.Arbitrary<Sibling> = fc.record({
  dot: fc.record({ node: nodeArbitrary, counter: counterArbitrary }),
  timestamp: fc.tuple(fc.nat(), fc.integer({ min: 0, max: 0xffff })),
  value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
  expiresAtMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER - 1 })),
});

const recordArbitrary: fc.Arbitrary<StoredRecord> = fc
  .record({
    context: fc.uniqueArray(fc.tuple(nodeArbitrary, counterArbitrary), {
      selector: ([node]) => node,
      maxLength: 6,
    }),
    siblings: fc.uniqueArray(siblingArbitrary, {
      selector: (sibling) => `${sibling.dot.node}\u0000${sibling.dot.counter}`,
      minLength: 1,
      maxLength: 5,
    }),
  })
  .map(({ context, siblings }) => ({
    context: [...context].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    siblings,
  }));

/** A record and the same record with its siblings and context entries in another order. */
const permutedArbitrary = recordArbitrary.chain((record) =>
  fc.tuple(
    fc.constant(record),
    fc.shuffledSubarray([...record.siblings], {
      minLength: record.siblings.length,
      maxLength: record.siblings.length,
    }),
    fc.shuffledSubarray([...record.context], {
      minLength: record.context.length,
      maxLength: record.context.length,
    }),
  ),
);

const withSibling = (record: StoredRecord, index: number, sibling: Sibling): StoredRecord => ({
  context: record.context,
  siblings: record.siblings.map((old, i) => (i === index ? sibling : old)),
});

test('the digest is a safe integer that ignores the order of siblings and context entries', () => {
  fc.assert(
    fc.property(permutedArbitrary, ([record, siblings, context]) => {
      const digest = recordDigest(record);
      assert.ok(Number.isSafeInteger(digest) && digest >= 0 && digest <= RECORD_DIGEST_MAX);
      assert.equal(recordDigest({ context, siblings }), digest);
    }),
    seeded(500),
  );
});

test('another dot, tombstone flag, expiry or context counter gives another digest', () => {
  fc.assert(
    fc.property(recordArbitrary, fc.nat(), (record, pick) => {
      const digest = recordDigest(record);
      const index = pick % record.siblings.length;
      const sibling = record.siblings[index]!;
      const highest = Math.max(
        ...record.siblings.filter((s) => s.dot.node === sibling.dot.node).map((s) => s.dot.counter),
      );
      const changes: [string, StoredRecord][] = [
        [
          'dot counter',
          withSibling(record, index, {
            ...sibling,
            dot: { node: sibling.dot.node, counter: highest + 1 },
          }),
        ],
        [
          'dot node',
          withSibling(record, index, {
            ...sibling,
            dot: { node: `${sibling.dot.node}'`, counter: sibling.dot.counter },
          }),
        ],
        [
          'tombstone',
          withSibling(record, index, {
            ...sibling,
            value: sibling.value === null ? utf8('v') : null,
          }),
        ],
        [
          'expiry',
          withSibling(record, index, {
            ...sibling,
            expiresAtMs: sibling.expiresAtMs === 0 ? 1 : sibling.expiresAtMs + 1,
          }),
        ],
        ['sibling removed', { ...record, siblings: record.siblings.filter((_, i) => i !== index) }],
      ];
      const entry = record.context[pick % Math.max(1, record.context.length)];
      if (entry !== undefined) {
        const context = record.context.map(([node, counter]) =>
          node === entry[0] ? ([node, counter + 1] as const) : ([node, counter] as const),
        );
        changes.push(['context counter', { ...record, context }]);
      } else {
        changes.push(['context entry added', { ...record, context: [['n1', 1]] }]);
      }
      for (const [what, changed] of changes) {
        assert.notEqual(recordDigest(changed), digest, `${what} left the digest unchanged`);
      }
    }),
    seeded(500),
  );
});

test('a dot names its version: the value and timestamp of a sibling are not digested', () => {
  const sibling: Sibling = {
    dot: { node: 'n1', counter: 4 },
    timestamp: [1000, 0],
    value: utf8('one'),
    expiresAtMs: 0,
  };
  const record: StoredRecord = { context: [['n1', 4]], siblings: [sibling] };
  const sameDot: StoredRecord = {
    context: [['n1', 4]],
    siblings: [{ ...sibling, timestamp: [2000, 3], value: utf8('another value') }],
  };
  assert.equal(recordDigest(sameDot), recordDigest(record));
});

test('the digest of a fixed record never changes (replicas of different releases compare it)', () => {
  const record: StoredRecord = {
    context: [
      ['n1', 3],
      ['n2', 2 ** 40],
    ],
    siblings: [
      { dot: { node: 'n2', counter: 2 ** 40 }, timestamp: [5, 0], value: null, expiresAtMs: 0 },
      { dot: { node: 'n1', counter: 3 }, timestamp: [4, 1], value: utf8('x'), expiresAtMs: 99 },
    ],
  };
  assert.equal(recordDigest(record), PINNED_DIGEST);
});

const PINNED_DIGEST = 6348247213990570;
