// Property tests of the linearizability checker against a register simulated sequentially:
// concurrent clients whose operations overlap at random, each operation taking effect at a
// random instant inside its interval (or, for an unknown outcome, at any instant after its
// invocation, or never). Such histories are linearizable by construction; the same history
// with one read changed to a value nobody wrote is not (the negative control).
// Replay a failure with the seed and path fast-check prints, passed to fc.assert.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import type { Operation, Outcome, Value } from '../../src/check/history.ts';
import { incrementedValue } from '../../src/check/register-model.ts';

const CLIENTS = 4;
const KEYS = ['alpha', 'beta', 'counter'];
const COUNTER_KEY = 2;
const NEVER_WRITTEN = 'never-written';

const plannedOperation = fc.record({
  client: fc.integer({ min: 0, max: CLIENTS - 1 }),
  key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  /** 0-1 get, 2-3 put (incr on the counter), 4 delete, 5 cas. */
  kind: fc.integer({ min: 0, max: 5 }),
  gapMs: fc.integer({ min: 0, max: 6 }),
  durationMs: fc.integer({ min: 0, max: 25 }),
  /** Where inside the interval (per mille) the operation takes effect. */
  effectPerMille: fc.integer({ min: 0, max: 1000 }),
  /** Picks the expected value of a cas among the values the key has had. */
  choice: fc.nat(),
  delta: fc.integer({ min: -3, max: 5 }),
  outcome: fc.constantFrom<Outcome | 'unknown-never'>(
    'ok',
    'ok',
    'ok',
    'ok',
    'ok',
    'ok',
    'failed',
    'unknown',
    'unknown-never',
  ),
  givesUp: fc.boolean(),
});

type Plan = typeof plannedOperation extends fc.Arbitrary<infer T> ? T : never;

/** Turns plans into a history by running them, in effect-time order, against true registers. */
function simulate(plans: readonly Plan[]): Operation[] {
  const clientFreeAtMs = new Array<number>(CLIENTS).fill(0);
  const history: Operation[] = [];
  const effects: { atMs: number; index: number }[] = [];
  const written: Value[][] = KEYS.map(() => [null]);
  plans.forEach((plan, index) => {
    const key = KEYS[plan.key]!;
    const invokedAt = clientFreeAtMs[plan.client]! + plan.gapMs;
    const completedAt = invokedAt + plan.durationMs;
    clientFreeAtMs[plan.client] = completedAt;
    const value = `v${index}`;
    const counter = plan.key === COUNTER_KEY;
    let operation: Operation;
    const base = { client: plan.client, key, invokedAt, completedAt, outcome: 'ok' as Outcome };
    if (plan.kind <= 1) operation = { ...base, op: 'get', input: null, output: null };
    else if (plan.kind <= 3 && counter)
      operation = { ...base, op: 'incr', input: { delta: plan.delta }, output: null };
    else if (plan.kind <= 3) operation = { ...base, op: 'put', input: { value }, output: null };
    else if (plan.kind === 4) operation = { ...base, op: 'delete', input: null, output: null };
    else {
      const seen = written[plan.key]!;
      const expected = seen[plan.choice % seen.length]!;
      operation = {
        ...base,
        op: 'cas',
        input: { expected, value: counter ? String(plan.delta) : value },
        output: null,
      };
    }
    if (operation.op === 'put' || operation.op === 'cas')
      written[plan.key]!.push(operation.input.value);
    history.push(operation);
    if (plan.outcome === 'failed') {
      operation.outcome = 'failed';
      return;
    }
    if (plan.outcome === 'ok') {
      effects.push({ atMs: invokedAt + (plan.durationMs * plan.effectPerMille) / 1000, index });
      return;
    }
    operation.outcome = 'unknown';
    operation.completedAt = plan.givesUp ? completedAt : null;
    // An unknown operation may land long after the client stopped waiting, or not at all.
    if (plan.outcome === 'unknown')
      effects.push({ atMs: invokedAt + (plan.durationMs * 3 * plan.effectPerMille) / 1000, index });
  });
  effects.sort((a, b) => a.atMs - b.atMs);
  const registers = new Map<string, Value>();
  for (const { index } of effects) {
    const operation = history[index]!;
    const state = registers.get(operation.key) ?? null;
    switch (operation.op) {
      case 'get':
        operation.output = state;
        break;
      case 'put':
        registers.set(operation.key, operation.input.value);
        break;
      case 'delete':
        registers.set(operation.key, null);
        break;
      case 'cas':
        operation.output = state === operation.input.expected;
        if (operation.output) registers.set(operation.key, operation.input.value);
        break;
      case 'incr': {
        const next = incrementedValue(state, operation.input.delta);
        if (next === null) {
          // The store refuses to increment a non-integer: the client sees a definite error.
          operation.outcome = 'failed';
        } else {
          operation.output = next;
          registers.set(operation.key, next);
        }
        break;
      }
    }
  }
  return history;
}

const plans = fc.array(plannedOperation, { minLength: 1, maxLength: 60, size: 'max' });

test('histories of a correct register under random concurrency are always linearizable', () => {
  fc.assert(
    fc.property(plans, (planned) => {
      const history = simulate(planned);
      const result = checkLinearizable(history, { budgetMs: 10_000 });
      assert.equal(result.result, 'linearizable', result.explanation);
    }),
    { numRuns: 300, seed: 20261123 },
  );
});

test('the same histories with one read changed to a value never written are never linearizable', () => {
  fc.assert(
    fc.property(plans, fc.nat(), (planned, pick) => {
      const history = simulate(planned);
      const reads = history.flatMap((operation, index) =>
        operation.op === 'get' && operation.outcome === 'ok' ? [index] : [],
      );
      fc.pre(reads.length > 0);
      const altered = reads[pick % reads.length]!;
      const broken = history.map((operation, index) =>
        index === altered ? ({ ...operation, output: NEVER_WRITTEN } as Operation) : operation,
      );
      const result = checkLinearizable(broken, { budgetMs: 10_000 });
      assert.equal(result.result, 'not-linearizable');
      assert.equal(result.key, history[altered]!.key);
      assert.equal(result.unplacedOperation, altered, result.explanation);
    }),
    { numRuns: 300, seed: 20261124 },
  );
});
