// Chain configurations: roles by position, one change per epoch, and validation of what the
// map hands over.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  foundingChainConfig,
  headOf,
  isValidChainConfig,
  predecessorOf,
  successorOf,
  tailOf,
  withTail,
  withoutMember,
} from '../../../src/core/chain/chain-config.ts';

test('the head is first and the tail last; each replica passes writes to the next', () => {
  const config = foundingChainConfig(4, ['a', 'b', 'c']);
  assert.equal(headOf(config), 'a');
  assert.equal(tailOf(config), 'c');
  assert.equal(predecessorOf(config, 'a'), null);
  assert.equal(successorOf(config, 'a'), 'b');
  assert.equal(predecessorOf(config, 'c'), 'b');
  assert.equal(successorOf(config, 'c'), null);
  assert.equal(successorOf(config, 'z'), null, 'a non-member has no place');
});

test('every change raises the epoch; an appended replica is a member from that epoch', () => {
  const founding = foundingChainConfig(4, ['a', 'b', 'c']);
  const removed = withoutMember(founding, 'b');
  assert.equal(removed.epoch, 2);
  assert.deepEqual(
    removed.members.map((member) => member.id),
    ['a', 'c'],
  );
  const extended = withTail(removed, 'b');
  assert.equal(extended.epoch, 3);
  assert.deepEqual(extended.members.at(-1), { id: 'b', sinceEpoch: 3 });
  assert.deepEqual(extended.members[0], { id: 'a', sinceEpoch: 1 });
  assert.throws(() => withoutMember(foundingChainConfig(4, ['a']), 'a'), /at least one replica/);
  assert.throws(() => withTail(founding, 'a'), /not a member yet/);
});

test('a configuration with no members, a repeated member or a membership from the future is invalid', () => {
  const valid = foundingChainConfig(4, ['a', 'b']);
  assert.ok(isValidChainConfig(valid));
  assert.equal(isValidChainConfig({ ...valid, members: [] }), false);
  assert.equal(
    isValidChainConfig({ ...valid, members: [valid.members[0], valid.members[0]] }),
    false,
  );
  assert.equal(isValidChainConfig({ ...valid, members: [{ id: 'a', sinceEpoch: 2 }] }), false);
  assert.equal(isValidChainConfig({ ...valid, epoch: 0 }), false);
  assert.equal(isValidChainConfig({ ...valid, extra: true }), false);
  const seventeen = Array.from({ length: 17 }, (_, index) => `n${index}`);
  assert.equal(
    isValidChainConfig({ ...valid, members: seventeen.map((id) => ({ id, sinceEpoch: 1 })) }),
    false,
  );
});
