// The sequential specification the linearizability checker holds each key to: one register
// per key, holding a string or nothing. A step either applies an operation to a state, giving
// the next state, or says the operation cannot happen from that state. Pure and total: every
// operation kind and outcome has an answer, and no step throws on well-formed input.
import { assert } from '../core/bytes.ts';
import { isDecimalInteger, type Operation, type Value } from './history.ts';

/** What step returns when the operation cannot take effect (with its output) from a state. */
export const CANNOT_APPLY: unique symbol = Symbol('cannot apply');

/**
 * The state after `operation` takes effect on `state`, or CANNOT_APPLY. For an ok operation
 * the recorded output must be the one the register would give; for an unknown one the
 * output is not known, so only whether it can take effect at all matters.
 */
export function stepRegister(state: Value, operation: Operation): Value | typeof CANNOT_APPLY {
  assert(operation.outcome !== 'failed', 'failed operations never reach the model');
  const checkOutput = operation.outcome === 'ok';
  switch (operation.op) {
    case 'get':
      return !checkOutput || operation.output === state ? state : CANNOT_APPLY;
    case 'put':
      return operation.input.value;
    case 'delete':
      return null;
    case 'cas': {
      const matches = state === operation.input.expected;
      if (checkOutput && operation.output !== matches) return CANNOT_APPLY;
      return matches ? operation.input.value : state;
    }
    case 'incr': {
      const next = incrementedValue(state, operation.input.delta);
      if (next === null) return CANNOT_APPLY;
      return !checkOutput || operation.output === next ? next : CANNOT_APPLY;
    }
  }
}

/** The register's value after incr(delta), or null when the value is not an integer. */
export function incrementedValue(state: Value, delta: number): string | null {
  assert(Number.isSafeInteger(delta), 'incr delta is a safe integer');
  if (state === null) return String(delta);
  if (!isDecimalInteger(state)) return null;
  // BigInt: a counter past 2^53 must still add exactly.
  return (BigInt(state) + BigInt(delta)).toString();
}
