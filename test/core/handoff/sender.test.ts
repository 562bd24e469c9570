// The sender's pages and counts against a naive reference: walking pages from the start
// yields every row once, in order, within the page bounds; counts add up to the partition;
// a row too large to travel is refused, not skipped; the rows a page reads stay near the
// rows it sends; and the storage scan sees exactly one partition, after the cursor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Prng } from '../../../src/core/prng.ts';
import { utf8 } from '../../../src/core/bytes.ts';
import { dataKey } from '../../../src/core/store/layout.ts';
import { MemoryStorage } from '../../../src/storage/memory/memory-storage.ts';
import {
  HandoffMessageType,
  isValidHandoffMessage,
  RefusalCode,
  type PageMessage,
  type PageRequestMessage,
} from '../../../src/core/handoff/messages.ts';
import {
  DEFAULT_SENDER_LIMITS,
  pageOf,
  storagePartitionScan,
  type PartitionScan,
  type SenderLimits,
} from '../../../src/core/handoff/sender.ts';
import { randomRows, recordBytes, rowsAfter, SortedRows } from './loopback.ts';

const PROPERTY_SEED = Number(process.env['HANDOFF_PROPERTY_SEED'] ?? 20250611);
const settings = (numRuns: number): fc.Parameters<unknown> => ({ seed: PROPERTY_SEED, numRuns });

function request(
  cursor: Uint8Array | null,
  keysMax: number,
  bytesMax: number,
  count: { cursor: Uint8Array | null; keysMax: number; bytesMax: number } = {
    cursor: null,
    keysMax: 0,
    bytesMax: 0,
  },
): PageRequestMessage {
  return [
    HandoffMessageType.pageRequest,
    't',
    1,
    2,
    cursor,
    keysMax,
    bytesMax,
    count.cursor,
    count.keysMax,
    count.bytesMax,
  ];
}

function asPage(reply: ReturnType<typeof pageOf>): PageMessage {
  assert.equal(reply[0], HandoffMessageType.page, 'a page, not a refusal');
  return reply as PageMessage;
}

const sizeOf = (entry: readonly [Uint8Array, Uint8Array]): number =>
  entry[0].length + entry[1].length;

const shape = fc.record({
  seed: fc.integer({ min: 0, max: 0x7fff_ffff }),
  rowCount: fc.integer({ min: 0, max: 120 }),
  valueBytesMax: fc.constantFrom(4, 100, 2_000),
  keysMax: fc.integer({ min: 1, max: 30 }),
  bytesMax: fc.integer({ min: 1, max: 8_000 }),
  senderKeysMax: fc.integer({ min: 1, max: 40 }),
});

test('pages walked from the start carry every row once, in order, each within its key and byte bounds', () => {
  fc.assert(
    fc.property(shape, ({ seed, rowCount, valueBytesMax, keysMax, bytesMax, senderKeysMax }) => {
      const rows = randomRows(new Prng(seed), rowCount, valueBytesMax);
      const limits: SenderLimits = { ...DEFAULT_SENDER_LIMITS, pageKeysMax: senderKeysMax };
      const received: Uint8Array[] = [];
      let cursor: Uint8Array | null = null;
      for (let pages = 0; pages <= rowCount + 1; pages++) {
        const reply = pageOf(rows.scan, request(cursor, keysMax, bytesMax), limits);
        assert.ok(isValidHandoffMessage(reply), 'a valid message');
        const [, transferId, echo, entries, next] = asPage(reply);
        assert.equal(transferId, 't');
        assert.equal(echo, cursor, 'the cursor echoed');
        assert.ok(entries.length <= Math.min(keysMax, senderKeysMax), 'within the key bound');
        const bytes = entries.reduce((sum, entry) => sum + sizeOf(entry), 0);
        assert.ok(entries.length <= 1 || bytes <= bytesMax, 'within the byte bound, or one row');
        const remaining = rowsAfter(rows, cursor);
        assert.ok(entries.length > 0 || remaining.length === 0, 'a row whenever one remains');
        // Stopping at the bound is greedy: the next row would not have fit.
        const following = remaining[entries.length];
        if (following !== undefined && entries.length < Math.min(keysMax, senderKeysMax)) {
          assert.ok(bytes + following.key.length + following.record.length > bytesMax);
        }
        for (const [key] of entries) received.push(key);
        if (next === null) {
          assert.equal(remaining.length, entries.length, 'the last page ends the partition');
          break;
        }
        cursor = next;
      }
      assert.deepEqual(
        received,
        rows.all().map((row) => row.key),
      );
    }),
    settings(200),
  );
});

