// The client against a fake cluster of loopback HTTP servers: it routes each key to a
// replica of the key's preference list, goes around dead or slow nodes for reads, never
// resends a write whose outcome is unknown, maps the server's error codes, and follows
// the ring when its epoch moves.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RingkvClient, RingkvError } from '../../src/client/index.ts';
import { partitionOf } from '../../src/core/ring/partition.ts';
import { preferenceList } from '../../src/core/ring/preference-list.ts';
import { Prng } from '../../src/core/prng.ts';
import {
  DEFAULT_RING_KEYSPACE,
  ringDocument,
  startFakeCluster,
  type FakeCluster,
} from './fake-cluster.ts';

const NODE_IDS = ['node1', 'node2', 'node3', 'node4', 'node5'];
const PARTITION_COUNT = 64;
const SEED = Number(process.env.CLIENT_TEST_SEED ?? 20240611);

/** Seeded owners: every node owns some partitions, in no regular pattern. */
function seededOwners(seed: number, nodeIds: readonly string[], count: number): string[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, (_, index) =>
    index < nodeIds.length ? nodeIds[index]! : nodeIds[prng.below(nodeIds.length)]!,
  );
}

/** The naive reference: rotate the ring to start at the partition, keep first occurrences. */
function naivePreferenceList(owners: readonly string[], partition: number, n: number): string[] {
  const rotated = [...owners.slice(partition), ...owners.slice(0, partition)];
  return rotated.filter((owner, index) => rotated.indexOf(owner) === index).slice(0, n);
}

function replicasOf(cluster: FakeCluster, key: Uint8Array, keyspaceId = 0, n = 3): string[] {
  const partition = partitionOf(keyspaceId, key, cluster.ring.partitionCount);
  return naivePreferenceList(cluster.ring.owners, partition, n);
}

function seededKeys(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, (_, index) => {
    // Every third key is binary (not UTF-8), the rest text; one is the dot segment '.'.
    if (index === 0) return new TextEncoder().encode('.');
    if (index % 3 === 0) {
      return Uint8Array.from({ length: 1 + prng.below(12) }, () => prng.below(256));
    }
    return new TextEncoder().encode(`user:${prng.nextUint32()}/a b?c#d%e*`);
  });
}

