// What a store does when one of its nodes is cut off under load: a steady workload runs, one
// node is cut (the caller says how: a kill -9, say) after `beforeMs`, and the load goes on
// for `afterMs`. The figure is the longest silence in that window: the longest interval,
// from the cut to `afterMs` after it, in which no request completed successfully. Failed
// requests do not end a silence; the store answered nothing useful. For comparison, the
// longest silence of the steady load before the cut is measured the same way (after a
// warm-up): a store with no gap shows no longer a silence after the cut than before it.
//
// Rules it keeps: times are the load generator's `performance.now()`, taken as each request
// completes, so the cut and the completions are on one clock; the window's two ends count as
// the bounds of a silence, so a store that never answers again is silent to the window's end.
//
// The longest silence of a whole window after the cut is often nowhere near the cut: the
// surviving nodes carry more load, and any stall in those seconds counts. What the cut itself
// costs is the silence of the second that follows it, set against the same second-long
// slices of the steady load before it (the longest silence of each).

import { performance } from 'node:perf_hooks';
import { assert } from '../core/bytes.ts';
import { runLoad } from './run-load.ts';
import type { LoadTarget } from './targets/target.ts';
import type { WorkloadSpec } from './workload.ts';

/** The load runs this long past the window, so that requests issued in it can complete. */
const TAIL_MS = 500;
/** The slice the cut's own cost is measured in, and the steady load is cut into to compare. */
const SLICE_MS = 1_000;

export interface Silence {
  /** When it began and ended, on the clock of the times given. */
  readonly startMs: number;
  readonly endMs: number;
  readonly lengthMs: number;
}

/**
 * The longest interval within [fromMs, toMs] that holds no success time strictly inside it.
 * `successesMs` need not be sorted; times outside the window are ignored.
 */
export function longestSilence(
  successesMs: readonly number[],
  fromMs: number,
  toMs: number,
): Silence {
  assert(Number.isFinite(fromMs) && Number.isFinite(toMs), 'a window has finite ends');
  assert(fromMs <= toMs, 'a window ends after it starts');
  const inside = successesMs.filter((atMs) => atMs > fromMs && atMs < toMs).sort((a, b) => a - b);
  let best: Silence = { startMs: fromMs, endMs: fromMs, lengthMs: 0 };
  let previousMs = fromMs;
  for (const atMs of [...inside, toMs]) {
    if (atMs - previousMs > best.lengthMs) {
      best = { startMs: previousMs, endMs: atMs, lengthMs: atMs - previousMs };
    }
    previousMs = atMs;
  }
  assert(best.lengthMs >= 0 && best.lengthMs <= toMs - fromMs, 'a silence fits its window');
  return best;
}

export interface OutageOptions {
  /** The steady load, run for a duration; puts are the usual choice. */
  readonly workload: WorkloadSpec;
  readonly concurrency: number;
  /** Load before the cut, the warm-up included. */
  readonly beforeMs: number;
  /** The first part of the load before the cut, left out of the steady silence. */
  readonly warmupMs: number;
  /** The window measured after the cut. */
  readonly afterMs: number;
  /** Cuts one node off. It should act at once; the cut time is taken just before it runs. */
  readonly cut: () => void;
}

export interface OutageResult {
  /** The longest silence in the window, in ms. */
  readonly longestSilenceMs: number;
  /** When that silence began, in ms after the cut (0: at once). */
  readonly silenceStartMs: number;
  /** The longest silence in the first second after the cut: what the cut itself costs. */
  readonly cutSecondSilenceMs: number;
  /** The longest silence of each whole second of the steady load, in order. */
  readonly steadySecondSilencesMs: readonly number[];
  /** The longest silence of the steady load before the cut, from the warm-up's end. */
  readonly steadySilenceMs: number;
  /** The length of that steady window, in ms. */
  readonly steadyWindowMs: number;
  /** Successful requests per second before the cut and in the window after it. */
  readonly opsPerSecondBefore: number;
  readonly opsPerSecondAfter: number;
  /** Requests that failed in the window. */
  readonly failuresAfter: number;
  /** Every failure of the run by kind, with one message each. */
  readonly errors: Readonly<Record<string, number>>;
  readonly errorExamples: Readonly<Record<string, string>>;
}

export async function measureOutage(
  target: LoadTarget,
  options: OutageOptions,
): Promise<OutageResult> {
  assert(options.beforeMs > 0 && options.afterMs > 0, 'load runs before and after the cut');
  assert(options.warmupMs >= 0 && options.warmupMs < options.beforeMs, 'warm-up before the cut');
  const successesMs: number[] = [];
  const failuresMs: number[] = [];
  let cutAtMs: number | null = null;
  const startedMs = performance.now();
  const timer = setTimeout(() => {
    cutAtMs = performance.now();
    options.cut();
  }, options.beforeMs);
  let result;
  try {
    result = await runLoad(target, {
      workload: options.workload,
      concurrency: options.concurrency,
      durationMs: options.beforeMs + options.afterMs + TAIL_MS,
      loadPhase: false,
      onCompletion: (succeeded, atMs) => (succeeded ? successesMs : failuresMs).push(atMs),
    });
  } finally {
    clearTimeout(timer);
  }
  if (cutAtMs === null) throw new Error('the load ended before the cut');
  const cutMs: number = cutAtMs;
  const windowEndMs = cutMs + options.afterMs;
  const silence = longestSilence(successesMs, cutMs, windowEndMs);
  const steadyFromMs = Math.min(startedMs + options.warmupMs, cutMs);
  const steady = longestSilence(successesMs, steadyFromMs, cutMs);
  const steadySecondSilencesMs: number[] = [];
  for (let fromMs = steadyFromMs; fromMs + SLICE_MS <= cutMs; fromMs += SLICE_MS) {
    steadySecondSilencesMs.push(longestSilence(successesMs, fromMs, fromMs + SLICE_MS).lengthMs);
  }
  const countIn = (times: number[], fromMs: number, toMs: number): number =>
    times.filter((atMs) => atMs >= fromMs && atMs < toMs).length;
  return {
    longestSilenceMs: silence.lengthMs,
    silenceStartMs: silence.startMs - cutMs,
    cutSecondSilenceMs: longestSilence(successesMs, cutMs, Math.min(cutMs + SLICE_MS, windowEndMs))
      .lengthMs,
    steadySecondSilencesMs,
    steadySilenceMs: steady.lengthMs,
    steadyWindowMs: cutMs - steadyFromMs,
    opsPerSecondBefore: (countIn(successesMs, startedMs, cutMs) * 1000) / (cutMs - startedMs),
    opsPerSecondAfter: (countIn(successesMs, cutMs, windowEndMs) * 1000) / options.afterMs,
    failuresAfter: countIn(failuresMs, cutMs, windowEndMs),
    errors: result.errors,
    errorExamples: result.errorExamples,
  };
}
