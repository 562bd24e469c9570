// The key routes over real HTTP on loopback: create, read, update and delete; binary keys and
// values; JSON reads; the causal context round trip; expiry; conditional writes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { Prng } from '../../../src/core/prng.ts';
import { errorCodeOf, startHttpNode, waitUntil, type HttpNode } from './http-harness.ts';

let node: HttpNode;

before(async () => {
  node = await startHttpNode({
    keyspaces: [
      DEFAULT_KEYSPACE,
      { ...DEFAULT_KEYSPACE, id: 1, name: 'multi', conflicts: 'siblings' },
    ],
  });
});

after(async () => {
  await node.close();
});

interface JsonRead {
  keyspace: string;
  key: string;
  value: string;
  encoding: 'utf8' | 'base64';
  context: string;
  expiresAtMs: number | null;
  siblings: { value: string; encoding: string; timestamp: [number, number] }[];
}

async function readJson(path: string): Promise<JsonRead> {
  const response = await node.call('GET', path, { headers: { accept: 'application/json' } });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as JsonRead;
}

test('a value put is read back as the raw body, replaced by a later put, and gone after delete', async () => {
  const put = await node.call('PUT', '/v1/kv/default/crud', { body: 'first' });
  assert.equal(put.status, 200);
  assert.deepEqual(await put.json(), { ok: true });

  const read = await node.call('GET', '/v1/kv/default/crud');
  assert.equal(read.status, 200);
  assert.equal(read.headers.get('content-type'), 'application/octet-stream');
  assert.match(read.headers.get('x-ringkv-context') ?? '', /^[A-Za-z0-9_-]+$/);
  assert.equal(read.headers.get('x-ringkv-expires-at'), null);
  assert.equal(await read.text(), 'first');

  await node.call('PUT', '/v1/kv/default/crud', { body: 'second' });
  assert.equal(await (await node.call('GET', '/v1/kv/default/crud')).text(), 'second');

  const deleted = await node.call('DELETE', '/v1/kv/default/crud');
  assert.deepEqual(await deleted.json(), { deleted: true });
  assert.equal(
    await errorCodeOf(await node.call('GET', '/v1/kv/default/crud'), 404),
    'RINGKV_NOT_FOUND',
  );
  const deletedAgain = await node.call('DELETE', '/v1/kv/default/crud');
  assert.deepEqual(await deletedAgain.json(), { deleted: false });
});

test('a body of any content type, or none, is stored as the bytes sent', async () => {
  const cases: [string | undefined, string][] = [
    ['application/json', '{not json'],
    ['application/x-www-form-urlencoded', 'a=b&c'],
    ['text/plain; charset=utf-8', 'plain'],
    ['image/png', '\u0089PNG'],
    [undefined, 'no type'],
    ['text/plain', ''],
  ];
  for (const [type, body] of cases) {
    const headers: Record<string, string> = type === undefined ? {} : { 'content-type': type };
    const put = await node.call('PUT', '/v1/kv/default/typed', { headers, body });
    assert.equal(put.status, 200, `${type}: ${await put.text()}`);
    const read = await node.call('GET', '/v1/kv/default/typed');
    assert.equal(await read.text(), body, `content type ${type}`);
  }
  // No body at all is the empty value.
  assert.equal((await node.call('PUT', '/v1/kv/default/no-body')).status, 200);
  const empty = await node.call('GET', '/v1/kv/default/no-body');
  assert.equal(empty.status, 200);
  assert.equal((await empty.arrayBuffer()).byteLength, 0);
});

test('binary keys (base64url) and binary values round-trip byte for byte', async () => {
  const prng = new Prng(20261122);
  for (let round = 0; round < 40; round++) {
    const key = new Uint8Array(1 + (prng.nextUint32() % 64));
    const value = new Uint8Array(prng.nextUint32() % 4096);
    for (let i = 0; i < key.length; i++) key[i] = prng.nextUint32() & 0xff;
    for (let i = 0; i < value.length; i++) value[i] = prng.nextUint32() & 0xff;
    const keyText = Buffer.from(key).toString('base64url');
    const path = `/v1/kv/default/${keyText}?keyEncoding=base64`;
    assert.equal((await node.call('PUT', path, { body: value })).status, 200);
    const read = await node.call('GET', path);
    assert.equal(read.status, 200);
    assert.deepEqual(new Uint8Array(await read.arrayBuffer()), value, `round ${round}`);
    const json = await readJson(path);
    assert.equal(json.key, keyText);
    const decoded =
      json.encoding === 'utf8'
        ? Buffer.from(json.value, 'utf8')
        : Buffer.from(json.value, 'base64');
    assert.deepEqual(new Uint8Array(decoded), value);
  }
  // The same bytes named in UTF-8 and in base64url are one key.
  await node.call('PUT', '/v1/kv/default/caf%C3%A9', { body: 'coffee' });
  const viaBase64 = await node.call(
    'GET',
    `/v1/kv/default/${Buffer.from('café').toString('base64url')}?keyEncoding=base64`,
  );
  assert.equal(await viaBase64.text(), 'coffee');
});

