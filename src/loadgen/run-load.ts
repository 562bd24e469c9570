// The closed-loop load runner: `concurrency` workers, each with one request in flight,
// draw operations from the workload and time each one. A run stops after a total number of
// requests or after a duration, whichever it was given. Every failure is counted by kind
// (and one message kept per kind); nothing is retried or thrown away, and the run goes on.
// The `cas` workload is the exception that proves it: one operation is a whole
// read-increment-compare-and-set loop on the worker's own counter, a compare-and-set that
// does not apply is tried again after a fresh read (counted in `retries`, bounded by
// CAS_ATTEMPTS_MAX), and at the end every counter is read back to check that no increment
// was lost or applied twice.

import { performance } from 'node:perf_hooks';
import { assert } from '../core/bytes.ts';
import { Histogram, type LatencySummary } from './histogram.ts';
import type { LoadTarget } from './targets/target.ts';
import {
  CAS_ATTEMPTS_MAX,
  counterKeyName,
  encodeCounter,
  keyName,
  makeValue,
  needsLoadPhase,
  OperationSource,
  parseCounter,
  type OperationKind,
  type WorkloadSpec,
} from './workload.ts';

/** Most requests in flight at once; each is a worker, so this also bounds memory. */
export const CONCURRENCY_MAX = 10_000;
/** How often progress is reported while a phase runs. */
const PROGRESS_PERIOD_MS = 250;
/** Counters read back at once when a `cas` run is checked. */
const CHECK_READS_IN_FLIGHT = 64;

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
  /**
   * Called as each operation of the measured phase ends, with whether it succeeded and
   * `performance.now()` then: enough to find when a store answered nothing.
   */
  readonly onCompletion?: (succeeded: boolean, atMs: number) => void;
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
  /** `cas`: compare-and-sets that did not apply and were tried again after a fresh read. */
  readonly retries: number;
}

/** What reading every `cas` counter back at the end of a run found. */
export interface CasCheck {
  /** Counters read back. */
  readonly counters: number;
  /** Counters that could not be read back (the read failed). */
  readonly unreadable: number;
  /**
   * Counters whose final value is not their first value plus the increments that applied,
   * give or take those whose compare-and-set failed with an unknown outcome: a lost or a
   * doubled update.
   */
  readonly mismatches: number;
  /** The first mismatch, described; null when there is none. */
  readonly example: string | null;
}

export interface LoadResult extends PhaseResult {
  readonly target: string;
  readonly workload: WorkloadSpec;
  readonly concurrency: number;
  readonly load: PhaseResult | null;
  /** `cas` only; null for the other workloads. */
  readonly casCheck: CasCheck | null;
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

  result(durationMs: number, retries: number): PhaseResult {
    assert(durationMs >= 0, 'a phase cannot take negative time');
    assert(Number.isSafeInteger(retries) && retries >= 0, 'retries are a count');
    const byKind: OperationStats[] = [];
    for (const kind of ['get', 'put', 'cas'] as const) {
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
      retries,
    };
  }
}

/** Counts the loops of a phase share: compare-and-sets tried again. */
interface Tally {
  retries: number;
}

async function runPhase(
  phase: 'load' | 'run',
  concurrency: number,
  total: number | null,
  durationMs: number | null,
  nextOperation: (worker: number, sequence: number) => (() => Promise<OperationKind>) | null,
  onProgress: ((progress: Progress) => void) | undefined,
  onCompletion: ((succeeded: boolean, atMs: number) => void) | undefined,
  tally: Tally,
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
      let succeeded = true;
      try {
        const kind = await operation();
        recorder.success(kind, (performance.now() - beganMs) * 1000);
      } catch (error) {
        if (error instanceof NotFound) {
          recorder.notFound++;
          recorder.success('get', (performance.now() - beganMs) * 1000);
        } else {
          succeeded = false;
          recorder.failure(errorKind(error), String((error as Error).message ?? error));
        }
      }
      onCompletion?.(succeeded, performance.now());
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  } finally {
    if (timer !== null) clearInterval(timer);
  }
  report();
  return recorder.result(performance.now() - startedMs, tally.retries);
}

/** Thrown inside the runner for a read that found nothing; counted, not an error. */
class NotFound extends Error {}

class WrongValueSize extends Error {
  override readonly name = 'WrongValueSize';
}

