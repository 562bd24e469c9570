// The shape of a history: what clients invoked, what came back, and when. Checkers read it;
// the simulator and real-cluster tests write it. Rules kept here: a history is plain data
// (JSON-friendly, one operation per JSON line on disk), times are in milliseconds on one
// clock shared by every client, and every operation is validated before a checker trusts it.
import { assert } from '../core/bytes.ts';

/** A register's content: a string, or null when the key is absent. */
export type Value = string | null;

/**
 * ok: the operation took effect and `output` is what it returned.
 * failed: the operation did not take effect (a definite error); `output` is ignored.
 * unknown: the client never learned (timeout, crash); it may have taken effect at any
 * point after `invokedAt`, or never. `output` is ignored.
 */
export type Outcome = 'ok' | 'failed' | 'unknown';

export type OperationName = 'get' | 'put' | 'delete' | 'cas' | 'incr';

/**
 * A version vector as plain data: node id -> counter (a positive integer). It is the causal
 * context a store answered: for a write, the context of the version it wrote; for a read, the
 * context of what it read. A node absent from it counts as 0; `{}` is the absent key's.
 */
export type Version = Readonly<Record<string, number>>;

/** Fields every operation carries, whatever its kind. */
export interface OperationTiming {
  /** Who issued it; a client runs one operation at a time (not required by the checker). */
  client: number;
  key: string;
  /** When the client sent the request, in milliseconds. */
  invokedAt: number;
  /** When the client got the answer; null when it never did (outcome 'unknown'). */
  completedAt: number | null;
  outcome: Outcome;
  /**
   * The causal context the store answered, when it gives one; only on ok operations (a
   * failed or unknown one taught the client nothing).
   */
  version?: Version;
}

/**
 * The five operations of the per-key register model.
 * - get: input null; output the value read (null: absent).
 * - put: input { value }; output null.
 * - delete: input null; output null.
 * - cas: input { expected, value }: set `value` if the register holds `expected` (null:
 *   absent); output true when it did, false when it did not.
 * - incr: input { delta } (a safe integer); output the new value as a decimal string. An
 *   absent key counts as 0; a value that is not a decimal integer cannot be incremented.
 */
export type Operation = OperationTiming &
  (
    | { op: 'get'; input: null; output: Value }
    | { op: 'put'; input: { value: string }; output: null }
    | { op: 'delete'; input: null; output: null }
    | { op: 'cas'; input: { expected: Value; value: string }; output: boolean | null }
    | { op: 'incr'; input: { delta: number }; output: string | null }
  );

export type History = readonly Operation[];

const OPERATION_NAMES: ReadonlySet<string> = new Set(['get', 'put', 'delete', 'cas', 'incr']);
const OUTCOMES: ReadonlySet<string> = new Set(['ok', 'failed', 'unknown']);

function isValue(candidate: unknown): candidate is Value {
  return candidate === null || typeof candidate === 'string';
}

function isRecord(candidate: unknown): candidate is Record<string, unknown> {
  return typeof candidate === 'object' && candidate !== null && !Array.isArray(candidate);
}

/** Whether `candidate` is a version: an object of non-empty node ids to positive integers. */
export function isVersion(candidate: unknown): candidate is Version {
  if (!isRecord(candidate)) return false;
  for (const [node, counter] of Object.entries(candidate)) {
    if (node === '' || !Number.isSafeInteger(counter) || (counter as number) <= 0) return false;
  }
  return true;
}

/**
 * Why `candidate` is not a well-formed operation, or null when it is. Checked: the field
 * types, the input of each kind, an output of the right type when the outcome is ok,
 * completedAt present and not before invokedAt unless the outcome is unknown, a version only
 * on an ok operation and well formed.
 */
export function operationProblem(candidate: unknown): string | null {
  if (!isRecord(candidate)) return 'an operation must be an object';
  const { client, key, op, input, output, invokedAt, completedAt, outcome, version } = candidate;
  if (!Number.isSafeInteger(client)) return 'client must be an integer';
  if (typeof key !== 'string') return 'key must be a string';
  if (typeof op !== 'string' || !OPERATION_NAMES.has(op)) {
    return 'op must be one of get, put, delete, cas, incr';
  }
  if (typeof outcome !== 'string' || !OUTCOMES.has(outcome)) {
    return 'outcome must be one of ok, failed, unknown';
  }
  if (typeof invokedAt !== 'number' || !Number.isFinite(invokedAt)) {
    return 'invokedAt must be a finite number';
  }
  if (completedAt === null) {
    if (outcome !== 'unknown') return 'completedAt may be null only when the outcome is unknown';
  } else if (typeof completedAt !== 'number' || !Number.isFinite(completedAt)) {
    return 'completedAt must be a finite number or null';
  } else if (completedAt < invokedAt) {
    return 'completedAt must not be before invokedAt';
  }
  if (version !== undefined) {
    if (!isVersion(version)) {
      return 'version must map node ids to positive integers (a version vector)';
    }
    if (outcome !== 'ok') return 'version may be given only when the outcome is ok';
  }
  const checkOutput = outcome === 'ok';
  switch (op) {
    case 'get':
      if (input !== null) return 'get takes input null';
      if (checkOutput && !isValue(output)) return 'get returns a string or null';
      return null;
    case 'put':
      if (!isRecord(input) || typeof input.value !== 'string') {
        return 'put takes input { value: string }';
      }
      return null;
    case 'delete':
      if (input !== null) return 'delete takes input null';
      return null;
    case 'cas':
      if (!isRecord(input) || !isValue(input.expected) || typeof input.value !== 'string') {
        return 'cas takes input { expected: string | null, value: string }';
      }
      if (checkOutput && typeof output !== 'boolean') return 'cas returns true or false';
      return null;
    default:
      assert(op === 'incr', 'every operation name is handled');
      if (!isRecord(input) || !Number.isSafeInteger(input.delta)) {
        return 'incr takes input { delta: integer }';
      }
      if (checkOutput && (typeof output !== 'string' || !isDecimalInteger(output))) {
        return 'incr returns the new value as a decimal integer string';
      }
      return null;
  }
}

const DECIMAL_INTEGER = /^-?(0|[1-9][0-9]*)$/;

/** Whether an incr can read this value: canonical decimal integers only ("-0", "01" are not). */
export function isDecimalInteger(text: string): boolean {
  return DECIMAL_INTEGER.test(text) && text !== '-0';
}

/** Throws, naming the operation's position, when any operation is malformed. */
export function validateHistory(history: readonly unknown[]): asserts history is History {
  for (let index = 0; index < history.length; index++) {
    const problem = operationProblem(history[index]);
    if (problem !== null) throw new Error(`operation ${index}: ${problem}`);
  }
}

/** Reads a history written as JSON lines (one operation per line; blank lines skipped). */
export function parseHistoryLines(text: string): History {
  const operations: unknown[] = [];
  const lines = text.split('\n');
  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const line = lines[lineIndex]!.trim();
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (error) {
      throw new Error(`line ${lineIndex + 1}: not JSON (${(error as Error).message})`, {
        cause: error,
      });
    }
    const problem = operationProblem(parsed);
    if (problem !== null) throw new Error(`line ${lineIndex + 1}: ${problem}`);
    operations.push(parsed);
  }
  validateHistory(operations);
  return operations;
}

/** Writes a history as JSON lines, the form parseHistoryLines reads. */
export function formatHistoryLines(history: History): string {
  return history.map((operation) => JSON.stringify(operation) + '\n').join('');
}
