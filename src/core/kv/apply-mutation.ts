// Applying one mutation to a key's record: a pure function from (record, mutation, time) to
// the next record and the result the client sees. The coordinator calls it; the outcome is
// a new version with a fresh dot from this node, so replication can merge it later.
//
// Causality: a write with no client context supersedes every version the coordinator holds
// (a Redis SET is a blind overwrite); with a context it supersedes only the versions the
// context has seen, and under the `siblings` policy the rest stay as concurrent siblings.

import { concatBytes } from '../bytes.ts';
import { ErrorCode, kvError, type KvError } from '../errors.ts';
import type { ConflictPolicy } from '../keyspace.ts';
import type { Limits } from '../limits.ts';
import type { Expiry, Mutation, WriteResult } from '../requests.ts';
import type { Sibling, StoredRecord } from '../store/record.ts';
import type { HybridLogicalClock } from '../versions/hlc.ts';
import {
  counterOf,
  coversDot,
  EMPTY_VECTOR,
  mergeVectors,
  withDot,
  type VersionVector,
} from '../versions/version-vector.ts';
import { formatRedisInteger, isInt64, parseRedisInteger } from './redis-integer.ts';
import { winningSibling } from './siblings.ts';

export interface MutationInput {
  readonly record: StoredRecord | undefined;
  readonly mutation: Mutation;
  /** Client-supplied causal context, or null for a blind write. */
  readonly context: VersionVector | null;
  readonly nodeId: string;
  readonly nowMs: number;
  readonly clock: HybridLogicalClock;
  readonly policy: ConflictPolicy;
  readonly limits: Limits;
  /**
   * A delete of a key with no live value still writes a tombstone. A cluster coordinator
   * needs it: the tombstone must hide an earlier write, concurrent with it, that this copy
   * has not seen but another replica may hold.
   */
  readonly tombstoneAbsent?: boolean;
}

export type MutationOutcome =
  | {
      readonly ok: true;
      /** The record to store, or null when nothing changes. */
      readonly next: StoredRecord | null;
      readonly result: WriteResult;
    }
  | { readonly ok: false; readonly error: KvError };

const NOT_APPLIED: WriteResult = { applied: false, previous: null, integer: 0n, length: 0 };

/** The expiry time a write sets; `current`: the key's live version, for `keep`. */
export function resolveExpiry(expiry: Expiry, current: Sibling | null, nowMs: number): number {
  switch (expiry.kind) {
    case 'none':
      return 0;
    case 'keep':
      return current?.expiresAtMs ?? 0;
    case 'at':
      return expiry.atMs;
    case 'after':
      return nowMs + expiry.ms;
  }
}

/** Builds the record that holds a new version (or tombstone) written by `nodeId`. */
export function writeVersion(
  input: MutationInput,
  value: Uint8Array | null,
  expiresAtMs: number,
): StoredRecord {
  const base = input.record;
  const baseContext = base?.context ?? EMPTY_VECTOR;
  const dot = { node: input.nodeId, counter: counterOf(baseContext, input.nodeId) + 1 };
  const seen = input.context ?? baseContext;
  const sibling: Sibling = { dot, timestamp: input.clock.now(input.nowMs), value, expiresAtMs };
  // Under lww (most writes) nothing is kept and there is no client context: no list is
  // filtered and no vector merged for nothing.
  const kept =
    input.policy === 'siblings' && base !== undefined
      ? base.siblings.filter((existing) => !coversDot(seen, existing.dot))
      : null;
  const context =
    input.context === null || input.context === undefined
      ? baseContext
      : mergeVectors(baseContext, input.context);
  return {
    context: withDot(context, dot),
    siblings: kept === null || kept.length === 0 ? [sibling] : [...kept, sibling],
  };
}

