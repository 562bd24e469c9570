// The elastic policy in a node: only the first voter up decides; it asks every other owning
// member for its load each interval and decides only from a complete newest round; one
// decision waits for its change to end, and the cool-down counts from that end and from the
// start. Also: every node answers load queries, bad messages and settings are refused, and
// the load count reports nothing before a full pass and a rate that fades out of its window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMap, type ClusterMap } from '../../../src/core/cluster/cluster-map.ts';
import {
  answerLoadQuery,
  ElasticHost,
  parseElasticSettings,
  type ElasticSettings,
  type LoadSend,
} from '../../../src/core/cluster/elastic-host.ts';
import type { NodeLoad } from '../../../src/core/cluster/elastic.ts';
import { LoadCensus, RATE_WINDOW_S } from '../../../src/core/cluster/load-census.ts';
import { addStandby, planJoin } from '../../../src/core/cluster/membership.ts';
import { member } from './membership-fixtures.ts';

const SETTINGS: ElasticSettings = {
  joinAbove: { keys: 1000 },
  leaveBelow: { keys: 100 },
  minMembers: 3,
  coolDownMs: 5_000,
  intervalMs: 1_000,
};

function clusterWithStandby(): ClusterMap {
  const map = initialMap('c', 64, [member('n1', 1), member('n2', 2), member('n3', 3)]);
  const result = addStandby(map, member('n4', 4));
  assert.ok(result.ok);
  return result.map;
}

const heavy: NodeLoad = { keys: 5000, bytes: 1e6, requestsPerSecond: 10 };
const allUp = (): boolean => true;

/** Answers every query in `sends` with `load`, as the members would. */
function report(host: ElasticHost, sends: readonly LoadSend[], load: NodeLoad): void {
  for (const send of sends) {
    const answer = answerLoadQuery('n1', send.message, load);
    assert.ok(answer !== null);
    host.receiveReport(send.to, answer.message);
  }
}

test('the first voter up asks the other owners, decides once every report of the round is in, and only then', () => {
  const map = clusterWithStandby();
  const host = new ElasticHost('n1', SETTINGS);
  // The cool-down counts from the start: the first rounds decide nothing.
  let { sends, decision } = host.tick(0, map, allUp, heavy);
  assert.equal(decision, null);
  assert.deepEqual(
    sends.map((send) => send.to),
    ['n2', 'n3'],
    'the standby owns nothing and is not asked',
  );
  report(host, sends, heavy);
  assert.equal(host.tick(10, map, allUp, heavy).decision, null, 'within the cool-down');
  ({ sends } = host.tick(6_000, map, allUp, heavy));
  assert.equal(sends.length, 2, 'a new round');
  // n2 answers, n3 not yet: no decision on a partial round.
  host.receiveReport('n2', answerLoadQuery('n1', sends[0]!.message, heavy)!.message);
  assert.equal(host.tick(6_010, map, allUp, heavy).decision, null);
  // A report for an older round does not count.
  host.receiveReport('n3', [1, 1, 5000, 1e6, 10]);
  assert.equal(host.tick(6_020, map, allUp, heavy).decision, null);
  host.receiveReport('n3', answerLoadQuery('n1', sends[1]!.message, heavy)!.message);
  ({ decision } = host.tick(6_030, map, allUp, heavy));
  assert.equal(decision?.kind, 'join');
  assert.equal(decision.kind === 'join' && decision.member.id, 'n4');
  assert.equal(host.status().decisions, 1);
});

test('one decision at a time: none until the change it asked for has ended, then a new cool-down', () => {
  let map = clusterWithStandby();
  const host = new ElasticHost('n1', { ...SETTINGS, coolDownMs: 0 });
  let { sends } = host.tick(0, map, allUp, heavy);
  report(host, sends, heavy);
  const { decision } = host.tick(1, map, allUp, heavy);
  assert.equal(decision?.kind, 'join');
  host.proposed(true, 2);
  const joining = planJoin(
    map,
    map.members.find((m) => m.id === 'n4')!,
  );
  assert.ok(joining.ok);
  map = joining.map;
  ({ sends } = host.tick(2_000, map, allUp, heavy));
  report(host, sends, heavy);
  assert.equal(host.tick(2_001, map, allUp, heavy).decision, null, 'the change is in progress');
  // A failed proposal frees the host at once.
  const other = new ElasticHost('n1', { ...SETTINGS, coolDownMs: 0 });
  ({ sends } = other.tick(0, clusterWithStandby(), allUp, heavy));
  report(other, sends, heavy);
  assert.equal(other.tick(1, clusterWithStandby(), allUp, heavy).decision?.kind, 'join');
  other.proposed(false, 2);
  ({ sends } = other.tick(1_500, clusterWithStandby(), allUp, heavy));
  report(other, sends, heavy);
  assert.equal(other.tick(1_501, clusterWithStandby(), allUp, heavy).decision?.kind, 'join');
});

