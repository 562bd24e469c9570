// Chains in membership changes, as pure map transitions (src/core/cluster/membership.ts):
// which members a chain wants while a change runs, that the commit waits for chain
// receivers, that a commit leaves every chain exactly its new replicas once the new tails
// joined (and only trims, never adds, when they did not), that an abort takes the added
// tails out again, the trim of unwanted members, and the chain with nothing to copy from.
// A property runs every kind of change over random clusters against the definitions
// written out naively.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  initialMap,
  mapProblem,
  withChains,
  withKeyspace,
  type ClusterMap,
  type MemberInfo,
} from '../../../src/core/cluster/cluster-map.ts';
import {
  abortChange,
  addStandby,
  chainReplicas,
  chainsTrimmed,
  chainWithoutSource,
  commitChange,
  markCopied,
  planJoin,
  planLeave,
  planRemove,
  planReplace,
  receiversOf,
  transfersOf,
  wantedChainMembers,
} from '../../../src/core/cluster/membership.ts';
import { withTail, type ChainConfig } from '../../../src/core/chain/chain-config.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { mapOf } from './membership-fixtures.ts';

const { id: _defaultId, ...DEFAULT_SPEC } = DEFAULT_KEYSPACE;

/** Fixed seed; a failure prints it: replay with CHAIN_MEMBERSHIP_PROPERTY_SEED=<seed>. */
function seeded(numRuns: number): fc.Parameters<unknown> {
  const seed = Number(process.env['CHAIN_MEMBERSHIP_PROPERTY_SEED'] ?? 20250612);
  return { seed, numRuns, endOnFailure: false };
}

function member(index: number, prefix = 'node-'): MemberInfo {
  const host = `10.1.${index >> 8}.${index & 255}`;
  return {
    id: `${prefix}${String(index).padStart(2, '0')}`,
    peer: `${host}:6580`,
    http: `${host}:8080`,
    resp: `${host}:6379`,
  };
}

/** A cluster of `count` members with a chain keyspace of `n` (and `default`, eventual, n 3). */
function chainCluster(count: number, n: number, partitions = 32): ClusterMap {
  const founders = Array.from({ length: count }, (_, index) => member(index));
  return withKeyspace(initialMap('c', partitions, founders), {
    ...DEFAULT_SPEC,
    name: 'chained',
    n,
    r: 1,
    w: 1,
    consistency: 'chain',
  });
}

const ids = (config: ChainConfig): string[] => config.members.map((m) => m.id);

/** The preference list under `owners`, walked out naively. */
function naiveReplicas(owners: readonly string[], partition: number, n: number): string[] {
  const walk: string[] = [];
  for (let step = 0; step < owners.length && walk.length < n; step++) {
    const owner = owners[(partition + step) % owners.length]!;
    if (!walk.includes(owner)) walk.push(owner);
  }
  return walk;
}

/** What the receivers do before they report: every chain they join gets them as its tail. */
function withNewTails(map: ClusterMap): ClusterMap {
  const changed: ChainConfig[] = [];
  for (const config of map.chains!) {
    const epoch = config.epoch + 1;
    const added = wantedChainMembers(map, config.partition)
      .filter((id) => !ids(config).includes(id))
      .map((id) => ({ id, sinceEpoch: epoch }));
    // Several tails in one step here; the node appends them one at a time.
    if (added.length > 0) {
      changed.push({ ...config, epoch, members: [...config.members, ...added] });
    }
  }
  return changed.length === 0 ? map : withChains(map, changed);
}

test('while a join runs, a chain wants its current replicas and the joiner; receiversOf waits for chain receivers too', () => {
  const base = chainCluster(4, 3);
  const planned = mapOf(planJoin(mapOf(addStandby(base, member(9))), member(9)));
  const joiner = member(9).id;
  let joining = 0;
  for (let partition = 0; partition < planned.partitionCount; partition++) {
    const current = naiveReplicas(planned.owners, partition, 3);
    const next = naiveReplicas(planned.change!.nextOwners, partition, 3);
    assert.deepEqual(wantedChainMembers(planned, partition), [
      ...current,
      ...next.filter((id) => !current.includes(id)),
    ]);
    if (next.includes(joiner)) joining++;
  }
  assert.ok(joining > 0, 'the joiner takes some chains');
  const chainTransfers = transfersOf(planned).filter((transfer) => transfer.keyspaceId === 1);
  assert.equal(chainTransfers.length, joining, 'one chain transfer per partition the joiner takes');
  assert.deepEqual(receiversOf(planned), [joiner]);
  // The joiner's report commits the change (markCopied refuses a member that receives nothing).
  assert.equal(mapOf(markCopied(planned, joiner)).change, undefined);
});

