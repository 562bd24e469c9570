// The simulator-at-scale benchmark at toy size: it runs to its end, its counts add up, and
// the same seed gives the same simulated figures. Wall times and memory are not asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_DEFAULTS, runClusterScale, runSwimScale } from '../../bench/sim-scale.ts';

const SEED = Number(process.env['SIM_SCALE_SEED'] ?? 7);
const replay = `seed ${SEED} (replay: SIM_SCALE_SEED=${SEED} npx node --test test/bench/sim-scale.test.ts)`;

test('a 10-node cluster forms and completes every one of 500 operations, reads and writes adding up', () => {
  const options = { seed: SEED, nodeCount: 10, operations: 500, ...CLUSTER_DEFAULTS, clients: 20 };
  const result = runClusterScale(options);
  assert.equal(result.operations, 500, replay);
  assert.equal(result.reads + result.writes, result.operations, replay);
  assert.equal(result.ok + result.failed + result.unknown, result.operations, replay);
  assert.equal(result.ok, result.operations, `${replay}: no faults, so every operation is ok`);
  assert.ok(result.reads > 0 && result.writes > result.reads, `${replay}: 30% reads`);
  // Each operation needs at least a request to a replica and its answer.
  assert.ok(result.messagesSent >= 2 * result.operations, replay);
  assert.ok(result.workloadEvents >= result.operations, replay);
  assert.ok(result.workloadVirtualMs > 0 && result.formationEvents > 0, replay);
  assert.ok(result.rssBytesMax >= result.heapUsedBytesMax && result.heapUsedBytesMax > 0);
  const again = runClusterScale(options);
  assert.deepEqual(
    [again.workloadEvents, again.workloadVirtualMs, again.messagesSent, again.reads],
    [result.workloadEvents, result.workloadVirtualMs, result.messagesSent, result.reads],
    `${replay}: one seed, one run`,
  );
});

test('30 SWIM members stay alive through a probe round, then all 29 survivors mark the crashed one down', () => {
  const result = runSwimScale({ seed: SEED, memberCount: 30 });
  assert.ok(result.aliveEverywhere, replay);
  assert.equal(result.falseSuspicions, 0, replay);
  assert.equal(result.downHolders, 29, replay);
  assert.ok(result.firstSuspectAfterMs !== null && result.firstDownAfterMs !== null, replay);
  assert.ok(result.firstSuspectAfterMs <= result.firstDownAfterMs, replay);
  assert.ok(result.firstDownAfterMs <= result.detect.virtualMs, replay);
  // Every member probes once a period, each probe a ping and an ack, through the whole round.
  assert.ok(result.converge.messages >= 2 * 29 * 29, replay);
  assert.ok(result.converge.events > result.converge.messages, `${replay}: ticks are events too`);
  assert.ok(result.converge.virtualMs >= 29 * 1_000, replay);
});
