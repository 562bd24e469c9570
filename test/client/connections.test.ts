// The client's connection pool against the fake cluster: connections are kept alive and
// reused, never more than socketsPerNodeMax to one node however many requests are in
// flight, a request waiting for a connection is held to its deadline, and close() leaves
// no connection open once the requests in flight are done.

import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { RingkvClient, RingkvError } from '../../src/client/index.ts';
import { ringDocument, startFakeCluster, type FakeCluster } from './fake-cluster.ts';

const clientOptions = { timeoutMs: 300, retries: 0, backoffMs: 1, refreshRingMs: 0 };

/** Counts the connections a fake node accepts and how many are open. */
function watchConnections(
  cluster: FakeCluster,
  nodeId: string,
): { accepted: number; open: number } {
  const counts = { accepted: 0, open: 0 };
  cluster.node(nodeId).server.on('connection', (socket: Socket) => {
    counts.accepted++;
    counts.open++;
    socket.once('close', () => counts.open--);
  });
  return counts;
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function oneNodeCluster(): Promise<FakeCluster> {
  return startFakeCluster(['node1'], (addresses) =>
    ringDocument(addresses, Array<string>(8).fill('node1')),
  );
}

test('concurrent requests share at most socketsPerNodeMax kept-alive connections per node', async () => {
  const cluster = await oneNodeCluster();
  const connections = watchConnections(cluster, 'node1');
  const client = await RingkvClient.connect({
    endpoints: cluster.endpoints(),
    ...clientOptions,
    socketsPerNodeMax: 3,
  });
  try {
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, index) =>
          client.put('default', `key-${round}-${index}`, `value-${index}`),
        ),
      );
    }
    const reads = await Promise.all(
      Array.from({ length: 20 }, (_, index) => client.get('default', `key-3-${index}`)),
    );
    reads.forEach((read, index) => {
      assert.equal(new TextDecoder().decode(read.value!), `value-${index}`);
    });
    assert.equal(cluster.keyRequests().length, 100);
    // The ring fetch's connection is reused too, so the pool never grows past its bound.
    assert.ok(connections.accepted >= 1 && connections.accepted <= 3, `${connections.accepted}`);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('a request queued behind a hung one fails at its own deadline, and a write says UNKNOWN_OUTCOME', async () => {
  const cluster = await oneNodeCluster();
  const client = await RingkvClient.connect({
    endpoints: cluster.endpoints(),
    ...clientOptions,
    socketsPerNodeMax: 1,
  });
  try {
    cluster.node('node1').behaviour = { kind: 'hang' };
    const startedMs = Date.now();
    const outcomes = await Promise.allSettled([
      client.get('default', 'first'),
      client.put('default', 'second', 'v'),
    ]);
    const codes = outcomes.map((outcome) =>
      outcome.status === 'rejected' && outcome.reason instanceof RingkvError
        ? outcome.reason.code
        : outcome.status,
    );
    assert.deepEqual(codes, ['TIMEOUT', 'UNKNOWN_OUTCOME']);
    // Both deadlines ran together, not one after the other.
    assert.ok(Date.now() - startedMs < 2 * clientOptions.timeoutMs + 250);
  } finally {
    client.close();
    await cluster.close();
  }
});

test('close() closes the kept-alive connections once the requests in flight are answered', async () => {
  const cluster = await oneNodeCluster();
  const connections = watchConnections(cluster, 'node1');
  const client = await RingkvClient.connect({ endpoints: cluster.endpoints(), ...clientOptions });
  try {
    await client.put('default', 'k', 'v');
    assert.ok(connections.open >= 1);
    const inFlight = client.get('default', 'k');
    client.close();
    // The request sent before close() is still answered.
    assert.equal(new TextDecoder().decode((await inFlight).value!), 'v');
    await waitFor(() => connections.open === 0, 'every connection is closed');
  } finally {
    client.close();
    await cluster.close();
  }
});
