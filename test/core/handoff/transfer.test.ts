// The receiving transfer's state machine, step by step: one request outstanding, timeouts
// and backoff, stalls and source changes, stale replies, the cursor persisted only with its
// page, the bound on pages awaiting durability, pause and resume, refusals, the rate limit's
// spacing, progress and the ETA, and restoring from the saved state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../../src/core/prng.ts';
import { utf8 } from '../../../src/core/bytes.ts';
import {
  HandoffMessageType,
  RefusalCode,
  type PageMessage,
  type PageRequestMessage,
} from '../../../src/core/handoff/messages.ts';
import { pageOf, refusalOf } from '../../../src/core/handoff/sender.ts';
import {
  checkTransferConfig,
  DEFAULT_TRANSFER_CONFIG,
  PartitionTransfer,
  type TransferConfig,
} from '../../../src/core/handoff/transfer.ts';
import { decodeSavedTransfer } from '../../../src/core/handoff/state-codec.ts';
import { randomRows, recordBytes, SortedRows } from './loopback.ts';

const CONFIG: TransferConfig = {
  ...DEFAULT_TRANSFER_CONFIG,
  pageKeysMax: 2,
  requestTimeoutMs: 100,
  retryBackoffMsBase: 10,
  retryBackoffMsMax: 1_000,
  timeoutsBeforeStalled: 3,
  unpersistedPagesMax: 2,
  rateWindowMs: 1_000,
};

const IDENTITY = { transferId: 't1', keyspaceId: 1, partition: 2, source: 'a' };

/** Ten rows, keys k0..k9, each of 100 value bytes. */
function tenRows(): SortedRows {
  const rows = new SortedRows();
  for (let i = 0; i < 10; i++) rows.put(utf8(`k${i}`), recordBytes(i + 1, new Uint8Array(100)));
  return rows;
}

function start(config: TransferConfig = CONFIG): PartitionTransfer {
  return PartitionTransfer.start(IDENTITY, config, 0);
}

function answer(rows: SortedRows, request: PageRequestMessage): PageMessage {
  const reply = pageOf(rows.scan, request);
  assert.equal(reply[0], HandoffMessageType.page);
  return reply as PageMessage;
}

const text = (bytes: Uint8Array | null): string | null =>
  bytes === null ? null : new TextDecoder().decode(bytes);

test('a new transfer asks for the first page at once, and keeps at most one request outstanding', () => {
  const transfer = start();
  const request = transfer.tick(0);
  assert.ok(request !== null);
  assert.equal(request[1], 't1');
  assert.equal(request[2], 1);
  assert.equal(request[3], 2);
  assert.equal(request[4], null, 'from the start');
  assert.equal(request[5], 2);
  assert.equal(transfer.tick(1), null, 'one request outstanding');
  assert.equal(transfer.tick(99), null);
  assert.equal(transfer.wakeAtMs(), 100, 'it wakes for the timeout');
});

test('an unanswered request is sent again with the same cursor after the timeout and a doubling backoff', () => {
  const rows = tenRows();
  const transfer = start();
  const page = transfer.receivePage(answer(rows, transfer.tick(0)!), 5)!;
  assert.equal(text(page.cursor), 'k1');
  const first = transfer.tick(5)!;
  assert.equal(text(first[4]), 'k1');
  assert.equal(transfer.tick(105), null, 'timed out: backing off');
  assert.equal(transfer.wakeAtMs(), 115);
  assert.equal(transfer.tick(114), null);
  const second = transfer.tick(115)!;
  assert.deepEqual(second, first, 'the same request again');
  assert.equal(transfer.tick(215), null);
  assert.equal(transfer.tick(234), null, 'the backoff doubled to 20 ms');
  assert.ok(transfer.tick(235) !== null);
  assert.equal(transfer.counters.timeouts, 2);
  assert.equal(transfer.stalled, false);
});

test('after K failed attempts in a row the transfer is stalled; changeSource clears it and asks at once', () => {
  const rows = tenRows();
  const transfer = start();
  let now = 0;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const wake = transfer.wakeAtMs()!;
    now = wake;
    assert.ok(transfer.tick(now) !== null, `attempt ${attempt}`);
    now += 100;
    assert.equal(transfer.tick(now), null);
    assert.equal(transfer.stalled, attempt >= 3, `stalled after ${attempt}`);
  }
  transfer.changeSource('b', now);
  assert.equal(transfer.stalled, false);
  assert.equal(transfer.source, 'b');
  const request = transfer.tick(now);
  assert.ok(request !== null, 'the new source is asked at once');
  assert.ok(transfer.receivePage(answer(rows, request), now + 1) !== null);
  assert.equal(decodeSavedTransfer(transfer.saveState()).source, 'b');
});

