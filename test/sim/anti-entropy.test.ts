// Anti-entropy and deletes: a replica that was down while keys were deleted, with hinted
// handoff and read repair off so that only anti-entropy can reach it, ends up holding the
// tombstones; no deleted value comes back, on any replica or through any node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/core/bytes.ts';
import type { ClientRequest } from '../../src/core/requests.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { formed, get, put, seedsFor, show, storedValue, valueOf } from './sim-helpers.ts';

function del(key: string): ClientRequest {
  return {
    op: 'write',
    keyspace: 'default',
    items: [{ key: utf8(key), mutation: { kind: 'delete' } }],
  };
}

for (const seed of seedsFor(3, 11)) {
  test(`seed ${seed}: deletes a replica missed while down reach it by anti-entropy, and the deleted values never come back`, () => {
    const world = formed(
      new ClusterWorld({ seed, nodeCount: 3, hintedHandoff: false, readRepair: false }),
    );
    const keys = Array.from({ length: 30 }, (_, i) => `d${i}`);
    for (const key of keys) assert.ok(world.call('n1', put(key, `old-${key}`)).ok);
    world.runFor(1_000);
    world.crash('n3');
    world.runFor(2_000);
    let deleted = 0;
    for (const key of keys) {
      const reply = world.call('n1', del(key));
      assert.ok(reply.ok, show(reply));
      deleted++;
    }
    assert.equal(deleted, keys.length);
    for (const key of keys) assert.equal(storedValue(world, 'n3', key), `old-${key}`);
    world.restart('n3');
    // SWIM sees n3 again, then exchanges go round every partition.
    world.runFor(20_000);
    for (const key of keys) {
      assert.equal(storedValue(world, 'n3', key), null, `${key} is deleted on n3 too`);
      for (const id of ['n1', 'n2', 'n3']) {
        assert.equal(valueOf(world.call(id, get(key, 'all'))), null, `${key} via ${id}`);
      }
    }
  });
}
