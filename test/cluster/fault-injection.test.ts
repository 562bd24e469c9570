// Fault injection over HTTP does what DESIGN section 6 says, seen from outside the node:
// a failed node is marked down by its peers and refuses its clients; clearing the faults
// brings it back alive; cutPeers severs it from the named peer and no other; the admin
// token guards the routes. Three real node processes with fast failure detection.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { partitionOf } from '../../src/core/ring/partition.ts';
import { preferenceList } from '../../src/core/ring/preference-list.ts';
import { http, TestCluster, waitFor, type HttpAnswer } from './cluster-harness.ts';

const ADMIN_TOKEN = 'fault-test-admin-token';
const DETECTION_TIMEOUT_MS = 15_000;
const encoder = new TextEncoder();

let cluster: TestCluster;
before(async () => {
  cluster = await TestCluster.start({ nodeCount: 3, storage: 'memory', adminToken: ADMIN_TOKEN });
});
after(async () => {
  await cluster?.close();
});

function faults(
  id: string,
  method: 'GET' | 'POST' | 'DELETE',
  body?: unknown,
  token: string | null = ADMIN_TOKEN,
): Promise<HttpAnswer> {
  return http(`${cluster.node(id).httpUrl}/v1/admin/faults`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(token === null ? {} : { token }),
  });
}

function errorCode(answer: HttpAnswer): string | undefined {
  return (answer.json as { error?: { code?: string } } | undefined)?.error?.code;
}

async function waitForLiveness(observer: string, subject: string, liveness: string) {
  await waitFor(
    async () => (await cluster.livenessSeenBy(observer, subject)) === liveness,
    DETECTION_TIMEOUT_MS,
    () => `${observer} to see ${subject} ${liveness}\n${cluster.recentLogs()}`,
  );
}

/** Waits until every node sees every member alive. */
async function waitAllAlive(): Promise<void> {
  await waitFor(
    async () => {
      const views = await Promise.all(cluster.nodes.map((node) => cluster.clusterView(node.id)));
      return views.every((view) => view.members.every((member) => member.liveness === 'alive'));
    },
    DETECTION_TIMEOUT_MS,
    () => `every node to see every member alive\n${cluster.recentLogs()}`,
  );
}

/** A key of the default keyspace whose first replica (its coordinator) is `node`. */
async function keyCoordinatedBy(node: string, label: string): Promise<string> {
  const ring = await cluster.ring('node1');
  for (let index = 0; index < 10_000; index++) {
    const key = `${label}-${index}`;
    const partition = partitionOf(0, encoder.encode(key), ring.partitionCount);
    if (preferenceList(ring.owners, partition, 3)[0] === node) return key;
  }
  throw new Error(`no key coordinated by ${node}`);
}

test('the admin token guards the fault routes: 401 without it or with another, 200 with it', async () => {
  const missing = await faults('node1', 'GET', undefined, null);
  assert.equal(missing.status, 401);
  assert.equal(errorCode(missing), 'RINGKV_UNAUTHORIZED');
  assert.equal((await faults('node1', 'POST', { failed: true }, 'wrong-token')).status, 401);
  assert.equal((await faults('node1', 'DELETE', undefined, null)).status, 401);
  const shown = await faults('node1', 'GET');
  assert.equal(shown.status, 200);
  assert.deepEqual(shown.json, {
    faults: { failed: false, delayMs: 0, lossRate: 0, cutPeers: [] },
  });
  // A refused POST changed nothing.
  assert.equal(await cluster.livenessSeenBy('node2', 'node1'), 'alive');
});

test('fault settings out of range or unknown are refused with 400 and change nothing', async () => {
  for (const body of [{ lossRate: 2 }, { delayMs: -1 }, { failed: 'yes' }, { partition: 1 }]) {
    const answer = await faults('node2', 'POST', body);
    assert.equal(answer.status, 400, JSON.stringify(body));
  }
  const shown = await faults('node2', 'GET');
  assert.deepEqual(shown.json, {
    faults: { failed: false, delayMs: 0, lossRate: 0, cutPeers: [] },
  });
});

