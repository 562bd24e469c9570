// The admin routes that change membership and steer handoff, over HTTP: every malformed body
// is a 400 whose message names the problem, and changes nothing; both routes need the admin
// token when one is configured; a dry run answers the plan and leaves the map as it was.
// Bad input runs against one node; the dry run needs a standby, so it runs against a founder
// and a node that joined it, both in this process.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpNode, type HttpNode } from './http-harness.ts';
import { ADMIN_TOKEN, startStandbyCluster, type StandbyCluster } from './standby-cluster.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

let guarded: HttpNode;
let open: HttpNode;
let cluster: StandbyCluster;

before(async () => {
  [guarded, open, cluster] = await Promise.all([
    startHttpNode({ config: { adminToken: ADMIN_TOKEN } }),
    startHttpNode(),
    startStandbyCluster(),
  ]);
});

after(async () => {
  await Promise.all([guarded.close(), open.close(), cluster.close()]);
});

/** The `{error: {code, message}}` of a refusal, checking its status. */
async function refusalOf(
  response: Response,
  status: number,
): Promise<{ code: string; message: string }> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  const body = JSON.parse(text) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.code, 'string', text);
  assert.equal(typeof body.error.message, 'string', text);
  return body.error;
}

interface ClusterView {
  readonly epoch: number;
  readonly change: unknown;
  readonly members: readonly { readonly id: string; readonly role: string }[];
  readonly handoff: { readonly bytesPerSecondLimit: number; readonly paused: boolean };
}

async function clusterOf(url: string): Promise<ClusterView> {
  const response = await fetch(`${url}/v1/cluster`);
  assert.equal(response.status, 200);
  return (await response.json()) as ClusterView;
}

function post(node: HttpNode, path: string, body: string, headers: Record<string, string> = ADMIN) {
  return node.call('POST', path, { body, headers });
}

test('a malformed membership request is a 400 that names what is wrong, and changes nothing', async () => {
  const before = await clusterOf(guarded.url);
  const cases: [body: string, code: string, message: RegExp][] = [
    [
      '{"kind":"merge","id":"node1"}',
      'RINGKV_INVALID_ARGUMENT',
      /^unknown kind "merge": one of join, leave, remove, replace, abort$/,
    ],
    ['{"kind":5}', 'RINGKV_INVALID_ARGUMENT', /^unknown kind 5: one of join, /],
    ['{"id":"node1"}', 'RINGKV_INVALID_ARGUMENT', /^kind is required: one of join, /],
    ['{"kind":"leave"}', 'RINGKV_INVALID_ARGUMENT', /^id is required: the member to leave$/],
    ['{"kind":"remove","id":""}', 'RINGKV_INVALID_ARGUMENT', /^id must be a node id/],
    ['{"kind":"join","id":7}', 'RINGKV_INVALID_ARGUMENT', /^id must be a node id/],
    [
      '{"kind":"join","id":"node2","by":"node3"}',
      'RINGKV_INVALID_ARGUMENT',
      /^join takes no by: only a replace names the standby/,
    ],
    ['{"kind":"leave","id":"node2","by":"node3"}', 'RINGKV_INVALID_ARGUMENT', /^leave takes no by/],
    ['{"kind":"replace","id":"node1"}', 'RINGKV_INVALID_ARGUMENT', /^by is required: the standby/],
    [
      '{"kind":"replace","id":"node1","by":false}',
      'RINGKV_INVALID_ARGUMENT',
      /^by must be a node id/,
    ],
    ['{"kind":"abort","id":"node1"}', 'RINGKV_INVALID_ARGUMENT', /^abort takes no id and no by$/],
    [
      '{"kind":"join","id":"node2","dryRun":"yes"}',
      'RINGKV_INVALID_ARGUMENT',
      /^dryRun must be true or false$/,
    ],
    ['{"kind":"join","id":"node2","dryRun":1}', 'RINGKV_INVALID_ARGUMENT', /^dryRun must be/],
    [
      '{"kind":"join","id":"node2","force":true}',
      'RINGKV_BAD_REQUEST',
      /^unknown field 'force' \(known: kind, id, by, dryRun\)$/,
    ],
    ['kind=join&id=node2', 'RINGKV_BAD_REQUEST', /^the body must be a JSON object$/],
    ['["join","node2"]', 'RINGKV_BAD_REQUEST', /^the body must be a JSON object$/],
    ['', 'RINGKV_BAD_REQUEST', /^the body must be a JSON object$/],
    // Well formed, but the map refuses them: the plan's reason comes back.
    ['{"kind":"join","id":"node9"}', 'RINGKV_INVALID_ARGUMENT', /^node9 is not in the cluster: /],
    [
      '{"kind":"leave","id":"node1"}',
      'RINGKV_INVALID_ARGUMENT',
      /^cannot leave node1: it is the last voter/,
    ],
    ['{"kind":"remove","id":"node9"}', 'RINGKV_INVALID_ARGUMENT', /^node9 is not a member$/],
    ['{"kind":"abort"}', 'RINGKV_INVALID_ARGUMENT', /^no membership change is in progress$/],
  ];
  for (const [body, code, message] of cases) {
    const refusal = await refusalOf(await post(guarded, '/v1/cluster/membership', body), 400);
    assert.equal(refusal.code, code, body);
    assert.match(refusal.message, message, body);
  }
  const withQuery = await post(guarded, '/v1/cluster/membership?dryRun=true', '{"kind":"abort"}');
  assert.equal((await refusalOf(withQuery, 400)).code, 'RINGKV_BAD_REQUEST');
  assert.deepEqual(await clusterOf(guarded.url), before);
});

