import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../../src/storage/memory/memory-storage.ts';
import { runStorageCompliance } from './compliance.ts';

runStorageCompliance('memory', () => Promise.resolve({ storage: new MemoryStorage() }));

test('memory: a value committed as a view into a larger Buffer is kept as a copy of its own', async () => {
  const slab = Buffer.alloc(64 * 1024, 5);
  const storage = new MemoryStorage();
  await storage.commit([{ key: Buffer.from('k'), value: slab.subarray(0, 10) }], {
    durable: true,
  });
  slab.fill(9);
  const kept = storage.get(Buffer.from('k'))!;
  assert.deepEqual(Buffer.from(kept), Buffer.alloc(10, 5));
  assert.equal(kept.buffer.byteLength, 10);
});
