// The HTTP interface against a real node on a real port: key-value routes, listing with a
// cursor, causal context, TTL, metrics, auth, and every error in its stable JSON shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestNode, waitFor, type TestNode } from '../../helpers/test-node.ts';

let node: TestNode;

before(async () => {
  node = await startTestNode({ valueBytesMax: 64 * 1024 });
});

after(async () => {
  await node.stop();
});

const url = (path: string): string => `${node.httpUrl}${path}`;

async function errorCode(response: Response): Promise<string> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  assert.equal(typeof body.error.message, 'string');
  return body.error.code;
}

test('PUT then GET returns the raw value, DELETE removes it', async () => {
  const put = await fetch(url('/v1/kv/default/greeting'), { method: 'PUT', body: 'hello' });
  assert.equal(put.status, 200);
  assert.deepEqual(await put.json(), { ok: true });
  const get = await fetch(url('/v1/kv/default/greeting'));
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('content-type'), 'application/octet-stream');
  assert.equal(await get.text(), 'hello');
  assert.ok((get.headers.get('x-ringkv-context') ?? '').length > 0);
  const del = await fetch(url('/v1/kv/default/greeting'), { method: 'DELETE' });
  assert.deepEqual(await del.json(), { deleted: true });
  const again = await fetch(url('/v1/kv/default/greeting'), { method: 'DELETE' });
  assert.deepEqual(await again.json(), { deleted: false });
  const missing = await fetch(url('/v1/kv/default/greeting'));
  assert.equal(missing.status, 404);
  assert.equal(await errorCode(missing), 'RINGKV_NOT_FOUND');
});

test('binary keys (base64url) and binary values round trip; JSON form shows siblings', async () => {
  const key = Buffer.from([0, 1, 2, 255, 47]);
  const value = Buffer.from([0, 200, 13, 10, 255]);
  const path = `/v1/kv/default/${key.toString('base64url')}?keyEncoding=base64`;
  assert.equal((await fetch(url(path), { method: 'PUT', body: value })).status, 200);
  const raw = Buffer.from(await (await fetch(url(path))).arrayBuffer());
  assert.deepEqual(raw, value);
  const json = (await (await fetch(url(`${path}&format=json`))).json()) as {
    value: string;
    encoding: string;
    siblings: unknown[];
  };
  assert.equal(json.encoding, 'base64');
  assert.deepEqual(Buffer.from(json.value, 'base64'), value);
  assert.equal(json.siblings.length, 1);
  const slashKey = await fetch(url('/v1/kv/default/a/b%20c'), { method: 'PUT', body: 'nested' });
  assert.equal(slashKey.status, 200);
  assert.equal(await (await fetch(url('/v1/kv/default/a/b%20c'))).text(), 'nested');
});

test('the causal context header round trips and a malformed one is refused', async () => {
  await fetch(url('/v1/kv/default/ctx'), { method: 'PUT', body: 'one' });
  const read = await fetch(url('/v1/kv/default/ctx'));
  const context = read.headers.get('x-ringkv-context')!;
  const write = await fetch(url('/v1/kv/default/ctx'), {
    method: 'PUT',
    body: 'two',
    headers: { 'x-ringkv-context': context },
  });
  assert.equal(write.status, 200);
  assert.equal(await (await fetch(url('/v1/kv/default/ctx'))).text(), 'two');
  const bad = await fetch(url('/v1/kv/default/ctx'), {
    method: 'PUT',
    body: 'x',
    headers: { 'x-ringkv-context': 'AAAA' },
  });
  assert.equal(bad.status, 400);
  assert.equal(await errorCode(bad), 'RINGKV_INVALID_CONTEXT');
  assert.equal(await (await fetch(url('/v1/kv/default/ctx'))).text(), 'two');
});

test('If-None-Match: * writes only an absent key', async () => {
  const first = await fetch(url('/v1/kv/default/once'), {
    method: 'PUT',
    body: 'a',
    headers: { 'if-none-match': '*' },
  });
  assert.equal(first.status, 200);
  const second = await fetch(url('/v1/kv/default/once'), {
    method: 'PUT',
    body: 'b',
    headers: { 'if-none-match': '*' },
  });
  assert.equal(second.status, 412);
  assert.equal(await errorCode(second), 'RINGKV_PRECONDITION_FAILED');
  assert.equal(await (await fetch(url('/v1/kv/default/once'))).text(), 'a');
});