export function applyMutation(input: MutationInput): MutationOutcome {
  const { mutation, nowMs, limits } = input;
  const current = winningSibling(input.record, nowMs, input.policy);
  const previous = current?.value ?? null;
  switch (mutation.kind) {
    case 'set': {
      if (mutation.condition === 'ifAbsent' && current !== null) return notApplied(previous);
      if (mutation.condition === 'ifPresent' && current === null) return notApplied(previous);
      const expiresAtMs = resolveExpiry(mutation.expiry, current, nowMs);
      const next = writeVersion(input, mutation.value, expiresAtMs);
      return { ok: true, next, result: { ...NOT_APPLIED, applied: true, previous } };
    }
    case 'delete': {
      if (current === null) {
        if (input.tombstoneAbsent !== true) return notApplied(null);
        return { ok: true, next: writeVersion(input, null, 0), result: NOT_APPLIED };
      }
      const next = writeVersion(input, null, 0);
      return { ok: true, next, result: { ...NOT_APPLIED, applied: true, previous } };
    }
    case 'incrBy': {
      const base = previous === null ? 0n : parseRedisInteger(previous);
      if (base === null) {
        return {
          ok: false,
          error: kvError(ErrorCode.NOT_AN_INTEGER, 'value is not an integer or out of range'),
        };
      }
      const sum = base + mutation.delta;
      if (!isInt64(mutation.delta) || !isInt64(sum)) {
        return {
          ok: false,
          error: kvError(ErrorCode.INTEGER_OVERFLOW, 'increment or decrement would overflow'),
        };
      }
      const next = writeVersion(input, formatRedisInteger(sum), current?.expiresAtMs ?? 0);
      return { ok: true, next, result: { ...NOT_APPLIED, applied: true, previous, integer: sum } };
    }
    case 'append': {
      const value = previous === null ? mutation.suffix : concatBytes([previous, mutation.suffix]);
      if (value.length > limits.valueBytesMax) {
        return {
          ok: false,
          error: kvError(
            ErrorCode.VALUE_TOO_LARGE,
            `appending would make the value ${value.length} bytes, the limit is ${limits.valueBytesMax}`,
          ),
        };
      }
      const next = writeVersion(input, value, current?.expiresAtMs ?? 0);
      return {
        ok: true,
        next,
        result: { ...NOT_APPLIED, applied: true, previous, length: value.length },
      };
    }
    case 'expire': {
      if (current === null) return notApplied(null);
      const existing = current.expiresAtMs;
      const requested = resolveExpiry(mutation.expiry, current, nowMs);
      // No expiry counts as an infinite one when comparing (as Redis does).
      const existingOrInfinite = existing === 0 ? Infinity : existing;
      const requestedOrInfinite = requested === 0 ? Infinity : requested;
      const allowed =
        mutation.condition === 'always' ||
        (mutation.condition === 'ifNoExpiry' && existing === 0) ||
        (mutation.condition === 'ifHasExpiry' && existing !== 0) ||
        (mutation.condition === 'ifGreater' && requestedOrInfinite > existingOrInfinite) ||
        (mutation.condition === 'ifLess' && requestedOrInfinite < existingOrInfinite);
      if (!allowed) return notApplied(previous);
      if (requested === 0 && existing === 0) return notApplied(previous); // PERSIST of a key without expiry
      const expired = requested !== 0 && requested <= nowMs;
      const next = expired
        ? writeVersion(input, null, 0)
        : writeVersion(input, current.value, requested);
      return { ok: true, next, result: { ...NOT_APPLIED, applied: true, previous } };
    }
    case 'compareAndSet':
      // Versions that count every change exist only in linearizable keyspaces.
      return { ok: false, error: COMPARE_NEEDS_LINEARIZABLE };
  }
}

export const COMPARE_NEEDS_LINEARIZABLE: KvError = kvError(
  ErrorCode.INVALID_ARGUMENT,
  'compare-and-set needs a strong or chain keyspace; eventual keyspaces take a causal context instead',
);

function notApplied(previous: Uint8Array | null): MutationOutcome {
  return { ok: true, next: null, result: { ...NOT_APPLIED, previous } };
}
