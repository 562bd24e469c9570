// Changing the voters (docs/PAXOS.md, "Changing the voters") as pure map transitions: the
// next voters each kind of change names, the commit that installs them and the abort that
// keeps the old ones, the new voter counted as a receiver whose report the commit waits for,
// the map register's joint acceptors, the checks a decoded map must pass, and the quorum
// arithmetic that lets a change that only drops a voter skip the fence step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeMap,
  encodeMap,
  initialMap,
  mapProblem,
  mapRegisterAcceptors,
  votersOf,
  type ClusterMap,
} from '../../../src/core/cluster/cluster-map.ts';
import {
  abortChange,
  addStandby,
  commitChange,
  markCopied,
  newVotersOf,
  planJoin,
  planLeave,
  planRemove,
  planReplace,
  receiversOf,
  transfersOf,
} from '../../../src/core/cluster/membership.ts';
import { majority } from '../../../src/core/paxos/config.ts';
import { mapOf, member, problemOf } from './membership-fixtures.ts';

function founded(count: number): ClusterMap {
  return initialMap(
    'c',
    64,
    Array.from({ length: count }, (_, index) => member(`n${index + 1}`, index + 1)),
  );
}

/** Every subset of `ids` of size `size`. */
function subsets(ids: readonly string[], size: number): string[][] {
  if (size === 0) return [[]];
  if (ids.length < size) return [];
  const [first, ...rest] = ids;
  return [...subsets(rest, size - 1).map((subset) => [first!, ...subset]), ...subsets(rest, size)];
}

/** Whether every majority of `a` shares a member with every majority of `b`. */
function majoritiesAlwaysMeet(a: readonly string[], b: readonly string[]): boolean {
  for (const left of subsets(a, majority(a.length))) {
    for (const right of subsets(b, majority(b.length))) {
      if (!left.some((id) => right.includes(id))) return false;
    }
  }
  return true;
}

test('a replace of a voter names the replacement in its place, and only the commit makes it a voter', () => {
  const base = mapOf(addStandby(founded(4), member('spare', 9)));
  assert.deepEqual(votersOf(base), ['n1', 'n2', 'n3', 'n4']);
  const planned = mapOf(planReplace(base, 'n2', member('spare', 9)));
  assert.deepEqual(planned.change!.nextVoters, ['n1', 'n3', 'n4', 'spare']);
  assert.deepEqual(votersOf(planned), ['n1', 'n2', 'n3', 'n4'], 'the voters stay until the commit');
  assert.deepEqual(newVotersOf(planned), ['spare']);
  assert.deepEqual(mapRegisterAcceptors(planned), {
    ids: ['n1', 'n2', 'n3', 'n4'],
    nextIds: ['n1', 'n3', 'n4', 'spare'],
    epoch: planned.epoch,
  });
  assert.deepEqual(votersOf(mapOf(commitChange(planned))), ['n1', 'n3', 'n4', 'spare']);
  const aborted = mapOf(abortChange(planned));
  assert.deepEqual(votersOf(aborted), ['n1', 'n2', 'n3', 'n4'], 'an abort keeps the voters');
  assert.deepEqual(mapRegisterAcceptors(aborted), { ids: votersOf(aborted), epoch: aborted.epoch });
});

test('a voter that leaves or is removed hands its place to the first owning member by id that is not a voter', () => {
  const base = founded(7); // voters n1..n5, n6 and n7 own partitions too
  for (const plan of [planLeave, planRemove]) {
    const planned = mapOf(plan(base, 'n3'));
    assert.deepEqual(planned.change!.nextVoters, ['n1', 'n2', 'n4', 'n5', 'n6']);
    const committed = mapOf(commitChange(planned));
    assert.deepEqual(committed.voters, ['n1', 'n2', 'n4', 'n5', 'n6']);
    assert.equal(mapProblem(committed), null);
  }
  // With no member to promote the voters shrink by one: 3 voters, 3 members.
  const three = mapOf(planRemove(founded(3), 'n2'));
  assert.deepEqual(three.change!.nextVoters, ['n1', 'n3']);
  assert.deepEqual(newVotersOf(three), [], 'nobody joins the voters');
  assert.deepEqual(mapOf(commitChange(three)).voters, ['n1', 'n3']);
});

test('changes of members that are not voters leave the voters alone, as before', () => {
  const base = mapOf(addStandby(founded(4), member('spare', 9)));
  for (const planned of [
    mapOf(planLeave(founded(7), 'n6')),
    mapOf(planRemove(founded(7), 'n7')),
    mapOf(planReplace(founded(7), 'n6', member('fresh', 20))),
    mapOf(planLeave(base, 'spare')),
    mapOf(
      planJoin(
        base,
        base.members.find((m) => m.id === 'spare')!,
      ),
    ),
  ]) {
    assert.equal(
      planned.change!.nextVoters,
      undefined,
      `${planned.change!.kind} of ${planned.change!.subject}`,
    );
    assert.deepEqual(mapOf(commitChange(planned)).voters, planned.voters);
  }
});

test('a cluster founded with one node gains voters as nodes join, up to three', () => {
  let map = founded(1);
  for (const [index, id] of ['n2', 'n3', 'n4'].entries()) {
    map = mapOf(planJoin(map, member(id, 10 + index)));
    const expected = index < 2 ? [...votersOf(map), id].sort() : undefined;
    assert.deepEqual(map.change!.nextVoters, expected, `join of ${id}`);
    map = mapOf(commitChange(map));
  }
  assert.deepEqual(votersOf(map), ['n1', 'n2', 'n3']);
});

