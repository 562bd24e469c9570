// The storage encoding of records and causal contexts: round trips for every record, and
// arbitrary bytes either decode or fail with DecodeError, never anything worse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../src/core/bytes.ts';
import type { ConflictPolicy } from '../../src/core/keyspace.ts';
import { winningSibling } from '../../src/core/kv/siblings.ts';
import { DecodeError } from '../../src/core/store/byte-codec.ts';
import { ByteSlab } from '../../src/core/store/byte-slab.ts';
import {
  decodeContext,
  decodeRecord,
  encodeContext,
  encodeRecord,
  encodeSoleRecord,
  readSoleVersion,
  readWinner,
  type StoredRecord,
} from '../../src/core/store/record.ts';

const nodeArbitrary = fc.string({ minLength: 1, maxLength: 12 });
const vectorArbitrary = fc
  .dictionary(nodeArbitrary, fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))
  .map((entries) => Object.entries(entries).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
const siblingArbitrary = fc.record({
  dot: fc.record({
    node: nodeArbitrary,
    counter: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  }),
  timestamp: fc.tuple(fc.integer({ min: 0, max: 2 ** 48 }), fc.integer({ min: 0, max: 0xffff })),
  value: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
  expiresAtMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
});
const recordArbitrary: fc.Arbitrary<StoredRecord> = fc.record({
  context: vectorArbitrary,
  siblings: fc.array(siblingArbitrary, { maxLength: 5 }),
});

test('every record survives encode then decode unchanged', () => {
  fc.assert(
    fc.property(recordArbitrary, (record) => {
      const decoded = decodeRecord(encodeRecord(record));
      assert.deepEqual(
        {
          ...decoded,
          siblings: decoded.siblings.map((s) => ({
            ...s,
            value: s.value === null ? null : Uint8Array.from(s.value),
          })),
        },
        { ...record, siblings: record.siblings.map((s) => ({ ...s, dot: { ...s.dot } })) },
      );
    }),
  );
});

test('encoding is canonical: equal records give equal bytes', () => {
  fc.assert(
    fc.property(recordArbitrary, (record) => {
      assert.deepEqual(encodeRecord(decodeRecord(encodeRecord(record))), encodeRecord(record));
    }),
  );
});

test('contexts round trip, and arbitrary bytes decode or fail with DecodeError', () => {
  fc.assert(
    fc.property(vectorArbitrary, (vector) => {
      assert.deepEqual(decodeContext(encodeContext(vector)), vector);
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      for (const decode of [decodeRecord, decodeContext]) {
        try {
          decode(bytes);
        } catch (error) {
          assert.ok(error instanceof DecodeError, `unexpected ${String(error)}`);
        }
      }
    }),
  );
});

test('a truncated record never decodes', () => {
  fc.assert(
    fc.property(
      recordArbitrary.filter((r) => r.siblings.length > 0),
      fc.nat(),
      (record, cut) => {
        const bytes = encodeRecord(record);
        const truncated = bytes.subarray(0, cut % bytes.length);
        assert.throws(() => decodeRecord(truncated), DecodeError);
      },
    ),
  );
});

test('readWinner agrees with decoding the record and picking the winning sibling', () => {
  // Few distinct timestamps and node ids, so that ties are common.
  const tiedSibling = fc.record({
    dot: fc.record({
      node: fc.constantFrom('a', 'b', 'n1', 'é'),
      counter: fc.integer({ min: 1, max: 3 }),
    }),
    timestamp: fc.tuple(fc.integer({ min: 100, max: 102 }), fc.integer({ min: 0, max: 1 })),
    value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
    expiresAtMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })),
  });
  fc.assert(
    fc.property(
      fc
        .record({ context: vectorArbitrary, siblings: fc.array(tiedSibling, { maxLength: 6 }) })
        .map((record) => ({
          ...record,
          // Distinct values, so that picking the wrong sibling cannot go unseen.
          siblings: record.siblings.map((sibling, i) => ({
            ...sibling,
            value: sibling.value === null ? null : Uint8Array.of(i),
          })),
        })),
      fc.integer({ min: 0, max: 250 }),
      fc.constantFrom<ConflictPolicy>('lww', 'siblings'),
      (record, nowMs, policy) => {
        const expected = winningSibling(record, nowMs, policy);
        const actual = readWinner(encodeRecord(record), nowMs, policy);
        if (expected === null) {
          assert.equal(actual, null);
        } else {
          assert.ok(actual !== null);
          assert.deepEqual(Buffer.from(actual.value), Buffer.from(expected.value!));
          assert.equal(actual.expiresAtMs, expected.expiresAtMs);
        }
      },
    ),
  );
});

