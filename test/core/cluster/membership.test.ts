// Membership changes as map transitions: what a join, leave, remove and replace move, that
// the transfers are exactly the replicas gained (against a naive computation from the two
// owner tables), that commit and abort leave valid maps, the refusals, the voters, and that
// maps written before these fields decode and behave as they did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeMap,
  encodeMap,
  initialMap,
  mapProblem,
  votersOf,
  withKeyspace,
  type ClusterMap,
  type KeyspaceSpec,
  type MemberInfo,
} from '../../../src/core/cluster/cluster-map.ts';
import {
  abortChange,
  addStandby,
  commitChange,
  formatBytes,
  formatPlan,
  ownersOf,
  planJoin,
  planLeave,
  planRemove,
  planReplace,
  planSummary,
  readReplicas,
  transfersOf,
  writeReplicas,
  type MembershipResult,
  type Transfer,
} from '../../../src/core/cluster/membership.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { mapOf, member, problemOf } from './membership-fixtures.ts';

const { id: _defaultId, ...DEFAULT_KEYSPACE_SPEC } = DEFAULT_KEYSPACE;

/**
 * Property settings with a fixed seed, so every run draws the same cases. A failure prints
 * the seed and the path; replay it with MEMBERSHIP_PROPERTY_SEED=<seed>.
 */
function seeded(numRuns: number): fc.Parameters<unknown> {
  const seed = Number(process.env['MEMBERSHIP_PROPERTY_SEED'] ?? 20250611);
  return { seed, numRuns, endOnFailure: false };
}

/** Ids padded to two digits, so that id order is index order. */
function nodeId(index: number, prefix = 'node-'): string {
  return `${prefix}${String(index).padStart(2, '0')}`;
}

function members(count: number, prefix = 'node-'): MemberInfo[] {
  return Array.from({ length: count }, (_, index) => member(nodeId(index, prefix), index));
}

function keyspaceSpec(name: string, n: number | 'all'): KeyspaceSpec {
  return { ...DEFAULT_KEYSPACE_SPEC, name, n, r: 1, w: 1 };
}

/** A map with keyspaces of several replica counts, 'all' included. */
function mapWithKeyspaces(memberCount: number, partitionCount: number): ClusterMap {
  let map = initialMap('c', partitionCount, members(memberCount));
  map = withKeyspace(map, keyspaceSpec('ks1', 1));
  map = withKeyspace(map, keyspaceSpec('ks2', 'all'));
  map = withKeyspace(map, keyspaceSpec('ks3', 5));
  return map;
}

/** The first `limit` distinct owners met stepping clockwise from `partition`. */
function naiveWalk(owners: readonly string[], partition: number, limit = owners.length): string[] {
  const walk: string[] = [];
  for (let step = 0; step < owners.length && walk.length < limit; step++) {
    const owner = owners[(partition + step) % owners.length]!;
    if (!walk.includes(owner)) walk.push(owner);
  }
  return walk;
}

/** The definition written out: per keyspace and partition, next replicas not now replicas. */
function naiveTransfers(map: ClusterMap): { keyspaceId: number; partition: number; to: string }[] {
  const nextOwners = map.change!.nextOwners;
  const countNow = new Set(map.owners).size;
  const countNext = new Set(nextOwners).size;
  const expected: { keyspaceId: number; partition: number; to: string }[] = [];
  for (const ks of map.keyspaces) {
    const nNow = ks.n === 'all' ? countNow : Math.min(ks.n, countNow);
    const nNext = ks.n === 'all' ? countNext : Math.min(ks.n, countNext);
    for (let partition = 0; partition < map.partitionCount; partition++) {
      const now = naiveWalk(map.owners, partition, nNow);
      for (const to of naiveWalk(nextOwners, partition, nNext)) {
        if (!now.includes(to)) expected.push({ keyspaceId: ks.id, partition, to });
      }
    }
  }
  return expected;
}

function transferKey(transfer: { keyspaceId: number; partition: number; to: string }): string {
  return `${transfer.keyspaceId}/${transfer.partition}/${transfer.to}`;
}