test('a new voter is a receiver, and the change commits only once it has reported', () => {
  // A voter of a one-member-per-voter cluster replaced by a node that receives data anyway,
  // and a leave whose promoted member might receive nothing: both wait for the new voter.
  const planned = mapOf(planLeave(founded(6), 'n1'));
  assert.deepEqual(newVotersOf(planned), ['n6']);
  const receivers = receiversOf(planned);
  assert.ok(receivers.includes('n6'), `n6 is a receiver: ${receivers.join()}`);
  const dataReceivers = new Set(transfersOf(planned).map((transfer) => transfer.to));
  let map = planned;
  for (const receiver of receivers.filter((id) => id !== 'n6')) {
    map = mapOf(markCopied(map, receiver));
    assert.ok(map.change !== undefined, `still waiting for n6 after ${receiver}`);
  }
  const committed = mapOf(markCopied(map, 'n6'));
  assert.equal(committed.change, undefined, 'the new voter’s report commits');
  assert.deepEqual(committed.voters, ['n2', 'n3', 'n4', 'n5', 'n6']);
  assert.ok(dataReceivers.size > 0);
});

test('the last voter hands over to another owner, and cannot go when no other member owns partitions', () => {
  const two = founded(2);
  const sole: ClusterMap = { ...two, voters: ['n1'] };
  assert.equal(mapProblem(sole), null);
  const planned = mapOf(planLeave(sole, 'n1'));
  assert.deepEqual(planned.change!.nextVoters, ['n2']);
  assert.deepEqual(mapRegisterAcceptors(planned).nextIds, ['n2']);
  const alone: ClusterMap = { ...sole, owners: sole.owners.map(() => 'n1') };
  assert.match(problemOf(planLeave(alone, 'n1')), /last voter .* no other member owns partitions/);
  assert.match(problemOf(planRemove(founded(1), 'n1')), /last voter/);
});

test('a decoded map must name next voters that differ by one voter out and one in at most, sorted, without the one that goes', () => {
  const planned = mapOf(planReplace(founded(3), 'n2', member('n9', 9)));
  assert.deepEqual(decodeMap(encodeMap(planned)), planned, 'a change with next voters round-trips');
  const withNext = (nextVoters: unknown): unknown => ({
    ...planned,
    change: { ...planned.change, nextVoters },
  });
  assert.equal(mapProblem(withNext(['n3', 'n1', 'n9'])), 'nextVoters not sorted');
  assert.equal(mapProblem(withNext(['n1', 'n2', 'n3', 'n9'])), 'a voter that goes votes on');
  assert.equal(mapProblem(withNext(['n1', 'n9'])), 'change nextVoters', 'two out at once');
  assert.equal(mapProblem(withNext(['n1', 'n3', 'x'])), 'next voter not a member');
  assert.equal(mapProblem(withNext([])), 'change nextVoters');
  const { nextVoters: _dropped, ...withoutNext } = planned.change!;
  assert.equal(
    mapProblem({ ...planned, change: withoutNext }),
    'a voter that goes votes on',
    'a voter may not go without next voters',
  );
});

test('maps and changes written before next voters existed decode and behave as before', () => {
  const planned = mapOf(planJoin(founded(3), member('n4', 4)));
  assert.equal(planned.change!.nextVoters, undefined);
  const old = JSON.parse(JSON.stringify(planned)) as ClusterMap;
  assert.deepEqual(decodeMap(encodeMap(old)), planned);
  assert.deepEqual(mapRegisterAcceptors(old), { ids: ['n1', 'n2', 'n3'], epoch: old.epoch });
  assert.deepEqual(receiversOf(old), [...new Set(transfersOf(old).map((t) => t.to))].sort());
  assert.deepEqual(mapOf(commitChange(old)).voters, ['n1', 'n2', 'n3']);
});

test('majorities of the voters less one always meet majorities of the voters, so a change that only drops one needs no fence step; one that swaps a voter does', () => {
  for (let count = 2; count <= 5; count++) {
    const voters = Array.from({ length: count }, (_, index) => `v${index}`);
    for (const gone of voters) {
      const next = voters.filter((voter) => voter !== gone);
      assert.ok(majoritiesAlwaysMeet(voters, next), `${count} voters less ${gone}`);
    }
    // The negative control of the arithmetic: a voter swapped for a newcomer. An even count
    // still meets (2 maj(n) > n + 1), an odd one does not: the fence step is what makes it safe.
    const swapped = [...voters.slice(1), 'new'];
    assert.equal(
      majoritiesAlwaysMeet(voters, swapped),
      count % 2 === 0,
      `${count} voters, one swapped`,
    );
  }
  // And the plans agree: a remove that promotes nobody adds no receiver for the voters.
  const shrink = mapOf(planRemove(founded(3), 'n3'));
  assert.deepEqual(newVotersOf(shrink), []);
  const swap = mapOf(planRemove(founded(4), 'n3'));
  assert.deepEqual(newVotersOf(swap), [], 'n4 is already a voter of a four-node cluster');
  const promote = mapOf(planRemove(founded(6), 'n3'));
  assert.deepEqual(newVotersOf(promote), ['n6']);
});