test('counts walked from the start add up to the partition, each within its bounds', () => {
  fc.assert(
    fc.property(
      shape,
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 0, max: 20_000 }),
      ({ seed, rowCount, valueBytesMax }, countKeysMax, countBytesMax) => {
        const rows = randomRows(new Prng(seed), rowCount, valueBytesMax);
        let keys = 0;
        let bytes = 0;
        let countCursor: Uint8Array | null = null;
        for (let round = 0; round <= rowCount + 1; round++) {
          const count = { cursor: countCursor, keysMax: countKeysMax, bytesMax: countBytesMax };
          const reply = asPage(pageOf(rows.scan, request(null, 1, 1, count)));
          assert.ok(isValidHandoffMessage(reply));
          const [, , , , , echo, countedKeys, countedBytes, next] = reply;
          assert.equal(echo, countCursor);
          assert.ok(countedKeys <= countKeysMax);
          const counted = rowsAfter(rows, countCursor).slice(0, countedKeys);
          const expectedBytes = counted.reduce(
            (sum, row) => sum + row.key.length + row.record.length,
            0,
          );
          assert.equal(countedBytes, expectedBytes, 'the bytes of the rows counted');
          const lastRow = counted[counted.length - 1];
          const lastSize = lastRow === undefined ? 0 : lastRow.key.length + lastRow.record.length;
          assert.ok(
            countedKeys <= 1 || countedBytes - lastSize < countBytesMax,
            'stops at the bytes',
          );
          keys += countedKeys;
          bytes += countedBytes;
          if (next === null) break;
          countCursor = next;
        }
        assert.equal(keys, rows.size);
        assert.equal(bytes, rows.bytes);
      },
    ),
    settings(200),
  );
});

test('a request that counts nothing gets a count of nothing', () => {
  const rows = randomRows(new Prng(3), 10, 10);
  const reply = asPage(pageOf(rows.scan, request(null, 5, 1_000)));
  assert.deepEqual(reply.slice(5), [null, 0, 0, null]);
});

test('a row too large to travel is refused as the first of a page, and ends the page before it otherwise', () => {
  const rows = new SortedRows();
  rows.put(utf8('a'), recordBytes(1, new Uint8Array(10)));
  rows.put(utf8('b'), recordBytes(2, new Uint8Array(5_000)));
  rows.put(utf8('c'), recordBytes(3, new Uint8Array(10)));
  const limits = { ...DEFAULT_SENDER_LIMITS, entryBytesMax: 1_000 };
  const first = asPage(pageOf(rows.scan, request(null, 10, 100_000), limits));
  assert.equal(first[3].length, 1, 'the page stops before the large row');
  assert.deepEqual(first[4], utf8('a'));
  const refusal = pageOf(rows.scan, request(utf8('a'), 10, 100_000), limits);
  assert.deepEqual(refusal, [
    HandoffMessageType.refusal,
    't',
    utf8('a'),
    RefusalCode.recordTooLarge,
  ]);
  assert.ok(isValidHandoffMessage(refusal));
});

test('a row larger than the page bytes still goes, alone', () => {
  const rows = new SortedRows();
  rows.put(utf8('a'), recordBytes(1, new Uint8Array(5_000)));
  rows.put(utf8('b'), recordBytes(2, new Uint8Array(10)));
  const page = asPage(pageOf(rows.scan, request(null, 10, 100)));
  assert.equal(page[3].length, 1);
  assert.deepEqual(page[4], utf8('a'));
});

test('a page reads few rows past those it sends: scans start small and double', () => {
  fc.assert(
    fc.property(shape, ({ seed, rowCount, valueBytesMax, keysMax, bytesMax }) => {
      const rows = randomRows(new Prng(seed), rowCount, valueBytesMax);
      let rowsRead = 0;
      let scans = 0;
      const counting: PartitionScan = (after, limit) => {
        const found = rows.scan(after, limit);
        rowsRead += found.length;
        scans++;
        return found;
      };
      const page = asPage(pageOf(counting, request(null, keysMax, bytesMax)));
      const sent = page[3].length;
      assert.ok(rowsRead <= 2 * sent + 1, `${rowsRead} rows read for ${sent} sent`);
      assert.ok(scans <= Math.ceil(Math.log2(sent + 2)) + 1, `${scans} scans for ${sent} rows`);
    }),
    settings(200),
  );
});

test('the storage scan sees one partition of one keyspace, after the cursor, in key order', async () => {
  const storage = new MemoryStorage();
  const keys = ['a', 'b', 'b\u0000', 'ba', 'c'].map(utf8);
  const writes = [];
  for (const [index, key] of keys.entries()) {
    writes.push({ key: dataKey(1, 2, key), value: recordBytes(index + 1, key) });
    // Neighbours: the same keys in the next partition and the next keyspace.
    writes.push({ key: dataKey(1, 3, key), value: recordBytes(9, key) });
    writes.push({ key: dataKey(2, 2, key), value: recordBytes(9, key) });
  }
  writes.push({ key: dataKey(1, 1, utf8('z')), value: recordBytes(9, utf8('z')) });
  await storage.commit(writes, { durable: true });
  const scan = storagePartitionScan(storage, 1, 2);
  const names = (after: string | null, limit: number): string[] =>
    scan(after === null ? null : utf8(after), limit).map((row) =>
      new TextDecoder().decode(row.key),
    );
  assert.deepEqual(names(null, 10), ['a', 'b', 'b\u0000', 'ba', 'c']);
  assert.deepEqual(names('b', 10), ['b\u0000', 'ba', 'c'], 'strictly after the cursor');
  assert.deepEqual(names('a', 2), ['b', 'b\u0000']);
  assert.deepEqual(names('c', 10), []);
  const page = asPage(pageOf(scan, request(null, 100, 100_000)));
  assert.equal(page[3].length, 5);
  assert.equal(page[4], null);
  await storage.close();
});
