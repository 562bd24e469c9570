// What the kill -9 tests of linearizable keyspaces share: a load's state, operations run and
// recorded as history entries (src/check/history.ts) with real times, versioned reads, and
// the error names they count.
//
// How an operation becomes an entry: ok with what it answered; when it throws, failed if it
// was a read or a write that surely did nothing (connection refused, OVERLOADED), else
// unknown (it may have taken effect).

import assert from 'node:assert/strict';
import { isRingkvError, type RingkvClient } from '../../src/client/index.ts';
import { Prng } from '../../src/core/prng.ts';
import type { Operation, Value } from '../../src/check/history.ts';

/** Each put and compare-and-set writes a fresh multiple of this; increments add far less. */
export const VALUE_STRIDE = 1_000_000;
/** A client's pause between operations is drawn in [0, PAUSE_MS_MAX]: it bounds the history. */
export const PAUSE_MS_MAX = 6;
/** Write errors that say the request surely did nothing; any other leaves the outcome unknown. */
const NOT_APPLIED_CODES: ReadonlySet<string> = new Set(['UNREACHABLE', 'RINGKV_OVERLOADED']);

/** One operation as recorded, completed in place once its answer comes. */
type MutableOperation = { -readonly [K in keyof Operation]: Operation[K] };

/** A successful read that told its version (HTTP reads do; Redis GET does not). */
export interface VersionedRead {
  readonly key: string;
  readonly value: Value;
  readonly version: number;
  readonly invokedAt: number;
  readonly completedAt: number;
}

export interface LoadState {
  readonly history: Operation[];
  readonly versionedReads: VersionedRead[];
  readonly startedAtMs: number;
  /** Counter of fresh values: each put and compare-and-set takes the next. */
  writesStarted: number;
  stopping: boolean;
  readonly errorsByCode: Map<string, number>;
}

export function newLoadState(): LoadState {
  return {
    history: [],
    versionedReads: [],
    startedAtMs: performance.now(),
    writesStarted: 0,
    stopping: false,
    errorsByCode: new Map(),
  };
}

export function nowMs(load: LoadState): number {
  return performance.now() - load.startedAtMs;
}

export function freshValue(load: LoadState): string {
  load.writesStarted++;
  return String(load.writesStarted * VALUE_STRIDE);
}

/** Runs one operation and records it (see the file's opening). */
export async function recordOperation<T>(
  load: LoadState,
  entry: Pick<Operation, 'client' | 'key' | 'op' | 'input'>,
  run: () => Promise<T>,
  output: (result: T) => unknown,
): Promise<T | undefined> {
  const operation = {
    ...entry,
    output: null,
    invokedAt: nowMs(load),
    completedAt: null,
    outcome: 'unknown',
  } as MutableOperation;
  load.history.push(operation as Operation);
  try {
    const result = await run();
    operation.completedAt = nowMs(load);
    operation.outcome = 'ok';
    operation.output = output(result) as Operation['output'];
    return result;
  } catch (error) {
    const code = errorCodeOf(error);
    load.errorsByCode.set(code, (load.errorsByCode.get(code) ?? 0) + 1);
    if (entry.op === 'get' || NOT_APPLIED_CODES.has(code)) {
      operation.completedAt = nowMs(load);
      operation.outcome = 'failed';
    }
    return undefined;
  }
}

/** A read through the TypeScript client, recorded with its version. */
export async function recordVersionedRead(
  load: LoadState,
  clientId: number,
  key: string,
  read: () => Promise<{ value: Uint8Array | null; version?: number }>,
): Promise<{ value: Uint8Array | null; version?: number } | undefined> {
  const invokedAt = nowMs(load);
  const result = await recordOperation(
    load,
    { client: clientId, key, op: 'get', input: null },
    read,
    (answer) => text(answer.value),
  );
  if (result !== undefined) {
    assert.ok(result.version !== undefined, 'reads of linearizable keyspaces carry a version');
    load.versionedReads.push({
      key,
      value: text(result.value),
      version: result.version,
      invokedAt,
      completedAt: nowMs(load),
    });
  }
  return result;
}

/**
 * A short name for an error: the client's code, the node's code a Redis error reply carries
 * (`ERR RINGKV_UNAVAILABLE ...`), or the start of any other message.
 */
export function errorCodeOf(error: unknown): string {
  if (isRingkvError(error)) return error.code;
  const message = error instanceof Error ? error.message : String(error);
  const nodeCode = /\bRINGKV_[A-Z_]+/.exec(message)?.[0];
  if (nodeCode !== undefined) return nodeCode;
  if (message.includes('timed out')) return 'redis-timeout';
  return `other: ${message.slice(0, 60)}`;
}

export function text(bytes: Uint8Array | null): Value {
  return bytes === null ? null : new TextDecoder().decode(bytes);
}

export async function pause(prng: Prng): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, prng.between(0, PAUSE_MS_MAX)));
}

/** Each client draws from its own generator, so its choices do not depend on timing. */
export function clientPrng(seed: number, clientId: number): Prng {
  return new Prng((seed * 1_009 + clientId + 1) >>> 0);
}

export async function sleep(durationMs: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, durationMs));
}

/**
 * A TypeScript client's loop on a linearizable keyspace until the load stops: get, put, get
 * then compare-and-set on the version it read, increment; reads recorded with their versions.
 */
export async function runTypescriptClient(
  load: LoadState,
  clientId: number,
  client: RingkvClient,
  keyspace: string,
  keys: readonly string[],
  prng: Prng,
): Promise<void> {
  while (!load.stopping) {
    const key = prng.pick(keys);
    const draw = prng.below(100);
    if (draw < 30) {
      await recordVersionedRead(load, clientId, key, () => client.get(keyspace, key));
    } else if (draw < 45) {
      const value = freshValue(load);
      await recordOperation(
        load,
        { client: clientId, key, op: 'put', input: { value } },
        () => client.put(keyspace, key, value),
        () => null,
      );
    } else if (draw < 75) {
      const read = await recordVersionedRead(load, clientId, key, () => client.get(keyspace, key));
      if (read !== undefined && read.version !== undefined && !load.stopping) {
        const value = freshValue(load);
        const version = read.version;
        await recordOperation(
          load,
          { client: clientId, key, op: 'cas', input: { expected: text(read.value), value } },
          () => client.compareAndSet(keyspace, key, { version }, value),
          (result) => result.applied,
        );
      }
    } else {
      const delta = prng.between(1, 9);
      await recordOperation(
        load,
        { client: clientId, key, op: 'incr', input: { delta } },
        () => client.increment(keyspace, key, delta),
        (result) => result.toString(),
      );
    }
    await pause(prng);
  }
}
