// Strong keyspaces on a three-node cluster of real processes: created over HTTP (eventual
// options refused), used over RESP by ioredis on different nodes (SET NX/XX/GET, GET, INCR,
// DECRBY, GETDEL, DEL; TTLs refused), over HTTP with compare-and-set on the version (If-Match)
// or the value, and through the TypeScript client's compareAndSet and increment.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RingkvClient } from '../../src/client/index.ts';
import { http, TestCluster, waitFor } from './cluster-harness.ts';

const ADMIN_TOKEN = 'strong-test-admin-token';

let cluster: TestCluster;
const redis: Redis[] = [];
before(async () => {
  cluster = await TestCluster.start({ nodeCount: 3, storage: 'memory', adminToken: ADMIN_TOKEN });
  const created = await http(`${cluster.node('node2').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: 'accounts', consistency: 'strong', n: 3 }),
    token: ADMIN_TOKEN,
  });
  assert.equal(created.status, 201, created.text);
  for (const node of cluster.nodes) {
    await waitFor(
      async () => (await http(`${node.httpUrl}/v1/kv/accounts/probe`)).status === 404,
      10_000,
      `${node.id} to know keyspace accounts`,
    );
  }
  // SELECT picks keyspaces by id: default is 0, accounts the next one.
  for (const node of cluster.nodes) {
    const client = new Redis({ port: node.respPort, host: '127.0.0.1', lazyConnect: true });
    await client.connect();
    await client.select(1);
    redis.push(client);
  }
});
after(async () => {
  for (const client of redis) client.disconnect();
  await cluster?.close();
});

function errorCode(json: unknown): string | undefined {
  return (json as { error?: { code?: string } } | undefined)?.error?.code;
}

test('a strong keyspace refuses the options of eventual keyspaces at creation', async () => {
  const answer = await http(`${cluster.node('node1').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: 'bad', consistency: 'strong', n: 3, r: 1, conflicts: 'siblings' }),
    token: ADMIN_TOKEN,
  });
  assert.equal(answer.status, 400, answer.text);
  assert.equal(errorCode(answer.json), 'RINGKV_INVALID_ARGUMENT');
  assert.match(answer.text, /r, conflicts are options of eventual keyspaces/);
  const all = await http(`${cluster.node('node1').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify({ name: 'bad', consistency: 'strong', n: 'all' }),
    token: ADMIN_TOKEN,
  });
  assert.equal(all.status, 400, all.text);
  const listed = await http(`${cluster.node('node1').httpUrl}/v1/keyspaces`);
  assert.ok(!listed.text.includes('"bad"'), 'nothing was created');
});

test('Redis commands on a strong keyspace agree across nodes', async () => {
  const [a, b, c] = redis as [Redis, Redis, Redis];
  assert.equal(await a.set('balance', '100', 'NX'), 'OK');
  assert.equal(await b.set('balance', '999', 'NX'), null, 'NX on a present key');
  assert.equal(await c.get('balance'), '100');
  assert.equal(await b.set('missing', 'x', 'XX'), null, 'XX on an absent key');
  assert.equal(await c.get('missing'), null);
  assert.equal(await a.incrby('balance', 5), 105);
  assert.equal(await b.decrby('balance', 10), 95);
  assert.equal(await c.incr('balance'), 96);
  assert.equal(await a.set('balance', '50', 'XX', 'GET'), '96');
  assert.equal(await b.getdel('balance'), '50');
  assert.equal(await c.get('balance'), null);
  assert.equal(await a.del('balance'), 0);
  await b.set('name', 'ada');
  await assert.rejects(c.incr('name'), /not an integer/);
  assert.equal(await a.get('name'), 'ada', 'a failed INCR changed nothing');
  await assert.rejects(a.set('ttl', 'v', 'EX', 10), /no expiry/);
  await assert.rejects(a.expire('name', 10), /no expiry/);
  await assert.rejects(a.append('name', 'x'), /not supported on strong keyspaces/);
  assert.equal(await c.get('ttl'), null, 'a refused SET wrote nothing');
});

test('HTTP compare-and-set on the version (If-Match) and on the value', async () => {
  const base = `${cluster.node('node3').httpUrl}/v1/kv/accounts`;
  const put = (key: string, body: string, headers: Record<string, string>) =>
    fetch(`${base}/${key}`, { method: 'PUT', body, headers });
  const created = await put('doc', 'v1', { 'if-none-match': '*' });
  assert.equal(created.status, 200);
  const etag = created.headers.get('etag');
  assert.ok(etag !== null && /^"[0-9]+"$/.test(etag), `ETag ${etag}`);
  const read = await fetch(`${cluster.node('node1').httpUrl}/v1/kv/accounts/doc`);
  assert.equal(await read.text(), 'v1');
  assert.equal(read.headers.get('etag'), etag, 'every node reads the same version');
  const stale = await put('doc', 'lost', { 'if-match': '"12345"' });
  assert.equal(stale.status, 412);
  const updated = await put('doc', 'v2', { 'if-match': etag });
  assert.equal(updated.status, 200, await updated.text());
  const again = await put('doc', 'v3', { 'if-match': etag });
  assert.equal(again.status, 412, 'the same version matches once');
  const byValue = await put('doc', 'v3', {
    'x-ringkv-if-value': Buffer.from('v2').toString('base64url'),
  });
  assert.equal(byValue.status, 200);
  const wrongValue = await put('doc', 'v4', {
    'x-ringkv-if-value': Buffer.from('v2').toString('base64url'),
  });
  assert.equal(wrongValue.status, 412);
  const final = await fetch(`${base}/doc`);
  assert.equal(await final.text(), 'v3');
  const incremented = await fetch(`${base}/counter?incrBy=41`, { method: 'POST' });
  assert.deepEqual(((await incremented.json()) as { value: string }).value, '41');
  const withTtl = await fetch(`${base}/doc?ttlMs=1000`, { method: 'PUT', body: 'x' });
  assert.equal(withTtl.status, 400);
  const withQuorum = await fetch(`${base}/doc?r=1`);
  assert.equal(withQuorum.status, 400, 'strong reads take no r');
});

test('the client compareAndSet and increment make a read-modify-write loop with no lost update', async () => {
  const endpoints = cluster.nodes.map((node) => `127.0.0.1:${node.httpPort}`);
  const clients = await Promise.all(
    [0, 1, 2].map(() => RingkvClient.connect({ endpoints, retries: 2 })),
  );
  try {
    // Three clients each add 1 to one counter 20 times with get + compareAndSet on the version.
    const rounds = 20;
    await Promise.all(
      clients.map(async (client) => {
        for (let done = 0; done < rounds;) {
          const read = await client.get('accounts', 'shared');
          assert.ok(read.version !== undefined, 'strong reads carry a version');
          const next = String(Number(read.value === null ? '0' : Buffer.from(read.value)) + 1);
          const result = await client.compareAndSet(
            'accounts',
            'shared',
            { version: read.version },
            next,
          );
          if (result.applied) done++;
        }
      }),
    );
    const total = await clients[0]!.get('accounts', 'shared');
    assert.equal(Buffer.from(total.value!).toString(), String(3 * rounds));
    assert.equal(await clients[1]!.increment('accounts', 'shared', 5), BigInt(3 * rounds + 5));
    const absent = await clients[2]!.compareAndSet('accounts', 'fresh', { value: null }, 'first');
    assert.equal(absent.applied, true);
    const taken = await clients[2]!.compareAndSet('accounts', 'fresh', { value: null }, 'second');
    assert.equal(taken.applied, false);
  } finally {
    for (const client of clients) client.close();
  }
});
