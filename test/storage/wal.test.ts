// The write-ahead log on its own: what it gives back at open after clean closes, torn or
// corrupted frames, lost segments and reused files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { StorageWrite } from '../../src/storage/contract.ts';
import { WriteAheadLog, type WalOptions } from '../../src/storage/wal/write-ahead-log.ts';
import { SEGMENT_HEADER_BYTES } from '../../src/storage/wal/frame.ts';

const SMALL: WalOptions = { segmentBytes: 4096, sparesMax: 2 };

function batch(n: number, size = 40): StorageWrite[] {
  return [
    { key: Buffer.from(`key-${n}`), value: Buffer.alloc(size, n % 251) },
    { key: Buffer.from(`gone-${n}`), value: null },
  ];
}

/** The batch numbers of recovered batches, read back from their keys. */
function numbersOf(recovered: { writes: readonly StorageWrite[] }[]): number[] {
  return recovered.map((b) => Number(Buffer.from(b.writes[0]!.key).toString().slice(4)));
}

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-wal-'));
  try {
    await run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function appendAll(log: WriteAheadLog, from: number, to: number): Promise<void> {
  const done: Promise<void>[] = [];
  for (let n = from; n < to; n++) done.push(log.append(batch(n), n % 3 === 0).done);
  await Promise.all(done);
}

function segmentPaths(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.wal'))
    .map((name) => path.join(dir, name));
}

test('wal: batches come back at open, in order, from the sequence after the checkpoint', async () => {
  await withDir(async (dir) => {
    const { log, recovered } = await WriteAheadLog.open(dir, 0, SMALL);
    assert.deepEqual(recovered, []);
    await appendAll(log, 0, 300); // many segments of 4 KiB
    assert.equal(log.lastSeq, 300);
    await log.close();
    const all = await WriteAheadLog.open(dir, 0, SMALL);
    assert.deepEqual(numbersOf(all.recovered), [...Array(300).keys()]);
    assert.deepEqual(
      all.recovered.map((b) => b.seq),
      [...Array(300).keys()].map((n) => n + 1),
    );
    const first = all.recovered[0]!.writes;
    assert.deepEqual(first[1], { key: Buffer.from('gone-0'), value: null });
    assert.equal(Buffer.from(first[0]!.value!).length, 40);
    await all.log.close();
    const later = await WriteAheadLog.open(dir, 250, SMALL);
    assert.deepEqual(
      numbersOf(later.recovered),
      [...Array(50).keys()].map((n) => n + 250),
    );
    assert.equal(later.log.lastSeq, 300);
    await later.log.close();
  });
});

test('wal: every way a group is written (relaxed; durable after relaxed; durable after a sync) leaves its frames readable with no close', async () => {
  await withDir(async (dir) => {
    const { log } = await WriteAheadLog.open(dir, 0, SMALL);
    // One append at a time, each awaited, so each group is one frame and the order of
    // kinds is the one written: the first durable group also syncs the segment's header.
    const kinds = [true, true, false, false, true, true, false, true];
    for (let n = 0; n < 40; n++) await log.append(batch(n), kinds[n % kinds.length]!).done;
    // Not closed, as after a crash of the process: what the files hold is all there is.
    const reopened = await WriteAheadLog.open(dir, 0, SMALL);
    assert.deepEqual(numbersOf(reopened.recovered), [...Array(40).keys()]);
    await reopened.log.close();
    await log.close();
  });
});

test('wal: a durable frame asked to sync inline is written and synced before append returns, once the segment is synced; without it, only after a trip to the I/O pool', async () => {
  await withDir(async (dir) => {
    // One segment holds every frame: a new segment's first durable frame goes through the
    // pool, since it also syncs the segment's header.
    const { log } = await WriteAheadLog.open(dir, 0, { segmentBytes: 1 << 20, sparesMax: 2 });
    await log.append(batch(0), true, true).done;
    const settledWithin = async (done: Promise<void>): Promise<boolean> => {
      let settled = false;
      void done.then(() => (settled = true));
      // Microtasks only: no I/O callback can run in between.
      for (let i = 0; i < 10; i++) await Promise.resolve();
      return settled;
    };
    for (let n = 1; n < 30; n++) {
      const inline = n % 2 === 1;
      const { done } = log.append(batch(n), true, inline);
      assert.equal(await settledWithin(done), inline, `frame ${n}, inline ${inline}`);
      await done;
    }
    const reopened = await WriteAheadLog.open(dir, 0, SMALL);
    assert.deepEqual(numbersOf(reopened.recovered), [...Array(30).keys()]);
    await reopened.log.close();
    await log.close();
  });
});

test('wal: a corrupted frame ends the log there, and what came after it never returns', async () => {
  await withDir(async (dir) => {
    const { log } = await WriteAheadLog.open(dir, 0, { segmentBytes: 1 << 20, sparesMax: 2 });
    await appendAll(log, 0, 20);
    await log.close();
    const [file] = segmentPaths(dir).filter((p) => readFileSync(p).readUInt32LE(0) !== 0);
    const bytes = readFileSync(file!);
    // Frame 10 starts after 10 frames of equal size; flip a byte inside its payload.
    const frameBytes = bytes.length > 0 ? frameSize() : 0;
    bytes[SEGMENT_HEADER_BYTES + 10 * frameBytes + 30]! ^= 0xff;
    writeFileSync(file!, bytes);
    const reopened = await WriteAheadLog.open(dir, 0, { segmentBytes: 1 << 20, sparesMax: 2 });
    assert.deepEqual(numbersOf(reopened.recovered), [...Array(10).keys()]);
    // Writing goes on from sequence 11 in a new segment; frames 11.. of the old one are stale.
    assert.equal(reopened.log.lastSeq, 10);
    await appendAll(reopened.log, 100, 103);
    await reopened.log.close();
    const again = await WriteAheadLog.open(dir, 0, { segmentBytes: 1 << 20, sparesMax: 2 });
    assert.deepEqual(numbersOf(again.recovered), [...[...Array(10).keys()], 100, 101, 102]);
    await again.log.close();
  });
});

test('wal: a lost segment ends the log at the gap, and later segments are dropped', async () => {
  await withDir(async (dir) => {
    const { log } = await WriteAheadLog.open(dir, 0, SMALL);
    await appendAll(log, 0, 200);
    await log.close();
    const chain = segmentPaths(dir)
      .map((p) => ({ p, first: readFileSync(p).readUInt32LE(8) }))
      .filter((s) => readFileSync(s.p).readUInt32LE(0) !== 0)
      .sort((a, b) => a.first - b.first);
    assert.ok(chain.length >= 4, `${chain.length} segments`);
    const lost = chain[2]!;
    rmSync(lost.p);
    const reopened = await WriteAheadLog.open(dir, 0, SMALL);
    const numbers = numbersOf(reopened.recovered);
    assert.deepEqual(numbers, [...Array(lost.first - 1).keys()]);
    await appendAll(reopened.log, 500, 505);
    await reopened.log.close();
    const again = await WriteAheadLog.open(dir, 0, SMALL);
    assert.deepEqual(numbersOf(again.recovered), [...numbers, 500, 501, 502, 503, 504]);
    await again.log.close();
  });
});

test('wal: released segments are reused, and their old frames never come back', async () => {
  await withDir(async (dir) => {
    const { log } = await WriteAheadLog.open(dir, 0, SMALL);
    await appendAll(log, 0, 200);
    const chainBefore = log.files().chain.length;
    log.release(150);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(log.files().chain.length < chainBefore);
    assert.ok(log.files().spares.length > 0);
    // Fill the spares with new frames, then read back from the checkpoint at 150.
    await appendAll(log, 200, 400);
    const { chain } = log.files();
    await log.close();
    // The chain, the spares, and at most one spare being made: nothing piles up.
    const files = segmentPaths(dir).length;
    assert.ok(files <= chain.length + SMALL.sparesMax + 1, `${files} files kept`);
    const reopened = await WriteAheadLog.open(dir, 150, SMALL);
    assert.deepEqual(
      numbersOf(reopened.recovered),
      [...Array(250).keys()].map((n) => n + 150),
    );
    await reopened.log.close();
  });
});

test('wal: a frame larger than a segment gets a segment to itself', async () => {
  await withDir(async (dir) => {
    const { log } = await WriteAheadLog.open(dir, 0, SMALL);
    await log.append(batch(0), true).done;
    await log.append(batch(1, 20_000), true).done;
    await log.append(batch(2), true).done;
    await log.close();
    const reopened = await WriteAheadLog.open(dir, 0, SMALL);
    assert.deepEqual(numbersOf(reopened.recovered), [0, 1, 2]);
    assert.equal(Buffer.from(reopened.recovered[1]!.writes[0]!.value!).length, 20_000);
    await reopened.log.close();
  });
});

test('wal: a log cut at any byte gives back a prefix of what was appended', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      async (sizes, cutAt) => {
        await withDir(async (dir) => {
          const { log } = await WriteAheadLog.open(dir, 0, { segmentBytes: 2048, sparesMax: 1 });
          await Promise.all(sizes.map((size, n) => log.append(batch(n, size), false).done));
          await log.close();
          // Cut the newest segment short, as a crash of the machine might.
          const newest = segmentPaths(dir)
            .map((p) => ({ p, bytes: readFileSync(p) }))
            .filter((s) => s.bytes.readUInt32LE(0) !== 0)
            .sort((a, b) => b.bytes.readUInt32LE(8) - a.bytes.readUInt32LE(8))[0]!;
          truncateSync(newest.p, Math.floor(newest.bytes.length * cutAt));
          const reopened = await WriteAheadLog.open(dir, 0, { segmentBytes: 2048, sparesMax: 1 });
          const numbers = numbersOf(reopened.recovered);
          assert.deepEqual(numbers, [...Array(numbers.length).keys()]);
          for (const recoveredBatch of reopened.recovered) {
            const n = Number(Buffer.from(recoveredBatch.writes[0]!.key).toString().slice(4));
            assert.equal(recoveredBatch.writes[0]!.value!.length, sizes[n]);
          }
          await reopened.log.close();
        });
      },
    ),
    { numRuns: 60, seed: 0x5eed },
  );
});

/** Bytes of one frame of batch(n) with the default size and a one- or two-digit n. */
function frameSize(): number {
  // 16 header + 4 count + (8 + 5 + 40) + (8 + 6): keys "key-n" and "gone-n" with one digit.
  return 16 + 4 + 8 + 'key-0'.length + 40 + 8 + 'gone-0'.length;
}
