// What strong and chain keyspaces refuse in a write, checked once before a write is turned
// into a CASPaxos command or a chain operation. A key there is one value with a version
// that counts its changes: no expiry, no siblings, no causal context. The eventual-only
// parts of a request (TTLs, APPEND, EXPIRE, contexts) are refused with a clear error rather
// than ignored, as are values over the limit and versions that are not counts.

import { ErrorCode, kvError, type KvError } from '../errors.ts';
import type { Consistency } from '../keyspace.ts';
import type { Limits } from '../limits.ts';
import type { WriteItem } from '../requests.ts';

/** Why a strong or chain keyspace refuses these items, or null. */
export function linearizableItemsProblem(
  items: readonly WriteItem[],
  limits: Limits,
  consistency: Exclude<Consistency, 'eventual'>,
): KvError | null {
  const refuse = (what: string): KvError =>
    kvError(
      ErrorCode.INVALID_ARGUMENT,
      `${what} is not supported on ${consistency} keyspaces: keys there have no expiry`,
    );
  for (const item of items) {
    if (item.context !== undefined && item.context.length > 0) {
      return kvError(
        ErrorCode.INVALID_ARGUMENT,
        `causal contexts belong to eventual keyspaces; on a ${consistency} keyspace compare-and-set on the version instead`,
      );
    }
    const mutation = item.mutation;
    switch (mutation.kind) {
      case 'append':
        return refuse('APPEND');
      case 'expire':
        return refuse('expiry (EXPIRE, PEXPIRE, PERSIST)');
      case 'set':
        if (mutation.expiry.kind !== 'none') {
          return refuse('expiry (EX, PX, EXAT, PXAT, KEEPTTL, ttlMs)');
        }
        break;
      case 'compareAndSet':
        if (
          'version' in mutation.expected &&
          !(Number.isSafeInteger(mutation.expected.version) && mutation.expected.version >= 0)
        ) {
          return kvError(
            ErrorCode.INVALID_ARGUMENT,
            'an expected version is a non-negative integer',
          );
        }
        break;
      case 'delete':
      case 'incrBy':
        break;
    }
    const bytes =
      mutation.kind === 'set' || mutation.kind === 'compareAndSet' ? mutation.value.length : 0;
    if (bytes > limits.valueBytesMax) {
      return kvError(
        ErrorCode.VALUE_TOO_LARGE,
        `value is ${bytes} bytes, the limit is ${limits.valueBytesMax}`,
      );
    }
  }
  return null;
}