test('keys with slashes, spaces, percent signs and dots are addressed when percent-encoded', async () => {
  for (const key of ['a/b/c', 'with space', '100%', 'x?y#z', 'ünï/cödé', '...', 'a/']) {
    const path = `/v1/kv/default/${encodeURIComponent(key)}`;
    assert.equal((await node.call('PUT', path, { body: `value of ${key}` })).status, 200, key);
    const json = await readJson(path);
    assert.equal(json.key, key);
    assert.equal(json.value, `value of ${key}`);
  }
  // An unencoded slash is part of the key too.
  assert.equal(await (await node.call('GET', '/v1/kv/default/a/b/c')).text(), 'value of a/b/c');
  // `.` and `..` would be eaten by URL normalisation; base64url addresses them.
  const dots = `/v1/kv/default/${Buffer.from('..').toString('base64url')}?keyEncoding=base64`;
  assert.equal((await node.call('PUT', dots, { body: 'dots' })).status, 200);
  assert.equal(await (await node.call('GET', dots)).text(), 'dots');
});

test('a JSON read gives text values as text, other bytes as base64, and says which', async () => {
  await node.call('PUT', '/v1/kv/default/json-text', { body: 'héllo' });
  const text = await readJson('/v1/kv/default/json-text');
  assert.equal(text.keyspace, 'default');
  assert.equal(text.key, 'json-text');
  assert.equal(text.value, 'héllo');
  assert.equal(text.encoding, 'utf8');
  assert.equal(text.expiresAtMs, null);
  assert.equal(text.siblings.length, 1);
  assert.equal(text.siblings[0]!.value, 'héllo');
  assert.equal(text.siblings[0]!.timestamp.length, 2);

  await node.call('PUT', '/v1/kv/default/json-binary', { body: new Uint8Array([0xff, 0, 0xfe]) });
  const viaQuery = await node.call('GET', '/v1/kv/default/json-binary?format=json');
  assert.match(viaQuery.headers.get('content-type') ?? '', /^application\/json/);
  const binary = (await viaQuery.json()) as JsonRead;
  assert.equal(binary.encoding, 'base64');
  assert.equal(binary.value, Buffer.from([0xff, 0, 0xfe]).toString('base64'));
  // format=raw wins over Accept.
  const raw = await node.call('GET', '/v1/kv/default/json-text?format=raw', {
    headers: { accept: 'application/json' },
  });
  assert.equal(raw.headers.get('content-type'), 'application/octet-stream');
  assert.equal(await raw.text(), 'héllo');
});

test('the context of a read, handed back with a write, resolves concurrent siblings', async () => {
  const path = '/v1/kv/multi/cart';
  await node.call('PUT', path, { body: 'v1' });
  const first = await node.call('GET', path);
  const staleContext = first.headers.get('x-ringkv-context');
  assert.ok(staleContext !== null && staleContext.length > 0);
  await first.arrayBuffer();

  // A write without context supersedes what the node holds; a write with the stale
  // context is concurrent with it, so both survive as siblings.
  await node.call('PUT', path, { body: 'v2' });
  const concurrent = await node.call('PUT', path, {
    body: 'v3',
    headers: { 'x-ringkv-context': staleContext },
  });
  assert.equal(concurrent.status, 200, await concurrent.clone().text());
  const both = await readJson(path);
  assert.deepEqual(both.siblings.map((sibling) => sibling.value).sort(), ['v2', 'v3']);

  // The context of the read that saw both supersedes both.
  const merged = await node.call('PUT', path, {
    body: 'merged',
    headers: { 'x-ringkv-context': both.context },
  });
  assert.equal(merged.status, 200);
  const after = await readJson(path);
  assert.deepEqual(
    after.siblings.map((sibling) => sibling.value),
    ['merged'],
  );
  // The raw read's header and the JSON read's field carry the same context.
  const raw = await node.call('GET', path);
  assert.equal(raw.headers.get('x-ringkv-context'), after.context);
});

test('a deleted key answers 404 with the context of its tombstone', async () => {
  await node.call('PUT', '/v1/kv/default/tombstone', { body: 'x' });
  await node.call('DELETE', '/v1/kv/default/tombstone');
  const miss = await node.call('GET', '/v1/kv/default/tombstone');
  assert.match(miss.headers.get('x-ringkv-context') ?? '', /^[A-Za-z0-9_-]+$/);
  assert.equal(await errorCodeOf(miss, 404), 'RINGKV_NOT_FOUND');
  // A key never written has no context to give.
  const never = await node.call('GET', '/v1/kv/default/never-written');
  assert.equal(never.headers.get('x-ringkv-context'), null);
  assert.equal(await errorCodeOf(never, 404), 'RINGKV_NOT_FOUND');
});

