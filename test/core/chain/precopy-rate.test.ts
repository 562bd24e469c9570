// A chain pre-copy keeps the node's handoff rate limit and pause (docs/CHAIN.md,
// "Membership changes"): n2 pre-copies a partition of 200 records of 1 KB from the tail n1
// over the hand-driven network (replies arrive within the tick that asked), in chunks of
// four records, and what it receives is measured in virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foundingChainConfig } from '../../../src/core/chain/chain-config.ts';
import { Harness, PARTITION, put } from './harness.ts';

const RECORDS = 200;
const VALUE_BYTES = 1_000;
const CHUNK_RECORDS = 4;

function loaded(): Harness {
  const harness = new Harness(['n0', 'n1', 'n2'], ['n0', 'n1'], {
    limits: { recordsPerChunkMax: CHUNK_RECORDS },
  });
  harness.advance(300);
  for (let index = 0; index < RECORDS; index++) {
    harness.write('c0', put(`k${String(index).padStart(3, '0')}`, 'x'.repeat(VALUE_BYTES)));
    harness.settle();
  }
  return harness;
}

function startPrecopy(harness: Harness): void {
  const founding = foundingChainConfig(PARTITION, ['n0', 'n1']);
  harness.collect('n2', harness.replica('n2').precopy(founding, harness.nowMs));
  harness.settle();
}

test('a paused pre-copy asks for no chunk, and finishes its pass once resumed', () => {
  const harness = loaded();
  const copier = harness.replica('n2');
  copier.setPrecopyPaused(true);
  startPrecopy(harness);
  harness.advance(5_000);
  assert.equal(copier.precopyBytesReceived, 0, 'nothing copied while paused');
  assert.equal(copier.counters.precopyPasses, 0);

  // Limited, so that the pass is still under way when paused again.
  copier.setPrecopyRate(8_000);
  copier.setPrecopyPaused(false);
  harness.advance(1_000);
  const moved = copier.precopyBytesReceived;
  assert.ok(moved > 0, 'resumed, it copies');
  copier.setPrecopyPaused(true);
  harness.advance(5_000);
  // Replies arrive within the tick that asked: nothing asked before the pause is on its way.
  assert.ok(copier.precopyBytesReceived === moved, 'paused again: no chunk asked for');
  assert.equal(copier.counters.precopyPasses, 0);

  copier.setPrecopyRate(0);
  copier.setPrecopyPaused(false);
  harness.advance(1_000);
  assert.ok(copier.counters.precopyPasses >= 1, 'a resumed pre-copy finishes its pass');
  assert.equal(copier.localRecords().length, RECORDS);
});

// The limit is 8,000 B/s for 10 s of virtual time, against 200 KB to copy. Upper bound:
// limit × time plus one chunk (4 KB): a chunk is charged when it arrives, so the first one
// goes at once. Lower bound: 90 %: ticks every 10 ms ask for a chunk up to 10 ms after it is
// due, against a slot of 500 ms (4 KB at 8 KB/s), which loses at most 2 %.
test('a pre-copy under a rate limit receives about limit × time bytes, and an unlimited one breaks that bound', () => {
  const limit = 8_000;
  const harness = loaded();
  const copier = harness.replica('n2');
  copier.setPrecopyRate(limit);
  startPrecopy(harness);
  harness.advance(10_000);
  const chunkBytes = CHUNK_RECORDS * (VALUE_BYTES + 4);
  const expected = limit * 10;
  const moved = copier.precopyBytesReceived;
  assert.ok(
    moved <= expected + chunkBytes,
    `received ${moved} B, at most ${expected + chunkBytes}`,
  );
  assert.ok(moved >= 0.9 * expected, `received ${moved} B, at least ${0.9 * expected}`);
  assert.equal(copier.counters.precopyPasses, 0, 'the pass is not over yet');

  // Negative control: unlimited, the same 10 s bring the whole partition, far past the bound.
  const free = loaded();
  startPrecopy(free);
  free.advance(10_000);
  assert.ok(free.replica('n2').precopyBytesReceived > expected + chunkBytes);
  assert.ok(free.replica('n2').counters.precopyPasses >= 1);
});
