// The closed-loop load runner: `concurrency` workers, each with one request in flight,
// draw operations from the workload and time each one. A run stops after a total number of
// requests or after a duration, whichever it was given. Every failure is counted by kind
// (and one message kept per kind); nothing is retried or thrown away, and the run goes on.

import { performance } from 'node:perf_hooks';
import { assert } from '../core/bytes.ts';
import { Histogram, type LatencySummary } from './histogram.ts';
import type { LoadTarget } from './targets/target.ts';
import {
  keyName,
  makeValue,
  needsLoadPhase,
  OperationSource,
  type OperationKind,
  type WorkloadSpec,
} from './workload.ts';

/** Most requests in flight at once; each is a worker, so this also bounds memory. */
export const CONCURRENCY_MAX = 10_000;
/** How often progress is reported while a phase runs. */
const PROGRESS_PERIOD_MS = 250;

export interface Progress {
  readonly phase: 'load' | 'run';
  readonly done: number;
  /** The number of operations the phase will do, or null when it runs for a duration. */
  readonly total: number | null;
  readonly elapsedMs: number;
}

export interface LoadOptions {
  readonly workload: WorkloadSpec;
  readonly concurrency: number;
  /** Exactly one of `requests` and `durationMs` is given. */
  readonly requests?: number;
  readonly durationMs?: number;
  /** Write every key once before the measured phase; defaults to true when it reads. */
  readonly loadPhase?: boolean;
  readonly onProgress?: (progress: Progress) => void;
}

export interface OperationStats extends LatencySummary {
  readonly kind: OperationKind;
}

export interface PhaseResult {
  /** Operations that completed, failed ones included. */
  readonly operations: number;
  readonly succeeded: number;
  readonly durationMs: number;
  /** Successful operations per second. */
  readonly opsPerSecond: number;
  /** Latency of successful operations, in microseconds. */
  readonly latency: LatencySummary;
  readonly byKind: readonly OperationStats[];
  /** Reads that found no value (successful, but a sign the load phase did not cover them). */
  readonly notFound: number;
  /** Failures by kind, e.g. `ECONNREFUSED` or `ReplyError ERR`. */
  readonly errors: Readonly<Record<string, number>>;
  /** The first message seen of each kind of failure. */
  readonly errorExamples: Readonly<Record<string, string>>;
}

export interface LoadResult extends PhaseResult {
  readonly target: string;
  readonly workload: WorkloadSpec;
  readonly concurrency: number;
  readonly load: PhaseResult | null;
}

/** A stable, short name for the kind of a failure. */
export function errorKind(error: unknown): string {
  if (!(error instanceof Error)) return typeof error;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.length > 0) return code;
  // Server replies carry their own code as the first word (RESP: ERR, WRONGTYPE, ...).
  const firstWord = /^([A-Z][A-Z_]+)\b/.exec(error.message)?.[1];
  return firstWord === undefined ? error.name : `${error.name} ${firstWord}`;
}

class PhaseRecorder {
  readonly all = new Histogram();
  readonly byKind = new Map<OperationKind, Histogram>();
  readonly errors: Record<string, number> = {};
  readonly errorExamples: Record<string, string> = {};
  operations = 0;
  notFound = 0;

  success(kind: OperationKind, latencyUs: number): void {
    this.operations++;
    this.all.record(latencyUs);
    let histogram = this.byKind.get(kind);
    if (histogram === undefined) {
      histogram = new Histogram();
      this.byKind.set(kind, histogram);
    }
    histogram.record(latencyUs);
  }

  failure(kind: string, message: string): void {
    this.operations++;
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
    this.errorExamples[kind] ??= message;
  }

