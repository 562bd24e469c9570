// The outage measure: the longest silence in a window agrees with a brute-force reference on
// random completion times (fast-check; replay: OUTAGE_TEST_SEED=<seed>), and measureOutage
// finds the pause of a store that stops answering when it is cut, and none in one that
// keeps answering, in the second after the cut as over the window. The second part runs on
// real time, about two seconds in all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { longestSilence, measureOutage } from '../../src/loadgen/outage.ts';
import type { LoadTarget } from '../../src/loadgen/targets/target.ts';
import type { WorkloadSpec } from '../../src/loadgen/workload.ts';

const SEED = Number(process.env.OUTAGE_TEST_SEED ?? 2718);

/** Every pair of fence posts (window ends and times inside) with nothing strictly between. */
function bruteForceSilence(times: number[], fromMs: number, toMs: number): number {
  const posts = [fromMs, toMs, ...times.filter((atMs) => atMs > fromMs && atMs < toMs)];
  let best = 0;
  for (const start of posts) {
    for (const end of posts) {
      if (end < start) continue;
      if (times.some((atMs) => atMs > start && atMs < end)) continue;
      best = Math.max(best, end - start);
    }
  }
  return best;
}

test('the longest silence agrees with a brute-force search over every pair of completions', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -50, max: 1050 }), { maxLength: 30 }),
      fc.integer({ min: 0, max: 500 }),
      fc.integer({ min: 0, max: 500 }),
      (times, fromMs, lengthMs) => {
        const toMs = fromMs + lengthMs;
        const silence = longestSilence(times, fromMs, toMs);
        assert.equal(silence.lengthMs, bruteForceSilence(times, fromMs, toMs));
        assert.equal(silence.endMs - silence.startMs, silence.lengthMs);
        assert.ok(silence.startMs >= fromMs && silence.endMs <= toMs);
        assert.ok(!times.some((atMs) => atMs > silence.startMs && atMs < silence.endMs));
      },
    ),
    { seed: SEED, numRuns: 500 },
  );
  assert.deepEqual(longestSilence([], 10, 30), { startMs: 10, endMs: 30, lengthMs: 20 });
});

const PUTS: WorkloadSpec = {
  name: 'puts',
  keyCount: 100,
  distribution: 'uniform',
  valueBytes: 8,
  seed: SEED,
};

/** Answers after a millisecond, or holds every request until `resumeAtMs` once it is cut. */
class PausingTarget implements LoadTarget {
  readonly name = 'pausing';
  resumeAtMs = 0;
  private async answer(): Promise<void> {
    const waitMs = Math.max(1, this.resumeAtMs - performance.now());
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
  async get(): Promise<Uint8Array | null> {
    await this.answer();
    return null;
  }
  async put(): Promise<void> {
    await this.answer();
  }
  async close(): Promise<void> {}
}

test('a store that stops answering for 300 ms when cut shows a silence of about 300 ms, one that does not shows none', async () => {
  const pausing = new PausingTarget();
  const paused = await measureOutage(pausing, {
    workload: PUTS,
    concurrency: 8,
    beforeMs: 250,
    warmupMs: 50,
    afterMs: 600,
    cut: () => (pausing.resumeAtMs = performance.now() + 300),
  });
  // Timers fire late, never early: at least the pause; the bound above leaves room for a busy machine.
  assert.ok(
    paused.longestSilenceMs >= 290 && paused.longestSilenceMs < 700,
    `${paused.longestSilenceMs}`,
  );
  assert.ok(paused.silenceStartMs < 20, `the silence starts at the cut: ${paused.silenceStartMs}`);
  assert.ok(paused.cutSecondSilenceMs >= 290, `the cut's second: ${paused.cutSecondSilenceMs}`);
  assert.deepEqual(paused.steadySecondSilencesMs, [], 'no whole second of steady load');
  assert.ok(paused.opsPerSecondBefore > 0 && paused.opsPerSecondAfter > 0);
  assert.equal(paused.failuresAfter, 0);
  assert.ok(paused.steadySilenceMs < 100, `steady before the cut: ${paused.steadySilenceMs}`);
  assert.ok(
    paused.steadyWindowMs >= 190 && paused.steadyWindowMs < 400,
    `${paused.steadyWindowMs}`,
  );
  const steady = new PausingTarget();
  const unaffected = await measureOutage(steady, {
    workload: PUTS,
    concurrency: 8,
    beforeMs: 1_100,
    warmupMs: 50,
    afterMs: 300,
    cut: () => {},
  });
  assert.ok(unaffected.longestSilenceMs < 250, `${unaffected.longestSilenceMs}`);
  assert.ok(unaffected.cutSecondSilenceMs < 250, `${unaffected.cutSecondSilenceMs}`);
  assert.equal(unaffected.steadySecondSilencesMs.length, 1, 'one whole second of steady load');
  assert.ok(unaffected.steadySecondSilencesMs[0]! < 250);
  assert.deepEqual(unaffected.errors, {});
});