test("a join's commit, once the joiner is every new chain's tail, leaves each chain exactly its new replicas, the old members in their order and the joiner last", () => {
  const base = chainCluster(4, 3);
  const planned = mapOf(planJoin(mapOf(addStandby(base, member(9))), member(9)));
  const extended = withNewTails(planned);
  assert.ok(
    extended.chains!.some((config) => config.members.length === 4),
    'chains run with n + 1 members while the change is in progress',
  );
  const committed = mapOf(commitChange(extended));
  assert.equal(mapProblem(committed), null);
  for (const config of committed.chains!) {
    const before = extended.chains![config.partition]!;
    const wanted = naiveReplicas(committed.owners, config.partition, 3);
    assert.deepEqual([...ids(config)].sort(), [...wanted].sort(), `partition ${config.partition}`);
    assert.deepEqual(
      ids(config),
      ids(before).filter((id) => wanted.includes(id)),
      'the order is kept',
    );
    const moved = config.members.length !== before.members.length;
    assert.equal(config.epoch, before.epoch + (moved ? 1 : 0), 'an epoch up only where it moved');
    // The new tail keeps the membership it joined with: it is not appended again.
    const tail = config.members.at(-1)!;
    assert.equal(tail.sinceEpoch, before.members.find((m) => m.id === tail.id)!.sinceEpoch);
  }
});

test('a commit without the new tails (the behaviour before) only trims: the chains the joiner takes are left one replica short', () => {
  const base = chainCluster(4, 3);
  const planned = mapOf(planJoin(mapOf(addStandby(base, member(9))), member(9)));
  const committed = mapOf(commitChange(planned));
  let short = 0;
  for (const config of committed.chains!) {
    const wanted = naiveReplicas(committed.owners, config.partition, 3);
    assert.ok(
      ids(config).every((id) => wanted.includes(id)),
      'no member that is not a replica',
    );
    if (config.members.length < 3) short++;
  }
  assert.ok(short > 0, 'some chains lack the joiner');
});

test('an abort takes the tails the change added out of every chain again, and the joiner is a standby again', () => {
  const base = chainCluster(7, 3);
  const planned = mapOf(planJoin(mapOf(addStandby(base, member(9))), member(9)));
  const aborted = mapOf(abortChange(withNewTails(planned)));
  assert.equal(mapProblem(aborted), null);
  for (const config of aborted.chains!) {
    assert.deepEqual(ids(config), ids(base.chains![config.partition]!));
  }
  assert.equal(aborted.members.find((m) => m.id === member(9).id)?.role, 'standby');
  const leaving = mapOf(planLeave(base, 'node-06'));
  const abortedLeave = mapOf(abortChange(withNewTails(leaving)));
  for (const config of abortedLeave.chains!) {
    assert.deepEqual(ids(config), ids(base.chains![config.partition]!));
  }
});

test('an abort that would empty a chain keeps it, or restarts it at the first replica when its member leaves the cluster', () => {
  const base = chainCluster(7, 1, 16);
  const planned = mapOf(planReplace(base, 'node-05', member(9)));
  const extended = withNewTails(planned);
  // node-05's chains lose it (it went down): the newcomer is left alone there.
  const alone = extended.chains!.filter((config) => ids(config).includes('node-05'));
  assert.ok(alone.length > 0);
  const lonely = withChains(
    extended,
    alone.map((config) => ({
      ...config,
      epoch: config.epoch + 1,
      members: config.members.filter((m) => m.id !== 'node-05'),
    })),
  );
  const aborted = mapOf(abortChange(lonely));
  assert.equal(mapProblem(aborted), null, 'the newcomer that goes is in no chain');
  for (const config of alone) {
    assert.deepEqual(aborted.chains![config.partition]!.members, [
      { id: 'node-05', sinceEpoch: 1 },
    ]);
  }
});

