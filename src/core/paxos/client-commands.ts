// How client requests on a strong keyspace become register commands, and how operation
// outcomes become replies. Strong keyspaces keep no expiry and no siblings: a key is a value
// or nothing, with a version that counts its changes (docs/PAXOS.md), so the eventual-only
// parts of a request (TTLs, APPEND, causal contexts, quorum overrides) are refused here with
// a clear error rather than ignored.

import { EMPTY_BYTES } from '../bytes.ts';
import { ErrorCode, kvError, type KvError } from '../errors.ts';
import type { Limits } from '../limits.ts';
import { parseRedisInteger } from '../kv/redis-integer.ts';
import type { Mutation, ReadResult, WriteItem, WriteResult } from '../requests.ts';
import type { OperationOutcome } from './proposer.ts';
import type { Command, RegisterValue } from './register.ts';

/** The command a write item runs, or why a strong keyspace refuses it. */
export function commandOf(mutation: Mutation): Command | KvError {
  switch (mutation.kind) {
    case 'set':
      if (mutation.expiry.kind !== 'none') {
        return refuse('expiry (EX, PX, EXAT, PXAT, KEEPTTL, ttlMs)');
      }
      switch (mutation.condition) {
        case 'always':
          return { kind: 'put', value: mutation.value };
        case 'ifAbsent':
          return { kind: 'cas-value', expected: null, value: mutation.value };
        case 'ifPresent':
          return { kind: 'put-if-present', value: mutation.value };
      }
      break;
    case 'delete':
      return { kind: 'delete' };
    case 'incrBy':
      return { kind: 'incr', delta: mutation.delta };
    case 'compareAndSet':
      return 'version' in mutation.expected
        ? { kind: 'cas-version', expectedVersion: mutation.expected.version, value: mutation.value }
        : { kind: 'cas-value', expected: mutation.expected.value, value: mutation.value };
    case 'append':
      return refuse('APPEND');
    case 'expire':
      return refuse('expiry (EXPIRE, PEXPIRE, PERSIST)');
  }
  return refuse(`the mutation ${(mutation as { kind: string }).kind}`);
}

function refuse(what: string): KvError {
  return kvError(
    ErrorCode.INVALID_ARGUMENT,
    `${what} is not supported on strong keyspaces: keys there have no expiry`,
  );
}

/** Checks the items of a write to a strong or chain keyspace against the limits. */
export function strongItemsProblem(items: readonly WriteItem[], limits: Limits): KvError | null {
  for (const item of items) {
    if (item.context !== undefined && item.context.length > 0) {
      return kvError(
        ErrorCode.INVALID_ARGUMENT,
        'causal contexts belong to eventual keyspaces; on strong and chain keyspaces compare-and-set on the version instead',
      );
    }
    const mutation = item.mutation;
    const bytes =
      mutation.kind === 'set' || mutation.kind === 'compareAndSet' ? mutation.value.length : 0;
    if (bytes > limits.valueBytesMax) {
      return kvError(
        ErrorCode.VALUE_TOO_LARGE,
        `value is ${bytes} bytes, the limit is ${limits.valueBytesMax}`,
      );
    }
    if (
      mutation.kind === 'compareAndSet' &&
      'version' in mutation.expected &&
      !(Number.isSafeInteger(mutation.expected.version) && mutation.expected.version >= 0)
    ) {
      return kvError(ErrorCode.INVALID_ARGUMENT, 'an expected version is a non-negative integer');
    }
  }
  return null;
}

/** A read's result from the value a get operation chose. */
export function strongReadResult(current: RegisterValue, withVersions: boolean): ReadResult {
  const value = current.bytes;
  return {
    value,
    expiresAtMs: 0,
    context: EMPTY_BYTES,
    siblings: withVersions && value !== null ? [{ value, timestamp: [0, 0] }] : [],
    version: current.version,
  };
}

/** A write's result from its operation's outcome. */
export function strongWriteResult(
  mutation: Mutation,
  outcome: Extract<OperationOutcome, { kind: 'ok' }>,
): WriteResult {
  const current = outcome.current.bytes;
  const integer =
    mutation.kind === 'incrBy' && current !== null ? (parseRedisInteger(current) ?? 0n) : 0n;
  return {
    // A delete applies when there was something to delete, as DEL counts it.
    applied: mutation.kind === 'delete' ? outcome.previous.bytes !== null : outcome.applied,
    previous: outcome.previous.bytes,
    integer,
    length: current?.length ?? 0,
    version: outcome.current.version,
  };
}

/** The client error of a failed operation. */
export function strongError(outcome: Extract<OperationOutcome, { kind: 'error' }>): KvError {
  switch (outcome.code) {
    case 'not-an-integer':
      return kvError(ErrorCode.NOT_AN_INTEGER, 'value is not an integer or out of range');
    case 'integer-overflow':
      return kvError(ErrorCode.INTEGER_OVERFLOW, 'increment or decrement would overflow');
    case 'overloaded':
      return kvError(ErrorCode.OVERLOADED, outcome.message);
    case 'invalid':
      return kvError(ErrorCode.INVALID_ARGUMENT, outcome.message);
    case 'unavailable':
    case 'contention':
      return kvError(
        ErrorCode.UNAVAILABLE,
        outcome.mayHaveTakenEffect
          ? `${outcome.message}; the write may or may not have happened`
          : `${outcome.message}; nothing was changed`,
      );
  }
}