async function expectError(
  promise: Promise<unknown>,
  code: string,
  status: number | null,
): Promise<RingkvError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RingkvError, `expected a RingkvError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.status, status);
    return error;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

function ownersFor(
  seed: number,
): (addresses: ReadonlyMap<string, string>) => ReturnType<typeof ringDocument> {
  return (addresses) => ringDocument(addresses, seededOwners(seed, NODE_IDS, PARTITION_COUNT));
}

const clientOptions = { timeoutMs: 300, retries: 3, backoffMs: 1, refreshRingMs: 0 };

test('the preference list the client routes by agrees with a naive reference on random rings', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), { minLength: 1, maxLength: 64 }),
      fc.nat(),
      fc.integer({ min: 1, max: 8 }),
      (owners, partitionSeed, n) => {
        const partition = partitionSeed % owners.length;
        assert.deepEqual(
          [...preferenceList(owners, partition, n)],
          naivePreferenceList(owners, partition, n),
        );
      },
    ),
    { seed: SEED },
  );
});

test('every request for a key goes to the first replica of its preference list', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED));
  const client = await RingkvClient.connect({
    endpoints: [cluster.endpoints()[4]!],
    ...clientOptions,
  });
  try {
    const keys = seededKeys(SEED, 30);
    for (const [index, key] of keys.entries()) {
      await client.put('default', key, `value-${index}`);
      const read = await client.get('default', key);
      assert.equal(new TextDecoder().decode(read.value!), `value-${index}`);
      assert.deepEqual([...(await client.replicasOf('default', key))], replicasOf(cluster, key));
    }
    const requests = cluster.keyRequests();
    assert.equal(requests.length, keys.length * 2);
    for (const request of requests) {
      assert.ok(request.key !== null);
      assert.equal(
        request.nodeId,
        replicasOf(cluster, request.key)[0],
        `${request.method} ${request.url} went to ${request.nodeId}`,
      );
    }
    // The fake decodes keys from the URL as a server would; each must arrive intact.
    const arrived = new Set(requests.map((request) => Buffer.from(request.key!).toString('hex')));
    for (const key of keys) assert.ok(arrived.has(Buffer.from(key).toString('hex')));
  } finally {
    client.close();
    await cluster.close();
  }
});

test('a read skips a closed replica and is served by the next one of the key', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 1));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const key = new TextEncoder().encode('profile:7');
    const [first, second] = replicasOf(cluster, key);
    await client.put('default', key, 'v');
    await cluster.kill(first!);
    const read = await client.get('default', key);
    assert.equal(new TextDecoder().decode(read.value!), 'v');
    const gets = cluster.keyRequests().filter((request) => request.method === 'GET');
    assert.deepEqual(
      gets.map((request) => request.nodeId),
      [second],
    );
    // The client remembers the dead node: the next read goes straight to the second replica.
    await client.get('default', key);
    assert.equal(cluster.keyRequests().at(-1)!.nodeId, second);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('a write is retried on the next replica when the connection is refused', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 2));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const key = new TextEncoder().encode('order:99');
    const [first, second] = replicasOf(cluster, key);
    await cluster.kill(first!);
    await client.put('default', key, 'paid');
    const puts = cluster.keyRequests().filter((request) => request.method === 'PUT');
    assert.deepEqual(
      puts.map((request) => request.nodeId),
      [second],
    );
  } finally {
    client.close();
    await cluster.close();
  }
});

test('a write whose node does not answer in time is not resent and reports UNKNOWN_OUTCOME', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 3));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const key = new TextEncoder().encode('balance:1');
    const [first, second] = replicasOf(cluster, key);
    for (const node of cluster.nodes) node.behaviour = { kind: 'hang' };
    const error = await expectError(client.put('default', key, '100'), 'UNKNOWN_OUTCOME', null);
    assert.equal(error.nodeId, first);
    assert.equal(error.attempts, 1);
    // The silent node is now tried last, so the delete goes to the second replica.
    const deleteError = await expectError(client.delete('default', key), 'UNKNOWN_OUTCOME', null);
    assert.equal(deleteError.attempts, 1);
    assert.deepEqual(
      cluster.keyRequests().map((request) => `${request.method} ${request.nodeId}`),
      [`PUT ${first}`, `DELETE ${second}`],
    );
  } finally {
    client.close();
    await cluster.close();
  }
});

test('a read whose node does not answer in time is retried on another replica', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 4));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const key = new TextEncoder().encode('slow:1');
    const [first, second] = replicasOf(cluster, key);
    await client.put('default', key, 'x');
    cluster.node(first!).behaviour = { kind: 'hang' };
    const read = await client.get('default', key);
    assert.equal(new TextDecoder().decode(read.value!), 'x');
    const gets = cluster.keyRequests().filter((request) => request.method === 'GET');
    assert.deepEqual(
      gets.map((request) => request.nodeId),
      [first, second],
    );
  } finally {
    client.close();
    await cluster.close();
  }
});

test('503 RINGKV_UNAVAILABLE sends a read to another replica but fails a write at once', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 5));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const key = new TextEncoder().encode('stopping:1');
    const [first, second] = replicasOf(cluster, key);
    await client.put('default', key, 'y');
    cluster.node(first!).behaviour = {
      kind: 'error',
      status: 503,
      body: JSON.stringify({ error: { code: 'RINGKV_UNAVAILABLE', message: 'shutting down' } }),
    };
    const read = await client.get('default', key);
    assert.equal(new TextDecoder().decode(read.value!), 'y');
    await expectError(client.put('default', key, 'z'), 'RINGKV_UNAVAILABLE', 503);
    const tail = cluster.keyRequests().slice(-3);
    assert.deepEqual(
      tail.map((request) => `${request.method} ${request.nodeId}`),
      [`GET ${first}`, `GET ${second}`, `PUT ${first}`],
    );
  } finally {
    client.close();
    await cluster.close();
  }
});

test('503 RINGKV_OVERLOADED (nothing done) lets a write go to the next replica', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 6));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const key = new TextEncoder().encode('busy:1');
    const [first, second] = replicasOf(cluster, key);
    cluster.node(first!).behaviour = {
      kind: 'error',
      status: 503,
      body: JSON.stringify({ error: { code: 'RINGKV_OVERLOADED', message: 'too many' } }),
    };
    await client.put('default', key, 'ok');
    assert.deepEqual(
      cluster.keyRequests().map((request) => request.nodeId),
      [first, second],
    );
  } finally {
    client.close();
    await cluster.close();
  }
});

test("the server's error codes and statuses come back as RingkvError", async () => {
  const cluster = await startFakeCluster(['node1'], (addresses) =>
    ringDocument(addresses, Array<string>(8).fill('node1')),
  );
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  const node = cluster.node('node1');
  try {
    for (const [status, code] of [
      [400, 'RINGKV_INVALID_CONTEXT'],
      [401, 'RINGKV_UNAUTHORIZED'],
      [413, 'RINGKV_VALUE_TOO_LARGE'],
      [414, 'RINGKV_KEY_TOO_LARGE'],
      [412, 'RINGKV_PRECONDITION_FAILED'],
      [500, 'RINGKV_INTERNAL'],
    ] as const) {
      node.behaviour = {
        kind: 'error',
        status,
        body: JSON.stringify({ error: { code, message: `because ${code}` } }),
      };
      const error = await expectError(client.put('default', 'k', 'v'), code, status);
      assert.equal(error.message, `because ${code}`);
      assert.ok(error.fromServer);
      await expectError(client.get('default', 'k'), code, status);
    }
    node.behaviour = { kind: 'error', status: 502, body: '<html>bad gateway</html>' };
    await expectError(client.delete('default', 'k'), 'BAD_RESPONSE', 502);
    // A miss is an answer, not an error.
    node.behaviour = { kind: 'normal' };
    const miss = await client.get('default', 'never-written');
    assert.equal(miss.value, null);
    assert.deepEqual(miss.siblings, []);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('a newer epoch in an answer makes the client fetch the ring and route by it', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 7));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const epochOf = (): number => client.ringEpoch;
    assert.equal(epochOf(), 1);
    const key = new TextEncoder().encode('moving:1');
    const [oldFirst] = replicasOf(cluster, key);
    // The new ring gives every partition of the key's old first replica to another node.
    const newOwner = NODE_IDS.find((id) => id !== oldFirst)!;
    const addresses = new Map(cluster.nodes.map((node) => [node.id, node.http]));
    cluster.ring = ringDocument(
      addresses,
      cluster.ring.owners.map((owner) => (owner === oldFirst ? newOwner : owner)),
      { epoch: 2 },
    );
    for (const node of cluster.nodes) node.epochHeader = 2;
    await client.put('default', key, 'a');
    assert.equal(cluster.keyRequests().at(-1)!.nodeId, oldFirst);
    const deadline = Date.now() + 2_000;
    while (epochOf() !== 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(epochOf(), 2);
    await client.put('default', key, 'b');
    const [newFirst] = replicasOf(cluster, key);
    assert.notEqual(newFirst, oldFirst);
    assert.equal(cluster.keyRequests().at(-1)!.nodeId, newFirst);
    // The same epoch seen again starts no further fetch.
    const fetched = cluster.nodes.reduce((sum, node) => sum + node.ringRequests, 0);
    await client.get('default', key);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(
      cluster.nodes.reduce((sum, node) => sum + node.ringRequests, 0),
      fetched,
    );
  } finally {
    client.close();
    await cluster.close();
  }
});

test('an unknown keyspace refreshes the ring once, then fails with RINGKV_UNKNOWN_KEYSPACE', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 8));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const ringFetches = (): number =>
      cluster.nodes.reduce((sum, node) => sum + node.ringRequests, 0);
    const before = ringFetches();
    await expectError(client.get('nosuch', 'k'), 'RINGKV_UNKNOWN_KEYSPACE', null);
    assert.equal(ringFetches(), before + 1);
    assert.equal(cluster.keyRequests().length, 0);
    // A keyspace created after connect is found by that one refresh, with its own n and id.
    cluster.ring = {
      ...cluster.ring,
      keyspaces: [
        ...cluster.ring.keyspaces,
        { ...DEFAULT_RING_KEYSPACE, name: 'users', id: 7, n: 2 },
      ],
    };
    await client.put('users', 'alice', '1');
    assert.equal(ringFetches(), before + 2);
    const key = new TextEncoder().encode('alice');
    assert.deepEqual([...(await client.replicasOf('users', key))], replicasOf(cluster, key, 7, 2));
    assert.equal(cluster.keyRequests().at(-1)!.nodeId, replicasOf(cluster, key, 7, 2)[0]);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('the key iterator follows cursors and yields every key of the prefix once', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 9));
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    const keys = seededKeys(SEED + 9, 25);
    for (const key of keys) await client.put('default', key, 'v');
    await client.put('default', 'other:1', 'v');
    const seen: string[] = [];
    for await (const key of client.keys('default', { pageSize: 4 })) {
      seen.push(Buffer.from(key).toString('hex'));
    }
    assert.equal(seen.length, keys.length + 1);
    assert.equal(new Set(seen).size, seen.length);
    for (const key of keys) assert.ok(seen.includes(Buffer.from(key).toString('hex')));
    const page = await client.scan('default', { prefix: 'other:', limit: 10 });
    assert.deepEqual(
      page.keys.map((key) => new TextDecoder().decode(key)),
      ['other:1'],
    );
    assert.equal(page.cursor, null);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('connect takes the ring from any endpoint that answers, and fails with UNREACHABLE if none does', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 10));
  const dead = cluster.endpoints()[0]!;
  await cluster.kill('node1');
  try {
    const client = await RingkvClient.connect({
      endpoints: [dead, cluster.endpoints()[1]!],
      ...clientOptions,
    });
    assert.equal(client.ringEpoch, 1);
    client.close();
    await expectError(
      RingkvClient.connect({ endpoints: [dead], ...clientOptions }),
      'UNREACHABLE',
      null,
    );
    await expectError(
      RingkvClient.connect({ endpoints: ['not an endpoint'], ...clientOptions }),
      'INVALID_OPTION',
      null,
    );
  } finally {
    await cluster.close();
  }
});

test('a read fails with UNREACHABLE once every attempt was refused, after retries+1 tries', async () => {
  const cluster = await startFakeCluster(NODE_IDS, ownersFor(SEED + 11));
  const client = await RingkvClient.connect({
    endpoints: cluster.endpoints(),
    ...clientOptions,
    retries: 2,
  });
  try {
    for (const id of NODE_IDS) await cluster.kill(id);
    const error = await expectError(client.get('default', 'k'), 'UNREACHABLE', null);
    assert.equal(error.attempts, 3);
    const writeError = await expectError(client.put('default', 'k', 'v'), 'UNREACHABLE', null);
    assert.equal(writeError.attempts, 3);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('contexts, quorum overrides, ttl and the token travel as the HTTP API expects', async () => {
  const sharedCluster = await startFakeCluster(['node1', 'node2'], (addresses) =>
    ringDocument(addresses, ['node1', 'node2', 'node1', 'node2'], {
      keyspaces: [{ ...DEFAULT_RING_KEYSPACE, n: 'all' }],
    }),
  );
  const client = await RingkvClient.connect({
    endpoints: sharedCluster.endpoints(),
    token: 's3cret',
    ...clientOptions,
  });
  try {
    assert.equal((await client.replicasOf('default', 'k')).length, 2); // n = all
    await client.put('default', 'k', 'v', { context: 'ctx-1', w: 'quorum', ttlMs: 5000 });
    const read = await client.get('default', 'k', { r: 2 });
    assert.match(read.context, /^context-from-node/);
    await client.delete('default', 'k', { context: read.context, w: 'all' });
    const [put, get, del] = sharedCluster.keyRequests();
    assert.equal(put!.headers['x-ringkv-context'], 'ctx-1');
    assert.equal(put!.headers.authorization, 'Bearer s3cret');
    assert.match(put!.url, /[?&]w=quorum(&|$)/);
    assert.match(put!.url, /[?&]ttlMs=5000(&|$)/);
    assert.match(get!.url, /[?&]r=2(&|$)/);
    assert.equal(del!.headers['x-ringkv-context'], read.context);
    assert.match(del!.url, /[?&]w=all(&|$)/);
    await expectError(client.get('default', 'k', { r: 0 }), 'INVALID_OPTION', null);
    await expectError(client.put('default', 'k', 'v', { ttlMs: -1 }), 'INVALID_OPTION', null);
    client.close();
    await expectError(client.get('default', 'k'), 'CLOSED', null);
  } finally {
    client.close();
    await sharedCluster.close();
  }
});
