// The replica store's part in tombstone purges: a row goes only while it is exactly the
// tombstone named (a write since keeps it), the anti-entropy tree is told, the sweep's pages
// see rows as written last, and hints are found by key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { DEFAULT_LIMITS } from '../../../src/core/limits.ts';
import { partitionOf } from '../../../src/core/ring/partition.ts';
import { dataKey } from '../../../src/core/store/layout.ts';
import { ReplicaStore } from '../../../src/core/store/replica-store.ts';
import type { StoredRecord } from '../../../src/core/store/record.ts';
import { MemoryStorage } from '../../../src/storage/memory/memory-storage.ts';
import { oldValue, tombstone } from './harness.ts';

const PARTITIONS = 16;
const KEY = utf8('k');
const PARTITION = partitionOf(DEFAULT_KEYSPACE.id, KEY, PARTITIONS);

function storeWith(records: readonly [Uint8Array, StoredRecord][]): {
  store: ReplicaStore;
  storage: MemoryStorage;
  stage: () => void;
  flush: () => void;
} {
  const storage = new MemoryStorage();
  const store = new ReplicaStore('a', DEFAULT_LIMITS, PARTITIONS, storage);
  let staged: number[] = [];
  /** What a shell does as a step returns: the new batches become readable. */
  const stage = (): void => {
    for (const persist of store.drainPersists()) {
      storage.stage(persist.writes);
      staged.push(persist.batchId);
    }
  };
  /** Stages, commits and reports persisted every batch so far. */
  const flush = (): void => {
    stage();
    void storage.commit([], { durable: true });
    for (const batchId of staged) store.persisted(batchId);
    staged = [];
  };
  for (const [key, record] of records) {
    store.mergeRecord(DEFAULT_KEYSPACE, key, record, 0);
    stage();
  }
  flush();
  return { store, storage, stage, flush };
}

test('a purge removes the row only while it is exactly the tombstone named, and tells the tree', () => {
  const { store, storage, stage, flush } = storeWith([[KEY, tombstone()]]);
  const changes: (StoredRecord | undefined)[] = [];
  store.onDataChange = (_key, _before, after) => changes.push(after);
  assert.equal(store.purgeIfEqual(DEFAULT_KEYSPACE.id, KEY, tombstone('a', 3)), false);
  assert.equal(store.purgeIfEqual(DEFAULT_KEYSPACE.id, KEY, tombstone()), true);
  stage();
  assert.deepEqual(changes, [undefined]);
  assert.equal(store.readRecord(DEFAULT_KEYSPACE, KEY).ok, true);
  assert.equal(
    store.partitionRecordsAfter(0, PARTITION, null, 10).records.length,
    0,
    'pending removal',
  );
  flush();
  assert.equal(storage.get(dataKey(0, PARTITION, KEY)), undefined, 'the row is gone from storage');
  assert.equal(store.purgeIfEqual(DEFAULT_KEYSPACE.id, KEY, tombstone()), false, 'already gone');
});

test('a write that came after the tombstone keeps the row', () => {
  const { store, stage } = storeWith([[KEY, tombstone()]]);
  const write = store.write(
    DEFAULT_KEYSPACE,
    [
      {
        key: KEY,
        mutation: {
          kind: 'set',
          value: utf8('new'),
          condition: 'always',
          expiry: { kind: 'none' },
        },
      },
    ],
    2_000_000,
  );
  assert.ok(write.ok);
  stage();
  assert.equal(store.purgeIfEqual(DEFAULT_KEYSPACE.id, KEY, tombstone()), false);
  const held = store.readRecord(DEFAULT_KEYSPACE, KEY);
  assert.ok(
    held.ok && held.value !== undefined && held.value.siblings.some((s) => s.value !== null),
  );
});

test('sweep pages follow the key order with a cursor, and hints are found by key', () => {
  const keys = Array.from({ length: 40 }, (_, i) => utf8(`key-${String(i).padStart(2, '0')}`));
  const inPartition = keys.filter((key) => partitionOf(0, key, PARTITIONS) === PARTITION);
  const { store, stage } = storeWith([
    ...keys.map((key) => [key, oldValue()] as [Uint8Array, StoredRecord]),
    [KEY, tombstone()],
  ]);
  const seen: string[] = [];
  let after: Uint8Array | null = null;
  for (;;) {
    const page = store.partitionRecordsAfter(0, PARTITION, after, 2);
    seen.push(...page.records.map(({ key }) => String.fromCharCode(...key)));
    if (!page.more) break;
    after = page.lastKey;
  }
  const expected = [...inPartition, KEY].map((key) => String.fromCharCode(...key)).sort();
  assert.deepEqual(seen, expected);
  assert.equal(store.holdsHintFor(['b'], 0, KEY), false);
  const hinted = store.mergeHint('b', DEFAULT_KEYSPACE, KEY, oldValue(), 100, 0);
  assert.ok(hinted.ok);
  stage();
  assert.equal(store.holdsHintFor(['c'], 0, KEY), false, 'a hint for another owner');
  assert.equal(store.holdsHintFor(['c', 'b'], 0, KEY), true);
});
