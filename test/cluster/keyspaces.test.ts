// Keyspaces over HTTP on a three-node cluster: a keyspace created through any node (the map
// changes by compare-and-set among the voters) reaches every node, serves a write on one node
// and a read on another, and bad requests change nothing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { http, TestCluster, waitFor, type HttpAnswer } from './cluster-harness.ts';

const ADMIN_TOKEN = 'keyspace-test-admin-token';

let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start({ nodeCount: 3, storage: 'memory', adminToken: ADMIN_TOKEN });
});
after(async () => {
  await cluster?.close();
});

interface KeyspaceView {
  readonly name: string;
  readonly n: number | 'all';
  readonly r: number;
  readonly w: number;
  readonly conflicts: string;
  readonly durability: string;
}

function createKeyspace(id: string, body: unknown, token = ADMIN_TOKEN): Promise<HttpAnswer> {
  return http(`${cluster.node(id).httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: JSON.stringify(body),
    token,
  });
}

async function keyspacesOf(id: string): Promise<KeyspaceView[]> {
  const answer = await http(`${cluster.node(id).httpUrl}/v1/keyspaces`);
  assert.equal(answer.status, 200);
  return (answer.json as { keyspaces: KeyspaceView[] }).keyspaces;
}

function errorCode(answer: HttpAnswer): string | undefined {
  return (answer.json as { error?: { code?: string } } | undefined)?.error?.code;
}

test('a keyspace created through the second node is listed on every node and serves reads and writes', async () => {
  const created = await createKeyspace('node2', {
    name: 'orders',
    n: 3,
    r: 1,
    w: 3,
    conflicts: 'siblings',
    durability: 'relaxed',
  });
  assert.equal(created.status, 201, created.text);
  for (const node of cluster.nodes) {
    await waitFor(
      async () => (await keyspacesOf(node.id)).some((keyspace) => keyspace.name === 'orders'),
      10_000,
      `${node.id} to list keyspace orders`,
    );
    const orders = (await keyspacesOf(node.id)).find((keyspace) => keyspace.name === 'orders');
    assert.deepEqual(
      [orders?.n, orders?.r, orders?.w, orders?.conflicts, orders?.durability],
      [3, 1, 3, 'siblings', 'relaxed'],
      node.id,
    );
  }
  const written = await http(`${cluster.node('node3').httpUrl}/v1/kv/orders/order-1`, {
    method: 'PUT',
    body: 'two books',
  });
  assert.equal(written.status, 200, written.text);
  // W=3 by the keyspace's default: every replica has it, so R=1 anywhere sees it.
  for (const node of cluster.nodes) {
    const read = await http(`${node.httpUrl}/v1/kv/orders/order-1`);
    assert.equal(read.status, 200, `${node.id}: ${read.text}`);
    assert.equal(read.text, 'two books');
  }
  // The default keyspace does not see the key.
  const other = await http(`${cluster.node('node1').httpUrl}/v1/kv/default/order-1`);
  assert.equal(other.status, 404);
});

test('a second keyspace of the same name is refused with 409 RINGKV_KEYSPACE_EXISTS', async () => {
  await waitFor(
    async () => (await keyspacesOf('node3')).some((keyspace) => keyspace.name === 'orders'),
    10_000,
    'node3 to list keyspace orders',
  );
  for (const node of cluster.nodes) {
    const duplicate = await createKeyspace(node.id, { name: 'orders', n: 2, r: 1, w: 1 });
    assert.equal(duplicate.status, 409, `${node.id}: ${duplicate.text}`);
    assert.equal(errorCode(duplicate), 'RINGKV_KEYSPACE_EXISTS');
  }
  const orders = (await keyspacesOf('node1')).find((keyspace) => keyspace.name === 'orders');
  assert.equal(orders?.n, 3, 'the first keyspace is unchanged');
});

test('bad keyspace properties are refused with 400 and create nothing', async () => {
  const bad: unknown[] = [
    { name: 'bad name!' },
    { name: 'zero', n: 0 },
    { name: 'quorum-over-n', n: 2, r: 3, w: 1 },
    { name: 'conflicts', conflicts: 'maybe' },
    { name: 'durability', durability: 'sometimes' },
    { name: 'unknown-field', replicas: 3 },
    { n: 3 },
  ];
  for (const body of bad) {
    const answer = await createKeyspace('node3', body);
    assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${answer.text}`);
  }
  const notJson = await http(`${cluster.node('node3').httpUrl}/v1/keyspaces`, {
    method: 'POST',
    body: 'name=x',
    token: ADMIN_TOKEN,
  });
  assert.equal(notJson.status, 400);
  const names = (await keyspacesOf('node1')).map((keyspace) => keyspace.name).sort();
  assert.deepEqual(names, ['default', 'orders']);
});

test('keyspace creation is an admin route: 401 without the admin token', async () => {
  const refused = await createKeyspace('node2', { name: 'unguarded' }, 'not-the-token');
  assert.equal(refused.status, 401);
  assert.equal(errorCode(refused), 'RINGKV_UNAUTHORIZED');
  assert.ok(!(await keyspacesOf('node2')).some((keyspace) => keyspace.name === 'unguarded'));
});
