// How client requests on a strong keyspace become register commands, and how operation
// outcomes become replies. A key is a value or nothing, with a version that counts its
// changes (docs/PAXOS.md); what strong keyspaces refuse is checked before, by
// src/core/kv/linearizable-items.ts.

import { assert, EMPTY_BYTES } from '../bytes.ts';
import { ErrorCode, kvError, type KvError } from '../errors.ts';
import { parseRedisInteger } from '../kv/redis-integer.ts';
import type { Mutation, ReadResult, WriteResult } from '../requests.ts';
import type { OperationOutcome } from './proposer.ts';
import type { Command, RegisterValue } from './register.ts';

/**
 * The command a write item runs. The item has passed linearizableItemsProblem, which refuses
 * the mutations a strong keyspace has no command for (expiry, APPEND).
 */
export function commandOf(mutation: Mutation): Command {
  assert(
    mutation.kind !== 'append' && mutation.kind !== 'expire',
    `a ${mutation.kind} was refused before`,
  );
  switch (mutation.kind) {
    case 'set':
      assert(mutation.expiry.kind === 'none', 'expiry was refused before');
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
  }
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
