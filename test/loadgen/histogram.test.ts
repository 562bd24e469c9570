// The histogram against the exact answer: percentiles of the sorted samples by nearest
// rank, for seeded random samples spread over many orders of magnitude.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Histogram } from '../../src/loadgen/histogram.ts';

function exactPercentile(sorted: readonly number[], percentile: number): number {
  const rank = Math.max(1, Math.ceil((percentile / 100) * sorted.length));
  return sorted[rank - 1]!;
}

const PERCENTILES = [0, 1, 25, 50, 90, 99, 99.9, 99.99, 100];

function checkAgainstSorted(values: readonly number[], histogram: Histogram): void {
  const sorted = [...values].sort((a, b) => a - b);
  for (const percentile of PERCENTILES) {
    const exact = exactPercentile(sorted, percentile);
    const reported = histogram.valueAtPercentile(percentile);
    assert.ok(reported >= exact, `p${percentile}: ${reported} below the exact ${exact}`);
    assert.ok(
      reported - exact <= exact / 1000,
      `p${percentile}: ${reported} differs from ${exact} by more than 3 significant digits`,
    );
  }
  assert.equal(histogram.maxUs, sorted.at(-1));
  assert.equal(histogram.minUs, sorted[0]);
  assert.equal(histogram.count, values.length);
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  assert.ok(Math.abs(histogram.meanUs - mean) <= mean * 1e-12);
}

const sample = fc.oneof(
  fc.integer({ min: 0, max: 3000 }),
  fc.integer({ min: 0, max: 2_000_000 }),
  fc.integer({ min: 0, max: 2 ** 36 - 1 }),
);

test('every percentile is within 3 significant digits of the exact one, never below it', () => {
  fc.assert(
    fc.property(fc.array(sample, { minLength: 1, maxLength: 2000 }), (values) => {
      const histogram = new Histogram();
      for (const value of values) histogram.record(value);
      checkAgainstSorted(values, histogram);
    }),
    { numRuns: 200 },
  );
});

test('values below 2048 microseconds are recorded exactly', () => {
  const histogram = new Histogram();
  for (let value = 0; value < 2048; value++) histogram.record(value);
  for (let value = 1; value < 2048; value++) {
    assert.equal(histogram.valueAtPercentile((value * 100) / 2048), value - 1);
  }
});

test('a merge of two histograms answers as one histogram of both sample sets', () => {
  fc.assert(
    fc.property(
      fc.array(sample, { minLength: 1, maxLength: 500 }),
      fc.array(sample, { minLength: 1, maxLength: 500 }),
      (left, right) => {
        const merged = new Histogram();
        const other = new Histogram();
        for (const value of left) merged.record(value);
        for (const value of right) other.record(value);
        merged.merge(other);
        checkAgainstSorted([...left, ...right], merged);
      },
    ),
    { numRuns: 100 },
  );
});

test('an empty histogram reports zeros, and values past the range are kept at its top', () => {
  const histogram = new Histogram();
  assert.deepEqual(histogram.summary(), {
    count: 0,
    meanUs: 0,
    minUs: 0,
    p50Us: 0,
    p99Us: 0,
    p999Us: 0,
    maxUs: 0,
  });
  histogram.record(2 ** 40);
  assert.equal(histogram.clampedCount, 1);
  assert.equal(histogram.maxUs, 2 ** 36 - 1);
  assert.throws(() => histogram.record(-1), /assertion failed/);
});
