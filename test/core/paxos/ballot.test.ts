// Ballots: compareBallots is a total order (checked against a naive reference: the pair
// compared field by field), the zero ballot is below every proposer ballot, and a ballot's
// successor is the next one its proposer may use. Replay a failure with the seed and path
// fast-check prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compareBallots,
  isValidBallot,
  successorBallot,
  ZERO_BALLOT,
} from '../../../src/core/paxos/ballot.ts';
import type { Ballot } from '../../../src/core/paxos/ballot.ts';

const proposerBallot: fc.Arbitrary<Ballot> = fc.record({
  counter: fc.integer({ min: 1, max: 1_000 }),
  proposerId: fc.constantFrom('a', 'b', 'n1', 'n10', 'n2', 'p'),
});

/** The reference: counters as numbers, then ids as code-unit strings, nothing clever. */
function naiveCompare(a: Ballot, b: Ballot): number {
  const left = [a.counter, a.proposerId] as const;
  const right = [b.counter, b.proposerId] as const;
  if (left[0] !== right[0]) return left[0] - right[0];
  if (left[1] === right[1]) return 0;
  return [left[1], right[1]].sort()[0] === left[1] ? -1 : 1;
}

test('ballot order agrees with the naive pair order', () => {
  fc.assert(
    fc.property(proposerBallot, proposerBallot, (a, b) => {
      assert.equal(Math.sign(compareBallots(a, b)), Math.sign(naiveCompare(a, b)));
    }),
  );
});

test('ballot order is total, antisymmetric and transitive', () => {
  fc.assert(
    fc.property(proposerBallot, proposerBallot, proposerBallot, (a, b, c) => {
      assert.equal(Math.sign(compareBallots(a, b)) + Math.sign(compareBallots(b, a)), 0);
      assert.equal(
        compareBallots(a, b) === 0,
        a.counter === b.counter && a.proposerId === b.proposerId,
      );
      if (compareBallots(a, b) <= 0 && compareBallots(b, c) <= 0) {
        assert.ok(compareBallots(a, c) <= 0, 'a <= b <= c implies a <= c');
      }
    }),
  );
});

test('the zero ballot is below every ballot a proposer may use', () => {
  fc.assert(
    fc.property(proposerBallot, (ballot) => {
      assert.ok(compareBallots(ZERO_BALLOT, ballot) < 0);
      assert.ok(isValidBallot(ballot.counter, ballot.proposerId));
    }),
  );
  assert.ok(isValidBallot(0, ''));
  assert.ok(!isValidBallot(0, 'n1'), 'counter 0 belongs to the zero ballot only');
  assert.ok(!isValidBallot(1, ''), 'a proposer ballot names its proposer');
  assert.ok(!isValidBallot(-1, 'n1'));
  assert.ok(!isValidBallot(1.5, 'n1'));
  assert.ok(!isValidBallot(1, 'x'.repeat(257)));
});

test('a successor is above its ballot and every ballot of the same counter', () => {
  fc.assert(
    fc.property(proposerBallot, proposerBallot, (ballot, other) => {
      const successor = successorBallot(ballot);
      assert.equal(successor.proposerId, ballot.proposerId);
      assert.ok(compareBallots(successor, ballot) > 0);
      if (other.counter === ballot.counter) assert.ok(compareBallots(successor, other) > 0);
    }),
  );
});