test('chainsTrimmed removes members a chain does not want, only where allowed, and never empties a chain', () => {
  const base = chainCluster(4, 2, 8);
  const stray = base.chains!.map((config) => {
    const outsider = ['node-00', 'node-01', 'node-02', 'node-03'].find(
      (id) => !ids(config).includes(id),
    )!;
    return withTail(config, outsider);
  });
  const map = withChains(base, stray);
  const everywhere = chainsTrimmed(map, () => true);
  assert.equal(everywhere.length, 8);
  for (const config of everywhere) {
    assert.deepEqual(ids(config), ids(base.chains![config.partition]!));
    assert.equal(config.epoch, map.chains![config.partition]!.epoch + 1);
  }
  assert.deepEqual(
    chainsTrimmed(map, (config) => config.partition === 3).map((c) => c.partition),
    [3],
  );
  // A chain none of whose members is wanted keeps them: they hold its data.
  const partition = base.chains!.findIndex((config) => !ids(config).includes('node-03'));
  const nobody = withChains(base, [
    {
      partition,
      epoch: base.chains![partition]!.epoch + 1,
      members: [{ id: 'node-03', sinceEpoch: 1 }],
    },
  ]);
  assert.ok(!chainReplicas(nobody, nobody.owners, partition).includes('node-03'));
  assert.ok(!chainsTrimmed(nobody, () => true).some((config) => config.partition === partition));
});

test("a chain whose one member is being removed has nothing to copy from: its receivers do not wait, and the commit restarts it at the new replica'", () => {
  const base = chainCluster(7, 1, 16);
  const planned = mapOf(planRemove(base, 'node-06'));
  for (const config of planned.chains!) {
    assert.equal(chainWithoutSource(planned, config.partition), ids(config)[0] === 'node-06');
  }
  assert.equal(chainWithoutSource(base, 0), false, 'no change, nothing to say');
  const committed = mapOf(commitChange(withNewTails(planned)));
  for (const config of committed.chains!) {
    assert.deepEqual(ids(config), naiveReplicas(committed.owners, config.partition, 1));
  }
});

test('property: for every kind of change over random clusters, the new tails then a commit leave every chain exactly its new replicas; the tails then an abort, exactly its old members', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 8 }),
      fc.integer({ min: 1, max: 4 }),
      fc.constantFrom('join', 'leave', 'remove', 'replace'),
      fc.nat(),
      (count, n, kind, pick) => {
        let base = chainCluster(count, n, 16);
        // Voters (the first five) cannot go: a departing member is a later one.
        const nonVoters = base.members.map((m) => m.id).filter((_, index) => index >= 5);
        let planned: ClusterMap;
        if (kind === 'join' || nonVoters.length === 0 || kind === 'replace') {
          base = mapOf(addStandby(base, member(40)));
          const subject = nonVoters[pick % Math.max(1, nonVoters.length)];
          planned =
            kind === 'replace' && subject !== undefined
              ? mapOf(planReplace(base, subject, member(40)))
              : mapOf(planJoin(base, member(40)));
        } else {
          const subject = nonVoters[pick % nonVoters.length]!;
          planned = mapOf(kind === 'leave' ? planLeave(base, subject) : planRemove(base, subject));
        }
        const extended = withNewTails(planned);
        const committed = mapOf(commitChange(extended));
        const nNext = Math.min(n, new Set(committed.owners).size);
        for (const config of committed.chains!) {
          const wanted = naiveReplicas(committed.owners, config.partition, nNext);
          assert.deepEqual([...ids(config)].sort(), [...wanted].sort());
        }
        const aborted = mapOf(abortChange(extended));
        for (const config of aborted.chains!) {
          assert.deepEqual(ids(config), ids(base.chains![config.partition]!));
        }
      },
    ),
    seeded(150),
  );
});
