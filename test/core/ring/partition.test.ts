// A key's partition is the same whether the ring computes it or the node's storage layout
// does: both take the top log2(Q) bits of the high word of the key hash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { keyHashHigh, partitionOf as hashPartitionOf } from '../../../src/core/hash.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { DEFAULT_LIMITS } from '../../../src/core/limits.ts';
import { Node } from '../../../src/core/node.ts';
import {
  isValidPartitionCount,
  partitionBitsOf,
  partitionOf,
  partitionOfHash,
} from '../../../src/core/ring/partition.ts';
import { parseDataKey, TABLE_DATA } from '../../../src/core/store/layout.ts';
import { MemoryStorage } from '../../../src/storage/memory/memory-storage.ts';
import { seeded } from './reference.ts';

const keyArbitrary = fc.uint8Array({ minLength: 1, maxLength: 40 });

/** The partition a Node files `key` under, read back from the storage key it writes. */
function nodePartitionOf(node: Node, key: Uint8Array): number {
  const effects = node.step({
    type: 'request',
    nowMs: 1_700_000_000_000,
    requestId: 1,
    request: {
      op: 'write',
      keyspace: DEFAULT_KEYSPACE.name,
      items: [
        {
          key,
          mutation: { kind: 'set', value: key, condition: 'always', expiry: { kind: 'none' } },
        },
      ],
    },
  });
  for (const effect of effects) {
    if (effect.type !== 'persist') continue;
    for (const write of effect.writes) {
      if (write.key[0] === TABLE_DATA) return parseDataKey(write.key).partition;
    }
  }
  throw new Error('the node wrote no data key');
}

test("a key's partition equals the one the node stores it under, for every partition count", () => {
  for (const partitionCount of [1, 2, 16, 256, 4096, 65536]) {
    const node = new Node(
      { nodeId: 'n1', keyspaces: [DEFAULT_KEYSPACE], limits: DEFAULT_LIMITS, partitionCount },
      new MemoryStorage(),
    );
    fc.assert(
      fc.property(keyArbitrary, (key) => {
        const partition = partitionOf(DEFAULT_KEYSPACE.id, key, partitionCount);
        assert.equal(nodePartitionOf(node, key), partition);
        assert.equal(hashPartitionOf(DEFAULT_KEYSPACE.id, key, partitionCount), partition);
      }),
      seeded(100),
    );
  }
});

test('the partition is the top log2(Q) bits of the high hash word, so partitions are contiguous arcs', () => {
  fc.assert(
    fc.property(
      fc.nat(),
      keyArbitrary,
      fc.integer({ min: 0, max: 16 }),
      (keyspaceId, key, bits) => {
        const partitionCount = 2 ** bits;
        const high = keyHashHigh(keyspaceId, key);
        const partition = partitionOf(keyspaceId, key, partitionCount);
        assert.equal(partition, Math.floor(high / 2 ** (32 - bits)));
        assert.ok(partition >= 0 && partition < partitionCount);
        assert.equal(partitionOfHash(high, partitionBitsOf(partitionCount)), partition);
      },
    ),
    seeded(500),
  );
});

test('partition counts are powers of two from 1 to 65536', () => {
  for (let bits = 0; bits <= 16; bits++) {
    assert.ok(isValidPartitionCount(2 ** bits));
    assert.equal(partitionBitsOf(2 ** bits), bits);
  }
  for (const bad of [0, 3, 100, 131072, 0.5, -2, Number.NaN]) {
    assert.ok(!isValidPartitionCount(bad), `${bad}`);
    assert.throws(() => partitionBitsOf(bad), /power of two/);
  }
});
