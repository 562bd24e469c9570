// Chain keyspaces on a three-node cluster of real processes: created over HTTP (eventual
// options refused, and a second chain keyspace only with the n of the first, since all chain
// keyspaces share the partitions' chains), used over RESP by ioredis on different nodes (SET
// NX/XX/GET, GET, INCR, INCRBY, DECRBY, GETDEL, DEL; TTLs and APPEND refused), over HTTP with
// compare-and-set on the version (If-Match) or the value and POST ?incrBy, and through the
// TypeScript client's compareAndSet and increment. Every write enters at a chain's head and
// every read is answered by its tail, whichever node the client talks to.

import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RingkvClient } from '../../src/client/index.ts';
import { http, TestCluster, waitFor } from './cluster-harness.ts';

const ADMIN_TOKEN = 'chain-test-admin-token';
/** SELECT indices: default is 0, `orders` the first keyspace created, `invoices` the second. */
const ORDERS_INDEX = 1;
const INVOICES_INDEX = 2;

let cluster: TestCluster;
const redis: Redis[] = [];

async function createKeyspace(body: Record<string, unknown>): Promise<{
  status: number;
  text: string;
  json: unknown;
}> {
  return http(`${cluster.node('node2').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify(body),
    token: ADMIN_TOKEN,
  });
}

async function waitForKeyspace(name: string): Promise<void> {
  for (const node of cluster.nodes) {
    await waitFor(
      async () => (await http(`${node.httpUrl}/v1/kv/${name}/probe`)).status === 404,
      10_000,
      `${node.id} to know keyspace ${name}`,
    );
  }
}

before(async () => {
  cluster = await TestCluster.start({ nodeCount: 3, storage: 'memory', adminToken: ADMIN_TOKEN });
  const created = await createKeyspace({ name: 'orders', consistency: 'chain', n: 3 });
  assert.equal(created.status, 201, created.text);
  await waitForKeyspace('orders');
  for (const node of cluster.nodes) {
    const client = new Redis({ port: node.respPort, host: '127.0.0.1', lazyConnect: true });
    await client.connect();
    await client.select(ORDERS_INDEX);
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

test('a chain keyspace refuses the options of eventual keyspaces, and a second one must share the n of the first', async () => {
  const eventualOptions = await createKeyspace({
    name: 'bad',
    consistency: 'chain',
    n: 3,
    w: 1,
    conflicts: 'siblings',
  });
  assert.equal(eventualOptions.status, 400, eventualOptions.text);
  assert.equal(errorCode(eventualOptions.json), 'RINGKV_INVALID_ARGUMENT');
  assert.match(eventualOptions.text, /w, conflicts are options of eventual keyspaces/);

  const otherN = await createKeyspace({ name: 'bad', consistency: 'chain', n: 2 });
  assert.equal(otherN.status, 400, otherN.text);
  assert.equal(errorCode(otherN.json), 'RINGKV_INVALID_ARGUMENT');
  assert.match(
    otherN.text,
    /chain keyspaces share their chains: n must be 3, as keyspace 'orders' has/,
  );

  const listed = await http(`${cluster.node('node1').httpUrl}/v1/keyspaces`);
  assert.ok(!listed.text.includes('"bad"'), `nothing was created: ${listed.text}`);
  const orders = (
    listed.json as { keyspaces: { name: string; consistency: string; n: unknown }[] }
  ).keyspaces.find((keyspace) => keyspace.name === 'orders');
  assert.deepEqual(
    { consistency: orders?.consistency, n: orders?.n },
    { consistency: 'chain', n: 3 },
  );

  // Every chain of the 3-node cluster has all three members: none is short.
  for (const node of cluster.nodes) {
    const view = (await http(`${node.httpUrl}/v1/cluster`)).json as {
      chainsShort: number;
      partitionCount: number;
      members: { id: string; chainsJoined: number }[];
    };
    assert.equal(view.chainsShort, 0, `${node.id}: no chain is short`);
    for (const member of view.members) {
      assert.equal(member.chainsJoined, view.partitionCount, `${member.id} is in every chain`);
    }
  }
});

test('two chain keyspaces with the same n share the chains but not their keys', async () => {
  const created = await createKeyspace({ name: 'invoices', consistency: 'chain', n: 3 });
  assert.equal(created.status, 201, created.text);
  await waitForKeyspace('invoices');
  const invoices = new Redis({
    port: cluster.node('node3').respPort,
    host: '127.0.0.1',
    lazyConnect: true,
  });
  try {
    await invoices.connect();
    await invoices.select(INVOICES_INDEX);
    const [orders] = redis as [Redis];
    assert.equal(await orders.set('shared-name', 'an order'), 'OK');
    assert.equal(await invoices.get('shared-name'), null, 'the same key in the other keyspace');
    assert.equal(await invoices.set('shared-name', 'an invoice'), 'OK');
    assert.equal(await orders.get('shared-name'), 'an order');
    assert.equal(await invoices.incr('count'), 1);
    assert.equal(await orders.get('count'), null);
  } finally {
    invoices.disconnect();
  }
});

test('Redis commands on a chain keyspace agree across nodes', async () => {
  const [a, b, c] = redis as [Redis, Redis, Redis];
  assert.equal(await a.set('stock', '100', 'NX'), 'OK');
  assert.equal(await b.set('stock', '999', 'NX'), null, 'NX on a present key');
  assert.equal(await c.get('stock'), '100');
  assert.equal(await b.set('missing', 'x', 'XX'), null, 'XX on an absent key');
  assert.equal(await c.get('missing'), null);
  assert.equal(await a.set('stock', '101', 'XX'), 'OK', 'XX on a present key');
  assert.equal(await a.incrby('stock', 4), 105);
  assert.equal(await b.decrby('stock', 10), 95);
  assert.equal(await c.incr('stock'), 96);
  assert.equal(await a.decr('stock'), 95);
  assert.equal(await a.set('stock', '50', 'GET'), '95');
  assert.equal(await b.set('stock', '60', 'XX', 'GET'), '50');
  assert.equal(await c.getdel('stock'), '60');
  assert.equal(await a.get('stock'), null);
  assert.equal(await b.getdel('stock'), null);
  assert.equal(await a.del('stock'), 0, 'deleting what is absent deletes nothing');
  await b.set('name', 'ada');
  assert.equal(await c.del('name'), 1);
  await b.set('name', 'ada');
  await assert.rejects(c.incr('name'), /not an integer/);
  assert.equal(await a.get('name'), 'ada', 'a failed INCR changed nothing');
  await b.set('big', '9223372036854775807');
  await assert.rejects(c.incr('big'), /overflow/);
  assert.equal(await a.get('big'), '9223372036854775807', 'an overflowing INCR changed nothing');
  await assert.rejects(a.set('ttl', 'v', 'EX', 10), /not supported on chain keyspaces/);
  await assert.rejects(a.set('ttl', 'v', 'PX', 10_000), /not supported on chain keyspaces/);
  await assert.rejects(a.expire('name', 10), /no expiry/);
  await assert.rejects(a.append('name', 'x'), /APPEND is not supported/);
  assert.equal(await c.get('ttl'), null, 'a refused SET wrote nothing');
  assert.equal(await b.get('name'), 'ada', 'a refused APPEND wrote nothing');
});

test('HTTP compare-and-set on the version (If-Match) and on the value, and increment', async () => {
  const base = `${cluster.node('node3').httpUrl}/v1/kv/orders`;
  const put = (key: string, body: string, headers: Record<string, string>) =>
    fetch(`${base}/${key}`, { method: 'PUT', body, headers });
  const created = await put('doc', 'v1', { 'if-none-match': '*' });
  assert.equal(created.status, 200, await created.text());
  const etag = created.headers.get('etag');
  assert.equal(etag, '"1"', 'the first write of a key makes version 1');
  const taken = await put('doc', 'other', { 'if-none-match': '*' });
  assert.equal(taken.status, 412, 'create-if-absent on a present key');
  const read = await fetch(`${cluster.node('node1').httpUrl}/v1/kv/orders/doc`);
  assert.equal(await read.text(), 'v1');
  assert.equal(read.headers.get('etag'), etag, 'every node reads the same version');
  const stale = await put('doc', 'lost', { 'if-match': '"12345"' });
  assert.equal(stale.status, 412);
  const updated = await put('doc', 'v2', { 'if-match': etag! });
  assert.equal(updated.status, 200, await updated.text());
  assert.equal(updated.headers.get('etag'), '"2"', 'each change adds one to the version');
  const again = await put('doc', 'v3', { 'if-match': etag! });
  assert.equal(again.status, 412, 'the same version matches once');
  const byValue = await put('doc', 'v3', {
    'x-ringkv-if-value': Buffer.from('v2').toString('base64url'),
  });
  assert.equal(byValue.status, 200);
  const wrongValue = await put('doc', 'v4', {
    'x-ringkv-if-value': Buffer.from('v2').toString('base64url'),
  });
  assert.equal(wrongValue.status, 412);
  const final = await fetch(`${cluster.node('node2').httpUrl}/v1/kv/orders/doc`);
  assert.equal(await final.text(), 'v3');
  assert.equal(final.headers.get('etag'), '"3"');

  // A delete keeps the count in its tombstone, so an old version never matches a new value.
  const deleted = await fetch(`${base}/doc`, { method: 'DELETE' });
  assert.equal(deleted.status, 200);
  const recreated = await put('doc', 'v5', { 'if-none-match': '*' });
  assert.equal(recreated.status, 200);
  assert.equal(recreated.headers.get('etag'), '"5"', 'delete and re-create each count');
  assert.equal((await put('doc', 'v6', { 'if-match': '"1"' })).status, 412);

  const incremented = await fetch(`${base}/counter?incrBy=41`, { method: 'POST' });
  assert.equal(((await incremented.json()) as { value: string }).value, '41');
  const decremented = await fetch(`${base}/counter?incrBy=-1`, { method: 'POST' });
  assert.equal(((await decremented.json()) as { value: string }).value, '40');
  const withTtl = await fetch(`${base}/doc?ttlMs=1000`, { method: 'PUT', body: 'x' });
  assert.equal(withTtl.status, 400);
  const withQuorum = await fetch(`${base}/doc?r=1`);
  assert.equal(withQuorum.status, 400, 'chain reads take no r');
  const withWriteQuorum = await fetch(`${base}/doc?w=1`, { method: 'PUT', body: 'x' });
  assert.equal(withWriteQuorum.status, 400, 'chain writes take no w');
  assert.equal(await (await fetch(`${base}/doc`)).text(), 'v5', 'refused writes changed nothing');
});

test('the client compareAndSet and increment make a read-modify-write loop with no lost update', async (context: TestContext) => {
  const endpoints = cluster.nodes.map((node) => `127.0.0.1:${node.httpPort}`);
  const clients = await Promise.all(
    [0, 1, 2].map(() => RingkvClient.connect({ endpoints, retries: 2 })),
  );
  try {
    // Three clients each add 1 to one counter 20 times with get + compareAndSet on the
    // version; a lost update would leave the counter short.
    const rounds = 20;
    let conflicts = 0;
    await Promise.all(
      clients.map(async (client) => {
        for (let done = 0; done < rounds;) {
          const read = await client.get('orders', 'shared');
          assert.ok(read.version !== undefined, 'chain reads carry a version');
          const next = String(Number(read.value === null ? '0' : Buffer.from(read.value)) + 1);
          const result = await client.compareAndSet(
            'orders',
            'shared',
            { version: read.version },
            next,
          );
          if (result.applied) {
            assert.equal(result.version, read.version + 1, 'a change adds one to the version');
            done++;
          } else {
            conflicts++;
          }
        }
      }),
    );
    const total = await clients[0]!.get('orders', 'shared');
    assert.equal(Buffer.from(total.value!).toString(), String(3 * rounds));
    assert.equal(total.version, 3 * rounds, 'one version per applied compare-and-set');
    // Increments from three clients at once: every one counted exactly once.
    const increments = await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: 10 }, () => client.increment('orders', 'shared', 2)),
      ),
    );
    const expectedTotal = BigInt(3 * rounds + 2 * 30);
    assert.equal(
      increments.reduce((max, value) => (value > max ? value : max), 0n),
      expectedTotal,
    );
    assert.equal(new Set(increments).size, 30, 'each increment answered a distinct value');
    assert.equal(await clients[1]!.increment('orders', 'shared', -5), expectedTotal - 5n);
    const absent = await clients[2]!.compareAndSet('orders', 'fresh', { value: null }, 'first');
    assert.equal(absent.applied, true);
    const present = await clients[2]!.compareAndSet('orders', 'fresh', { value: null }, 'second');
    assert.equal(present.applied, false);
    const byValue = await clients[0]!.compareAndSet('orders', 'fresh', { value: 'first' }, 'third');
    assert.equal(byValue.applied, true);
    const fresh = await clients[1]!.get('orders', 'fresh');
    assert.equal(Buffer.from(fresh.value!).toString(), 'third');
    assert.equal(fresh.version, 2);
    context.diagnostic(`${conflicts} compare-and-sets lost to a concurrent writer`);
  } finally {
    for (const client of clients) client.close();
  }
});