function ownedCounts(owners: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

function assertBalanced(map: ClusterMap, label: string): void {
  const counts = ownedCounts(map.owners);
  const owning = map.members.filter((m) => m.role !== 'standby');
  assert.equal(counts.size, owning.length, `${label}: every owning member owns partitions`);
  const low = Math.floor(map.partitionCount / owning.length);
  for (const [owner, count] of counts) {
    assert.ok(count === low || count === low + 1, `${label}: ${owner} owns ${count}`);
  }
}

const PARTITION_COUNTS = [16, 64, 256, 1024];

test('a join moves floor(Q/(M+1)) partitions, all of them to the joiner, for M from 1 to 12', () => {
  for (const partitionCount of PARTITION_COUNTS) {
    for (let memberCount = 1; memberCount <= 12; memberCount++) {
      const before = initialMap('c', partitionCount, members(memberCount));
      for (const joinerId of ['a-first', 'node-05x', 'z-last']) {
        const planned = mapOf(planJoin(before, member(joinerId, 200)));
        const next = planned.change!.nextOwners;
        const label = `Q=${partitionCount} M=${memberCount} joiner=${joinerId}`;
        let moved = 0;
        for (let partition = 0; partition < partitionCount; partition++) {
          if (before.owners[partition] === next[partition]) continue;
          moved++;
          assert.equal(next[partition], joinerId, `${label}: partition ${partition}`);
        }
        assert.equal(moved, Math.floor(partitionCount / (memberCount + 1)), label);
        assert.deepEqual(planned.owners, before.owners, `${label}: reads keep the owners`);
        const committed = mapOf(commitChange(planned));
        assert.equal(mapProblem(committed), null, label);
        assertBalanced(committed, label);
        assert.equal(
          committed.epoch,
          before.epoch + 2,
          `${label}: plan and commit, one epoch each`,
        );
      }
    }
  }
});

test('a leave moves exactly the leaver’s partitions, and its commit drops the leaver', () => {
  for (const partitionCount of PARTITION_COUNTS) {
    // Seven or more members: the first five are voters, which cannot leave yet.
    for (let memberCount = 6; memberCount <= 12; memberCount++) {
      const before = initialMap('c', partitionCount, members(memberCount));
      for (let leaverIndex = 5; leaverIndex < memberCount; leaverIndex++) {
        const leaver = nodeId(leaverIndex);
        const planned = mapOf(planLeave(before, leaver));
        const next = planned.change!.nextOwners;
        const label = `Q=${partitionCount} M=${memberCount} leaver=${leaver}`;
        for (let partition = 0; partition < partitionCount; partition++) {
          const moved = before.owners[partition] !== next[partition];
          assert.equal(moved, before.owners[partition] === leaver, `${label}: p${partition}`);
        }
        const committed = mapOf(commitChange(planned));
        assert.ok(!committed.members.some((m) => m.id === leaver), label);
        assert.equal(mapProblem(committed), null, label);
        assertBalanced(committed, label);
      }
    }
  }
});

test('a replace moves exactly the old member’s partitions to the new one, and copies only to it', () => {
  for (const partitionCount of [16, 256]) {
    for (let memberCount = 6; memberCount <= 12; memberCount++) {
      let before = initialMap('c', partitionCount, members(memberCount));
      before = withKeyspace(before, keyspaceSpec('ks1', 2));
      const old = nodeId(memberCount - 1);
      const planned = mapOf(planReplace(before, old, member('fresh', 300)));
      const label = `Q=${partitionCount} M=${memberCount}`;
      for (let partition = 0; partition < partitionCount; partition++) {
        const expected = before.owners[partition] === old ? 'fresh' : before.owners[partition];
        assert.equal(planned.change!.nextOwners[partition], expected, `${label}: p${partition}`);
      }
      const transfers = transfersOf(planned);
      assert.ok(transfers.length > 0, label);
      for (const transfer of transfers) {
        assert.equal(transfer.to, 'fresh', label);
        assert.ok(!transfer.sources.includes(old), `${label}: never copies from the old member`);
        assert.ok(transfer.sources.length > 0, label);
      }
      const committed = mapOf(commitChange(planned));
      assert.ok(!committed.members.some((m) => m.id === old), label);
      assertBalanced(committed, label);
    }
  }
});

interface ChangeCase {
  memberCount: number;
  partitionCount: number;
  kind: 'join' | 'leave' | 'remove' | 'replace' | 'join-standby';
  subjectPick: number;
}

const changeCases: fc.Arbitrary<ChangeCase> = fc
  .record({
    memberCount: fc.integer({ min: 6, max: 16 }),
    bits: fc.integer({ min: 5, max: 8 }),
    kind: fc.constantFrom(
      'join' as const,
      'leave' as const,
      'remove' as const,
      'replace' as const,
      'join-standby' as const,
    ),
    subjectPick: fc.nat(),
  })
  .map(({ memberCount, bits, kind, subjectPick }) => ({
    memberCount,
    partitionCount: 2 ** bits,
    kind,
    subjectPick,
  }));

/** A map with one change in progress, built from a case; also the member that goes, if any. */
function plannedCase(c: ChangeCase): {
  map: ClusterMap;
  gone: string | null;
  leaver: string | null;
} {
  const base = mapWithKeyspaces(c.memberCount, c.partitionCount);
  // Non-voters only: the first five members by id are the voters.
  const subject = nodeId(5 + (c.subjectPick % (c.memberCount - 5)));
  switch (c.kind) {
    case 'join':
      return { map: mapOf(planJoin(base, member('joiner', 400))), gone: null, leaver: null };
    case 'join-standby': {
      const withStandby = mapOf(addStandby(base, member('spare', 401)));
      const standby = withStandby.members.find((m) => m.id === 'spare')!;
      return { map: mapOf(planJoin(withStandby, standby)), gone: null, leaver: null };
    }
    case 'leave':
      return { map: mapOf(planLeave(base, subject)), gone: null, leaver: subject };
    case 'remove':
      return { map: mapOf(planRemove(base, subject)), gone: subject, leaver: null };
    case 'replace':
      return {
        map: mapOf(planReplace(base, subject, member('replacement', 402))),
        gone: subject,
        leaver: null,
      };
  }
}

test('the transfers are exactly the replicas the next owners add, against a naive computation', () => {
  fc.assert(
    fc.property(changeCases, (c) => {
      const { map } = plannedCase(c);
      const transfers = transfersOf(map);
      const actual = transfers.map(transferKey).sort();
      const expected = naiveTransfers(map).map(transferKey).sort();
      assert.deepEqual(actual, expected);
      assert.equal(new Set(actual).size, actual.length, 'no copy listed twice');
    }),
    seeded(120),
  );
});

test('sources are replicas now, never the removed or replaced member, the leaver last', () => {
  fc.assert(
    fc.property(changeCases, (c) => {
      const { map, gone, leaver } = plannedCase(c);
      for (const transfer of transfersOf(map)) {
        const keyspace = map.keyspaces.find((k) => k.id === transfer.keyspaceId)!;
        const now = readReplicas(map, keyspace, transfer.partition);
        if (gone !== null) assert.ok(!transfer.sources.includes(gone), 'not from the gone member');
        for (const source of transfer.sources) assert.ok(now.includes(source), 'a replica now');
        const expected = now.filter((r) => r !== gone && r !== leaver);
        if (leaver !== null && now.includes(leaver)) expected.push(leaver);
        assert.deepEqual(transfer.sources, expected, 'preference-list order, the leaver last');
      }
    }),
    seeded(120),
  );
});

test('commit makes the next owners the owners and yields a balanced, valid map; abort restores the members and owners', () => {
  fc.assert(
    fc.property(changeCases, (c) => {
      const { map, gone, leaver } = plannedCase(c);
      const committed = mapOf(commitChange(map));
      assert.deepEqual(committed.owners, map.change!.nextOwners);
      assert.equal(committed.change, undefined);
      assert.equal(mapProblem(committed), null);
      assert.deepEqual(decodeMap(encodeMap(committed)), committed);
      assertBalanced(committed, c.kind);
      const departed = gone ?? leaver;
      if (departed !== null) assert.ok(!committed.members.some((m) => m.id === departed));
      assert.deepEqual(transfersOf(committed), [], 'nothing left to copy');

      const aborted = mapOf(abortChange(map));
      assert.deepEqual(aborted.owners, map.owners);
      assert.equal(aborted.change, undefined);
      assert.equal(aborted.epoch, map.epoch + 1);
      assert.equal(mapProblem(aborted), null);
      const base = mapWithKeyspaces(c.memberCount, c.partitionCount);
      const expectedMembers =
        c.kind === 'join-standby'
          ? mapOf(addStandby(base, member('spare', 401))).members
          : base.members;
      assert.deepEqual(aborted.members, expectedMembers);
    }),
    seeded(120),
  );
});

test('writes during a change go to the current replicas first, then the ones it adds; reads to the current ones', () => {
  fc.assert(
    fc.property(changeCases, fc.nat(), (c, partitionPick) => {
      const { map } = plannedCase(c);
      const partition = partitionPick % map.partitionCount;
      for (const keyspace of map.keyspaces) {
        const now = naiveWalk(map.owners, partition).slice(
          0,
          keyspace.n === 'all' ? ownersOf(map).length : Math.min(keyspace.n, ownersOf(map).length),
        );
        assert.deepEqual(readReplicas(map, keyspace, partition), now);
        const added = transfersOf(map)
          .filter((t) => t.keyspaceId === keyspace.id && t.partition === partition)
          .map((t) => t.to);
        assert.deepEqual(writeReplicas(map, keyspace, partition), [...now, ...added]);
      }
    }),
    seeded(60),
  );
});

test('a second change while one is in progress is refused, and the map is left as it was', () => {
  const base = initialMap('c', 64, members(8));
  const joining = mapOf(planJoin(base, member('joiner', 50)));
  const copy = structuredClone(joining);
  const attempts: MembershipResult[] = [
    planJoin(joining, member('other', 51)),
    planLeave(joining, 'node-06'),
    planRemove(joining, 'node-07'),
    planReplace(joining, 'node-07', member('other', 51)),
  ];
  for (const attempt of attempts) {
    assert.match(problemOf(attempt), /a join of joiner is in progress: commit or abort it first/);
  }
  assert.deepEqual(joining, copy, 'a refusal changes nothing');
  // Once committed, the next change goes ahead.
  const committed = mapOf(commitChange(joining));
  assert.ok(planLeave(committed, 'node-06').ok);
});

test('refusals name the reason: unknown member, already a member, the last member, more members than partitions, address clashes, bad ids', () => {
  const base = initialMap('c', 8, members(8));
  assert.match(problemOf(planLeave(base, 'ghost')), /ghost is not a member/);
  assert.match(problemOf(planRemove(base, 'ghost')), /ghost is not a member/);
  assert.match(problemOf(planReplace(base, 'ghost', member('x', 90))), /ghost is not a member/);
  assert.match(problemOf(planJoin(base, member('node-03', 3))), /node-03 is already a member/);
  assert.match(
    problemOf(planJoin(base, member('node-09', 9))),
    /9 members cannot share 8 partitions/,
  );
  const roomy = initialMap('c', 64, members(8));
  assert.match(
    problemOf(planJoin(roomy, { ...member('new', 90), http: members(8)[2]!.peer })),
    /address 10\.0\.0\.2:6580 is already used by member node-02/,
  );
  assert.match(
    problemOf(planJoin(roomy, { ...member('new', 90), http: member('new', 90).peer })),
    /one address for two listeners/,
  );
  assert.match(problemOf(planJoin(roomy, member('bad id!', 90))), /node id 'bad id!'/);
  assert.match(
    problemOf(planReplace(roomy, 'node-07', member('node-06', 6))),
    /node-06 is already a member/,
  );
  assert.match(
    problemOf(planReplace(roomy, 'node-07', member('node-07', 7))),
    /cannot replace itself/,
  );
  // A single member is its cluster's only voter: the voter refusal comes first.
  const single = mapOf(addStandby(initialMap('c', 8, members(1)), member('spare', 20)));
  assert.match(problemOf(planLeave(single, 'node-00')), /voter/);
  const invalid = { ...roomy, owners: roomy.owners.map(() => 'ghost') };
  assert.match(problemOf(planJoin(invalid, member('new', 90))), /the cluster map is not valid/);
});

test('the last member that owns partitions cannot leave, even when it is no voter', () => {
  // Voters stored explicitly (as a decoded map could carry them) leave node-01 a non-voter.
  const map: ClusterMap = { ...initialMap('c', 8, members(2)), voters: ['node-00'] };
  const alone: ClusterMap = { ...map, owners: map.owners.map(() => 'node-01') };
  assert.equal(mapProblem(alone), null);
  assert.match(
    problemOf(planLeave(alone, 'node-01')),
    /node-01 is the last member that owns partitions/,
  );
});

test('voters stay the same across joins, even of ids that sort first', () => {
  let map = initialMap('c', 256, members(3, 'm-'));
  const founders = votersOf(map);
  assert.deepEqual(founders, ['m-00', 'm-01', 'm-02']);
  for (const [index, id] of ['a', 'b', 'c', 'd', 'e', 'f'].entries()) {
    map = mapOf(planJoin(map, member(id, 10 + index)));
    assert.deepEqual(votersOf(map), founders, `voters while ${id} joins`);
    map = mapOf(commitChange(map));
    assert.deepEqual(votersOf(map), founders, `voters after ${id} joined`);
  }
  assert.deepEqual(map.voters, founders, 'stored in the map');
  // Without the stored field the first five by id would be the joiners.
  const { voters: _stored, ...withoutVoters } = map;
  assert.deepEqual(votersOf(withoutVoters), ['a', 'b', 'c', 'd', 'e']);
});

test('a standby owns nothing, is never a voter, joins by promotion, and an aborted promotion leaves it a standby', () => {
  const base = initialMap('c', 64, members(4));
  const withStandby = mapOf(addStandby(base, member('aaa-standby', 30)));
  assert.equal(withStandby.epoch, base.epoch + 1);
  assert.deepEqual(votersOf(withStandby), votersOf(base));
  assert.deepEqual(withStandby.owners, base.owners);
  assert.equal(withStandby.change, undefined, 'adding a standby records no change');
  const standby = withStandby.members.find((m) => m.id === 'aaa-standby')!;
  assert.equal(standby.role, 'standby');
  assert.match(problemOf(addStandby(withStandby, member('aaa-standby', 31))), /already a member/);
  assert.match(
    problemOf(planJoin(withStandby, member('aaa-standby', 31))),
    /standby aaa-standby is at .*, not /,
  );
  assert.match(problemOf(planReplace(withStandby, 'aaa-standby', member('x', 40))), /is a standby/);

  const promoting = mapOf(planJoin(withStandby, standby));
  assert.equal(promoting.change!.fromStandby, true);
  assert.equal(promoting.members.find((m) => m.id === 'aaa-standby')!.role, undefined);
  assert.ok(promoting.change!.nextOwners.includes('aaa-standby'));
  const aborted = mapOf(abortChange(promoting));
  assert.deepEqual(aborted.members, withStandby.members, 'a standby again');
  const committed = mapOf(commitChange(promoting));
  assert.equal(committed.members.find((m) => m.id === 'aaa-standby')!.role, undefined);
  assertBalanced(committed, 'after the promotion');

  // A standby that leaves moves nothing.
  const leaving = mapOf(planLeave(withStandby, 'aaa-standby'));
  assert.deepEqual(leaving.change!.nextOwners, base.owners);
  assert.deepEqual(transfersOf(leaving), []);
  assert.deepEqual(mapOf(commitChange(leaving)).members, base.members);
  // A standby may be added while a change is in progress: nothing of it moves.
  const during = mapOf(addStandby(promoting, member('late-standby', 32)));
  assert.deepEqual(during.change, promoting.change);
});

test('a replace by a standby promotes it, and an abort makes it a standby again', () => {
  const base = mapOf(addStandby(initialMap('c', 64, members(6)), member('spare', 30)));
  const spare = base.members.find((m) => m.id === 'spare')!;
  const planned = mapOf(planReplace(base, 'node-05', spare));
  assert.equal(planned.change!.fromStandby, true);
  assert.ok(transfersOf(planned).every((t) => t.to === 'spare'));
  assert.deepEqual(mapOf(abortChange(planned)).members, base.members);
  const committed = mapOf(commitChange(planned));
  assert.ok(!committed.members.some((m) => m.id === 'node-05'));
  assert.equal(committed.members.find((m) => m.id === 'spare')!.role, undefined);
});

test('a remove of the only replica of an n=1 keyspace lists copies with no source, and the plan warns of the loss', () => {
  let base = initialMap('c', 16, members(6));
  base = withKeyspace(base, keyspaceSpec('ks1', 1));
  const planned = mapOf(planRemove(base, 'node-05'));
  const orphaned = transfersOf(planned).filter((t) => t.sources.length === 0);
  const ownedByGone = base.owners.filter((owner) => owner === 'node-05').length;
  assert.equal(orphaned.length, ownedByGone);
  assert.ok(orphaned.every((t) => t.keyspaceId === 1));
  const summary = planSummary(planned)!;
  assert.equal(summary.totals.withoutSource, ownedByGone);
  assert.ok(formatPlan(summary).some((line) => /no replica left to copy from/.test(line)));
});

test('the plan counts every transfer per (source, receiver) pair, sums sizes where known, and reads as text', () => {
  const base = mapWithKeyspaces(8, 256);
  const planned = mapOf(planJoin(base, member('joiner', 50)));
  const transfers: Transfer[] = transfersOf(planned);
  const sizeOf = (keyspaceId: number, partition: number) =>
    partition % 3 === 0 ? undefined : { keys: keyspaceId + 1, bytes: 1000 * (partition + 1) };
  const summary = planSummary(planned, sizeOf)!;
  assert.equal(summary.kind, 'join');
  assert.equal(summary.totals.copies, transfers.length);
  assert.equal(
    summary.flows.reduce((sum, flow) => sum + flow.copies, 0),
    transfers.length,
  );
  let keys = 0;
  let bytes = 0;
  let unknown = 0;
  for (const t of transfers) {
    const size = sizeOf(t.keyspaceId, t.partition);
    if (size === undefined) unknown++;
    keys += size?.keys ?? 0;
    bytes += size?.bytes ?? 0;
  }
  assert.deepEqual(
    [summary.totals.keys, summary.totals.bytes, summary.totals.sizesUnknown],
    [keys, bytes, unknown],
  );
  for (const flow of summary.flows) {
    const matching = transfers.filter((t) => t.to === flow.to && t.sources[0] === flow.from);
    assert.equal(flow.copies, matching.length);
    assert.equal(flow.partitions, new Set(matching.map((t) => t.partition)).size);
  }
  const moving = Math.floor(256 / 9);
  assert.deepEqual(
    summary.ownership.reduce((sum, item) => sum + item.partitions, 0),
    moving,
  );
  assert.ok(summary.ownership.every((item) => item.to === 'joiner'));
  assert.deepEqual(
    summary.owned.find((o) => o.id === 'joiner'),
    {
      id: 'joiner',
      before: 0,
      after: moving,
    },
  );
  const lines = formatPlan(summary);
  assert.equal(lines[0], `join joiner (map epoch ${planned.epoch})`);
  assert.equal(lines[1], `ownership: ${moving} of 256 partitions change owner`);
  assert.ok(lines.some((line) => line.startsWith(`data: ${transfers.length} partition copies`)));
  // Copies of unknown size count at their keyspace's mean of the measured ones.
  const expected = { keys: 0, bytes: 0 };
  for (const keyspaceId of new Set(transfers.map((t) => t.keyspaceId))) {
    const mine = transfers.filter((t) => t.keyspaceId === keyspaceId);
    const known = mine.map((t) => sizeOf(t.keyspaceId, t.partition)).filter((size) => size);
    const scale = mine.length / known.length;
    expected.keys += Math.round(known.reduce((sum, size) => sum + size!.keys, 0) * scale);
    expected.bytes += Math.round(known.reduce((sum, size) => sum + size!.bytes, 0) * scale);
  }
  assert.deepEqual(summary.totals.estimate, expected);
  assert.ok(expected.bytes > bytes, 'the estimate counts what the sums leave out');
  assert.ok(lines.some((line) => line.startsWith(`  about ${expected.keys} keys, `)));
  const allKnown = planSummary(planned, () => ({ keys: 2, bytes: 10 }))!;
  assert.deepEqual(allKnown.totals.estimate, {
    keys: 2 * transfers.length,
    bytes: 10 * transfers.length,
  });
  assert.ok(!formatPlan(allKnown).some((line) => line.startsWith('  about')), 'no estimate needed');
  assert.equal(planSummary(planned)!.totals.estimate, null, 'nothing measured, nothing estimated');
  assert.equal(planSummary(base), null, 'no change, no plan');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5 GiB');
});

test('a committed leave takes the leaver out of every chain, and a chain it was alone in gets the new first replica', () => {
  let base = initialMap('c', 16, members(7));
  base = withKeyspace(base, {
    ...DEFAULT_KEYSPACE_SPEC,
    name: 'chained',
    n: 1,
    r: 1,
    w: 1,
    consistency: 'chain',
  });
  const leaver = 'node-06';
  const planned = mapOf(planLeave(base, leaver));
  const committed = mapOf(commitChange(planned));
  assert.equal(mapProblem(committed), null);
  for (const [partition, config] of committed.chains!.entries()) {
    const before = base.chains![partition]!;
    assert.ok(!config.members.some((m) => m.id === leaver));
    if (before.members.some((m) => m.id === leaver)) {
      assert.equal(config.epoch, before.epoch + 1, 'a changed chain moves one epoch');
      // Nothing is left to copy from: the chain starts over at its new replica, as a founder.
      assert.deepEqual(config.members, [{ id: committed.owners[partition]!, sinceEpoch: 1 }]);
    } else {
      assert.deepEqual(config, before, 'other chains untouched');
    }
  }
});

test('the new fields survive encode and decode, and mapProblem rejects them malformed', () => {
  const base = mapOf(addStandby(initialMap('c', 64, members(6)), member('spare', 30)));
  const planned = mapOf(planReplace(base, 'node-05', member('fresh', 31)));
  assert.deepEqual(decodeMap(encodeMap(planned)), planned);
  assert.deepEqual(decodeMap(encodeMap(base)), base);

  const broken: [string, unknown][] = [
    ['voters missing', { ...planned, voters: undefined }],
    ['voter not a member', { ...planned, voters: ['ghost'] }],
    ['voters not sorted', { ...planned, voters: ['node-01', 'node-00'] }],
    ['voter is a standby', { ...base, voters: ['spare'] }],
    ['voters', { ...planned, voters: [] }],
    ['member role', { ...base, members: base.members.map((m) => ({ ...m, role: 'boss' })) }],
    ['owner is a standby', { ...base, owners: base.owners.map(() => 'spare') }],
    ['change kind', { ...planned, change: { ...planned.change, kind: 'merge' } }],
    ['change subject not a member', { ...planned, change: { ...planned.change, subject: 'x' } }],
    ['change nextOwners', { ...planned, change: { ...planned.change, nextOwners: ['node-00'] } }],
    [
      'next owner is a standby',
      { ...planned, change: { ...planned.change, nextOwners: planned.owners.map(() => 'spare') } },
    ],
    ['change by', { ...planned, change: { ...planned.change, by: 'node-05' } }],
    [
      'a member that goes is a next owner',
      { ...planned, change: { ...planned.change, nextOwners: planned.owners } },
    ],
    ['change fromStandby', { ...planned, change: { ...planned.change, fromStandby: 'yes' } }],
  ];
  for (const [problem, value] of broken) {
    const json = JSON.parse(JSON.stringify(value)) as unknown;
    assert.equal(mapProblem(json), problem, problem);
  }
});

test('maps without the new fields decode unchanged and keep their voters, the first five members by id', () => {
  const old = withKeyspace(initialMap('c', 256, members(7)), keyspaceSpec('ks1', 2));
  const json = new TextDecoder().decode(encodeMap(old));
  for (const field of ['voters', 'change', 'role']) assert.ok(!json.includes(`"${field}"`), field);
  const decoded = decodeMap(encodeMap(old));
  assert.deepEqual(decoded, old);
  assert.equal(mapProblem(decoded), null);
  assert.deepEqual(votersOf(decoded), ['node-00', 'node-01', 'node-02', 'node-03', 'node-04']);
  assert.deepEqual(transfersOf(decoded), []);
  const ks = decoded.keyspaces[0]!;
  for (let partition = 0; partition < 256; partition += 17) {
    const expected = naiveWalk(decoded.owners, partition).slice(0, 3);
    assert.deepEqual(readReplicas(decoded, ks, partition), expected);
    assert.deepEqual(writeReplicas(decoded, ks, partition), expected);
  }
  assert.match(problemOf(commitChange(decoded)), /no membership change is in progress/);
  assert.match(problemOf(abortChange(decoded)), /no membership change is in progress/);
});
