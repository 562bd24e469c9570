// Message validation: what comes off the network is checked field by field; anything else is
// ignored without a throw and without a change of state. Valid messages survive the msgpack
// encoding the transport uses.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { Prng } from '../../../src/core/prng.ts';
import { DEFAULT_SWIM_CONFIG, Swim } from '../../../src/core/swim/swim.ts';
import type { SwimMessage } from '../../../src/core/swim/swim.ts';
import { isValidSwimMessage } from '../../../src/core/swim/messages.ts';

const update = { id: 'b', liveness: 'suspect', incarnation: 2 };
const valid: unknown[] = [
  { type: 'ping', sequence: 0, incarnation: 0, updates: [] },
  { type: 'ack', sequence: 0xffff_ffff, incarnation: 7, updates: [update] },
  { type: 'ping-req', sequence: 5, target: 'c', incarnation: 1, updates: [update, update] },
];

const malformed: [string, unknown][] = [
  ['null', null],
  ['a string', 'ping'],
  ['an array', ['ping', 1, 0, []]],
  ['an unknown type', { type: 'pong', sequence: 1, incarnation: 0, updates: [] }],
  ['a missing field', { type: 'ping', sequence: 1, updates: [] }],
  ['an extra field', { type: 'ping', sequence: 1, incarnation: 0, updates: [], extra: 1 }],
  ['a ping-req without target', { type: 'ping-req', sequence: 1, incarnation: 0, updates: [] }],
  ['a target on a ping', { type: 'ping', sequence: 1, target: 'b', incarnation: 0, updates: [] }],
  ['an empty target', { type: 'ping-req', sequence: 1, target: '', incarnation: 0, updates: [] }],
  [
    'a long target',
    { type: 'ping-req', sequence: 1, target: 'x'.repeat(257), incarnation: 0, updates: [] },
  ],
  ['a negative sequence', { type: 'ack', sequence: -1, incarnation: 0, updates: [] }],
  ['a sequence past 32 bits', { type: 'ack', sequence: 2 ** 32, incarnation: 0, updates: [] }],
  ['a fractional sequence', { type: 'ack', sequence: 1.5, incarnation: 0, updates: [] }],
  ['a string sequence', { type: 'ack', sequence: '1', incarnation: 0, updates: [] }],
  ['a NaN incarnation', { type: 'ack', sequence: 1, incarnation: NaN, updates: [] }],
  ['an unsafe incarnation', { type: 'ack', sequence: 1, incarnation: 2 ** 53, updates: [] }],
  ['updates not a list', { type: 'ack', sequence: 1, incarnation: 0, updates: { 0: update } }],
  [
    'too many updates',
    { type: 'ack', sequence: 1, incarnation: 0, updates: Array(65).fill(update) },
  ],
  [
    'an unknown liveness',
    { type: 'ack', sequence: 1, incarnation: 0, updates: [{ ...update, liveness: 'dead' }] },
  ],
  [
    'an update without id',
    { type: 'ack', sequence: 1, incarnation: 0, updates: [{ liveness: 'alive', incarnation: 0 }] },
  ],
  [
    'an update with an extra field',
    { type: 'ack', sequence: 1, incarnation: 0, updates: [{ ...update, at: 1 }] },
  ],
  [
    'a negative update incarnation',
    { type: 'ack', sequence: 1, incarnation: 0, updates: [{ ...update, incarnation: -1 }] },
  ],
  [
    'a class instance',
    Object.assign(Object.create({ type: 'ping' }) as object, {
      sequence: 1,
      incarnation: 0,
      updates: [],
    }),
  ],
  ['a Map', new Map([['type', 'ping']])],
];

function freshSwim(): Swim {
  return new Swim('a', ['a', 'b', 'c'], DEFAULT_SWIM_CONFIG, new Prng(3));
}

test('well-formed messages are valid and survive msgpack', () => {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const swim = freshSwim();
  for (const message of valid) {
    assert.ok(swim.isValidMessage(message), JSON.stringify(message));
    assert.ok(swim.isValidMessage(packr.unpack(packr.pack(message))), JSON.stringify(message));
  }
});

test('malformed messages are rejected and ignored without a throw or a change of state', () => {
  const swim = freshSwim();
  const before = JSON.stringify(swim.members());
  for (const [name, message] of malformed) {
    assert.equal(swim.isValidMessage(message), false, name);
    const output = swim.receive('b', message as SwimMessage, 0);
    assert.deepEqual(output, { sends: [], changes: [] }, name);
  }
  assert.equal(JSON.stringify(swim.members()), before);
});

test('validation never throws and receive never throws, on any value at all', () => {
  const swim = freshSwim();
  fc.assert(
    fc.property(fc.anything({ withNullPrototype: true, withMap: true, withSet: true }), (value) => {
      const verdict = isValidSwimMessage(value);
      assert.equal(typeof verdict, 'boolean');
      swim.receive('b', value as SwimMessage, 0);
    }),
    { numRuns: 1000, seed: 0xbad },
  );
});

test('validation accepts exactly the messages built from the schema', () => {
  const liveness = fc.constantFrom('alive', 'suspect', 'down');
  const id = fc.string({ minLength: 1, maxLength: 256 });
  const updates = fc.array(fc.record({ id, liveness, incarnation: fc.maxSafeNat() }), {
    maxLength: 64,
  });
  const common = { sequence: fc.nat({ max: 0xffff_ffff }), incarnation: fc.maxSafeNat(), updates };
  const message = fc.oneof(
    fc.record({ type: fc.constantFrom('ping', 'ack'), ...common }),
    fc.record({ type: fc.constant('ping-req'), target: id, ...common }),
  );
  fc.assert(
    fc.property(message, (value) => {
      assert.ok(isValidSwimMessage(value));
      // Dropping any one field makes it invalid.
      for (const key of Object.keys(value)) {
        const partial: Record<string, unknown> = { ...value };
        delete partial[key];
        assert.equal(isValidSwimMessage(partial), false, key);
      }
    }),
    { numRuns: 300, seed: 0x600d },
  );
});
