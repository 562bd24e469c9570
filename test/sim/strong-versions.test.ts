// The strong judge's version check (checkStrongVersions in src/sim/judge.ts): each version of
// a key names one value, and no operation sees a version older than one an operation that
// ended before it began had seen. Hand cases for each rule, and properties: observations of
// any sequential register, each taken at a point inside its operation's interval, never
// raise a problem; one observation moved to an older version, after a later one ended,
// always does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkStrongVersions } from '../../src/sim/judge.ts';
import type { VersionObservation } from '../../src/sim/register-workload.ts';

function observation(
  operation: number,
  version: number,
  value: string | null,
  invokedAt: number,
  completedAt: number,
  key = 'k',
): VersionObservation {
  return { key, operation, version, value, invokedAt, completedAt };
}

test('a version that names two values of one key is a problem; the same version on two keys is not', () => {
  assert.deepEqual(
    checkStrongVersions([
      observation(0, 3, 'a', 0, 10),
      observation(1, 3, 'a', 20, 30),
      observation(2, 3, 'b', 40, 50, 'other'),
    ]),
    [],
  );
  assert.deepEqual(
    checkStrongVersions([observation(0, 3, 'a', 0, 10), observation(1, 3, null, 20, 30)]),
    ['k: version 3 names "a" (operation 0) and null (operation 1)'],
  );
});

test('a version older than one seen by an operation that had ended is a problem; overlapping operations may see either', () => {
  assert.deepEqual(
    checkStrongVersions([observation(0, 5, 'a', 0, 10), observation(1, 4, 'b', 11, 20)]),
    ['k: operation 1 saw version 4 after operation 0 had ended at version 5'],
  );
  // Operation 1 began before operation 0 ended (or as it ended: times are whole ms).
  assert.deepEqual(
    checkStrongVersions([observation(0, 5, 'a', 0, 10), observation(1, 4, 'b', 10, 20)]),
    [],
  );
  assert.deepEqual(
    checkStrongVersions([observation(0, 5, 'a', 0, 10), observation(1, 4, 'b', 5, 20)]),
    [],
  );
});

test('problems are bounded per key: one bug seen many times is reported a few times', () => {
  const observations = [observation(0, 9, 'a', 0, 1)];
  for (let index = 1; index <= 20; index++) {
    observations.push(observation(index, 2, 'b', 10 * index, 10 * index + 1));
  }
  assert.equal(checkStrongVersions(observations).length, 5);
});

/** A sequential register's history: per step, how far the version moves and the timing. */
const sequentialRun = fc.array(
  fc.record({
    versionStep: fc.integer({ min: 0, max: 2 }),
    before: fc.integer({ min: 0, max: 30 }),
    after: fc.integer({ min: 0, max: 30 }),
  }),
  { minLength: 1, maxLength: 40 },
);

/** Observations of the run: step i takes effect at time 10 * i, inside its interval. */
function observe(run: readonly { versionStep: number; before: number; after: number }[]) {
  let version = 0;
  return run.map((step, index) => {
    version += step.versionStep;
    const atMs = 10 * index;
    return observation(index, version, `v${version}`, atMs - step.before, atMs + step.after);
  });
}

test('property: observations of a sequential register, each inside its interval, raise no problem', () => {
  fc.assert(
    fc.property(sequentialRun, (run) => {
      assert.deepEqual(checkStrongVersions(observe(run)), []);
    }),
    { seed: 0x5eed, numRuns: 300 },
  );
});

test('property: an observation moved to an older version after a later one ended is caught', () => {
  fc.assert(
    fc.property(sequentialRun, fc.nat(), (run, pick) => {
      const observations = observe(run);
      // Pairs (earlier, later) where the earlier ended strictly before the later began.
      const pairs: [number, number][] = [];
      for (let later = 0; later < observations.length; later++) {
        for (let earlier = 0; earlier < later; earlier++) {
          if (observations[earlier]!.completedAt < observations[later]!.invokedAt) {
            pairs.push([earlier, later]);
          }
        }
      }
      fc.pre(pairs.length > 0);
      const [earlier, later] = pairs[pick % pairs.length]!;
      const older = observations[earlier]!.version - 1;
      observations[later] = { ...observations[later]!, version: older, value: `v${older}` };
      const problems = checkStrongVersions(observations);
      assert.ok(problems.length > 0, JSON.stringify(observations));
    }),
    { seed: 0x5eed, numRuns: 300 },
  );
});
