// Workloads in the simulator record histories that checkers can read: every operation once,
// with its outcome, replayable from the seed, and round-tripping as JSON lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHistoryLines, parseHistoryLines, validateHistory } from '../../src/check/history.ts';
import { checkLinearizable } from '../../src/check/linearizability.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { judgeRun, type FullJudgement } from '../../src/sim/judge.ts';
import { runWorkload, type WorkloadOptions } from '../../src/sim/workload.ts';
import { descends } from '../../src/check/version.ts';

const OPTIONS: WorkloadOptions = {
  seed: 1,
  clients: 6,
  operations: 300,
  keys: 20,
  distribution: 'zipfian',
  keyspace: 'default',
  readFraction: 0.5,
  deleteFraction: 0.1,
  thinkMsMax: 20,
  timeoutMs: 1_000,
};

function formed(world: ClusterWorld): ClusterWorld {
  assert.ok(world.waitFormed(), 'the cluster forms');
  return world;
}

function faultyRun(seed: number): string {
  const world = formed(new ClusterWorld({ seed, nodeCount: 5, lossRate: 0.02, tailRate: 0.02 }));
  world.at(world.nowMs + 400, () => world.crash('n2'));
  world.at(world.nowMs + 3_000, () => world.restart('n2'));
  const history = runWorkload(world, { ...OPTIONS, seed });
  assert.equal(history.length, OPTIONS.operations, `seed ${seed}: every operation recorded`);
  validateHistory(history);
  const outcomes = new Set(history.map((operation) => operation.outcome));
  assert.ok(outcomes.has('ok'), `seed ${seed}: most operations succeed`);
  for (const operation of history) {
    assert.equal(operation.completedAt === null, operation.outcome === 'unknown', `seed ${seed}`);
    if (operation.completedAt !== null) assert.ok(operation.completedAt >= operation.invokedAt);
  }
  const lines = formatHistoryLines(history);
  assert.deepEqual(parseHistoryLines(lines), history, `seed ${seed}: JSON lines round trip`);
  return lines;
}

test('a workload under faults records every operation once, and one seed gives the same history', () => {
  for (const seed of [11, 12, 13]) assert.equal(faultyRun(seed), faultyRun(seed));
  assert.notEqual(faultyRun(11), faultyRun(12));
});

test('ok reads and writes record the version the node answered, and a key with one writer only moves forward', () => {
  const world = formed(new ClusterWorld({ seed: 51, nodeCount: 5 }));
  const history = runWorkload(world, { ...OPTIONS, seed: 51, keysPerClient: true });
  const lastVersion = new Map<string, Record<string, number>>();
  let versioned = 0;
  for (const operation of history) {
    if (operation.outcome !== 'ok') {
      assert.equal(operation.version, undefined, 'only ok operations carry a version');
      continue;
    }
    if (operation.version === undefined) {
      // Only a delete that found nothing to delete writes no version.
      assert.equal(operation.op, 'delete');
      continue;
    }
    versioned++;
    const before = lastVersion.get(operation.key) ?? {};
    assert.ok(
      descends(operation.version, before),
      `#${history.indexOf(operation)} on ${operation.key}: ${JSON.stringify(operation.version)} after ${JSON.stringify(before)}`,
    );
    lastVersion.set(operation.key, { ...operation.version });
  }
  assert.ok(versioned > OPTIONS.operations / 2, `${versioned} operations carry a version`);
});

test('one client without faults: its history is linearizable by the checker', () => {
  for (const seed of [21, 22, 23]) {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5 }));
    const history = runWorkload(world, { ...OPTIONS, seed, clients: 1, operations: 200 });
    assert.ok(
      history.every((operation) => operation.outcome === 'ok'),
      `seed ${seed}`,
    );
    const verdict = checkLinearizable(history, { budgetMs: 5_000 });
    assert.equal(verdict.result, 'linearizable', `seed ${seed}: ${verdict.explanation ?? ''}`);
  }
});

test('negative control: one client with R = W = 1 reads stale values the checker rejects', () => {
  const verdicts = [31, 32, 33, 34].map((seed) => {
    const world = formed(new ClusterWorld({ seed, nodeCount: 5, delayMsMax: 15 }));
    const history = runWorkload(world, {
      ...OPTIONS,
      seed,
      clients: 1,
      operations: 200,
      thinkMsMax: 2,
      r: 1,
      w: 1,
    });
    return checkLinearizable(history, { budgetMs: 5_000 }).result;
  });
  assert.ok(verdicts.includes('not-linearizable'), `verdicts: ${verdicts.join(', ')}`);
});

/** A safety phase with fixed faults, then the liveness phase and the verdict. */
function settledRun(seed: number, faults: { skipFsync: boolean }): FullJudgement {
  const world = formed(
    new ClusterWorld({
      seed,
      nodeCount: 5,
      lossRate: 0.02,
      tailRate: 0.01,
      // A slow disk widens the window in which a lying one loses acknowledged writes.
      commitMsMin: 5,
      commitMsMax: 40,
      skipFsync: faults.skipFsync,
    }),
  );
  const startMs = world.nowMs;
  // A power loss while writes flow at full rate (a lying disk then loses some it acknowledged):
  // every node stops at once, and starts again.
  world.at(startMs + 200, () => {
    for (const id of world.ids) if (world.isUp(id)) world.crash(id);
  });
  world.at(startMs + 300, () => {
    for (const id of world.ids) if (!world.isUp(id)) world.restart(id);
  });
  world.at(startMs + 800, () => world.crash('n2'));
  world.at(startMs + 2_500, () => world.restart('n2'));
  world.at(startMs + 1_000, () => world.isolate('n4'));
  world.at(startMs + 4_000, () => world.healAll());
  const history = runWorkload(world, {
    ...OPTIONS,
    seed,
    operations: 400,
    readFraction: 0.3,
    keysPerClient: true,
  });
  // A lying disk also breaks the node's own read-your-writes (storage lags what the node
  // was told is durable), so its hint counts need not settle: it gets a fixed time.
  return judgeRun(world, history, {
    settleTimeoutMs: faults.skipFsync ? 20_000 : 60_000,
    requireSettled: !faults.skipFsync,
  });
}

test('under crashes, a power loss, a partition and loss, no acknowledged write is lost and replicas converge', () => {
  for (const seed of [41, 42, 43]) {
    const judgement = settledRun(seed, { skipFsync: false });
    assert.ok(judgement.alive && judgement.hintsLeft === 0, `seed ${seed}: the cluster settles`);
    assert.ok(judgement.keysChecked > 50, `seed ${seed}: keys checked`);
    assert.deepEqual(judgement.unreadable, [], `seed ${seed}: every key readable once settled`);
    assert.deepEqual(judgement.lost, [], `seed ${seed}`);
    assert.deepEqual(judgement.diverged, [], `seed ${seed}: replicas agree once settled`);
    assert.deepEqual(judgement.anomalies, [], `seed ${seed}`);
  }
});

test('negative control: with a disk that acknowledges before it writes, a power loss loses acknowledged writes', () => {
  const violations = [41, 42, 43].flatMap((seed) => settledRun(seed, { skipFsync: true }).lost);
  assert.ok(violations.length > 0, 'the checker must see the writes the lying disk lost');
});
