// Message validation: well-formed messages of every type pass; a missing field, an extra field,
// a wrong type or an out-of-range number fails; and nothing whatever makes the validator throw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../../src/core/bytes.ts';
import { foundingChainConfig, isValidChainConfig } from '../../../src/core/chain/chain-config.ts';
import { isValidChainMessage, type ChainMessage } from '../../../src/core/chain/messages.ts';

const config = foundingChainConfig(2, ['a', 'b']);
const done = { kind: 'done', applied: true, version: 1, value: null } as const;
const entry = {
  sequence: 1,
  requester: 'c',
  requestId: 9,
  change: { key: utf8('k'), value: utf8('v'), version: 1 },
  outcome: done,
};

const VALID: readonly ChainMessage[] = [
  {
    type: 'forward',
    partition: 2,
    epoch: 1,
    entries: [entry, { ...entry, sequence: 2, change: null }],
  },
  {
    type: 'ack',
    partition: 2,
    epoch: 1,
    appliedSequence: 3,
    committedSequence: 2,
    leaseRequestedAtMs: 10,
  },
  {
    type: 'ack',
    partition: 2,
    epoch: 1,
    appliedSequence: 0,
    committedSequence: 0,
    leaseRequestedAtMs: null,
  },
  { type: 'lease', partition: 2, epoch: 1, requestedAtMs: 5, durationMs: 100 },
  { type: 'copy-request', partition: 2, epoch: 1, fromSequence: 0, afterKey: null },
  {
    type: 'copy-chunk',
    partition: 2,
    epoch: 1,
    fromSequence: 0,
    afterKey: utf8('a'),
    appliedSequence: 4,
    committedSequence: 4,
    records: [{ key: utf8('b'), value: null, version: 2, sequence: 4 }],
    nextKey: null,
    requesters: [
      { requester: 'c', lastSequence: 1, requests: [{ requestId: 9, sequence: 1, outcome: done }] },
    ],
  },
  { type: 'refused', partition: 2, epoch: 1, config },
  {
    type: 'write',
    partition: 2,
    epoch: 1,
    requestId: 1,
    operation: { kind: 'cas-version', key: utf8('k'), expectedVersion: 0, value: utf8('v') },
  },
  { type: 'read', partition: 2, epoch: 1, requestId: 1, key: utf8('k') },
  {
    type: 'reply',
    partition: 2,
    epoch: 1,
    requestId: 1,
    reply: { status: 'invalid', code: 'RINGKV_KEY_EMPTY', message: 'the key is empty' },
  },
  {
    type: 'reply',
    partition: 2,
    epoch: 1,
    requestId: 1,
    reply: { status: 'retry', reason: 'behind' },
  },
];

test('well-formed messages of every type are valid', () => {
  for (const message of VALID) assert.ok(isValidChainMessage(message), message.type);
});

test('a message missing a field, with an extra one, or with a field of the wrong type is invalid', () => {
  for (const message of VALID) {
    for (const field of Object.keys(message)) {
      const without: Record<string, unknown> = { ...message };
      delete without[field];
      assert.equal(isValidChainMessage(without), false, `${message.type} without ${field}`);
      // Clock readings may be any finite number; byte fields hold bytes; resume keys and lease
      // requests may be null; a chunk may carry no records or requesters.
      const isClock = field === 'requestedAtMs' || field === 'leaseRequestedAtMs';
      const nullable =
        field === 'afterKey' || field === 'nextKey' || field === 'leaseRequestedAtMs';
      const isBytes = field === 'afterKey' || field === 'nextKey' || field === 'key';
      const mayBeEmpty = field === 'records' || field === 'requesters';
      const wrongs: unknown[] = ['x', {}];
      if (!mayBeEmpty) wrongs.push([]);
      if (!isBytes) wrongs.push(utf8('x'));
      if (!nullable) wrongs.push(null);
      if (!isClock) wrongs.push(-1, 1.5);
      for (const wrong of wrongs) {
        const changed = { ...message, [field]: wrong };
        assert.equal(
          isValidChainMessage(changed),
          false,
          `${message.type}.${field} = ${String(wrong)}`,
        );
      }
    }
    assert.equal(isValidChainMessage({ ...message, extra: 1 }), false, `${message.type} + extra`);
  }
});

test('numbers out of range and lists that break the rules are invalid', () => {
  const forward = VALID[0]!;
  assert.equal(isValidChainMessage({ ...forward, entries: [] }), false, 'an empty forward');
  assert.equal(
    isValidChainMessage({ ...forward, entries: [entry, { ...entry, sequence: 3 }] }),
    false,
    'entries with a gap',
  );
  assert.equal(isValidChainMessage({ ...forward, epoch: 0 }), false, 'epoch 0');
  assert.equal(isValidChainMessage({ ...forward, partition: 0x1_0000 }), false, 'partition');
  assert.equal(
    isValidChainMessage({ ...VALID[1]!, committedSequence: 4 }),
    false,
    'commit > apply',
  );
  assert.equal(
    isValidChainMessage({ ...VALID[6]!, epoch: 2 }),
    false,
    'a refusal whose config disagrees',
  );
  assert.equal(
    isValidChainMessage({ ...VALID[8]!, key: new Uint8Array(0) }),
    false,
    'an empty key',
  );
  assert.equal(
    isValidChainConfig({
      ...config,
      members: [
        { id: 'a', sinceEpoch: 1 },
        { id: 'a', sinceEpoch: 1 },
      ],
    }),
    false,
    'a replica twice in a chain',
  );
});

test('the validator never throws, whatever it is given', () => {
  fc.assert(
    fc.property(fc.anything({ withTypedArray: true, withNullPrototype: true }), (value) => {
      assert.equal(typeof isValidChainMessage(value), 'boolean');
    }),
    { seed: 0xfeed, numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...VALID),
      fc.string(),
      fc.anything({ withTypedArray: true }),
      (message, field, replacement) => {
        assert.equal(typeof isValidChainMessage({ ...message, [field]: replacement }), 'boolean');
      },
    ),
    { seed: 0xfeed, numRuns: 2000 },
  );
});
