// Redis clients that send INFO as they connect (ioredis's ready check) against a cluster,
// where counting keys asks every node and answers later: every client must be answered.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { TestCluster } from './cluster-harness.ts';

let cluster: TestCluster | null = null;
after(async () => {
  await cluster?.close();
});

test('twenty ioredis clients connecting at once to a cluster node all become ready', async () => {
  cluster = await TestCluster.start({ nodeCount: 3, storage: 'memory' });
  const port = cluster.node('node1').respPort;
  const clients = Array.from(
    { length: 20 },
    () => new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 }),
  );
  try {
    await Promise.all(clients.map((client) => client.connect()));
    for (const client of clients) assert.equal(client.status, 'ready');
    const infos = await Promise.all(clients.map((client) => client.info('keyspace')));
    assert.equal(new Set(infos).size, 1, 'one shared count');
  } finally {
    for (const client of clients) client.disconnect();
  }
});
