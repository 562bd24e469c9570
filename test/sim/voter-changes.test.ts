// The voters change under load and faults (docs/PAXOS.md, "Changing the voters";
// src/sim/voter-changes.ts): three founders and two more members, while a crashed voter is
// replaced by a standby, a voter leaves and a crashed voter is removed, with keyspaces created
// from several nodes all along, a node kept on a stale map making map changes, message loss,
// a strong register workload and eventual writes. Each epoch must carry one map across every
// node that ever installed one, the voters must end as planned, every member on one map, the
// strong history linearizable and every acknowledged eventual write read back. The negative
// control (map-register fences ignored, the new voter's fence step skipped) must make two
// maps share an epoch: the replaced voter, back on its old map, writes an old map back
// through the old voters above the newest map's ballot.
//
// Seeds 1..3 by default, 2 to 5 s each, and the control on seeds 1..4;
// VOTER_CHANGE_SEEDS=1..30 (or "7", or "3,9,20..25") runs others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PLANNED_VOTERS, runVoterChanges } from '../../src/sim/voter-changes.ts';
import { range, seedsFrom } from './linearizable-swarm.ts';

const VARIABLE = 'VOTER_CHANGE_SEEDS';
const FILE = 'test/sim/voter-changes.test.ts';

test('through the replace of a crashed voter, a voter leaving and a crashed voter removed, every map epoch carries one map and the voters end as planned', (t) => {
  for (const seed of seedsFrom(VARIABLE, 1, 3)) {
    const result = runVoterChanges({ seed });
    t.diagnostic(
      `seed ${seed}: ${result.mapEpochs} map epochs, ${result.keyspacesCreated} keyspaces ` +
        `created (${result.keyspaceCreationsFailed} creations failed), ${result.operations} ` +
        `strong operations, ${result.eventualWrites} eventual writes acknowledged; ` +
        result.changes.join(', '),
    );
    const replay = `seed ${seed}; replay: ${VARIABLE}=${seed} npx node --test ${FILE}`;
    assert.deepEqual(result.anomalies, [], replay);
    assert.equal(result.changes.length, 5, `every change commits (${replay})`);
    assert.deepEqual(result.voters, PLANNED_VOTERS, replay);
    assert.ok(result.keyspacesCreated >= 5, `map changes raced the voter changes (${replay})`);
    assert.ok(result.eventualWrites > 0 && result.operations > 0, replay);
  }
});

test('negative control: without the map register fence and the new voter step, a node on a map from before the change makes a second map at an epoch that had one', (t) => {
  const caught = range(1, 4).filter(
    (seed) => runVoterChanges({ seed, unsafe: 'ignore-fences' }).splitEpochs.length > 0,
  );
  t.diagnostic(`caught on seeds ${caught.join(', ')} of 1..4`);
  assert.ok(
    caught.length >= 1,
    `without fences, some seed splits an epoch: caught ${caught.join(', ')}`,
  );
});
