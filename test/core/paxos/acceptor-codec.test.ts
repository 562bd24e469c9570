// The acceptor's durable state as bytes: encode then decode gives the state back, equal
// states give equal bytes, and decode refuses malformed bytes with DecodeError: truncated,
// trailing, of an unknown format, inconsistent, or valid but not canonical. Replay a failure
// with the seed and path fast-check prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { concatBytes, utf8 } from '../../../src/core/bytes.ts';
import { DecodeError } from '../../../src/core/store/byte-codec.ts';
import {
  decodeFloors,
  decodeKeyState,
  encodeFloors,
  encodeKeyState,
} from '../../../src/core/paxos/acceptor-codec.ts';
import type { AcceptorFloors, AcceptorKeyState } from '../../../src/core/paxos/acceptor.ts';
import { compareBallots } from '../../../src/core/paxos/ballot.ts';
import type { Ballot } from '../../../src/core/paxos/ballot.ts';

const proposerBallot: fc.Arbitrary<Ballot> = fc.record(
  {
    counter: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 2 ** 53 - 2 })),
    proposerId: fc.oneof(
      fc.constantFrom('n1', 'n2', 'nœud-é'),
      fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' }),
    ),
  },
  { noNullPrototype: true },
);

/** States the acceptor can reach: accepted at or below the promise, a value only if accepted. */
const keyState: fc.Arbitrary<AcceptorKeyState> = fc
  .tuple(
    proposerBallot,
    fc.option(proposerBallot, { nil: undefined }),
    fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
    fc.integer({ min: 0, max: 2 ** 53 - 1 }),
  )
  .map(([first, second, bytes, version]) => {
    if (second === undefined) {
      return {
        promised: first,
        accepted: { counter: 0, proposerId: '' },
        value: { bytes: null, version },
      };
    }
    const [accepted, promised] =
      compareBallots(first, second) <= 0 ? [first, second] : [second, first];
    return { promised, accepted, value: { bytes, version } };
  });

const floors: fc.Arbitrary<AcceptorFloors> = fc.record(
  {
    promised: fc.oneof(proposerBallot, fc.constant({ counter: 0, proposerId: '' })),
    version: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
  },
  { noNullPrototype: true },
);

/** Decodes, or says which error it threw; any error but DecodeError fails the test. */
function outcomeOf<T>(decode: (bytes: Uint8Array) => T, bytes: Uint8Array): 'ok' | 'refused' {
  try {
    decode(bytes);
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof DecodeError, `a DecodeError, not ${String(error)}`);
    return 'refused';
  }
}

test('a key state survives encode and decode, and equal states encode equally', () => {
  fc.assert(
    fc.property(keyState, (state) => {
      const bytes = encodeKeyState(state);
      const decoded = decodeKeyState(bytes);
      assert.deepEqual(decoded, state);
      assert.deepEqual(encodeKeyState(structuredClone(decoded)), bytes);
    }),
  );
});

test('floors survive encode and decode', () => {
  fc.assert(
    fc.property(floors, (value) => {
      assert.deepEqual(decodeFloors(encodeFloors(value)), value);
    }),
  );
});

test('a truncated or extended encoding is refused with DecodeError', () => {
  fc.assert(
    fc.property(
      keyState,
      floors,
      fc.uint8Array({ minLength: 1, maxLength: 4 }),
      (state, floor, extra) => {
        const codecs: [() => Uint8Array, (bytes: Uint8Array) => unknown][] = [
          [() => encodeKeyState(state), decodeKeyState],
          [() => encodeFloors(floor), decodeFloors],
        ];
        for (const [encode, decode] of codecs) {
          const bytes = encode();
          for (let length = 0; length < bytes.length; length++) {
            assert.equal(
              outcomeOf(decode, bytes.subarray(0, length)),
              'refused',
              `cut at ${length}`,
            );
          }
          assert.equal(outcomeOf(decode, concatBytes([bytes, extra])), 'refused', 'trailing bytes');
        }
      },
    ),
  );
});

test('any single-byte change is refused or decodes to a state that encodes to those bytes', () => {
  fc.assert(
    fc.property(keyState, fc.nat(), fc.integer({ min: 1, max: 255 }), (state, at, flip) => {
      const bytes = encodeKeyState(state).slice();
      const index = at % bytes.length;
      bytes[index] = bytes[index]! ^ flip;
      if (outcomeOf(decodeKeyState, bytes) === 'ok') {
        // Canonical: whatever decodes is exactly what its state encodes to.
        assert.deepEqual(encodeKeyState(decodeKeyState(bytes)), bytes);
      }
    }),
  );
});

test('malformed key states are refused: unknown format, bad ballots, inconsistency, non-canonical bytes', () => {
  const good = encodeKeyState({
    promised: { counter: 5, proposerId: 'n1' },
    accepted: { counter: 4, proposerId: 'n1' },
    value: { bytes: utf8('v'), version: 2 },
  });
  assert.deepEqual(decodeKeyState(good).value.version, 2);
  const cases: Record<string, number[]> = {
    'unknown format': [2, ...good.subarray(1)],
    // promised (5,'n1'), accepted (6,'n1'): accepted above the promise.
    'accepted above promised': [1, 5, 2, 110, 49, 6, 2, 110, 49, 1, 2, 1, 118],
    // promised (0,'n1'): counter 0 belongs to the zero ballot only.
    'zero counter with an id': [1, 0, 2, 110, 49, 0, 0, 0, 0],
    // promised zero: a stored state was promised something.
    'nothing promised': [1, 0, 0, 0, 0, 0, 0],
    // nothing accepted but bytes held.
    'value without accept': [1, 5, 2, 110, 49, 0, 0, 1, 0, 1, 118],
    'unknown value kind': [1, 5, 2, 110, 49, 4, 2, 110, 49, 7, 2, 1, 118],
    // version 2 written as 0x82 0x00: a varint with a needless continuation byte.
    'overlong varint': [1, 5, 2, 110, 49, 4, 2, 110, 49, 1, 0x82, 0x00, 1, 118],
    // an id byte that is not UTF-8.
    'invalid UTF-8 id': [1, 5, 2, 110, 0xff, 4, 2, 110, 49, 1, 2, 1, 118],
  };
  for (const [name, bytes] of Object.entries(cases)) {
    assert.equal(outcomeOf(decodeKeyState, new Uint8Array(bytes)), 'refused', name);
  }
  assert.equal(outcomeOf(decodeFloors, new Uint8Array([9, 0, 0, 0])), 'refused', 'floors format');
  assert.equal(
    outcomeOf(decodeFloors, new Uint8Array([1, 0, 1, 97, 0])),
    'refused',
    'floors ballot',
  );
});