test('a failed node is marked down by its peers and refuses its clients; recovery brings it back alive', async () => {
  const failed = await faults('node3', 'POST', { failed: true });
  assert.equal(failed.status, 200);
  assert.equal((failed.json as { faults: { failed: boolean } }).faults.failed, true);

  const refused = await http(`${cluster.node('node3').httpUrl}/v1/kv/default/some-key`);
  assert.equal(refused.status, 503);
  assert.equal(errorCode(refused), 'RINGKV_UNAVAILABLE');
  const refusedWrite = await http(`${cluster.node('node3').httpUrl}/v1/kv/default/some-key`, {
    method: 'PUT',
    body: 'v',
  });
  assert.equal(refusedWrite.status, 503);

  await waitForLiveness('node1', 'node3', 'down');
  await waitForLiveness('node2', 'node3', 'down');
  // The others still serve every key between them (W=2 of the two that are up).
  const written = await http(`${cluster.node('node1').httpUrl}/v1/kv/default/while-failed?w=2`, {
    method: 'PUT',
    body: 'kept',
  });
  assert.equal(written.status, 200, written.text);

  const cleared = await faults('node3', 'DELETE');
  assert.equal(cleared.status, 200);
  assert.deepEqual(cleared.json, {
    faults: { failed: false, delayMs: 0, lossRate: 0, cutPeers: [] },
  });
  await waitForLiveness('node1', 'node3', 'alive');
  await waitForLiveness('node2', 'node3', 'alive');
  await waitAllAlive();
  const served = await http(`${cluster.node('node3').httpUrl}/v1/kv/default/while-failed`);
  assert.equal(served.status, 200);
  assert.equal(served.text, 'kept');
});

test('cutPeers severs a node from the named peer only', async () => {
  // With three nodes and N=3 every node is a replica of every key, so a write with W=3 needs
  // every coordinator to reach both others.
  const viaNode1 = await keyCoordinatedBy('node1', 'cut');
  const viaNode2 = await keyCoordinatedBy('node2', 'cut');
  const writeAll = (node: string, key: string) =>
    http(`${cluster.node(node).httpUrl}/v1/kv/default/${key}?w=3`, { method: 'PUT', body: 'v' });
  await waitAllAlive();
  await waitFor(
    async () => (await writeAll('node1', viaNode1)).status === 200,
    DETECTION_TIMEOUT_MS,
    'W=3 through node1 to succeed before the cut',
  );

  const cut = await faults('node3', 'POST', { cutPeers: ['node1'] });
  assert.equal(cut.status, 200);
  assert.deepEqual((cut.json as { faults: { cutPeers: string[] } }).faults.cutPeers, ['node1']);

  // node1's write cannot reach node3, so it cannot gather three acknowledgements.
  const severed = await writeAll('node1', viaNode1);
  assert.equal(severed.status, 503, severed.text);
  // node2 still reaches node3 (and node1): its write gathers all three.
  const through = await writeAll('node2', viaNode2);
  assert.equal(through.status, 200, through.text);
  // node3 answers its own clients; it is cut from a peer, not failed.
  assert.equal(
    (await http(`${cluster.node('node3').httpUrl}/v1/kv/default/${viaNode2}`)).status,
    200,
  );
  // node2 keeps seeing node3 alive throughout.
  assert.equal(await cluster.livenessSeenBy('node2', 'node3'), 'alive');

  assert.equal((await faults('node3', 'DELETE')).status, 200);
  await waitForLiveness('node1', 'node3', 'alive');
  await waitFor(
    async () => (await writeAll('node1', viaNode1)).status === 200,
    DETECTION_TIMEOUT_MS,
    'W=3 through node1 to succeed again after the cut is healed',
  );
});

// node3, isolated, declares node1 and node2 down by its own timers; once healed it gossips
// those updates. Peers that reach node1 and node2 directly must not take them as down.
test('a node back from isolation does not get its peers to mark a healthy node down', async () => {
  await waitAllAlive();
  assert.equal((await faults('node3', 'POST', { failed: true })).status, 200);
  // Isolated, node3 comes to believe the others down; they believe it down.
  await waitForLiveness('node3', 'node1', 'down');
  await waitForLiveness('node3', 'node2', 'down');
  await waitForLiveness('node1', 'node3', 'down');
  assert.equal((await faults('node3', 'DELETE')).status, 200);
  // node1 and node2 reached each other directly the whole time: neither may see the other
  // down while node3 rejoins.
  const falseDowns: string[] = [];
  let allAliveSinceMs: number | null = null;
  await waitFor(
    async () => {
      const views = await Promise.all(cluster.nodes.map((node) => cluster.clusterView(node.id)));
      for (const view of views) {
        for (const member of view.members) {
          if (view.node !== 'node3' && member.id !== 'node3' && member.liveness === 'down') {
            falseDowns.push(`${view.node} saw ${member.id} down`);
          }
        }
      }
      const allAlive = views.every((view) => view.members.every((m) => m.liveness === 'alive'));
      if (!allAlive) allAliveSinceMs = null;
      else allAliveSinceMs ??= Date.now();
      // Watch on for a second after all is well, for late gossip.
      return allAliveSinceMs !== null && Date.now() - allAliveSinceMs > 1000;
    },
    DETECTION_TIMEOUT_MS,
    'every node to see every member alive after node3 recovers',
  );
  assert.deepEqual([...new Set(falseDowns)], []);
});