  result(durationMs: number): PhaseResult {
    assert(durationMs >= 0, 'a phase cannot take negative time');
    const byKind: OperationStats[] = [];
    for (const kind of ['get', 'put'] as const) {
      const histogram = this.byKind.get(kind);
      if (histogram !== undefined) byKind.push({ kind, ...histogram.summary() });
    }
    return {
      operations: this.operations,
      succeeded: this.all.count,
      durationMs,
      opsPerSecond: durationMs > 0 ? (this.all.count * 1000) / durationMs : 0,
      latency: this.all.summary(),
      byKind,
      notFound: this.notFound,
      errors: { ...this.errors },
      errorExamples: { ...this.errorExamples },
    };
  }
}

async function runPhase(
  phase: 'load' | 'run',
  concurrency: number,
  total: number | null,
  durationMs: number | null,
  nextOperation: (worker: number, sequence: number) => (() => Promise<OperationKind>) | null,
  onProgress: ((progress: Progress) => void) | undefined,
): Promise<PhaseResult> {
  const recorder = new PhaseRecorder();
  const startedMs = performance.now();
  const deadlineMs = durationMs === null ? null : startedMs + durationMs;
  let issued = 0;
  const report = (): void =>
    onProgress?.({
      phase,
      done: recorder.operations,
      total,
      elapsedMs: performance.now() - startedMs,
    });
  const timer = onProgress === undefined ? null : setInterval(report, PROGRESS_PERIOD_MS);
  const worker = async (workerIndex: number): Promise<void> => {
    while (true) {
      if (total !== null && issued >= total) return;
      if (deadlineMs !== null && performance.now() >= deadlineMs) return;
      const operation = nextOperation(workerIndex, issued++);
      if (operation === null) return;
      const beganMs = performance.now();
      try {
        const kind = await operation();
        recorder.success(kind, (performance.now() - beganMs) * 1000);
      } catch (error) {
        if (error instanceof NotFound) {
          recorder.notFound++;
          recorder.success('get', (performance.now() - beganMs) * 1000);
        } else {
          recorder.failure(errorKind(error), String((error as Error).message ?? error));
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  } finally {
    if (timer !== null) clearInterval(timer);
  }
  report();
  return recorder.result(performance.now() - startedMs);
}

/** Thrown inside the runner for a read that found nothing; counted, not an error. */
class NotFound extends Error {}

class WrongValueSize extends Error {
  override readonly name = 'WrongValueSize';
}

export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadResult> {
  const { workload, concurrency } = options;
  assert(
    Number.isInteger(concurrency) && concurrency > 0 && concurrency <= CONCURRENCY_MAX,
    `concurrency must be an integer from 1 to ${CONCURRENCY_MAX}`,
  );
  assert(
    (options.requests === undefined) !== (options.durationMs === undefined),
    'give exactly one of requests and durationMs',
  );
  let load: PhaseResult | null = null;
  if (options.loadPhase ?? needsLoadPhase(workload.name)) {
    load = await runPhase(
      'load',
      Math.min(concurrency, workload.keyCount),
      workload.keyCount,
      null,
      (_, sequence) => {
        const key = keyName(sequence, workload.keyCount);
        const value = makeValue(workload.valueBytes, sequence);
        return async () => {
          await target.put(key, value);
          return 'put';
        };
      },
      options.onProgress,
    );
  }
  const sources = Array.from(
    { length: concurrency },
    (_, index) => new OperationSource(workload, index),
  );
  const run = await runPhase(
    'run',
    concurrency,
    options.requests ?? null,
    options.durationMs ?? null,
    (workerIndex, sequence) => {
      const source = sources[workerIndex]!;
      const key = source.nextKey();
      if (source.nextKind() === 'put') {
        const value = makeValue(workload.valueBytes, sequence);
        return async () => {
          await target.put(key, value);
          return 'put';
        };
      }
      return async () => {
        const value = await target.get(key);
        if (value === null) throw new NotFound();
        if (value.byteLength !== workload.valueBytes) {
          throw new WrongValueSize(
            `read ${value.byteLength} bytes under ${key}, wrote ${workload.valueBytes}`,
          );
        }
        return 'get';
      };
    },
    options.onProgress,
  );
  return { target: target.name, workload, concurrency, ...run, load };
}
