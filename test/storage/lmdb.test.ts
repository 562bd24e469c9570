import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_LMDB_STORAGE_OPTIONS,
  keepableWrite,
  LmdbStorage,
  type LmdbStorageOptions,
} from '../../src/storage/lmdb/lmdb-storage.ts';
import { INLINE_VALUE_BYTES_MAX } from '../../src/storage/lmdb/memtable.ts';
import { SMALL_LMDB_OPTIONS } from './fixtures/small-options.ts';
import { runStorageCompliance } from './compliance.ts';

const directories: string[] = [];
after(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

function openLmdb(options: LmdbStorageOptions) {
  return async () => {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'ringkv-lmdb-'));
    directories.push(directory);
    const storage = await LmdbStorage.open(directory, options);
    return {
      storage,
      reopen: async () => {
        await storage.close();
        return LmdbStorage.open(directory, options);
      },
    };
  };
}

/** Waits for a checkpoint's progress, which runs on its own. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, 'no checkpoint within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

runStorageCompliance('lmdb', openLmdb(DEFAULT_LMDB_STORAGE_OPTIONS));
// Tiny bounds: checkpoints and log segment changes happen inside every test.
runStorageCompliance('lmdb, checkpointing often', openLmdb(SMALL_LMDB_OPTIONS));

test('lmdb: reads between checkpoints see the newest value, never one a checkpoint replaced', async () => {
  // Reads fill the read cache from LMDB; writes land in the memtable and reach LMDB at the
  // next checkpoint, after which only the cache could still hold the old value.
  const { storage } = await openLmdb(SMALL_LMDB_OPTIONS)();
  const lmdb = storage as LmdbStorage;
  const model = new Map<string, string>();
  const random = fc.sample(fc.integer({ min: 0, max: 199 }), { numRuns: 4000, seed: 7 });
  let next = 0;
  for (let round = 0; round < 80; round++) {
    const writes = [];
    for (let i = 0; i < 20; i++) {
      const key = `k${random[next++]!}`;
      const value = `v${round}-${i}`;
      writes.push({ key: Buffer.from(key), value: Buffer.from(value) });
      model.set(key, value);
    }
    await storage.commit(writes, { durable: false });
    // Let a checkpoint that started finish, now and then.
    if (round % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < 20; i++) {
      const key = `k${random[next++]!}`;
      const found = storage.get(Buffer.from(key));
      assert.equal(
        found === undefined ? undefined : Buffer.from(found).toString(),
        model.get(key),
        key,
      );
    }
  }
  assert.ok(lmdb.stats().checkpoints >= 5, `${lmdb.stats().checkpoints} checkpoints`);
  await storage.close();
});

test('lmdb: what a checkpoint wrote is read from memory until the next one starts', async () => {
  const { storage } = await openLmdb(SMALL_LMDB_OPTIONS)();
  const lmdb = storage as LmdbStorage;
  const batch = (round: number, keys: number[]) =>
    keys.map((key) => ({ key: Buffer.from(`k${key}`), value: Buffer.from(`v${round}-${key}`) }));
  const keys = Array.from({ length: 150 }, (_, key) => key);
  // One batch past the memtable's bound: one checkpoint writes all of it.
  await storage.commit(batch(1, keys), { durable: false });
  await until(() => lmdb.stats().checkpoints === 1);
  for (const key of keys) {
    assert.equal(Buffer.from(storage.get(Buffer.from(`k${key}`))!).toString(), `v1-${key}`);
  }
  assert.equal(lmdb.stats().lmdbReads, 0, 'the last checkpoint answers for its keys');
  // The next checkpoint (of other keys) drops it: an old key is read from LMDB, once, and
  // then from the read cache.
  await storage.commit(
    batch(
      2,
      keys.map((key) => key + 1000),
    ),
    { durable: false },
  );
  await until(() => lmdb.stats().checkpoints === 2);
  for (let read = 0; read < 3; read++) {
    assert.equal(Buffer.from(storage.get(Buffer.from('k7'))!).toString(), 'v1-7');
  }
  assert.equal(lmdb.stats().lmdbReads, 1);
  await storage.close();
});

test('lmdb: checkpoints bound the memtable and the log, and lose nothing', async () => {
  const open = openLmdb(SMALL_LMDB_OPTIONS);
  const { storage, reopen } = await open();
  const lmdb = storage as LmdbStorage;
  let maxSegments = 0;
  for (let round = 0; round < 40; round++) {
    const writes = [];
    for (let i = 0; i < 50; i++) {
      const key = Buffer.from(`k${(round * 50 + i) % 700}`);
      writes.push({ key, value: i % 10 === 9 ? null : Buffer.from(`v${round}-${i}`) });
    }
    await storage.commit(writes, { durable: round % 2 === 0 });
    maxSegments = Math.max(maxSegments, lmdb.stats().logSegments);
  }
  const stats = lmdb.stats();
  assert.ok(stats.checkpoints >= 5, `${stats.checkpoints} checkpoints`);
  // The new memtable stays under twice its bound (commits wait past that), and the frozen
  // one being checkpointed held at most as much when it froze: four times the bound in all,
  // plus a batch each, whenever a checkpoint happens to be running.
  assert.ok(
    stats.memtableBytes <= 4 * SMALL_LMDB_OPTIONS.memtableBytesMax + 8192,
    `${stats.memtableBytes} bytes in memtables`,
  );
  assert.ok(maxSegments <= 12, `${maxSegments} log segments at once`);
  const expected = new Map<string, string | undefined>();
  for (let round = 0; round < 40; round++) {
    for (let i = 0; i < 50; i++) {
      expected.set(`k${(round * 50 + i) % 700}`, i % 10 === 9 ? undefined : `v${round}-${i}`);
    }
  }
  const reopened = await reopen();
  for (const [key, value] of expected) {
    const found = reopened.get(Buffer.from(key));
    assert.equal(found === undefined ? undefined : Buffer.from(found).toString(), value, key);
  }
  const scanned = reopened.scan({ start: Buffer.from('k'), end: Buffer.from('l'), limit: 10_000 });
  assert.equal(scanned.length, [...expected.values()].filter((v) => v !== undefined).length);
  await reopened.close();
});

test('lmdb: no checkpoint starts while batches are staged and not logged; the next commit starts it', async () => {
  const open = openLmdb(SMALL_LMDB_OPTIONS);
  const { storage, reopen } = await open();
  const lmdb = storage as LmdbStorage;
  const batch = (name: string, count = 50) => {
    const writes = [];
    for (let i = 0; i < count; i++)
      writes.push({ key: Buffer.from(`${name}-${i}`), value: Buffer.alloc(40, i) });
    return writes;
  };
  // A commit past the memtable's bound starts a checkpoint; batches staged while it runs
  // pass the bound again, and its end must not start the next one: that checkpoint would
  // write batches that no log frame holds, and one cut short by a crash would leave them
  // in LMDB in part.
  void storage.commit(batch('c', 200), { durable: false });
  for (let round = 0; round < 10; round++) storage.stage(batch(`s${round}`));
  assert.ok(lmdb.stats().memtableBytes > 2 * SMALL_LMDB_OPTIONS.memtableBytesMax);
  await until(() => lmdb.stats().checkpoints === 1);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(lmdb.stats().checkpoints, 1);
  await storage.commit([], { durable: true });
  await until(() => lmdb.stats().checkpoints === 2);
  const reopened = await reopen();
  const batches: [string, number][] = [['c', 200]];
  for (let round = 0; round < 10; round++) batches.push([`s${round}`, 50]);
  for (const [name, count] of batches) {
    for (let i = 0; i < count; i++) {
      assert.deepEqual(
        Buffer.from(reopened.get(Buffer.from(`${name}-${i}`))!),
        Buffer.alloc(40, i),
      );
    }
  }
  await reopened.close();
});

test('lmdb: a replayed value the memtable would keep as it is, a view into a log segment, is copied first', () => {
  const segment = Buffer.alloc(1024 * 1024, 7);
  const key = segment.subarray(0, 8);
  const small = { key, value: segment.subarray(8, 8 + INLINE_VALUE_BYTES_MAX) };
  // The memtable copies keys and small values into its arena: they pass as they are.
  assert.equal(keepableWrite(small), small);
  assert.equal(keepableWrite({ key, value: null }).value, null);
  const large = { key, value: segment.subarray(8, 9 + INLINE_VALUE_BYTES_MAX) };
  const kept = keepableWrite(large);
  assert.ok(kept.value!.buffer !== segment.buffer, 'the large value is copied');
  assert.equal(kept.value!.byteLength, INLINE_VALUE_BYTES_MAX + 1);
  assert.deepEqual(Buffer.from(kept.value!), Buffer.from(large.value));
});
