// What a receiving node reports of its copies while a join runs: its receive rate over all
// copies tracks the rate it really receives at (bytes received over the time spent), where
// a sum of the running copies' own averages reads low: copies shorter than the rate window
// show less than their rate, and copies done drop out of the sum. And the node's limit holds
// over many copies of one page each, which pace themselves at their shares but would each
// send a first page at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { formed, put, seedOr } from './sim-helpers.ts';

/**
 * Three nodes holding 3,000 keys of 200 bytes (over 16 partitions per keyspace, so every
 * copy is one page), and n4 asked to join with its handoff held to `bytesPerSecond`.
 */
function joinUnderLimit(bytesPerSecond: number): ClusterWorld {
  const world = formed(new ClusterWorld({ seed: seedOr(11), nodeCount: 3 }));
  for (let index = 0; index < 3000; index++) {
    world.submit(`n${(index % 3) + 1}`, put(`key-${index}`, 'v'.repeat(200)), () => {});
    if (index % 100 === 99) world.runFor(50);
  }
  world.runFor(2_000);
  world.addNode('n4', 'n1');
  world.node('n4').setHandoff({ bytesPerSecond });
  assert.ok(world.runUntil(() => world.node('n1').clusterMap()!.members.length === 4, 10_000));
  const reply = world.call('n1', {
    op: 'changeMembership',
    keyspace: '',
    change: { kind: 'join', id: 'n4' },
    dryRun: false,
  });
  assert.ok(reply.ok, JSON.stringify(reply));
  return world;
}

test('the receiver reports the rate it receives at, over all its copies', () => {
  // A rate over a sliding window is meant for transfers longer than a few of its buckets
  // (half a second each): the limit holds the copying to a few seconds.
  const world = joinUnderLimit(250_000);
  const samples: { atMs: number; bytes: number; reported: number; summed: number }[] = [];
  const committed = world.runUntil(() => {
    const handoff = world.node('n4').clusterStatus().handoff;
    let bytes = 0;
    let summed = 0;
    for (const copy of handoff.transfers) {
      bytes += copy.bytesReceived;
      if (copy.state === 'running') summed += copy.bytesPerSecond;
    }
    if (
      handoff.changeEpoch !== null &&
      bytes > 0 &&
      handoff.copiesDone < handoff.transfers.length
    ) {
      samples.push({ atMs: world.nowMs, bytes, reported: handoff.bytesPerSecond, summed });
    }
    return world.node('n1').clusterMap()!.change === undefined;
  }, 120_000);
  assert.ok(committed, 'the join commits');
  assert.ok(samples.length >= 20, `sampled while copying: ${samples.length}`);
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const actual = ((last.bytes - first.bytes) * 1000) / (last.atMs - first.atMs);
  const median = (values: number[]): number => values.sort((a, b) => a - b)[values.length >> 1]!;
  const reported = median(samples.slice(samples.length >> 2).map((sample) => sample.reported));
  const summed = median(samples.slice(samples.length >> 2).map((sample) => sample.summed));
  const line = `actual ${Math.round(actual)} B/s, reported ${Math.round(reported)}, copies summed ${Math.round(summed)}`;
  assert.ok(reported > actual * 0.6 && reported < actual * 1.6, line);
  assert.ok(summed < reported, `the copies' own averages read lower: ${line}`);
});

test("the node's limit holds over many copies of one page each: a copy starts only when the node's schedule allows", () => {
  const limit = 250_000;
  const world = joinUnderLimit(limit);
  let firstMs = -1;
  let lastMs = -1;
  let bytes = 0;
  let copies = 0;
  const committed = world.runUntil(() => {
    const handoff = world.node('n4').clusterStatus().handoff;
    let received = 0;
    for (const copy of handoff.transfers) received += copy.bytesReceived;
    copies = Math.max(copies, handoff.transfers.length);
    if (received > 0 && firstMs < 0) firstMs = world.nowMs;
    if (received > bytes) {
      bytes = received;
      lastMs = world.nowMs;
    }
    return world.node('n1').clusterMap()!.change === undefined;
  }, 120_000);
  assert.ok(committed, 'the join commits');
  assert.ok(copies >= 40, `many small copies: ${copies}`);
  const rate = (bytes * 1000) / (lastMs - firstMs);
  // Unlimited, this join moves about 2.2 MB/s.
  assert.ok(
    rate <= limit * 1.1,
    `${Math.round(rate)} B/s over ${lastMs - firstMs} ms, limit ${limit}`,
  );
});
