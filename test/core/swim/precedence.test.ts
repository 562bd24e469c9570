// Incarnation precedence, checked against the SWIM paper's rules written out case by case,
// and driven through a Swim instance: refutation, down as a state a member comes back from,
// and the answers a node gives about itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Prng } from '../../../src/core/prng.ts';
import { supersedes } from '../../../src/core/swim/member-list.ts';
import { DEFAULT_SWIM_CONFIG, Swim } from '../../../src/core/swim/swim.ts';
import type { Liveness, SwimMessage, SwimUpdate } from '../../../src/core/swim/swim.ts';

/** The paper's rules, one case at a time, with down ordered like its confirm message. */
function referenceSupersedes(
  incoming: { liveness: Liveness; incarnation: number },
  held: { liveness: Liveness; incarnation: number },
): boolean {
  switch (incoming.liveness) {
    case 'alive':
      return incoming.incarnation > held.incarnation;
    case 'suspect':
      return held.liveness === 'alive'
        ? incoming.incarnation >= held.incarnation
        : incoming.incarnation > held.incarnation;
    case 'down':
      return held.liveness === 'down'
        ? incoming.incarnation > held.incarnation
        : incoming.incarnation >= held.incarnation;
  }
}

const livenessArbitrary = fc.constantFrom<Liveness>('alive', 'suspect', 'down');
const stateArbitrary = fc.record({
  liveness: livenessArbitrary,
  incarnation: fc.integer({ min: 0, max: 4 }),
});

test('update precedence matches the paper rule by rule', () => {
  fc.assert(
    fc.property(stateArbitrary, stateArbitrary, (incoming, held) => {
      assert.equal(supersedes(incoming, held), referenceSupersedes(incoming, held));
    }),
    { numRuns: 500, seed: 0x5e1 },
  );
});

function gossip(updates: SwimUpdate[], incarnation = 0): SwimMessage {
  return { type: 'ack', sequence: 1, incarnation, updates };
}

function freshSwim(): Swim {
  return new Swim('a', ['a', 'b', 'c', 'd'], DEFAULT_SWIM_CONFIG, new Prng(1));
}

/**
 * Makes `id` down at `incarnation` the only way a node declares one: a suspicion (gossiped
 * by c) that its own timer sees expire. Answers the time at which it became down.
 */
function declareDown(swim: Swim, id: string, incarnation: number, atMs: number): number {
  swim.receive('c', gossip([{ id, liveness: 'suspect', incarnation }]), atMs);
  const downAtMs = atMs + DEFAULT_SWIM_CONFIG.suspicionTimeoutMs;
  swim.tick(downAtMs);
  assert.equal(swim.liveness(id), 'down');
  return downAtMs;
}

test('alive with a higher incarnation refutes a suspicion; alive at the same one does not', () => {
  const swim = freshSwim();
  const first = swim.receive('c', gossip([{ id: 'b', liveness: 'suspect', incarnation: 0 }]), 0);
  assert.deepEqual(first.changes, [{ id: 'b', liveness: 'suspect', incarnation: 0 }]);
  assert.equal(
    swim.receive('c', gossip([{ id: 'b', liveness: 'alive', incarnation: 0 }]), 1).changes.length,
    0,
  );
  assert.equal(swim.liveness('b'), 'suspect');
  const refuted = swim.receive('c', gossip([{ id: 'b', liveness: 'alive', incarnation: 1 }]), 2);
  assert.deepEqual(refuted.changes, [{ id: 'b', liveness: 'alive', incarnation: 1 }]);
  // An old suspicion arriving late changes nothing.
  assert.equal(
    swim.receive('c', gossip([{ id: 'b', liveness: 'suspect', incarnation: 0 }]), 3).changes.length,
    0,
  );
  assert.equal(swim.liveness('b'), 'alive');
  assert.equal(swim.incarnation('b'), 1);
});

test('down overrides suspect at the same incarnation and only a higher incarnation brings the member back', () => {
  const swim = freshSwim();
  const downAtMs = declareDown(swim, 'b', 2, 0);
  swim.receive('c', gossip([{ id: 'b', liveness: 'alive', incarnation: 2 }]), downAtMs + 1);
  swim.receive('c', gossip([{ id: 'b', liveness: 'suspect', incarnation: 2 }]), downAtMs + 2);
  assert.equal(swim.liveness('b'), 'down', 'same-incarnation alive or suspect does not undo down');
  const back = swim.receive(
    'c',
    gossip([{ id: 'b', liveness: 'alive', incarnation: 3 }]),
    downAtMs + 3,
  );
  assert.deepEqual(back.changes, [{ id: 'b', liveness: 'alive', incarnation: 3 }]);
});