test('a node that is not the first voter up decides nothing; it decides once the voters before it are down', () => {
  const map = clusterWithStandby();
  const host = new ElasticHost('n2', { ...SETTINGS, coolDownMs: 0 });
  const first = host.tick(0, map, allUp, heavy);
  assert.deepEqual(first.sends, []);
  assert.equal(first.decision, null);
  assert.equal(host.status().deciding, false);
  const n1Down = (id: string): boolean => id !== 'n1';
  const { sends } = host.tick(1, map, n1Down, heavy);
  assert.deepEqual(
    sends.map((send) => send.to),
    ['n3'],
    'the down member is not asked',
  );
  assert.equal(host.status().deciding, true);
});

test('load queries: every node answers with its figures once it has them; malformed messages are ignored', () => {
  assert.deepEqual(answerLoadQuery('n1', [0, 7], heavy), {
    to: 'n1',
    message: [1, 7, 5000, 1e6, 10],
  });
  assert.equal(answerLoadQuery('n1', [0, 7], undefined), null, 'no count yet');
  assert.equal(answerLoadQuery('n1', [0, 'x'], heavy), null);
  assert.equal(answerLoadQuery('n1', [1, 7, 1, 2, 3], heavy), null, 'a report is not a query');
  const host = new ElasticHost('n1', SETTINGS);
  const { sends } = host.tick(0, clusterWithStandby(), allUp, heavy);
  for (const bad of [[1, 1, -1, 0, 0], [1, 1, 1, 2], [1, 1, 1, 2, Infinity], 'x']) {
    host.receiveReport('n2', bad);
  }
  assert.deepEqual(Object.keys(host.status().loads), ['n1'], 'only its own load counted');
  assert.equal(sends.length, 2);
});

test('settings from configuration: defaults filled in, every problem named', () => {
  const settings = parseElasticSettings({ joinAbove: { bytes: 1e9 } });
  assert.equal(settings.minMembers, 3);
  assert.equal(settings.intervalMs, 10_000);
  assert.equal(settings.coolDownMs, 300_000);
  assert.throws(() => parseElasticSettings([]), /expected an object/);
  assert.throws(() => parseElasticSettings({ joinAbove: { cpu: 1 } }), /the metrics are keys/);
  assert.throws(() => parseElasticSettings({ joinAbove: {} }), /watches no metric/);
  assert.throws(
    () => parseElasticSettings({ joinAbove: { keys: 10 }, leaveBelow: { keys: 20 } }),
    /must be below joinAbove/,
  );
  assert.throws(
    () => parseElasticSettings({ joinAbove: { keys: 10 }, intervalMs: 0 }),
    /intervalMs must be a positive integer/,
  );
  assert.throws(
    () => parseElasticSettings({ joinAbove: { keys: 10 }, every: 1 }),
    /unknown field 'every'/,
  );
});

test('the load count reports nothing before a full pass, then the sum over partitions', () => {
  const census = new LoadCensus(4, 400);
  const sizes = [
    { keys: 1, bytes: 10 },
    { keys: 2, bytes: 20 },
    { keys: 0, bytes: 0 },
    { keys: 4, bytes: 40 },
  ];
  const measured: number[] = [];
  const measure = (partition: number): { keys: number; bytes: number } => {
    measured.push(partition);
    return sizes[partition]!;
  };
  for (let nowMs = 0; nowMs < 300; nowMs += 100) census.tick(nowMs, measure);
  assert.equal(census.load(300), undefined, 'three of four partitions counted');
  census.tick(300, measure);
  census.tick(350, measure);
  assert.deepEqual(measured, [0, 1, 2, 3], 'one partition per step, a step per pass / partitions');
  assert.deepEqual(census.load(350), { keys: 7, bytes: 70, requestsPerSecond: 0 });
  sizes[1] = { keys: 12, bytes: 120 };
  for (let nowMs = 400; nowMs <= 600; nowMs += 100) census.tick(nowMs, measure);
  assert.equal(census.load(600)?.keys, 17, 'a later pass updates the figures');
});

test('requests per second: averaged over the window, and gone once the window has passed', () => {
  const census = new LoadCensus(1, 10);
  census.tick(0, () => ({ keys: 0, bytes: 0 }));
  for (let nowMs = 20_000; nowMs < 30_000; nowMs += 10) census.countRequest(nowMs);
  assert.equal(census.load(30_000)?.requestsPerSecond, 100, '100 a second over the window');
  assert.equal(
    census.load(30_000 + RATE_WINDOW_S * 1000)?.requestsPerSecond,
    0,
    'the window passed',
  );
  const young = new LoadCensus(1, 10);
  young.tick(0, () => ({ keys: 0, bytes: 0 }));
  for (let nowMs = 0; nowMs < 2_000; nowMs += 10) young.countRequest(nowMs);
  assert.equal(young.load(2_000)?.requestsPerSecond, 100, 'a node up 2 s averages over 2 s');
});
