// RINGKV.GET, RINGKV.PUT and RINGKV.DEL against a real node through ioredis: values, causal
// contexts, siblings, expiry, per-request quorums and errors in `-ERR RINGKV_<CODE>` form.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startTestNode, waitFor, type TestNode } from '../../helpers/test-node.ts';

let node: TestNode;
let redis: Redis;

type ReadReply = [Buffer | null, Buffer, number, [Buffer, number, number][]];

function read(keyspace: string, key: string, ...options: string[]): Promise<ReadReply> {
  return redis.callBuffer('RINGKV.GET', keyspace, key, ...options) as Promise<ReadReply>;
}

before(async () => {
  node = await startTestNode();
  const created = await fetch(`${node.httpUrl}/v1/keyspaces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'carts', n: 1, r: 1, w: 1, conflicts: 'siblings' }),
  });
  assert.equal(created.status, 201, await created.text());
  redis = new Redis({
    port: node.respPort,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  await redis.connect();
});

after(async () => {
  redis.disconnect();
  await node.stop();
});

test('a value put with RINGKV.PUT reads back with its context, no expiry and one sibling', async () => {
  assert.equal(await redis.call('RINGKV.PUT', 'default', 'round', 'trip', 'W', 'one'), 'OK');
  const [value, context, expiresAtMs, siblings] = await read('default', 'round', 'R', 'one');
  assert.equal(value?.toString(), 'trip');
  assert.match(context.toString(), /^[A-Za-z0-9_-]+$/);
  assert.equal(expiresAtMs, 0);
  assert.equal(siblings.length, 1);
  assert.equal(siblings[0]![0].toString(), 'trip');
  assert.ok(siblings[0]![1] > 1_600_000_000_000, 'the sibling carries its wall-clock ms');
  assert.equal(typeof siblings[0]![2], 'number');
  // Plain Redis commands see the same key.
  assert.equal(await redis.get('round'), 'trip');
});

test('a key never written reads as null with an empty context and no siblings', async () => {
  assert.deepEqual(await read('default', 'never'), [null, Buffer.alloc(0), 0, []]);
});

test('two writes with the same context stay siblings; a write with the read context merges them', async () => {
  await redis.call('RINGKV.PUT', 'carts', 'cart', 'start');
  const [, first] = await read('carts', 'cart');
  await redis.call('RINGKV.PUT', 'carts', 'cart', 'apple', 'CONTEXT', first.toString());
  await redis.call('RINGKV.PUT', 'carts', 'cart', 'pear', 'CONTEXT', first.toString());
  const [, merged, , siblings] = await read('carts', 'cart');
  assert.deepEqual(siblings.map((sibling) => sibling[0].toString()).sort(), ['apple', 'pear']);
  await redis.call('RINGKV.PUT', 'carts', 'cart', 'apple+pear', 'CONTEXT', merged.toString());
  const [value, , , after] = await read('carts', 'cart');
  assert.equal(value?.toString(), 'apple+pear');
  assert.equal(after.length, 1);
});

test('RINGKV.DEL answers 1 for a live value and 0 after, and the deletion has a context', async () => {
  await redis.call('RINGKV.PUT', 'default', 'gone', 'soon');
  const [, context] = await read('default', 'gone');
  assert.equal(await redis.call('RINGKV.DEL', 'default', 'gone', 'CONTEXT', context.toString()), 1);
  assert.equal(await redis.call('RINGKV.DEL', 'default', 'gone', 'W', 'all'), 0);
  const [value, tombstone, , siblings] = await read('default', 'gone');
  assert.equal(value, null);
  assert.equal(siblings.length, 0);
  assert.ok(tombstone.length > 0, 'a deleted key keeps the context of its deletion');
});

test('a value put with PX expires and reads back with its expiry time', async () => {
  const before = Date.now();
  await redis.call('RINGKV.PUT', 'default', 'brief', 'v', 'PX', '150');
  const [value, , expiresAtMs] = await read('default', 'brief');
  assert.equal(value?.toString(), 'v');
  // The node's clock never runs behind the wall clock, but may run ahead of it: it follows
  // the monotonic clock when the wall clock steps back or is slowed (NodeRuntime's
  // readClockMs). A second of slack still tells milliseconds from seconds.
  const after = Date.now();
  assert.ok(
    expiresAtMs >= before + 150 && expiresAtMs <= after + 150 + 1_000,
    `expiry ${expiresAtMs} for a put between ${before} and ${after}`,
  );
  await waitFor(async () => (await read('default', 'brief'))[0] === null, 3_000, 'the expiry');
});

test('bad arguments are refused with RINGKV_ codes and nothing is written', async () => {
  const refusals: [string[], RegExp][] = [
    [['RINGKV.PUT', 'default', 'k', 'v', 'PX', '0'], /ERR RINGKV_INVALID_ARGUMENT /],
    [['RINGKV.PUT', 'default', 'k', 'v', 'PX', 'soon'], /ERR RINGKV_INVALID_ARGUMENT /],
    [['RINGKV.PUT', 'default', 'k', 'v', 'W'], /ERR RINGKV_INVALID_ARGUMENT .*needs a value/],
    [['RINGKV.PUT', 'default', 'k', 'v', 'W', 'most'], /ERR RINGKV_INVALID_ARGUMENT /],
    [['RINGKV.PUT', 'default', 'k', 'v', 'W', '1', 'W', '1'], /given twice/],
    [['RINGKV.PUT', 'default', 'k', 'v', 'R', 'one'], /unknown option 'r'/],
    [['RINGKV.PUT', 'default', 'k', 'v', 'CONTEXT', 'not base64!'], /ERR RINGKV_INVALID_CONTEXT/],
    [['RINGKV.PUT', 'default', 'k', 'v', 'W', '9'], /ERR RINGKV_/],
    [['RINGKV.GET', 'default', 'k', 'W', 'one'], /unknown option 'w'/],
    [['RINGKV.DEL', 'default', 'k', 'PX', '10'], /unknown option 'px'/],
    [['RINGKV.PUT', 'default', 'k'], /wrong number of arguments for 'ringkv.put'/],
    [['RINGKV.GET', 'default'], /wrong number of arguments for 'ringkv.get'/],
  ];
  for (const [args, expected] of refusals) {
    await assert.rejects(redis.call(args[0]!, ...args.slice(1)), expected, args.join(' '));
  }
  assert.equal((await read('default', 'k'))[0], null);
});

test('a keyspace that does not exist is RINGKV_UNKNOWN_KEYSPACE', async () => {
  await assert.rejects(redis.call('RINGKV.GET', 'nosuch', 'k'), /ERR RINGKV_UNKNOWN_KEYSPACE/);
  await assert.rejects(redis.call('RINGKV.PUT', 'nosuch', 'k', 'v'), /ERR RINGKV_UNKNOWN_KEYSPACE/);
  await assert.rejects(redis.call('RINGKV.DEL', 'nosuch', 'k'), /ERR RINGKV_UNKNOWN_KEYSPACE/);
});