test("another member's down is taken as a suspicion: only this node's own timer declares down", () => {
  const swim = freshSwim();
  const heard = swim.receive('c', gossip([{ id: 'b', liveness: 'down', incarnation: 0 }]), 0);
  assert.deepEqual(heard.changes, [{ id: 'b', liveness: 'suspect', incarnation: 0 }]);
  // The accused is pinged at once, with the suspicion, so that it can refute.
  const ping = heard.sends.find((send) => send.to === 'b');
  assert.ok(ping !== undefined && ping.message.type === 'ping');
  assert.deepEqual(ping.message.updates[0], { id: 'b', liveness: 'suspect', incarnation: 0 });
  const refuted = swim.receive(
    'b',
    { type: 'ack', sequence: ping.message.sequence, incarnation: 1, updates: [] },
    10,
  );
  assert.deepEqual(refuted.changes, [{ id: 'b', liveness: 'alive', incarnation: 1 }]);
  // Unrefuted, the suspicion ends in down by this node's timer.
  swim.receive('c', gossip([{ id: 'd', liveness: 'down', incarnation: 0 }]), 20);
  assert.equal(swim.liveness('d'), 'suspect');
  swim.tick(20 + DEFAULT_SWIM_CONFIG.suspicionTimeoutMs);
  assert.equal(swim.liveness('d'), 'down');
});

test('a message from a member is itself proof that it is alive at the incarnation it carries', () => {
  const swim = freshSwim();
  const downAtMs = declareDown(swim, 'b', 0, 0);
  const stale = swim.receive(
    'b',
    { type: 'ping', sequence: 9, incarnation: 0, updates: [] },
    downAtMs + 1,
  );
  assert.equal(
    swim.liveness('b'),
    'down',
    'a message at the declared incarnation is no refutation',
  );
  // The answer tells b what we hold about it, so that it can refute.
  const ack = stale.sends.find((send) => send.to === 'b')!.message;
  assert.deepEqual(ack.updates[0], { id: 'b', liveness: 'down', incarnation: 0 });
  const fresh = swim.receive(
    'b',
    { type: 'ping', sequence: 10, incarnation: 1, updates: [] },
    downAtMs + 2,
  );
  assert.deepEqual(fresh.changes, [{ id: 'b', liveness: 'alive', incarnation: 1 }]);
});

test('a node that hears it is suspected or down raises its incarnation and spreads alive', () => {
  const swim = freshSwim();
  swim.receive('c', gossip([{ id: 'a', liveness: 'suspect', incarnation: 0 }]), 0);
  assert.equal(swim.incarnation('a'), 1);
  swim.receive('c', gossip([{ id: 'a', liveness: 'down', incarnation: 3 }]), 1);
  assert.equal(swim.incarnation('a'), 4);
  assert.equal(swim.liveness('a'), 'alive', 'a node is always alive to itself');
  // A stale accusation does not raise the incarnation again but the refutation goes out.
  const output = swim.receive(
    'c',
    {
      type: 'ping',
      sequence: 4,
      incarnation: 0,
      updates: [{ id: 'a', liveness: 'suspect', incarnation: 2 }],
    },
    2,
  );
  assert.equal(swim.incarnation('a'), 4);
  const ack = output.sends.find((send) => send.to === 'c')!.message;
  assert.equal(ack.incarnation, 4);
  assert.ok(
    ack.updates.some(
      (update) => update.id === 'a' && update.liveness === 'alive' && update.incarnation === 4,
    ),
  );
});

test('a suspect that is not refuted within the suspicion timeout becomes down, and changes report each transition once', () => {
  const swim = freshSwim();
  swim.receive('c', gossip([{ id: 'b', liveness: 'suspect', incarnation: 0 }]), 1000);
  const timeoutMs = DEFAULT_SWIM_CONFIG.suspicionTimeoutMs;
  assert.equal(swim.tick(1000 + timeoutMs - 1).changes.length, 0);
  assert.deepEqual(swim.tick(1000 + timeoutMs).changes, [
    { id: 'b', liveness: 'down', incarnation: 0 },
  ]);
  assert.equal(swim.tick(1000 + timeoutMs + 1).changes.length, 0);
});

test('setMembers keeps the state of members kept, adds new ones alive, and forgets removed ones', () => {
  const swim = freshSwim();
  const downAtMs = declareDown(swim, 'b', 5, 0);
  swim.setMembers(['a', 'b', 'e']);
  assert.deepEqual(swim.members(), [
    { id: 'a', liveness: 'alive', incarnation: 0 },
    { id: 'b', liveness: 'down', incarnation: 5 },
    { id: 'e', liveness: 'alive', incarnation: 0 },
  ]);
  assert.throws(() => swim.liveness('c'), /not one/);
  // Gossip about a member no longer in the map is ignored.
  assert.equal(
    swim.receive('e', gossip([{ id: 'c', liveness: 'down', incarnation: 9 }]), downAtMs + 1).changes
      .length,
    0,
  );
});
