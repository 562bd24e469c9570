// CASPaxos under faults: every history of the swarm is linearizable (checkLinearizable, per
// key), and every run ends with a liveness phase whose reads all succeed. 200 seeds per
// workload by default; PAXOS_SEEDS widens or replays them. The runs must also show that
// the faults and the paths under test really happened: crashes of acceptors and proposers,
// messages lost, duplicated and malformed, one-round-trip operations, quorum reads that
// answered and that fell back, purges that removed
// keys. A run is a pure function of its seed: the same seed gives the same history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHistoryLines } from '../../src/check/history.ts';
import { runPaxosWorld } from '../../src/sim/paxos-world.ts';
import type { PaxosWorkload, PaxosWorldStats } from '../../src/sim/paxos-world.ts';
import { describeFailure, paxosSeeds, runAndCheck, swarmOptions } from './paxos-helpers.ts';

const FILE = 'paxos-linearizable.test.ts';

interface Totals {
  runs: number;
  ok: number;
  unknown: number;
  failed: number;
  oneRoundTrip: number;
  twoRoundTrips: number;
  quorumReads: number;
  quorumReadsFallenBack: number;
  acceptorCrashes: number;
  proposerCrashes: number;
  partitions: number;
  pauses: number;
  messagesLost: number;
  messagesDuplicated: number;
  malformedDropped: number;
  purgesComplete: number;
  keysRemoved: number;
}

function addUp(totals: Totals, stats: PaxosWorldStats): void {
  totals.runs += 1;
  totals.ok += stats.operations.ok;
  totals.unknown += stats.operations.unknown;
  totals.failed += stats.operations.failed;
  totals.oneRoundTrip += stats.proposers.oneRoundTrip;
  totals.twoRoundTrips += stats.proposers.twoRoundTrips;
  totals.quorumReads += stats.proposers.quorumReads;
  totals.quorumReadsFallenBack += stats.proposers.quorumReadsFallenBack;
  totals.acceptorCrashes += stats.acceptorCrashes;
  totals.proposerCrashes += stats.proposerCrashes;
  totals.partitions += stats.partitions;
  totals.pauses += stats.pauses;
  totals.messagesLost += stats.messagesLost;
  totals.messagesDuplicated += stats.messagesDuplicated;
  totals.malformedDropped += stats.malformedDroppedByAcceptors + stats.malformedDroppedByProposers;
  totals.purgesComplete += stats.purgesComplete;
  totals.keysRemoved += stats.keysRemoved;
}

function swarm(workload: PaxosWorkload): { totals: Totals; failures: string[] } {
  const totals: Totals = {
    runs: 0,
    ok: 0,
    unknown: 0,
    failed: 0,
    oneRoundTrip: 0,
    twoRoundTrips: 0,
    quorumReads: 0,
    quorumReadsFallenBack: 0,
    acceptorCrashes: 0,
    proposerCrashes: 0,
    partitions: 0,
    pauses: 0,
    messagesLost: 0,
    messagesDuplicated: 0,
    malformedDropped: 0,
    purgesComplete: 0,
    keysRemoved: 0,
  };
  const failures: string[] = [];
  for (const seed of paxosSeeds(1, 200)) {
    const checked = runAndCheck(swarmOptions(seed, workload));
    addUp(totals, checked.run.stats);
    if (checked.check.result !== 'linearizable' || checked.run.livenessFailures.length > 0) {
      failures.push(describeFailure(seed, FILE, checked));
    }
  }
  return { totals, failures };
}

const manySeeds = paxosSeeds(1, 200).length >= 50;

test('every history of get, put, delete, compare-and-set and increment under faults is linearizable', (t) => {
  const { totals, failures } = swarm('mixed');
  t.diagnostic(JSON.stringify(totals));
  assert.deepEqual(failures, []);
  if (!manySeeds) return;
  // The swarm exercised what it claims to.
  assert.ok(totals.oneRoundTrip > totals.runs, 'the one-round-trip path ran');
  assert.ok(totals.twoRoundTrips > totals.runs, 'the two-round-trip path ran');
  assert.ok(totals.quorumReads > totals.runs, 'gets were answered by quorum reads');
  assert.ok(totals.quorumReadsFallenBack > totals.runs, 'quorum reads fell back');
  assert.ok(totals.acceptorCrashes > 0 && totals.proposerCrashes > 0, 'crashes happened');
  assert.ok(totals.partitions > 0 && totals.pauses > 0, 'partitions and pauses happened');
  assert.ok(totals.messagesLost > 0 && totals.messagesDuplicated > 0, 'the network misbehaved');
  assert.ok(totals.malformedDropped > 0, 'malformed messages were dropped');
  assert.ok(totals.purgesComplete > 0 && totals.keysRemoved > 0, 'purges removed keys');
  assert.ok(totals.unknown > 0 && totals.ok > 5 * totals.unknown, 'most operations answered');
});

test('compare-and-set on the version is linearizable: each version names one value', (t) => {
  const { totals, failures } = swarm('versioned');
  t.diagnostic(JSON.stringify(totals));
  assert.deepEqual(failures, []);
  if (!manySeeds) return;
  assert.ok(totals.oneRoundTrip > totals.runs, 'the one-round-trip path ran');
});

test('a run is a pure function of its seed', () => {
  const history = (seed: number): string =>
    formatHistoryLines(runPaxosWorld(swarmOptions(seed, 'mixed')).history);
  const first = history(7);
  assert.ok(first.split('\n').length > 100, 'enough operations to mean something');
  assert.equal(history(7), first);
  assert.notEqual(history(8), first);
});