test('readSoleVersion reads exactly the records of one context entry of the node and one version', () => {
  const nodes = ['a', 'b', 'é'];
  // Records of few node ids and small shapes, so that the sole-version shape is common.
  const smallRecord = fc.record({
    context: fc
      .dictionary(fc.constantFrom(...nodes), fc.integer({ min: 1, max: 3 }), { maxKeys: 2 })
      .map((entries) => Object.entries(entries).sort(([x], [y]) => (x < y ? -1 : 1))),
    siblings: fc.array(
      fc.record({
        dot: fc.record({
          node: fc.constantFrom(...nodes),
          counter: fc.integer({ min: 1, max: 3 }),
        }),
        timestamp: fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 1 })),
        value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }),
        expiresAtMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 200 })),
      }),
      { maxLength: 2 },
    ),
  });
  let sole = 0;
  fc.assert(
    fc.property(
      smallRecord,
      fc.constantFrom(...nodes),
      fc.integer({ min: 0, max: 250 }),
      (record: StoredRecord, node, nowMs) => {
        const actual = readSoleVersion(encodeRecord(record), utf8(node), nowMs);
        const [entry] = record.context;
        const isSole =
          record.context.length === 1 && entry![0] === node && record.siblings.length === 1;
        if (!isSole) return assert.equal(actual, null);
        sole++;
        const version = record.siblings[0]!;
        assert.deepEqual(actual, {
          counter: entry![1],
          live: winningSibling(record, nowMs, 'lww')?.value ?? null,
          expiresAtMs: version.expiresAtMs,
        });
      },
    ),
    { numRuns: 2000, seed: 7 },
  );
  assert.ok(sole >= 20, `only ${sole} records of the sole-version shape were tried`);
  // Bytes that are not a record are left to the decoder that fails on them.
  const bytes = encodeRecord({
    context: [['a', 1]],
    siblings: [{ dot: { node: 'a', counter: 1 }, timestamp: [1, 0], value: null, expiresAtMs: 0 }],
  });
  assert.notEqual(readSoleVersion(bytes, utf8('a'), 0), null);
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.equal(readSoleVersion(bytes.subarray(0, cut), utf8('a'), 0), null);
  }
  assert.equal(readSoleVersion(Uint8Array.of(...bytes, 0), utf8('a'), 0), null);
});

test('encodeSoleRecord gives the bytes encodeRecord gives for the same one-version record', () => {
  const slab = new ByteSlab();
  fc.assert(
    fc.property(
      nodeArbitrary,
      fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      siblingArbitrary.map((sibling) => sibling.timestamp),
      // Past the slab's bound too (VIEW_BYTES_MAX / 2), where the value gets a buffer of
      // its own; filled with one byte, as random ones are slow to draw.
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 2000, max: 6000 }).map((length) => new Uint8Array(length).fill(length)),
      ),
      fc.oneof(fc.constant(0), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
      (node, counter, timestamp, value, expiresAtMs) => {
        const record: StoredRecord = {
          context: [[node, counter]],
          siblings: [{ dot: { node, counter }, timestamp, value, expiresAtMs }],
        };
        const bytes = encodeSoleRecord(utf8(node), counter, timestamp, value, expiresAtMs, slab);
        assert.deepEqual(Buffer.from(bytes), Buffer.from(encodeRecord(record)));
        assert.deepEqual(decodeRecord(bytes), record);
      },
    ),
    { numRuns: 1000, seed: 7 },
  );
});