test('a malformed handoff request is a 400 that names what is wrong, and keeps the settings', async () => {
  const set = await post(guarded, '/v1/admin/handoff', '{"bytesPerSecond":2048,"paused":true}');
  assert.equal(set.status, 200);
  const settings = ((await set.json()) as { handoff: ClusterView['handoff'] }).handoff;
  assert.equal(settings.bytesPerSecondLimit, 2048);
  assert.equal(settings.paused, true);
  const rate = /^bytesPerSecond must be a number of bytes per second, at least 0 \(0: no limit\)$/;
  const cases: [body: string, code: string, message: RegExp][] = [
    ['{"bytesPerSecond":-1}', 'RINGKV_INVALID_ARGUMENT', rate],
    ['{"bytesPerSecond":"1024"}', 'RINGKV_INVALID_ARGUMENT', rate],
    ['{"bytesPerSecond":"fast"}', 'RINGKV_INVALID_ARGUMENT', rate],
    ['{"bytesPerSecond":null}', 'RINGKV_INVALID_ARGUMENT', rate],
    // JSON.parse reads 1e400 as Infinity, which is no rate (0 is the way to say no limit).
    ['{"bytesPerSecond":1e400}', 'RINGKV_INVALID_ARGUMENT', rate],
    ['{"paused":"yes"}', 'RINGKV_INVALID_ARGUMENT', /^paused must be true or false$/],
    ['{"paused":0,"bytesPerSecond":10}', 'RINGKV_INVALID_ARGUMENT', /^paused must be/],
    [
      '{"rate":5}',
      'RINGKV_BAD_REQUEST',
      /^unknown field 'rate' \(known: bytesPerSecond, paused\)$/,
    ],
    ['5', 'RINGKV_BAD_REQUEST', /^the body must be a JSON object$/],
  ];
  for (const [body, code, message] of cases) {
    const refusal = await refusalOf(await post(guarded, '/v1/admin/handoff', body), 400);
    assert.equal(refusal.code, code, body);
    assert.match(refusal.message, message, body);
  }
  assert.deepEqual((await clusterOf(guarded.url)).handoff, settings);
  // An empty object changes nothing and answers the settings in force.
  const shown = await post(guarded, '/v1/admin/handoff', '{}');
  assert.deepEqual(((await shown.json()) as { handoff: unknown }).handoff, settings);
  const cleared = await post(guarded, '/v1/admin/handoff', '{"bytesPerSecond":0,"paused":false}');
  const after = ((await cleared.json()) as { handoff: ClusterView['handoff'] }).handoff;
  assert.equal(after.bytesPerSecondLimit, 0);
  assert.equal(after.paused, false);
});

test('with an admin token configured both routes refuse any other token, and nothing changes', async () => {
  const before = await clusterOf(guarded.url);
  const attempts: Record<string, string>[] = [
    {},
    { authorization: 'Bearer wrong-token' },
    { authorization: ADMIN_TOKEN },
  ];
  for (const headers of attempts) {
    for (const [path, body] of [
      ['/v1/cluster/membership', '{"kind":"abort"}'],
      ['/v1/admin/handoff', '{"paused":true}'],
    ] as const) {
      const refusal = await refusalOf(await post(guarded, path, body, headers), 401);
      assert.equal(refusal.code, 'RINGKV_UNAUTHORIZED', `${path} ${JSON.stringify(headers)}`);
    }
  }
  assert.deepEqual(await clusterOf(guarded.url), before);
  // Without an admin token the routes need nothing more than any route (here, nothing).
  const paused = await post(open, '/v1/admin/handoff', '{"paused":true}', {});
  assert.equal(paused.status, 200);
  assert.equal(((await paused.json()) as { handoff: { paused: boolean } }).handoff.paused, true);
  const refused = await post(open, '/v1/cluster/membership', '{"kind":"abort"}', {});
  assert.equal((await refusalOf(refused, 400)).code, 'RINGKV_INVALID_ARGUMENT');
});

test('a dry run answers the plan of a join and changes nothing on either node', async () => {
  const { founder, standby } = cluster;
  const before = await clusterOf(founder.httpUrl);
  assert.equal(before.change, null);
  assert.deepEqual(
    before.members.map((member) => [member.id, member.role]),
    [
      ['node1', 'member'],
      ['node2', 'standby'],
    ],
  );
  for (const node of [founder, standby]) {
    const response = await fetch(`${node.httpUrl}/v1/cluster/membership`, {
      method: 'POST',
      headers: ADMIN,
      body: JSON.stringify({ kind: 'join', id: 'node2', dryRun: true }),
    });
    assert.equal(response.status, 200);
    const answer = (await response.json()) as {
      made: boolean;
      epoch: number;
      plan: { kind: string; subject: string; totals: { copies: number } };
      planText: string[];
    };
    assert.equal(answer.made, false);
    // The plan is of the map the change would make: one epoch on.
    assert.equal(answer.epoch, before.epoch + 1);
    assert.equal(answer.plan.kind, 'join');
    assert.equal(answer.plan.subject, 'node2');
    // Every partition of `default` (n = 3, so both members) gains node2 as a replica.
    assert.equal(answer.plan.totals.copies, 256);
    assert.equal(answer.planText[0], `join node2 (map epoch ${before.epoch + 1})`);
    assert.match(answer.planText.join('\n'), /^ {2}node1 -> node2: 128 partitions$/m);
  }
  for (const node of [founder, standby]) {
    const after = await clusterOf(node.httpUrl);
    assert.equal(after.epoch, before.epoch, node.config.nodeId);
    assert.equal(after.change, null, node.config.nodeId);
    assert.deepEqual(after.members, before.members, node.config.nodeId);
  }
});
