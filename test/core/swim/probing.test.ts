// The probe cycle of one node, driven by hand: round-robin rounds, the indirect stage,
// suspicion at the end of the period, relayed acks, down probes, and the bounds on
// piggybacked gossip.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../../src/core/prng.ts';
import { DEFAULT_SWIM_CONFIG, Swim, retransmitLimit } from '../../../src/core/swim/swim.ts';
import type { SwimMessage, SwimOutput } from '../../../src/core/swim/swim.ts';

const config = DEFAULT_SWIM_CONFIG;
const others = ['b', 'c', 'd', 'e', 'f', 'g'];

function pings(output: SwimOutput): { to: string; message: SwimMessage }[] {
  return output.sends.filter((send) => send.message.type === 'ping');
}

function ackFor(message: SwimMessage): SwimMessage {
  return { type: 'ack', sequence: message.sequence, incarnation: 0, updates: [] };
}

test('each round probes every other member exactly once, and rounds are reshuffled', () => {
  const swim = new Swim('a', ['a', ...others], config, new Prng(11));
  const rounds: string[][] = [];
  let round: string[] = [];
  for (let period = 0; period < others.length * 8; period++) {
    const nowMs = period * config.probeIntervalMs;
    const sent = pings(swim.tick(nowMs));
    assert.equal(sent.length, 1, 'one probe per period');
    const probe = sent[0]!;
    round.push(probe.to);
    assert.equal(swim.receive(probe.to, ackFor(probe.message), nowMs + 5).changes.length, 0);
    if (round.length === others.length) {
      assert.deepEqual([...round].sort(), others, `round ${rounds.length} is a permutation`);
      rounds.push(round);
      round = [];
    }
  }
  const orders = new Set(rounds.map((order) => order.join()));
  assert.ok(orders.size > 1, 'the order changes between rounds');
});

test('an unanswered probe is retried directly and through k others after the timeout, then suspected at the end of the period', () => {
  const swim = new Swim('a', ['a', ...others], config, new Prng(12));
  const [probe] = pings(swim.tick(0));
  const target = probe!.to;
  assert.equal(swim.tick(config.probeTimeoutMs - 1).sends.length, 0);
  const escalation = swim.tick(config.probeTimeoutMs).sends;
  const requests = escalation.filter((send) => send.message.type === 'ping-req');
  assert.equal(requests.length, config.indirectProbes);
  for (const request of requests) {
    assert.notEqual(request.to, target);
    assert.equal(request.message.type === 'ping-req' && request.message.target, target);
    assert.equal(request.message.sequence, probe!.message.sequence);
  }
  assert.deepEqual(
    pings({ sends: escalation, changes: [] }).map((send) => send.to),
    [target],
    'one direct retry',
  );
  const end = swim.tick(config.probeIntervalMs);
  assert.deepEqual(end.changes, [{ id: target, liveness: 'suspect', incarnation: 0 }]);
  // The suspect is told at once, the ping carrying the suspicion.
  const told = end.sends.find(
    (send) => send.to === target && send.message.updates.some((update) => update.id === target),
  );
  assert.ok(told !== undefined, 'the suspect hears of its suspicion');
});

test('an ack relayed by a helper under the probe sequence keeps the target alive', () => {
  const swim = new Swim('a', ['a', ...others], config, new Prng(13));
  const [probe] = pings(swim.tick(0));
  const requests = swim
    .tick(config.probeTimeoutMs)
    .sends.filter((send) => send.message.type === 'ping-req');
  const helper = requests[0]!.to;
  swim.receive(helper, ackFor(probe!.message), config.probeTimeoutMs + 30);
  assert.equal(swim.tick(config.probeIntervalMs).changes.length, 0);
  assert.equal(swim.liveness(probe!.to), 'alive');
});

test('a helper pings the target for a ping-req and relays its ack under the requester sequence', () => {
  const swim = new Swim('a', ['a', ...others], config, new Prng(14));
  const output = swim.receive(
    'b',
    { type: 'ping-req', sequence: 77, target: 'c', incarnation: 0, updates: [] },
    0,
  );
  const [ping] = pings(output);
  assert.equal(ping!.to, 'c');
  const relayed = swim.receive('c', ackFor(ping!.message), 10).sends;
  assert.equal(relayed.length, 1);
  assert.equal(relayed[0]!.to, 'b');
  assert.equal(relayed[0]!.message.type, 'ack');
  assert.equal(relayed[0]!.message.sequence, 77);
  // The relay is one-shot: a duplicate ack is not relayed twice.
  assert.equal(swim.receive('c', ackFor(ping!.message), 11).sends.length, 0);
});

test('down members leave the rounds and are pinged once per down-probe interval', () => {
  const swim = new Swim('a', ['a', ...others], config, new Prng(15));
  // b is suspected and, unrefuted, declared down by this node's own timer.
  swim.receive(
    'c',
    {
      type: 'ack',
      sequence: 0,
      incarnation: 0,
      updates: [{ id: 'b', liveness: 'suspect', incarnation: 0 }],
    },
    0,
  );
  const downAtMs = config.suspicionTimeoutMs;
  swim.tick(downAtMs);
  assert.equal(swim.liveness('b'), 'down');
  const pingTimesMs: number[] = [];
  for (let nowMs = downAtMs + 100; nowMs <= downAtMs + 30_000; nowMs += 100) {
    for (const send of pings(swim.tick(nowMs))) {
      if (send.to === 'b') {
        pingTimesMs.push(nowMs);
        assert.deepEqual(send.message.updates[0], { id: 'b', liveness: 'down', incarnation: 0 });
      } else {
        swim.receive(send.to, ackFor(send.message), nowMs + 5);
      }
    }
  }
  assert.equal(pingTimesMs.length, 30_000 / config.downProbeIntervalMs);
  for (let index = 1; index < pingTimesMs.length; index++) {
    assert.equal(pingTimesMs[index]! - pingTimesMs[index - 1]!, config.downProbeIntervalMs);
  }
});

test('each message carries at most piggybackMax updates, and each update is sent at most its retransmit limit', () => {
  const members = Array.from({ length: 20 }, (_, index) => `m${index}`);
  const swim = new Swim('m0', members, config, new Prng(16));
  const news = members.slice(1).map((id) => ({ id, liveness: 'alive' as const, incarnation: 1 }));
  swim.receive('m1', { type: 'ack', sequence: 0, incarnation: 1, updates: news }, 0);
  const limit = retransmitLimit(config, members.length);
  const sentCount = new Map<string, number>();
  for (let nowMs = 0; nowMs <= 60_000; nowMs += 100) {
    for (const send of swim.tick(nowMs).sends) {
      assert.ok(send.message.updates.length <= config.piggybackMax);
      for (const update of send.message.updates) {
        sentCount.set(update.id, (sentCount.get(update.id) ?? 0) + 1);
      }
      if (send.message.type === 'ping')
        swim.receive(send.to, { ...ackFor(send.message), incarnation: 1 }, nowMs + 5);
    }
  }
  assert.equal(sentCount.size, news.length, 'every update was gossiped');
  for (const [id, count] of sentCount) assert.ok(count <= limit, `${id} sent ${count} times`);
  assert.ok(
    [...sentCount.values()].some((count) => count === limit),
    'updates are sent up to the limit',
  );
});
