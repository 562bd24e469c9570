// The stored rows of a chain replica: every row survives encode then decode unchanged, equal
// rows encode to equal bytes, and bytes that are not exactly what the encoder writes (random
// bytes, a flipped byte, a truncation, a trailing byte, an over-long varint) are refused with
// DecodeError and never anything else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { concatBytes, equalBytes } from '../../../src/core/bytes.ts';
import { ErrorCode } from '../../../src/core/errors.ts';
import { DecodeError } from '../../../src/core/store/byte-codec.ts';
import type { ChainEntry, RequesterMemory } from '../../../src/core/chain/messages.ts';
import type { ChainRecord, WriteOutcome } from '../../../src/core/chain/operations.ts';
import {
  decodeChainEntry,
  decodeChainMeta,
  decodeChainRecord,
  decodeRequesterMemory,
  encodeChainEntry,
  encodeChainMeta,
  encodeChainRecord,
  encodeRequesterMemory,
  type ChainMeta,
} from '../../../src/core/chain/state-codec.ts';

const RUNS = { seed: 0xc0de, numRuns: 300 };
const count = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const positive = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const bytes = fc.uint8Array({ maxLength: 40 });
const id = fc.string({ minLength: 1, maxLength: 12 });

const recordArbitrary: fc.Arbitrary<ChainRecord> = fc.record({
  value: fc.option(bytes, { nil: null }),
  version: positive,
  sequence: positive,
});

const outcomeArbitrary: fc.Arbitrary<WriteOutcome> = fc.oneof(
  fc.record({
    kind: fc.constant('done' as const),
    applied: fc.boolean(),
    version: count,
    value: fc.option(bytes, { nil: null }),
  }),
  fc.record({
    kind: fc.constant('error' as const),
    code: fc.constantFrom(...Object.values(ErrorCode)),
    message: fc.string({ maxLength: 40 }),
  }),
);

const metaArbitrary: fc.Arbitrary<ChainMeta> = fc
  .record({
    partition: fc.integer({ min: 0, max: 0xffff }),
    epoch: fc.integer({ min: 1, max: 1000 }),
    ids: fc.uniqueArray(id, { minLength: 1, maxLength: 5 }),
    member: fc.boolean(),
    appliedSequence: count,
    readyAtSequence: count,
    caughtUp: fc.boolean(),
    hasConfig: fc.boolean(),
  })
  .map((draw) => {
    const config = draw.hasConfig
      ? {
          partition: draw.partition,
          epoch: draw.epoch,
          members: draw.ids.map((member, index) => ({
            id: member,
            sinceEpoch: Math.max(1, draw.epoch - index),
          })),
        }
      : null;
    return {
      partition: draw.partition,
      config,
      memberSinceEpoch: config !== null && draw.member ? config.epoch : 0,
      appliedSequence: draw.appliedSequence,
      readyAtSequence: draw.readyAtSequence,
      caughtUp: draw.caughtUp,
    };
  });

const requesterArbitrary: fc.Arbitrary<RequesterMemory> = fc
  .record({
    requester: id,
    requests: fc.uniqueArray(
      fc.record({
        requestId: count,
        sequence: fc.integer({ min: 1, max: 1_000_000 }),
        outcome: outcomeArbitrary,
      }),
      { selector: (request) => request.requestId, maxLength: 6 },
    ),
  })
  .map(({ requester, requests }) => {
    const sorted = [...requests].sort((a, b) => a.requestId - b.requestId);
    const lastSequence = Math.max(0, ...sorted.map((request) => request.sequence));
    return { requester, lastSequence, requests: sorted };
  });

const entryArbitrary: fc.Arbitrary<ChainEntry> = fc.record({
  sequence: positive,
  requester: id,
  requestId: count,
  change: fc.option(
    fc.record({
      key: fc.uint8Array({ minLength: 1, maxLength: 20 }),
      value: fc.option(bytes, { nil: null }),
      version: positive,
    }),
    { nil: null },
  ),
  outcome: outcomeArbitrary,
});

