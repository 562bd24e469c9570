// The one compliance suite of the Storage contract (src/storage/contract.ts). Every engine
// runs it: the LMDB engine, the in-memory engine, and later the simulator's disk, so their
// behaviour cannot drift apart. Property tests compare each engine with a naive model.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareBytes, prefixEnd, utf8 } from '../../src/core/bytes.ts';
import type { Storage, StorageEntry } from '../../src/storage/contract.ts';

export interface StorageUnderTest {
  readonly storage: Storage;
  /** Closes and opens the same data again, for engines that persist. */
  readonly reopen?: () => Promise<Storage>;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const entriesHex = (entries: StorageEntry[]): string[][] =>
  entries.map((entry) => [hex(entry.key), hex(entry.value)]);

export function runStorageCompliance(name: string, open: () => Promise<StorageUnderTest>): void {
  test(`${name}: a committed write is readable, a delete removes it`, async () => {
    const { storage } = await open();
    await storage.commit([{ key: utf8('a'), value: utf8('1') }], { durable: true });
    assert.equal(Buffer.from(storage.get(utf8('a'))!).toString(), '1');
    await storage.commit([{ key: utf8('a'), value: null }], { durable: false });
    assert.equal(storage.get(utf8('a')), undefined);
    assert.equal(storage.get(utf8('never')), undefined);
    await storage.close();
  });

  test(`${name}: a staged batch is readable at once, and the next commit persists it first`, async (t) => {
    const { storage, reopen } = await open();
    storage.stage([
      { key: utf8('a'), value: utf8('staged') },
      { key: utf8('gone'), value: null },
    ]);
    assert.equal(Buffer.from(storage.get(utf8('a'))!).toString(), 'staged');
    assert.deepEqual(
      storage
        .scan({ start: utf8(''), end: null, limit: 10 })
        .map((e) => Buffer.from(e.key).toString()),
      ['a'],
    );
    storage.stage([{ key: utf8('b'), value: utf8('1') }]);
    // The commit's own writes come after the staged ones: its 'b' wins.
    await storage.commit([{ key: utf8('b'), value: utf8('2') }], { durable: true });
    assert.equal(Buffer.from(storage.get(utf8('b'))!).toString(), '2');
    storage.stage([{ key: utf8('c'), value: utf8('3') }]);
    await storage.commit([], { durable: false });
    if (reopen === undefined) {
      t.diagnostic('this engine keeps nothing across a reopen');
      await storage.close();
      return;
    }
    const reopened = await reopen();
    assert.equal(Buffer.from(reopened.get(utf8('a'))!).toString(), 'staged');
    assert.equal(Buffer.from(reopened.get(utf8('b'))!).toString(), '2');
    assert.equal(Buffer.from(reopened.get(utf8('c'))!).toString(), '3');
    await reopened.close();
  });

  test(`${name}: writes of one batch apply in order, batches in call order`, async () => {
    const { storage } = await open();
    const first = storage.commit(
      [
        { key: utf8('k'), value: utf8('first') },
        { key: utf8('k'), value: utf8('second') },
      ],
      { durable: false },
    );
    const second = storage.commit([{ key: utf8('k'), value: utf8('third') }], { durable: true });
    const third = storage.commit([{ key: utf8('k'), value: utf8('fourth') }], { durable: false });
    await Promise.all([first, second, third]);
    assert.equal(Buffer.from(storage.get(utf8('k'))!).toString(), 'fourth');
    await storage.close();
  });

  test(`${name}: binary keys with 0x00 and 0xff, empty and 16 MiB values round trip`, async () => {
    const { storage } = await open();
    const keys = [
      new Uint8Array([0]),
      new Uint8Array([0, 0]),
      new Uint8Array([0xff]),
      new Uint8Array([0xff, 0, 0xff]),
    ];
    const big = new Uint8Array(16 * 1024 * 1024).map((_, i) => i % 251);
    await storage.commit(
      [
        ...keys.map((key) => ({ key, value: key })),
        { key: utf8('empty'), value: new Uint8Array(0) },
        { key: utf8('big'), value: big },
      ],
      { durable: true },
    );
    for (const key of keys) assert.deepEqual(Buffer.from(storage.get(key)!), Buffer.from(key));
    assert.equal(storage.get(utf8('empty'))!.length, 0);
    assert.ok(Buffer.from(storage.get(utf8('big'))!).equals(Buffer.from(big)));
    await storage.close();
  });

  test(`${name}: keys up to 8 KiB plus a prefix are stored, read and scanned whole`, async () => {
    const { storage } = await open();
    const prefix = utf8('P');
    const longKeys = [1900, 1911, 1912, 4000, 8192 + 7].map((length, i) => {
      const key = new Uint8Array(length).fill(0x61 + i);
      key.set(prefix, 0);
      return key;
    });
    // Two long keys that share a long prefix and differ only at the end.
    const twinA = new Uint8Array(5000).fill(0x7a);
    twinA.set(prefix, 0);
    const twinB = twinA.slice();
    twinB[4999] = 0x79;
    const all = [...longKeys, twinA, twinB];
    await storage.commit(
      all.map((key, i) => ({ key, value: utf8(`v${i}`) })),
      { durable: true },
    );
    all.forEach((key, i) => assert.equal(Buffer.from(storage.get(key)!).toString(), `v${i}`));
    const scanned = storage.scan({ start: prefix, end: prefixEnd(prefix), limit: 100 });
    assert.deepEqual(new Set(scanned.map((entry) => hex(entry.key))), new Set(all.map(hex)));
    await storage.commit([{ key: twinA, value: null }], { durable: true });
    assert.equal(storage.get(twinA), undefined);
    assert.equal(Buffer.from(storage.get(twinB)!).toString(), 'v6');
    await storage.close();
  });

  test(`${name}: scans are ordered, bounded, prefix-limited and reversible`, async () => {
    const { storage } = await open();
    const keys = ['a', 'b', 'ba', 'bb', 'bz', 'c', 'd'].map(utf8);
    await storage.commit(
      keys.map((key) => ({ key, value: key })),
      { durable: false },
    );
    const b = utf8('b');
    const names = (entries: StorageEntry[]): string[] =>
      entries.map((e) => Buffer.from(e.key).toString());
    assert.deepEqual(names(storage.scan({ start: b, end: prefixEnd(b), limit: 10 })), [
      'b',
      'ba',
      'bb',
      'bz',
    ]);
    assert.deepEqual(names(storage.scan({ start: b, end: prefixEnd(b), limit: 2 })), ['b', 'ba']);
    assert.deepEqual(
      names(storage.scan({ start: b, end: prefixEnd(b), limit: 10, reverse: true })),
      ['bz', 'bb', 'ba', 'b'],
    );
    assert.deepEqual(names(storage.scan({ start: utf8('bb'), end: null, limit: 10 })), [
      'bb',
      'bz',
      'c',
      'd',
    ]);
    assert.deepEqual(
      names(storage.scan({ start: utf8('bb'), end: null, limit: 2, reverse: true })),
      ['d', 'c'],
    );
    assert.deepEqual(storage.scan({ start: b, end: prefixEnd(b), limit: 0 }), []);
    await storage.close();
  });

  test(`${name}: returned bytes stay valid after later writes`, async () => {
    const { storage } = await open();
    await storage.commit([{ key: utf8('k'), value: utf8('old') }], { durable: false });
    const read = storage.get(utf8('k'))!;
    const scanned = storage.scan({ start: utf8('k'), end: null, limit: 1 })[0]!;
    await storage.commit([{ key: utf8('k'), value: utf8('new') }], { durable: false });
    assert.equal(Buffer.from(read).toString(), 'old');
    assert.equal(Buffer.from(scanned.value).toString(), 'old');
    await storage.close();
  });

  test(`${name}: agrees with a naive model on random stages, commits, gets and scans`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            writes: fc.array(
              fc.record({
                key: fc.uint8Array({ minLength: 1, maxLength: 4, max: 3 }),
                value: fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null, freq: 3 }),
              }),
              { minLength: 1, maxLength: 6 },
            ),
            staged: fc.boolean(),
          }),
          { maxLength: 12 },
        ),
        fc.uint8Array({ maxLength: 3, max: 3 }),
        fc.integer({ min: 1, max: 20 }),
        fc.boolean(),
        async (batches, start, limit, reverse) => {
          const { storage } = await open();
          const model = new Map<string, Uint8Array>();
          for (const { writes: batch, staged } of batches) {
            if (staged) storage.stage(batch);
            else await storage.commit(batch, { durable: false });
            for (const write of batch) {
              if (write.value === null) model.delete(hex(write.key));
              else model.set(hex(write.key), write.value);
            }
          }
          for (const [keyHex, value] of model) {
            assert.deepEqual(
              Buffer.from(storage.get(Buffer.from(keyHex, 'hex'))!),
              Buffer.from(value),
            );
          }
          let expected = [...model.entries()]
            .map(([keyHex, value]) => ({ key: Buffer.from(keyHex, 'hex'), value }))
            .filter((entry) => compareBytes(entry.key, start) >= 0)
            .sort((x, y) => compareBytes(x.key, y.key));
          if (reverse) expected = expected.reverse();
          expected = expected.slice(0, limit);
          assert.deepEqual(
            entriesHex(storage.scan({ start, end: null, limit, reverse })),
            entriesHex(expected),
          );
          await storage.close();
        },
      ),
      { numRuns: 40 },
    );
  });

  test(`${name}: what was committed is there after reopening`, async (t) => {
    const { storage, reopen } = await open();
    if (reopen === undefined) {
      t.skip('this engine keeps nothing across a reopen');
      await storage.close();
      return;
    }
    await storage.commit([{ key: utf8('durable'), value: utf8('1') }], { durable: true });
    await storage.commit([{ key: utf8('relaxed'), value: utf8('2') }], { durable: false });
    const reopened = await reopen();
    assert.equal(Buffer.from(reopened.get(utf8('durable'))!).toString(), '1');
    assert.equal(Buffer.from(reopened.get(utf8('relaxed'))!).toString(), '2');
    await reopened.close();
  });
}
