// RINGKV.CAS against a real node through ioredis, on a strong keyspace: compare-and-set on
// the version, on the value and on absence, each answering [applied, version]; refusals with
// RINGKV_ codes that change nothing; and the TypeScript client's compareAndSet over RESP,
// which must agree with the same calls over HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RingkvClient } from '../../../src/client/index.ts';
import { startTestNode, waitFor, type TestNode } from '../../helpers/test-node.ts';

let node: TestNode;
let redis: Redis;

type VersionedRead = [Buffer | null, Buffer, number, unknown[], number];

function read(key: string): Promise<VersionedRead> {
  return redis.callBuffer('RINGKV.GET', 'ledger', key) as Promise<VersionedRead>;
}

function cas(...args: string[]): Promise<[number, number]> {
  return redis.call('RINGKV.CAS', 'ledger', ...args) as Promise<[number, number]>;
}

before(async () => {
  node = await startTestNode();
  const created = await fetch(`${node.httpUrl}/v1/keyspaces`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'ledger', consistency: 'strong', n: 1 }),
  });
  assert.equal(created.status, 201, await created.text());
  await waitFor(
    async () => (await fetch(`${node.httpUrl}/v1/kv/ledger/probe`)).status === 404,
    5_000,
    'keyspace ledger',
  );
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

test('RINGKV.CAS on the version applies once per version and answers the version it leaves', async () => {
  const [, , , , absentVersion] = await read('account');
  assert.equal(absentVersion, 0, 'a key never written is at version 0');
  assert.deepEqual(await cas('account', 'VERSION', '0', '10'), [1, 1]);
  assert.deepEqual(await cas('account', 'VERSION', '0', '20'), [0, 1], 'version 0 is gone');
  assert.deepEqual(await cas('account', 'version', '1', '30'), [1, 2], 'words in any case');
  const [value, , , , version] = await read('account');
  assert.equal(value?.toString(), '30');
  assert.equal(version, 2);
});

test('RINGKV.CAS on the value and on absence compares bytes, not versions', async () => {
  assert.deepEqual(await cas('name', 'ABSENT', 'ada'), [1, 1]);
  assert.deepEqual(await cas('name', 'ABSENT', 'bob'), [0, 1], 'the key has a value now');
  assert.deepEqual(await cas('name', 'VALUE', 'bob', 'carl'), [0, 1]);
  assert.deepEqual(await cas('name', 'VALUE', 'ada', 'dora'), [1, 2]);
  assert.equal((await read('name'))[0]?.toString(), 'dora');
  // A delete is a change too: it takes a version, and the key is absent after it.
  assert.equal(await redis.call('RINGKV.DEL', 'ledger', 'name'), 1);
  assert.deepEqual(await cas('name', 'ABSENT', 'eve'), [1, 4], 'deleted counts as absent');
});

test('bad RINGKV.CAS arguments are refused with RINGKV_ codes and write nothing', async () => {
  const refusals: [string[], RegExp][] = [
    [['refused', 'VERSION', '-1', 'v'], /ERR RINGKV_INVALID_ARGUMENT VERSION must be/],
    [['refused', 'VERSION', 'one', 'v'], /ERR RINGKV_INVALID_ARGUMENT VERSION must be/],
    [['refused', 'VERSION', '9007199254740992', 'v'], /ERR RINGKV_INVALID_ARGUMENT/],
    [['refused', 'VERSION', '0'], /ERR RINGKV_INVALID_ARGUMENT RINGKV.CAS takes/],
    [['refused', 'VALUE', 'a', 'b', 'c'], /ERR RINGKV_INVALID_ARGUMENT RINGKV.CAS takes/],
    [['refused', 'ABSENT', 'a', 'b'], /ERR RINGKV_INVALID_ARGUMENT RINGKV.CAS takes/],
    [['refused', 'NEWER', 'a', 'b'], /ERR RINGKV_INVALID_ARGUMENT RINGKV.CAS takes/],
    [['refused', 'ABSENT'], /wrong number of arguments for 'ringkv.cas'/],
  ];
  for (const [args, expected] of refusals) {
    await assert.rejects(cas(...args), expected, args.join(' '));
  }
  await assert.rejects(
    redis.call('RINGKV.CAS', 'default', 'refused', 'ABSENT', 'v'),
    /ERR RINGKV_INVALID_ARGUMENT compare-and-set needs a strong or chain keyspace/,
  );
  await assert.rejects(
    redis.call('RINGKV.CAS', 'nosuch', 'refused', 'ABSENT', 'v'),
    /ERR RINGKV_UNKNOWN_KEYSPACE/,
  );
  assert.equal((await read('refused'))[4], 0, 'nothing was written');
});

test('the client compareAndSet over RESP agrees with the same calls over HTTP', async () => {
  const endpoints = [node.httpUrl.replace('http://', '')];
  const overResp = await RingkvClient.connect({ endpoints, transport: 'resp' });
  const overHttp = await RingkvClient.connect({ endpoints });
  try {
    for (const [name, client] of [
      ['resp', overResp],
      ['http', overHttp],
    ] as const) {
      const key = `client-${name}`;
      const created = await client.compareAndSet('ledger', key, { value: null }, 'one');
      assert.deepEqual(created, { applied: true, version: 1 }, name);
      const taken = await client.compareAndSet('ledger', key, { value: null }, 'two');
      assert.deepEqual(taken, { applied: false, version: null }, name);
      const byValue = await client.compareAndSet('ledger', key, { value: 'one' }, 'two');
      assert.deepEqual(byValue, { applied: true, version: 2 }, name);
      const stale = await client.compareAndSet('ledger', key, { version: 1 }, 'three');
      assert.deepEqual(stale, { applied: false, version: null }, name);
      const read = await client.get('ledger', key);
      assert.equal(read.version, 2, name);
      const byVersion = await client.compareAndSet('ledger', key, { version: 2 }, 'three');
      assert.deepEqual(byVersion, { applied: true, version: 3 }, name);
      assert.equal(Buffer.from((await client.get('ledger', key)).value!).toString(), 'three');
    }
    await assert.rejects(
      overResp.compareAndSet('default', 'k', { version: 0 }, 'v'),
      (error: Error & { code?: string }) => error.code === 'RINGKV_INVALID_ARGUMENT',
    );
  } finally {
    overResp.close();
    overHttp.close();
  }
});
