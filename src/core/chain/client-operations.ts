// How client requests on a chain keyspace become chain requests, and how completions become
// replies. A key is a value or nothing, with a version that counts its changes
// (docs/CHAIN.md); what chain keyspaces refuse is checked before, by
// src/core/kv/linearizable-items.ts.

import { assert, EMPTY_BYTES } from '../bytes.ts';
import { ErrorCode, kvError, type KvError } from '../errors.ts';
import { parseRedisInteger } from '../kv/redis-integer.ts';
import type { Mutation, ReadResult, WriteResult } from '../requests.ts';
import type { ChainOperation } from './operations.ts';
import type { ChainCompletion } from './requester.ts';

/**
 * The chain operation a write item runs on `chainKey`, or why it cannot. The item has passed
 * linearizableItemsProblem, which refuses what a chain keyspace has no operation for.
 */
export function chainOperationOf(
  mutation: Mutation,
  chainKey: Uint8Array,
): ChainOperation | KvError {
  const key = chainKey;
  assert(
    mutation.kind !== 'append' && mutation.kind !== 'expire',
    `a ${mutation.kind} was refused before`,
  );
  switch (mutation.kind) {
    case 'set': {
      assert(mutation.expiry.kind === 'none', 'expiry was refused before');
      const previous = mutation.returnPrevious === true ? { returnPrevious: true as const } : {};
      switch (mutation.condition) {
        case 'always':
          return { kind: 'put', key, value: mutation.value, ...previous };
        case 'ifAbsent':
          return { kind: 'cas', key, expected: null, value: mutation.value, ...previous };
        case 'ifPresent':
          return { kind: 'put-if-present', key, value: mutation.value, ...previous };
      }
      break;
    }
    case 'delete':
      return mutation.returnPrevious === true
        ? { kind: 'delete', key, returnPrevious: true }
        : { kind: 'delete', key };
    case 'incrBy': {
      const delta = Number(mutation.delta);
      if (!Number.isSafeInteger(delta)) {
        return kvError(
          ErrorCode.INVALID_ARGUMENT,
          'chain keyspaces increment by at most 2^53 - 1 at a time',
        );
      }
      return { kind: 'incr', key, delta };
    }
    case 'compareAndSet':
      return 'version' in mutation.expected
        ? {
            kind: 'cas-version',
            key,
            expectedVersion: mutation.expected.version,
            value: mutation.value,
          }
        : { kind: 'cas', key, expected: mutation.expected.value, value: mutation.value };
  }
}

/** The result or error of a finished chain request. */
export function chainResultOf(
  completion: ChainCompletion,
  mutation: Mutation | null,
  withVersions: boolean,
): ReadResult | WriteResult | KvError {
  const reply = completion.reply;
  if (completion.outcome === 'unknown' || reply === null) {
    return kvError(
      ErrorCode.UNAVAILABLE,
      mutation === null
        ? 'the chain did not answer in time'
        : 'the chain did not answer in time; the write may or may not have happened',
    );
  }
  switch (reply.status) {
    case 'read': {
      const value = reply.value;
      return {
        value,
        expiresAtMs: 0,
        context: EMPTY_BYTES,
        siblings: withVersions && value !== null ? [{ value, timestamp: [0, 0] }] : [],
        version: reply.version,
      };
    }
    case 'written': {
      const outcome = reply.outcome;
      if (outcome.kind === 'error') return kvError(outcome.code, outcome.message);
      const incremented = mutation?.kind === 'incrBy';
      return {
        applied: outcome.applied,
        previous: incremented ? null : outcome.value,
        integer:
          incremented && outcome.value !== null ? (parseRedisInteger(outcome.value) ?? 0n) : 0n,
        length: incremented ? (outcome.value?.length ?? 0) : 0,
        version: outcome.version,
      };
    }
    case 'invalid':
      return kvError(reply.code, reply.message);
    case 'refused':
    case 'retry':
      return kvError(ErrorCode.UNAVAILABLE, `the chain answered ${reply.status}`);
  }
}
