// The elastic policy in a running cluster, in simulation: three members and a standby under
// a request rate above the policy's join threshold; the first voter gathers every member's
// load, joins the standby, and the change commits. When the load stops, the rate falls under
// the leave threshold and the non-voter leaves again, one change at a time. The same load
// without a policy changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ElasticSettings } from '../../src/core/cluster/elastic-host.ts';
import { ClusterWorld } from '../../src/sim/cluster-world.ts';
import { formed, put, seedsFor } from './sim-helpers.ts';

const POLICY: ElasticSettings = {
  joinAbove: { requestsPerSecond: 40 },
  leaveBelow: { requestsPerSecond: 5 },
  minMembers: 3,
  coolDownMs: 5_000,
  intervalMs: 1_000,
};

/** About `perSecond` writes a second, spread over `via()`'s nodes, until stopped. */
function startLoad(world: ClusterWorld, via: () => string[], perSecond: number): { stop: boolean } {
  const load = { stop: false };
  let round = 0;
  const next = (): void => {
    if (load.stop) return;
    const nodes = via();
    world.submit(nodes[round % nodes.length]!, put(`k${round % 200}`, `v${round}`), () => {});
    round++;
    world.at(world.nowMs + Math.round(1000 / perSecond), next);
  };
  next();
  return load;
}

function owners(world: ClusterWorld, id: string): string[] {
  const map = world.node(id).clusterMap()!;
  return [...new Set(map.owners)].sort();
}

function withStandby(seed: number, elastic: ElasticSettings | undefined): ClusterWorld {
  const world = formed(new ClusterWorld({ seed, nodeCount: 3, ...(elastic ? { elastic } : {}) }));
  world.addNode('n4', 'n1');
  assert.ok(
    world.runUntil(
      () =>
        world
          .node('n1')
          .clusterMap()!
          .members.some((m) => m.id === 'n4'),
      20_000,
    ),
    'n4 becomes a standby',
  );
  return world;
}

for (const seed of seedsFor(2, 1)) {
  test(`seed ${seed}: the elastic policy joins the standby under load, and lets it leave once the load stops`, () => {
    const world = withStandby(seed, POLICY);
    const load = startLoad(world, () => ['n1', 'n2', 'n3'], 300);
    const joined = world.runUntil(() => {
      const map = world.node('n1').clusterMap()!;
      return map.change === undefined && owners(world, 'n1').includes('n4');
    }, 120_000);
    const status = world.node('n1').clusterStatus();
    assert.ok(joined, `n4 joined and the change committed: ${JSON.stringify(status.elastic)}`);
    assert.equal(status.elastic?.deciding, true, 'the first voter decides');
    assert.equal(status.elastic?.lastDecision?.kind, 'join');
    assert.match(status.elastic.lastDecision.reason, /requestsPerSecond per member \d+/);
    assert.equal(world.node('n2').clusterStatus().elastic?.deciding, false, 'n2 does not');

    load.stop = true;
    const left = world.runUntil(() => {
      const map = world.node('n1').clusterMap()!;
      return map.change === undefined && !owners(world, 'n1').includes('n4');
    }, 120_000);
    const after = world.node('n1').clusterStatus().elastic;
    assert.ok(left, `n4 left once the load stopped: ${JSON.stringify(after)}`);
    assert.equal(after?.lastDecision?.kind, 'leave');
    assert.equal(after.decisions, 2, 'one decision for each change, no more');
    assert.deepEqual(owners(world, 'n1'), ['n1', 'n2', 'n3'], 'the voters stay');
  });
}

test('the same load without a policy joins nothing: the standby stays a standby', () => {
  const world = withStandby(1, undefined);
  const load = startLoad(world, () => ['n1', 'n2', 'n3'], 300);
  // Longer than a load count pass (30 s by default), so every node has its figures.
  world.runFor(40_000);
  load.stop = true;
  assert.deepEqual(owners(world, 'n1'), ['n1', 'n2', 'n3']);
  assert.equal(world.node('n1').clusterMap()!.change, undefined);
  assert.equal(world.node('n1').clusterStatus().elastic, null);
  const reported = world.node('n2').clusterStatus().load;
  assert.ok(reported !== null && reported.keys > 0, 'every node still counts its own load');
});
