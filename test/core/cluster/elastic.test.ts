// The elastic policy: a standby joins when an average load per member passes its join
// threshold, a member leaves when every watched average is under its leave threshold, one
// change at a time, after a cool-down, never below minMembers, never a voter, and never
// back and forth under a steady load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { initialMap, votersOf, type ClusterMap } from '../../../src/core/cluster/cluster-map.ts';
import {
  elasticDecision,
  elasticPolicyProblem,
  type ElasticPolicy,
  type NodeLoad,
} from '../../../src/core/cluster/elastic.ts';
import {
  addStandby,
  commitChange,
  ownersOf,
  planJoin,
  planLeave,
} from '../../../src/core/cluster/membership.ts';
import { mapOf, member } from './membership-fixtures.ts';

function seeded(numRuns: number): fc.Parameters<unknown> {
  const seed = Number(process.env['MEMBERSHIP_PROPERTY_SEED'] ?? 20250611);
  return { seed, numRuns, endOnFailure: false };
}

/** `memberCount` owning members n-00.. and `standbyCount` standbys s-00.. */
function cluster(memberCount: number, standbyCount: number): ClusterMap {
  const founders = Array.from({ length: memberCount }, (_, index) =>
    member(`n-${String(index).padStart(2, '0')}`, index),
  );
  let map = initialMap('c', 256, founders);
  for (let index = 0; index < standbyCount; index++) {
    map = mapOf(addStandby(map, member(`s-${String(index).padStart(2, '0')}`, 100 + index)));
  }
  return map;
}

function evenLoads(map: ClusterMap, total: NodeLoad): Map<string, NodeLoad> {
  const owners = ownersOf(map);
  const loads = new Map<string, NodeLoad>();
  for (const id of owners) {
    loads.set(id, {
      keys: total.keys / owners.length,
      bytes: total.bytes / owners.length,
      requestsPerSecond: total.requestsPerSecond / owners.length,
    });
  }
  return loads;
}

const POLICY: ElasticPolicy = {
  joinAbove: { bytes: 1000, requestsPerSecond: 500 },
  leaveBelow: { bytes: 400 },
  minMembers: 3,
  coolDownMs: 60_000,
};

test('a policy is refused unless each leave threshold sits below a join threshold of its metric', () => {
  assert.equal(elasticPolicyProblem(POLICY), null);
  const cases: [Partial<ElasticPolicy>, RegExp][] = [
    [{ leaveBelow: { bytes: 1000 } }, /leaveBelow\.bytes \(1000\) must be below joinAbove\.bytes/],
    [{ leaveBelow: { keys: 10 } }, /leaveBelow\.keys needs a joinAbove\.keys/],
    [{ joinAbove: {}, leaveBelow: {} }, /watches no metric/],
    [{ joinAbove: { bytes: Number.NaN } }, /joinAbove\.bytes must be a finite number/],
    [{ minMembers: 0 }, /minMembers must be an integer of at least 1/],
    [{ coolDownMs: -1 }, /coolDownMs/],
  ];
  for (const [change, expected] of cases) {
    const problem = elasticPolicyProblem({ ...POLICY, ...change });
    assert.match(problem ?? 'accepted', expected);
    assert.throws(() =>
      elasticDecision(cluster(5, 1), new Map(), { ...POLICY, ...change }, 0, null),
    );
  }
});

test('a standby joins, the first by id, when an average per member passes its join threshold', () => {
  const map = cluster(5, 2);
  const heavy = evenLoads(map, { keys: 0, bytes: 5 * 1001, requestsPerSecond: 0 });
  const decision = elasticDecision(map, heavy, POLICY, 0, null);
  assert.equal(decision?.kind, 'join');
  assert.deepEqual(
    decision.kind === 'join' && decision.member,
    map.members.find((m) => m.id === 's-00'),
  );
  assert.match(decision.reason, /bytes per member 1001 is above 1000/);
  const busy = evenLoads(map, { keys: 0, bytes: 0, requestsPerSecond: 5 * 600 });
  assert.equal(elasticDecision(map, busy, POLICY, 0, null)?.kind, 'join');
  const calm = evenLoads(map, { keys: 0, bytes: 5 * 1000, requestsPerSecond: 5 * 500 });
  assert.equal(elasticDecision(map, calm, POLICY, 0, null), null, 'at the threshold, no join');
  assert.equal(elasticDecision(cluster(5, 0), heavy, POLICY, 0, null), null, 'no standby, no join');
  // The join it asks for is one membership.ts plans.
  assert.ok(decision.kind === 'join' && planJoin(map, decision.member).ok);
});

