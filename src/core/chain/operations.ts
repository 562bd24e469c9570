// What a chain stores per key and how the head turns a write into a change. Writes are
// functions of the current record (put, delete, compare-and-set on the value or on the
// version, increment); the head evaluates them once, in sequence order, and the chain carries
// only the result (the new record and the answer), so every replica applies the same bytes
// and a replica that already holds a newer copy of a key can skip an older change safely.
//
// Rules kept: a version counts the changes of a key and never goes back, not even through a
// delete (a tombstone keeps it), so a compare-and-set on a version cannot match a different
// state of the key that happens to carry the same number. Evaluation is pure and total.

import { assert, equalBytes } from '../bytes.ts';
import { ErrorCode } from '../errors.ts';
import { formatRedisInteger, isInt64, parseRedisInteger } from '../kv/redis-integer.ts';
import type { ChainLimits } from './settings.ts';

/** One key's stored state. A tombstone (value null) keeps the version it reached. */
export interface ChainRecord {
  /** Null: deleted (or never written, with version 0). */
  readonly value: Uint8Array | null;
  /** Changes made to the key so far; 0 when it was never written. */
  readonly version: number;
  /** The partition sequence number of the entry that made this record. */
  readonly sequence: number;
}

/** Writes other than an increment may ask for the value the key held before them. */
interface ReturnsPrevious {
  /** The outcome carries the value before the write (SET ... GET, GETDEL). */
  readonly returnPrevious?: true;
}

export type ChainOperation =
  | ({
      readonly kind: 'put';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
    } & ReturnsPrevious)
  /** A put only if the key holds a value (Redis's SET XX). */
  | ({
      readonly kind: 'put-if-present';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
    } & ReturnsPrevious)
  | ({ readonly kind: 'delete'; readonly key: Uint8Array } & ReturnsPrevious)
  | ({
      readonly kind: 'cas';
      readonly key: Uint8Array;
      /** Null: the key must be absent. */
      readonly expected: Uint8Array | null;
      readonly value: Uint8Array;
    } & ReturnsPrevious)
  | ({
      readonly kind: 'cas-version';
      readonly key: Uint8Array;
      /** 0: the key must never have been written. */
      readonly expectedVersion: number;
      readonly value: Uint8Array;
    } & ReturnsPrevious)
  | { readonly kind: 'incr'; readonly key: Uint8Array; readonly delta: number };

/**
 * The answer to a write. `applied`: the key changed. `version`: the key's version after the
 * write (the current one when it did not change). `value`: the new value for an increment;
 * for a write that asked `returnPrevious`, the value the key held before it (SET ... GET,
 * GETDEL); null otherwise, so that entries do not carry old values nobody asked for.
 */
export type WriteOutcome =
  | {
      readonly kind: 'done';
      readonly applied: boolean;
      readonly version: number;
      readonly value: Uint8Array | null;
    }
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string };

/** The new state of one key, as forwarded down the chain. */
export interface KeyChange {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly version: number;
}

export interface Evaluation {
  /** Null when the write leaves the key as it is (a failed compare, an error). */
  readonly change: KeyChange | null;
  readonly outcome: WriteOutcome;
}

export const ABSENT_RECORD: ChainRecord = { value: null, version: 0, sequence: 0 };

/** Why the operation is malformed for these limits, or null. Checked before sequencing. */
export function operationProblem(operation: ChainOperation, limits: ChainLimits): string | null {
  if (operation.key.length === 0) return 'the key is empty';
  if (operation.key.length > limits.keyBytesMax) {
    return `the key is longer than ${limits.keyBytesMax} bytes`;
  }
  if (
    operation.kind === 'put' ||
    operation.kind === 'put-if-present' ||
    operation.kind === 'cas' ||
    operation.kind === 'cas-version'
  ) {
    if (operation.value.length > limits.valueBytesMax) {
      return `the value is longer than ${limits.valueBytesMax} bytes`;
    }
  }
  if (operation.kind === 'cas' && operation.expected !== null) {
    if (operation.expected.length > limits.valueBytesMax) {
      return `the expected value is longer than ${limits.valueBytesMax} bytes`;
    }
  }
  return null;
}

/** The error code for a malformed operation found by operationProblem. */
export function problemCode(operation: ChainOperation, limits: ChainLimits): ErrorCode {
  if (operation.key.length === 0) return ErrorCode.KEY_EMPTY;
  if (operation.key.length > limits.keyBytesMax) return ErrorCode.KEY_TOO_LARGE;
  return ErrorCode.VALUE_TOO_LARGE;
}

function done(applied: boolean, version: number, value: Uint8Array | null = null): WriteOutcome {
  return { kind: 'done', applied, version, value };
}

/** Evaluates a well-formed write against the key's current record. */
export function evaluateOperation(current: ChainRecord, operation: ChainOperation): Evaluation {
  assert(current.version >= 0 && Number.isSafeInteger(current.version), 'a version is a count');
  const key = operation.key;
  const nextVersion = current.version + 1;
  const previous = current.value;
  const returned = operation.kind !== 'incr' && operation.returnPrevious === true ? previous : null;
  const unchanged: Evaluation = { change: null, outcome: done(false, current.version, returned) };
  switch (operation.kind) {
    case 'put':
      return {
        change: { key, value: operation.value, version: nextVersion },
        outcome: done(true, nextVersion, returned),
      };
    case 'put-if-present':
      if (previous === null) return unchanged;
      return {
        change: { key, value: operation.value, version: nextVersion },
        outcome: done(true, nextVersion, returned),
      };
    case 'delete':
      // Deleting what is not there changes nothing and spends no version.
      if (previous === null) return unchanged;
      return {
        change: { key, value: null, version: nextVersion },
        outcome: done(true, nextVersion, returned),
      };
    case 'cas': {
      const matches =
        operation.expected === null
          ? previous === null
          : previous !== null && equalBytes(previous, operation.expected);
      if (!matches) return unchanged;
      return {
        change: { key, value: operation.value, version: nextVersion },
        outcome: done(true, nextVersion, returned),
      };
    }
    case 'cas-version':
      if (operation.expectedVersion !== current.version) return unchanged;
      return {
        change: { key, value: operation.value, version: nextVersion },
        outcome: done(true, nextVersion, returned),
      };
    case 'incr':
      return evaluateIncrement(current, key, operation.delta);
  }
}

function evaluateIncrement(current: ChainRecord, key: Uint8Array, delta: number): Evaluation {
  assert(Number.isSafeInteger(delta), 'an increment is a safe integer');
  const before = current.value === null ? 0n : parseRedisInteger(current.value);
  if (before === null) {
    return {
      change: null,
      outcome: {
        kind: 'error',
        code: ErrorCode.NOT_AN_INTEGER,
        message: 'the value is not an integer or out of range',
      },
    };
  }
  const after = before + BigInt(delta);
  if (!isInt64(after)) {
    return {
      change: null,
      outcome: {
        kind: 'error',
        code: ErrorCode.INTEGER_OVERFLOW,
        message: 'increment or decrement would overflow',
      },
    };
  }
  const value = formatRedisInteger(after);
  const version = current.version + 1;
  return { change: { key, value, version }, outcome: done(true, version, value) };
}

/** The record a change makes, stamped with the entry's sequence number. */
export function recordOf(change: KeyChange, sequence: number): ChainRecord {
  assert(change.version >= 1, 'a change makes version 1 or later');
  return { value: change.value, version: change.version, sequence };
}
