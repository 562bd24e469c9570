// Chain replication under faults, proved by its histories: on every seed a simulated chain of
// 2 to 5 replicas on 3 to 5 nodes serves concurrent clients through crashes, pauses, nodes cut
// off from the master or from every other replica, and a network that delays, loses,
// duplicates and reorders; the master removes failed replicas and appends new tails. Every
// history must be linearizable, every final read must succeed, and the final chain must agree
// with itself and with its disks. CHAIN_SEEDS=1..1000 runs more.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import { formatHistoryLines } from '../../src/check/history.ts';
import { ChainWorld, drawChainWorldOptions } from '../../src/sim/chain-world.ts';
import { chainReplayHint, chainSeeds } from './chain-seeds.ts';

const FILE = 'chain-linearizability.test.ts';
const CHECK_BUDGET_MS = 20_000;
// Writes that end unknown may land at any later point; a key with many needs a larger search.
const CHECK_MEMO_ENTRIES = 2_000_000;

test('every chain history is linearizable, every final read succeeds, and the chain converges', (t) => {
  const tally = { operations: 0, ok: 0, failed: 0, unknown: 0, reconfigurations: 0, faults: 0 };
  for (const seed of chainSeeds(1, 200)) {
    const world = new ChainWorld(drawChainWorldOptions(seed));
    const live = world.runScenario();
    const where = chainReplayHint(seed, FILE);
    assert.ok(live, `a final read did not succeed: ${where}`);
    const verdict = checkLinearizable(world.history, {
      budgetMs: CHECK_BUDGET_MS,
      maxMemoEntries: CHECK_MEMO_ENTRIES,
    });
    if (verdict.result !== 'linearizable') {
      assert.fail(
        `${verdict.result}: ${verdict.explanation ?? ''}\n${where}\n` +
          formatHistoryLines(world.history.filter((operation) => operation.key === verdict.key)),
      );
    }
    assert.deepEqual(world.replicaProblems(), [], `the final chain disagrees: ${where}`);
    assert.equal(world.counters().malformedDropped, 0, `a message sent was malformed: ${where}`);
    for (const operation of world.history) tally[operation.outcome] += 1;
    tally.operations += world.history.length;
    tally.reconfigurations += world.configs.length - 1;
    tally.faults += world.struck.length;
  }
  t.diagnostic(JSON.stringify(tally));
});

test('a seed decides the whole run: the same seed gives the same history', () => {
  for (const seed of [3, 41]) {
    const first = new ChainWorld(drawChainWorldOptions(seed));
    const second = new ChainWorld(drawChainWorldOptions(seed));
    first.runScenario();
    second.runScenario();
    assert.equal(formatHistoryLines(first.history), formatHistoryLines(second.history));
    assert.deepEqual(first.configs, second.configs);
  }
});