test('replies for another transfer, for an older cursor, or repeated are stale: dropped and counted', () => {
  const rows = tenRows();
  const transfer = start();
  const request = transfer.tick(0)!;
  const reply = answer(rows, request);
  const [type, , ...rest] = reply;
  const otherTransfer: PageMessage = [type, 't2', ...rest];
  assert.equal(transfer.receivePage(otherTransfer, 1), null);
  assert.ok(transfer.receivePage(reply, 2) !== null);
  assert.equal(transfer.receivePage(reply, 3), null, 'a duplicate answers an older cursor');
  assert.equal(transfer.receivePage(refusalOf(request, RefusalCode.unavailable), 4), null);
  assert.equal(transfer.counters.staleReplies, 3);
  assert.equal(transfer.counters.pagesAccepted, 1);
  assert.equal(transfer.stalled, false, 'a stale refusal changes nothing');
});

test('the cursor is saved only with its page: a transfer restored before persisted asks that page again', () => {
  const rows = tenRows();
  const transfer = start();
  const request = transfer.tick(0)!;
  const page = transfer.receivePage(answer(rows, request), 1)!;
  assert.equal(page.pageNumber, 1);
  assert.equal(page.entries.length, 2);
  assert.equal(decodeSavedTransfer(page.savedState).keysDurable, 2);
  const before = PartitionTransfer.restore(transfer.saveState(), CONFIG, 2);
  assert.equal(before.tick(2)![4], null, 'not durable: from the start again');
  assert.throws(() => transfer.persisted(2), /order received/);
  transfer.persisted(1);
  const after = PartitionTransfer.restore(transfer.saveState(), CONFIG, 3);
  assert.equal(text(after.tick(3)![4]), 'k1', 'durable: after the page');
  assert.equal(after.progress(3).keysDurable, 2);
});

test('no more than unpersistedPagesMax pages await durability: requests wait for persisted', () => {
  const rows = tenRows();
  const transfer = start();
  transfer.receivePage(answer(rows, transfer.tick(0)!), 1);
  transfer.receivePage(answer(rows, transfer.tick(1)!), 2);
  assert.equal(transfer.tick(3), null, 'two pages await durability');
  assert.equal(transfer.wakeAtMs(), null, 'only persisted can move it on');
  transfer.persisted(1);
  const request = transfer.tick(4)!;
  assert.equal(text(request[4]), 'k3');
});

test('the last page makes the transfer done once durable, and a restored complete transfer asks nothing', () => {
  const rows = tenRows();
  const transfer = start({ ...CONFIG, pageKeysMax: 4, unpersistedPagesMax: 4 });
  const pages = [];
  for (let now = 0; pages.length < 3; now++) {
    const request = transfer.tick(now);
    if (request !== null) pages.push(transfer.receivePage(answer(rows, request), now)!);
  }
  assert.deepEqual(
    pages.map((page) => page.last),
    [false, false, true],
  );
  assert.equal(transfer.tick(100), null, 'nothing after the last page');
  assert.equal(transfer.state, 'running', 'not done before durable');
  for (const page of pages) transfer.persisted(page.pageNumber);
  assert.equal(transfer.state, 'done');
  const restored = PartitionTransfer.restore(pages[2]!.savedState, CONFIG, 200);
  assert.equal(restored.state, 'done');
  assert.equal(restored.tick(200), null);
  assert.equal(restored.progress(200).keysTotalEstimate, 10);
  assert.equal(restored.progress(200).etaMs, 0);
});

test('an empty partition is done after one empty page', () => {
  const transfer = start();
  const page = transfer.receivePage(answer(new SortedRows(), transfer.tick(0)!), 1)!;
  assert.equal(page.entries.length, 0);
  assert.equal(page.last, true);
  transfer.persisted(page.pageNumber);
  assert.equal(transfer.state, 'done');
  assert.equal(transfer.progress(2).keysTotalEstimate, 0);
});

test('pause stops requests, a reply already on its way is still taken, resume asks again at once', () => {
  const rows = tenRows();
  const transfer = start();
  const request = transfer.tick(0)!;
  transfer.pause();
  assert.equal(transfer.state, 'paused');
  assert.ok(transfer.receivePage(answer(rows, request), 5) !== null, 'the reply in flight');
  transfer.persisted(1);
  for (let now = 10; now < 60_000; now += 1_000) assert.equal(transfer.tick(now), null);
  assert.equal(transfer.wakeAtMs(), null);
  assert.equal(transfer.progress(60_000).etaMs, null, 'no ETA while paused');
  transfer.resume(60_000);
  assert.equal(transfer.state, 'running');
  assert.equal(text(transfer.tick(60_000)![4]), 'k1');
});

test('a request left unanswered across a pause is sent again on resume without counting a timeout', () => {
  const transfer = start();
  const request = transfer.tick(0)!;
  transfer.pause();
  transfer.resume(5_000);
  assert.deepEqual(transfer.tick(5_000), request);
  assert.equal(transfer.counters.timeouts, 0);
});

test('a record too large to travel fails the transfer; an unavailable source stalls it at once', () => {
  const tooLarge = start();
  tooLarge.receivePage(refusalOf(tooLarge.tick(0)!, RefusalCode.recordTooLarge), 1);
  assert.equal(tooLarge.state, 'failed');
  assert.equal(tooLarge.failure, RefusalCode.recordTooLarge);
  assert.equal(tooLarge.tick(10_000), null);

  const unavailable = start();
  unavailable.receivePage(refusalOf(unavailable.tick(0)!, RefusalCode.unavailable), 1);
  assert.equal(unavailable.state, 'running');
  assert.equal(unavailable.stalled, true);
  assert.equal(unavailable.tick(2), null, 'it backs off');
  assert.ok(unavailable.tick(11) !== null, 'and keeps asking meanwhile');
});