class CasGaveUp extends Error {
  override readonly name = 'CasGaveUp';
}

/** What one `cas` worker knows of its counter, to check the run lost no update. */
interface CounterLedger {
  readonly key: string;
  /** The counter at the worker's first read, before any write of its own; null until then. */
  initial: bigint | null;
  /** Compare-and-sets that applied. */
  applied: number;
  /** Compare-and-sets that failed with an error: they may or may not have applied. */
  uncertain: number;
}

type CasTarget = Required<Pick<LoadTarget, 'getVersioned' | 'compareAndSet'>>;

/** One loop of a `cas` worker: read the counter and its version, write it plus one on condition. */
async function casLoop(target: CasTarget, ledger: CounterLedger, tally: Tally): Promise<'cas'> {
  for (let attempt = 1; attempt <= CAS_ATTEMPTS_MAX; attempt++) {
    const read = await target.getVersioned(ledger.key);
    const counter = parseCounter(read.value);
    ledger.initial ??= counter;
    let applied: boolean;
    try {
      applied = await target.compareAndSet(ledger.key, read.version, encodeCounter(counter + 1n));
    } catch (error) {
      ledger.uncertain++;
      throw error;
    }
    if (applied) {
      ledger.applied++;
      return 'cas';
    }
    tally.retries++;
  }
  throw new CasGaveUp(`no compare-and-set on ${ledger.key} applied in ${CAS_ATTEMPTS_MAX} tries`);
}

/** Reads every counter back and compares it with what its worker did. */
async function checkCounters(target: CasTarget, ledgers: CounterLedger[]): Promise<CasCheck> {
  let counters = 0;
  let unreadable = 0;
  let mismatches = 0;
  let example: string | null = null;
  const started = ledgers.filter((ledger) => ledger.initial !== null);
  for (let from = 0; from < started.length; from += CHECK_READS_IN_FLIGHT) {
    const batch = started.slice(from, from + CHECK_READS_IN_FLIGHT);
    const finals = await Promise.allSettled(
      batch.map(async (ledger) => parseCounter((await target.getVersioned(ledger.key)).value)),
    );
    for (const [index, outcome] of finals.entries()) {
      const ledger = batch[index]!;
      if (outcome.status === 'rejected') {
        unreadable++;
        continue;
      }
      counters++;
      const lowest = ledger.initial! + BigInt(ledger.applied);
      const highest = lowest + BigInt(ledger.uncertain);
      if (outcome.value < lowest || outcome.value > highest) {
        mismatches++;
        example ??=
          `${ledger.key} ends at ${outcome.value}, started at ${ledger.initial}, ` +
          `${ledger.applied} increments applied and ${ledger.uncertain} unknown`;
      }
    }
  }
  assert(counters + unreadable === started.length, 'every started counter is accounted for');
  return { counters, unreadable, mismatches, example };
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
  const isCas = workload.name === 'cas';
  const casTarget: CasTarget | null =
    target.getVersioned !== undefined && target.compareAndSet !== undefined
      ? {
          getVersioned: target.getVersioned.bind(target),
          compareAndSet: target.compareAndSet.bind(target),
        }
      : null;
  if (isCas && casTarget === null) {
    throw new Error(`target ${target.name} cannot compare-and-set, which workload cas needs`);
  }
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
      undefined,
      { retries: 0 },
    );
  }
  const sources = isCas
    ? []
    : Array.from({ length: concurrency }, (_, index) => new OperationSource(workload, index));
  const ledgers: CounterLedger[] = isCas
    ? Array.from({ length: concurrency }, (_, index) => ({
        key: counterKeyName(index),
        initial: null,
        applied: 0,
        uncertain: 0,
      }))
    : [];
  const tally: Tally = { retries: 0 };
  const run = await runPhase(
    'run',
    concurrency,
    options.requests ?? null,
    options.durationMs ?? null,
    (workerIndex, sequence) => {
      if (isCas) {
        const ledger = ledgers[workerIndex]!;
        return () => casLoop(casTarget!, ledger, tally);
      }
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
    options.onCompletion,
    tally,
  );
  const casCheck = isCas ? await checkCounters(casTarget!, ledgers) : null;
  return { target: target.name, workload, concurrency, ...run, load, casCheck };
}