test('a TTL expires the key', async () => {
  await fetch(url('/v1/kv/default/brief?ttlMs=100'), { method: 'PUT', body: 'x' });
  const read = await fetch(url('/v1/kv/default/brief'));
  assert.ok(Number(read.headers.get('x-ringkv-expires-at')) > Date.now());
  await waitFor(
    async () => (await fetch(url('/v1/kv/default/brief'))).status === 404,
    3000,
    'the key to expire',
  );
  const bad = await fetch(url('/v1/kv/default/brief?ttlMs=-5'), { method: 'PUT', body: 'x' });
  assert.equal(await errorCode(bad), 'RINGKV_INVALID_ARGUMENT');
});

test('listing pages through every key exactly once, with a prefix', async () => {
  for (let i = 0; i < 130; i++)
    await fetch(url(`/v1/kv/default/list:${i}`), { method: 'PUT', body: 'v' });
  await fetch(url('/v1/kv/default/other'), { method: 'PUT', body: 'v' });
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const query: string = `?prefix=list:&limit=25${cursor === null ? '' : `&cursor=${cursor}`}`;
    const page = (await (await fetch(url(`/v1/kv/default${query}`))).json()) as {
      keys: string[];
      cursor: string | null;
    };
    assert.ok(page.keys.length <= 25);
    seen.push(...page.keys);
    cursor = page.cursor;
    pages++;
  } while (cursor !== null && pages < 100);
  assert.equal(seen.length, 130);
  assert.equal(new Set(seen).size, 130);
  assert.ok(seen.every((key) => key.startsWith('list:')));
  const badLimit = await fetch(url('/v1/kv/default?limit=0'));
  assert.equal(await errorCode(badLimit), 'RINGKV_INVALID_ARGUMENT');
});

test('errors: unknown keyspace, too large value and key, unknown route', async () => {
  const keyspace = await fetch(url('/v1/kv/nope/k'));
  assert.equal(keyspace.status, 404);
  assert.equal(await errorCode(keyspace), 'RINGKV_UNKNOWN_KEYSPACE');
  const big = await fetch(url('/v1/kv/default/big'), {
    method: 'PUT',
    body: Buffer.alloc(64 * 1024 + 1),
  });
  assert.equal(big.status, 413);
  assert.equal(await errorCode(big), 'RINGKV_VALUE_TOO_LARGE');
  assert.equal((await fetch(url('/v1/kv/default/big'))).status, 404, 'a refused value was stored');
  const longKey = await fetch(url(`/v1/kv/default/${'k'.repeat(8193)}`), {
    method: 'PUT',
    body: 'v',
  });
  assert.equal(longKey.status, 414);
  assert.equal(await errorCode(longKey), 'RINGKV_KEY_TOO_LARGE');
  const route = await fetch(url('/v2/nothing'));
  assert.equal(route.status, 404);
  assert.equal(await errorCode(route), 'RINGKV_NOT_FOUND');
});

test('status, keyspaces, health and Prometheus metrics', async () => {
  const status = (await (await fetch(url('/v1/status'))).json()) as {
    node: { nodeId: string };
    keyspaces: { name: string }[];
  };
  assert.equal(status.node.nodeId, 'node1');
  assert.deepEqual(
    status.keyspaces.map((keyspace) => keyspace.name),
    ['default'],
  );
  assert.deepEqual(await (await fetch(url('/health'))).json(), { ok: true });
  const metrics = await fetch(url('/metrics'));
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await metrics.text();
  assert.match(text, /ringkv_requests_total\{operation="put",outcome="ok",protocol="http"\} \d+/);
  // The node gauges are published too (the protocols and handoff are counted there).
  assert.match(text, /^ringkv_node_info\{name="requests_in_flight"\} \d+$/m);
  assert.match(
    text,
    /ringkv_request_duration_seconds_bucket\{operation="get",protocol="http",le="\+Inf"\} \d+/,
  );
  assert.match(text, /ringkv_storage_commits_total \d+/);
});

test('with a password, every route but /health needs the bearer token', async () => {
  const guarded = await startTestNode({ password: 'hunter2' });
  try {
    const base = guarded.httpUrl;
    const anonymous = await fetch(`${base}/v1/kv/default/k`, { method: 'PUT', body: 'v' });
    assert.equal(anonymous.status, 401);
    assert.equal(await errorCode(anonymous), 'RINGKV_UNAUTHORIZED');
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer hunter3' } });
    assert.equal(wrong.status, 401);
    assert.equal((await fetch(`${base}/health`)).status, 200);
    const headers = { authorization: 'Bearer hunter2' };
    assert.equal(
      (await fetch(`${base}/v1/kv/default/k`, { method: 'PUT', body: 'v', headers })).status,
      200,
    );
    assert.equal(await (await fetch(`${base}/v1/kv/default/k`, { headers })).text(), 'v');
  } finally {
    await guarded.stop();
  }
});