test('a page whose records do not decode is dropped and counts as a failed attempt', () => {
  const rows = new SortedRows();
  rows.put(utf8('a'), new Uint8Array([9, 9, 9]));
  const transfer = start({ ...CONFIG, timeoutsBeforeStalled: 1 });
  assert.equal(transfer.receivePage(answer(rows, transfer.tick(0)!), 1), null);
  assert.equal(transfer.counters.invalidReplies, 1);
  assert.equal(transfer.stalled, true);
});

test('the rate limit spaces requests by page bytes over the rate; 0 and Infinity mean unlimited', () => {
  const rows = tenRows();
  const transfer = start({ ...CONFIG, unpersistedPagesMax: 8 });
  transfer.setRate(10_000);
  const request = transfer.tick(0)!;
  assert.equal(request[6], CONFIG.pageBytesMin, 'a small page at a low rate');
  const page = transfer.receivePage(answer(rows, request), 7)!;
  let bytes = 0;
  for (const entry of page.entries) bytes += entry.key.length + entry.encodedRecord.length;
  const dueMs = (bytes * 1000) / 10_000;
  assert.equal(transfer.wakeAtMs(), dueMs, 'the slot starts when the request went out');
  assert.equal(transfer.tick(dueMs - 1), null);
  transfer.setRate(1_000);
  assert.equal(transfer.tick(dueMs), null, 'a lower rate spaces the same page further');
  transfer.setRate(0);
  assert.ok(transfer.tick(dueMs) !== null, 'unlimited');
  assert.equal(transfer.rate, Infinity);
  assert.throws(() => transfer.setRate(-1), RangeError);
  assert.throws(() => transfer.setRate(Number.NaN), RangeError);
});

test('progress: the size is known once the count reaches the end, and the ETA is what remains over the rate', () => {
  const prng = new Prng(5);
  const rows = randomRows(prng, 200, 100);
  const config = { ...CONFIG, pageKeysMax: 10, countKeysMax: 50, unpersistedPagesMax: 64 };
  const transfer = start(config);
  let now = 0;
  let progress = transfer.progress(now);
  assert.equal(progress.keysTotalEstimate, null, 'unknown before any count');
  assert.equal(progress.etaMs, null);
  // One page every 100 ms.
  while (transfer.state === 'running' && transfer.progress(now).keysReceived < 100) {
    const request = transfer.tick(now)!;
    const page = transfer.receivePage(answer(rows, request), now + 1)!;
    transfer.persisted(page.pageNumber);
    now += 100;
    progress = transfer.progress(now);
    const total = progress.keysTotalEstimate;
    if (progress.keysCounted < rows.size) assert.equal(total, null, 'a partial count is no total');
    else assert.equal(total, rows.size, 'the count is exact and known as soon as it ends');
  }
  assert.equal(progress.bytesTotalEstimate, rows.bytes);
  const remaining = rows.bytes - progress.bytesReceived;
  const expectedMs = (remaining * 1000) / progress.bytesPerSecond;
  assert.ok(progress.etaMs !== null && Math.abs(progress.etaMs - expectedMs) <= 1);
  // The measured rate is the page rate: about one tenth of the rows' bytes per second... per
  // page of 10 rows every 100 ms.
  const pageBytes = progress.bytesReceived / (progress.keysReceived / 10);
  assert.ok(Math.abs(progress.bytesPerSecond - pageBytes * 10) / (pageBytes * 10) < 0.15);
});

test('time that goes back does not move deadlines earlier or later', () => {
  const transfer = start();
  transfer.tick(1_000);
  assert.equal(transfer.tick(500), null);
  assert.equal(transfer.wakeAtMs(), 1_100);
  assert.equal(transfer.tick(1_099), null);
  assert.equal(transfer.tick(1_100), null, 'timed out at its deadline');
  assert.equal(transfer.counters.timeouts, 1);
});

test('configurations out of bounds are refused, naming the field', () => {
  assert.doesNotThrow(() => checkTransferConfig(DEFAULT_TRANSFER_CONFIG));
  const bad: [keyof TransferConfig, number][] = [
    ['pageKeysMax', 0],
    ['pageBytesMax', 1.5],
    ['pageBytesMin', DEFAULT_TRANSFER_CONFIG.pageBytesMax + 1],
    ['requestTimeoutMs', 0],
    ['retryBackoffMsMax', 1],
    ['unpersistedPagesMax', 1_000],
    ['rateWindowMs', 10],
    ['bytesPerSecondLimit', -5],
  ];
  for (const [field, value] of bad) {
    assert.throws(
      () => checkTransferConfig({ ...DEFAULT_TRANSFER_CONFIG, [field]: value }),
      new RegExp(field),
    );
  }
  assert.throws(() => PartitionTransfer.restore(new Uint8Array([7]), CONFIG, 0), /format/);
});