interface Codec<T> {
  name: string;
  article: 'a' | 'an';
  arbitrary: fc.Arbitrary<T>;
  encode: (value: T) => Uint8Array;
  decode: (bytes: Uint8Array) => T;
}

const codecs: Codec<unknown>[] = [
  {
    name: 'record',
    article: 'a',
    arbitrary: recordArbitrary,
    encode: encodeChainRecord,
    decode: decodeChainRecord,
  },
  {
    name: 'meta',
    article: 'a',
    arbitrary: metaArbitrary,
    encode: encodeChainMeta,
    decode: decodeChainMeta,
  },
  {
    name: 'requester',
    article: 'a',
    arbitrary: requesterArbitrary,
    encode: encodeRequesterMemory,
    decode: decodeRequesterMemory,
  },
  {
    name: 'entry',
    article: 'an',
    arbitrary: entryArbitrary,
    encode: encodeChainEntry,
    decode: decodeChainEntry,
  },
] as Codec<unknown>[];

/** Decodes, or returns the DecodeError; any other exception fails the property. */
function attempt<T>(decode: (bytes: Uint8Array) => T, input: Uint8Array): T | DecodeError {
  try {
    return decode(input);
  } catch (error) {
    if (error instanceof DecodeError) return error;
    throw error;
  }
}

for (const codec of codecs) {
  test(`every ${codec.name} row survives encode then decode unchanged`, () => {
    fc.assert(
      fc.property(codec.arbitrary, (value) => {
        const encoded = codec.encode(value);
        // A structured clone: fast-check builds objects without a prototype.
        assert.deepEqual(codec.decode(encoded), structuredClone(value));
        assert.ok(equalBytes(codec.encode(codec.decode(encoded)), encoded), 'canonical');
      }),
      RUNS,
    );
  });

  test(`${codec.article} ${codec.name} row altered in any one byte, cut short or extended is refused or decodes to its own canonical bytes`, () => {
    fc.assert(
      fc.property(
        codec.arbitrary,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (value, at, flip) => {
          const encoded = codec.encode(value);
          const altered = encoded.slice();
          const index = at % altered.length;
          altered[index] = altered[index]! ^ flip;
          for (const candidate of [
            altered,
            encoded.subarray(0, index),
            concatBytes([encoded, new Uint8Array([0])]),
          ]) {
            const decoded = attempt(codec.decode, candidate);
            if (decoded instanceof DecodeError) continue;
            // Whatever decodes must be exactly what the encoder writes for it.
            assert.ok(equalBytes(codec.encode(decoded), candidate), 'only canonical bytes decode');
          }
        },
      ),
      RUNS,
    );
  });

  test(`arbitrary bytes decode as ${codec.article} ${codec.name} row or raise DecodeError, nothing else`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        const decoded = attempt(codec.decode, input);
        if (!(decoded instanceof DecodeError)) {
          assert.ok(equalBytes(codec.encode(decoded), input), 'only canonical bytes decode');
        }
      }),
      RUNS,
    );
  });
}

test('an over-long varint is refused although it spells the same number', () => {
  const canonical = encodeChainRecord({ value: null, version: 1, sequence: 1 });
  // format, flags, version 1, sequence 1: spell the version as 0x81 0x00 instead of 0x01.
  const overlong = new Uint8Array([canonical[0]!, canonical[1]!, 0x81, 0x00, canonical[3]!]);
  assert.throws(() => decodeChainRecord(overlong), DecodeError);
  assert.deepEqual(decodeChainRecord(canonical), { value: null, version: 1, sequence: 1 });
});

test('a row of an unknown format version is refused', () => {
  const encoded = encodeChainRecord({ value: new Uint8Array([1]), version: 2, sequence: 3 });
  const future = encoded.slice();
  future[0] = 2;
  assert.throws(() => decodeChainRecord(future), /record format 2/);
});
