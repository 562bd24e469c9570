// Short constructors for the hand-written histories of the checker tests: each takes the key,
// the [invokedAt, completedAt] interval and what the operation returned, so a history reads
// like the timeline diagrams of the papers it comes from.
import type { Operation, Value } from '../../src/check/history.ts';

type Interval = readonly [invokedAt: number, completedAt: number];

export function get(
  key: string,
  [invokedAt, completedAt]: Interval,
  output: Value,
  client = 0,
): Operation {
  return { client, key, op: 'get', input: null, output, invokedAt, completedAt, outcome: 'ok' };
}

export function put(
  key: string,
  [invokedAt, completedAt]: Interval,
  value: string,
  client = 0,
): Operation {
  return {
    client,
    key,
    op: 'put',
    input: { value },
    output: null,
    invokedAt,
    completedAt,
    outcome: 'ok',
  };
}

export function del(key: string, [invokedAt, completedAt]: Interval, client = 0): Operation {
  return {
    client,
    key,
    op: 'delete',
    input: null,
    output: null,
    invokedAt,
    completedAt,
    outcome: 'ok',
  };
}

export function cas(
  key: string,
  [invokedAt, completedAt]: Interval,
  expected: Value,
  value: string,
  output: boolean,
  client = 0,
): Operation {
  return {
    client,
    key,
    op: 'cas',
    input: { expected, value },
    output,
    invokedAt,
    completedAt,
    outcome: 'ok',
  };
}

export function incr(
  key: string,
  [invokedAt, completedAt]: Interval,
  delta: number,
  output: string,
  client = 0,
): Operation {
  return {
    client,
    key,
    op: 'incr',
    input: { delta },
    output,
    invokedAt,
    completedAt,
    outcome: 'ok',
  };
}

/** The same operation, but the client never learned its outcome; it gave up at `gaveUpAt`. */
export function unknown(operation: Operation, gaveUpAt: number | null = null): Operation {
  return { ...operation, outcome: 'unknown', completedAt: gaveUpAt } as Operation;
}

/** The same operation, answered with a definite error: it did not take effect. */
export function failed(operation: Operation): Operation {
  return { ...operation, outcome: 'failed' } as Operation;
}