test('a value put with ttlMs carries its expiry and is gone once it passes', async () => {
  const beforeMs = Date.now();
  await node.call('PUT', '/v1/kv/default/ttl?ttlMs=60000', { body: 'long' });
  const long = await node.call('GET', '/v1/kv/default/ttl');
  const expiresAtMs = Number(long.headers.get('x-ringkv-expires-at'));
  // The node's clock never goes back: after the wall clock steps back, it runs ahead of
  // Date.now() by the step (NodeRuntime.nowMs), which a host's clock sync does by a few ms.
  const aheadMs = 1000;
  assert.ok(
    expiresAtMs >= beforeMs + 60_000 && expiresAtMs <= Date.now() + 60_000 + aheadMs,
    `expiry ${expiresAtMs}, put after ${beforeMs}, checked at ${Date.now()}`,
  );
  assert.equal((await readJson('/v1/kv/default/ttl')).expiresAtMs, expiresAtMs);

  // A put without ttlMs clears the expiry.
  await node.call('PUT', '/v1/kv/default/ttl', { body: 'forever' });
  assert.equal(
    (await node.call('GET', '/v1/kv/default/ttl')).headers.get('x-ringkv-expires-at'),
    null,
  );

  await node.call('PUT', '/v1/kv/default/ttl?ttlMs=30', { body: 'short' });
  await waitUntil(
    async () => (await node.call('GET', '/v1/kv/default/ttl')).status === 404,
    5000,
    'the value to expire',
  );
});

test('If-None-Match: * writes only an absent key, If-Match: * only a present one', async () => {
  const path = '/v1/kv/default/conditional';
  const ifAbsent = { 'if-none-match': '*' };
  const ifPresent = { 'if-match': '*' };
  assert.equal(
    await errorCodeOf(await node.call('PUT', path, { body: 'x', headers: ifPresent }), 412),
    'RINGKV_PRECONDITION_FAILED',
  );
  assert.equal((await node.call('GET', path)).status, 404);
  assert.equal((await node.call('PUT', path, { body: 'first', headers: ifAbsent })).status, 200);
  assert.equal(
    await errorCodeOf(await node.call('PUT', path, { body: 'second', headers: ifAbsent }), 412),
    'RINGKV_PRECONDITION_FAILED',
  );
  assert.equal(await (await node.call('GET', path)).text(), 'first');
  assert.equal((await node.call('PUT', path, { body: 'third', headers: ifPresent })).status, 200);
  assert.equal(await (await node.call('GET', path)).text(), 'third');
});

test('HEAD on a key answers like GET without a body', async () => {
  await node.call('PUT', '/v1/kv/default/head', { body: 'abc' });
  const head = await node.call('HEAD', '/v1/kv/default/head');
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), '3');
  assert.equal((await node.call('HEAD', '/v1/kv/default/head-missing')).status, 404);
});

test('POST ?incrBy adds to a decimal integer; bad deltas, non-integers and If-Match versions on an eventual keyspace are refused', async () => {
  const first = await node.call('POST', '/v1/kv/default/counter?incrBy=40');
  assert.equal(first.status, 200);
  assert.deepEqual(await first.json(), { value: '40' });
  const second = await node.call('POST', '/v1/kv/default/counter');
  assert.deepEqual(await second.json(), { value: '41' });
  const negative = await node.call('POST', '/v1/kv/default/counter?incrBy=-50');
  assert.deepEqual(await negative.json(), { value: '-9' });
  assert.equal(
    await errorCodeOf(await node.call('POST', '/v1/kv/default/counter?incrBy=1.5'), 400),
    'RINGKV_INVALID_ARGUMENT',
  );
  assert.equal(
    await errorCodeOf(await node.call('POST', `/v1/kv/default/counter?incrBy=${2n ** 63n}`), 400),
    'RINGKV_INVALID_ARGUMENT',
  );
  await node.call('PUT', '/v1/kv/default/word', { body: 'text' });
  assert.equal(
    await errorCodeOf(await node.call('POST', '/v1/kv/default/word'), 409),
    'RINGKV_NOT_AN_INTEGER',
  );
  // Versions are for strong and chain keyspaces; an eventual one says so.
  const versioned = await node.call('PUT', '/v1/kv/default/word', {
    body: 'other',
    headers: { 'if-match': '"3"' },
  });
  assert.equal(await errorCodeOf(versioned, 400), 'RINGKV_INVALID_ARGUMENT');
  const kept = await node.call('GET', '/v1/kv/default/word');
  assert.equal(await kept.text(), 'text', 'nothing refused was written');
});
