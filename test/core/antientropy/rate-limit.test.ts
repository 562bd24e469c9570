// The token bucket that paces repairs: the rate holds over time, the burst caps savings, a
// take at nextAvailableMs succeeds, a clock that steps back grants nothing, and a rate of 0
// pauses. Time is a plain number handed in; nothing sleeps. Replay a property failure with
// RATE_PROPERTY_SEED=<seed>.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TokenBucket } from '../../../src/core/antientropy/rate-limit.ts';

function seeded(numRuns: number): fc.Parameters<unknown> {
  return { seed: Number(process.env['RATE_PROPERTY_SEED'] ?? 20240614), numRuns };
}

test('the bucket starts full and then grants at the rate', () => {
  const bucket = new TokenBucket({ ratePerSecond: 100, burst: 10, nowMs: 0 });
  for (let i = 0; i < 10; i++) assert.ok(bucket.take(1, 0), `burst token ${i}`);
  assert.equal(bucket.take(1, 0), false);
  assert.equal(bucket.nextAvailableMs(1, 0), 10);
  assert.equal(bucket.take(1, 9), false);
  assert.ok(bucket.take(1, 10));
  // Idle for a minute saves no more than the burst.
  assert.equal(bucket.available(60_000), 10);
});

test('over any run of takes, what is granted never exceeds burst + rate × time', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 10_000 }),
      fc.integer({ min: 1, max: 1000 }),
      fc.array(
        fc.record({ advanceMs: fc.nat({ max: 50 }), cost: fc.integer({ min: 0, max: 200 }) }),
        {
          maxLength: 300,
          size: 'max',
        },
      ),
      (ratePerSecond, burst, takes) => {
        const bucket = new TokenBucket({ ratePerSecond, burst, nowMs: 0 });
        let nowMs = 0;
        let granted = 0;
        for (const { advanceMs, cost } of takes) {
          nowMs += advanceMs;
          if (bucket.take(cost, nowMs)) granted += cost;
        }
        // A cost over the burst may be granted once the bucket is full, so allow one of them.
        const largest = Math.max(0, ...takes.map((t) => t.cost));
        const bound = burst + (ratePerSecond * nowMs) / 1000 + Math.max(0, largest - burst);
        assert.ok(granted <= bound + 1e-6, `granted ${granted} over ${bound}`);
      },
    ),
    seeded(300),
  );
});

test('a take at nextAvailableMs succeeds, and none before it does', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 5000 }),
      fc.integer({ min: 1, max: 500 }),
      fc.array(fc.integer({ min: 1, max: 800 }), { minLength: 1, maxLength: 50 }),
      (ratePerSecond, burst, costs) => {
        const bucket = new TokenBucket({ ratePerSecond, burst, nowMs: 1000 });
        let nowMs = 1000;
        for (const cost of costs) {
          const readyMs = bucket.nextAvailableMs(cost, nowMs);
          assert.ok(readyMs >= nowMs);
          if (readyMs > nowMs + 1e-3) assert.equal(bucket.take(cost, nowMs), false);
          nowMs = readyMs;
          assert.ok(bucket.take(cost, nowMs), `cost ${cost} at ${nowMs}`);
        }
      },
    ),
    seeded(300),
  );
});

test('a cost over the burst is granted once the bucket is full, leaving a debt repaid at the rate', () => {
  const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 100, nowMs: 0 });
  assert.ok(bucket.take(500, 0));
  assert.equal(bucket.available(0), -400);
  assert.equal(bucket.nextAvailableMs(1, 0), 401);
  assert.equal(bucket.take(1, 400), false);
  assert.ok(bucket.take(1, 401));
});

test('a clock that steps back grants nothing until it passes the latest time seen', () => {
  const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 5, nowMs: 10_000 });
  assert.ok(bucket.take(5, 10_000));
  assert.equal(bucket.take(1, 0), false);
  assert.equal(bucket.available(5000), 0);
  assert.equal(bucket.nextAvailableMs(1, 5000), 10_001);
  assert.ok(bucket.take(1, 10_001));
});

test('a rate of 0 pauses, and setRate resumes from the tokens saved so far', () => {
  const bucket = new TokenBucket({ ratePerSecond: 10, burst: 4, nowMs: 0 });
  assert.ok(bucket.take(4, 0));
  bucket.setRate(0, 200); // 2 tokens accrued by now at the old rate
  assert.equal(bucket.available(100_000), 2);
  assert.ok(bucket.take(2, 100_000));
  assert.equal(bucket.take(1, 200_000), false);
  assert.equal(bucket.nextAvailableMs(1, 200_000), Infinity);
  bucket.setRate(1000, 200_000, 50);
  assert.equal(bucket.nextAvailableMs(10, 200_000), 200_010);
  assert.equal(bucket.burst, 50);
  assert.equal(bucket.ratePerSecond, 1000);
  assert.equal(bucket.available(300_000), 50);
});

test('bad rates, bursts and costs are refused', () => {
  assert.throws(() => new TokenBucket({ ratePerSecond: -1, burst: 1, nowMs: 0 }), /rate/);
  assert.throws(() => new TokenBucket({ ratePerSecond: 1, burst: 0, nowMs: 0 }), /burst/);
  assert.throws(() => new TokenBucket({ ratePerSecond: NaN, burst: 1, nowMs: 0 }), /rate/);
  const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1, nowMs: 0 });
  assert.throws(() => bucket.take(-1, 0), /cost/);
  assert.throws(() => bucket.take(1, NaN), /time/);
});