test('nothing is decided while a change is in progress, within the cool-down, or without every member’s report', () => {
  const map = cluster(5, 2);
  const heavy = evenLoads(map, { keys: 0, bytes: 10_000, requestsPerSecond: 0 });
  const changing = mapOf(
    planJoin(
      map,
      map.members.find((m) => m.id === 's-00')!,
    ),
  );
  assert.equal(elasticDecision(changing, heavy, POLICY, 0, null), null);
  assert.equal(elasticDecision(map, heavy, POLICY, 100_000, 100_000 - 59_999), null);
  assert.equal(elasticDecision(map, heavy, POLICY, 100_000, 100_000 - 60_000)?.kind, 'join');
  const partial = new Map(heavy);
  partial.delete('n-03');
  assert.equal(elasticDecision(map, partial, POLICY, 0, null), null);
  const malformed = new Map(heavy);
  malformed.set('n-03', { keys: 0, bytes: Number.NaN, requestsPerSecond: 0 });
  assert.equal(elasticDecision(map, malformed, POLICY, 0, null), null);
});

test('a member leaves when the load is low: the non-voter holding the least data, never below minMembers', () => {
  const map = cluster(8, 0);
  const loads = evenLoads(map, { keys: 800, bytes: 8 * 100, requestsPerSecond: 8 });
  loads.set('n-06', { keys: 10, bytes: 50, requestsPerSecond: 1 });
  loads.set('n-00', { keys: 0, bytes: 0, requestsPerSecond: 0 });
  const decision = elasticDecision(map, loads, POLICY, 0, null);
  assert.equal(decision?.kind, 'leave');
  assert.equal(decision.kind === 'leave' && decision.id, 'n-06', 'n-00 holds less but is a voter');
  assert.match(decision.reason, /bytes per member .* is below 400/);
  assert.ok(decision.kind === 'leave' && planLeave(map, decision.id).ok);
  // At minMembers, no leave.
  const small = cluster(6, 0);
  const quiet = evenLoads(small, { keys: 0, bytes: 0, requestsPerSecond: 0 });
  assert.equal(elasticDecision(small, quiet, { ...POLICY, minMembers: 6 }, 0, null), null);
  assert.equal(elasticDecision(small, quiet, { ...POLICY, minMembers: 5 }, 0, null)?.kind, 'leave');
});

test('a voter never leaves: with only voters owning partitions, a low load decides nothing', () => {
  const map = cluster(5, 0);
  assert.deepEqual(ownersOf(map), votersOf(map));
  const quiet = evenLoads(map, { keys: 0, bytes: 0, requestsPerSecond: 0 });
  assert.equal(elasticDecision(map, quiet, { ...POLICY, minMembers: 1 }, 0, null), null);
});

test('a leave that would push the averages over a join threshold is not asked for (hysteresis)', () => {
  const map = cluster(8, 0);
  // 8 members at 390 bytes each: under 400, but 7 would carry 445.7, under 1000: leave.
  assert.equal(
    elasticDecision(
      map,
      evenLoads(map, { keys: 0, bytes: 8 * 390, requestsPerSecond: 0 }),
      POLICY,
      0,
      null,
    )?.kind,
    'leave',
  );
  // Requests per second are low enough per member to stay, but one member fewer would pass
  // the join threshold of 500: no leave.
  const policy: ElasticPolicy = { ...POLICY, leaveBelow: { bytes: 400, requestsPerSecond: 480 } };
  const loads = evenLoads(map, { keys: 0, bytes: 8 * 100, requestsPerSecond: 8 * 470 });
  assert.equal(elasticDecision(map, loads, policy, 0, null), null);
});

test('under a steady load, following the decisions never joins and then leaves again', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 3, max: 10 }),
      fc.integer({ min: 0, max: 6 }),
      fc.integer({ min: 0, max: 20_000 }),
      fc.integer({ min: 0, max: 8_000 }),
      fc.integer({ min: 1, max: 999 }),
      (memberCount, standbyCount, totalBytes, totalRequests, leaveBytes) => {
        const policy: ElasticPolicy = {
          joinAbove: { bytes: 1000, requestsPerSecond: 500 },
          leaveBelow: { bytes: leaveBytes, requestsPerSecond: 400 },
          minMembers: 3,
          coolDownMs: 0,
        };
        let map = cluster(memberCount, standbyCount);
        const kinds: string[] = [];
        for (let step = 0; step < 20; step++) {
          const load = { keys: 0, bytes: totalBytes, requestsPerSecond: totalRequests };
          const decision = elasticDecision(map, evenLoads(map, load), policy, step, null);
          if (decision === null) break;
          kinds.push(decision.kind);
          const planned =
            decision.kind === 'join' ? planJoin(map, decision.member) : planLeave(map, decision.id);
          map = mapOf(commitChange(mapOf(planned)));
          assert.ok(ownersOf(map).length >= policy.minMembers);
        }
        assert.ok(kinds.length < 20, `settles: ${kinds.join(' ')}`);
        assert.ok(
          new Set(kinds).size <= 1,
          `one direction only under a steady load: ${kinds.join(' ')}`,
        );
      },
    ),
    seeded(200),
  );
});
