// The simulator's promise: one seed, one run. The same seed must give a byte-identical trace
// of every input and effect; a different seed must not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSingleNodeSimulation } from '../../src/sim/single-node-simulation.ts';
import { openStorage } from '../../src/storage/open-storage.ts';

async function traceOf(seed: number): Promise<string> {
  const result = await runSingleNodeSimulation({
    seed,
    storage: await openStorage('memory', ''),
    clients: 8,
    operations: 600,
    keyCount: 20,
    tickMs: 100,
    startMs: 1_700_000_000_000,
  });
  assert.equal(result.completed, 600, 'every operation answered');
  return result.trace.join('\n');
}

test('one seed gives a byte-identical trace twice', async () => {
  const first = await traceOf(42);
  const second = await traceOf(42);
  assert.ok(first.length > 10_000, 'the trace is too short to mean anything');
  assert.equal(first, second);
});

test('different seeds give different traces', async () => {
  assert.notEqual(await traceOf(1), await traceOf(2));
});
