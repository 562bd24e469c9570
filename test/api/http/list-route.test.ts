// Listing over real HTTP: following cursors yields every key exactly once, a prefix keeps
// only its keys, values come along when asked, binary keys are never mangled, and the work
// and size of one page stay bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { LIST_EXAMINED_EXTRA_MAX, LIST_LIMIT_DEFAULT } from '../../../src/api/http/list-route.ts';
import { errorCodeOf, startHttpNode, writeDirect, type HttpNode } from './http-harness.ts';

interface Page {
  keys: string[];
  keyEncoding: 'utf8' | 'base64';
  cursor: string | null;
  entries?: { key: string; value: string; encoding: string; expiresAtMs: number | null }[];
}

let node: HttpNode;
const USER_KEYS = 230;
const ORDER_KEYS = 40;

before(async () => {
  node = await startHttpNode({
    config: { valueBytesMax: 64 * 1024 },
    keyspaces: [
      DEFAULT_KEYSPACE,
      { ...DEFAULT_KEYSPACE, id: 1, name: 'binary' },
      { ...DEFAULT_KEYSPACE, id: 2, name: 'big' },
      { ...DEFAULT_KEYSPACE, id: 3, name: 'sparse' },
    ],
  });
  await writeDirect(node, 'default', [
    ...Array.from({ length: USER_KEYS }, (_, i) => [`user:${i}`, Buffer.from(`u${i}`)] as const),
    ...Array.from(
      { length: ORDER_KEYS },
      (_, i) => [`order:${i}`, Buffer.from(`o${i}`), 600_000] as const,
    ),
  ]);
});

after(async () => {
  await node.close();
});

async function page(path: string): Promise<Page> {
  const response = await node.call('GET', path);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text) as Page;
}

/** Follows cursors to the end; asserts no key is listed twice. */
async function listAll(base: string): Promise<{ keys: string[]; pages: Page[] }> {
  const keys: string[] = [];
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const separator = base.includes('?') ? '&' : '?';
    const next = await page(
      cursor === null ? base : `${base}${separator}cursor=${encodeURIComponent(cursor)}`,
    );
    pages.push(next);
    keys.push(...next.keys);
    cursor = next.cursor;
    assert.ok(pages.length < 10_000, 'the listing never ends');
  } while (cursor !== null);
  assert.equal(new Set(keys).size, keys.length, 'a key was listed twice');
  return { keys, pages };
}

test('following cursors page by page lists every key exactly once', async () => {
  const { keys, pages } = await listAll('/v1/kv/default?limit=7');
  assert.ok(pages.length > 30, `only ${pages.length} pages`);
  for (const onePage of pages) assert.ok(onePage.keys.length <= 7);
  const expected = [
    ...Array.from({ length: USER_KEYS }, (_, i) => `user:${i}`),
    ...Array.from({ length: ORDER_KEYS }, (_, i) => `order:${i}`),
  ];
  assert.deepEqual([...keys].sort(), expected.sort());
  for (const onePage of pages) assert.equal(onePage.keyEncoding, 'utf8');
});

test('a page holds the default number of keys when no limit is given', async () => {
  const first = await page('/v1/kv/default');
  assert.equal(first.keys.length, LIST_LIMIT_DEFAULT);
  assert.match(first.cursor ?? '', /^[A-Za-z0-9_-]+$/);
  assert.equal(first.entries, undefined);
});

test('a prefix lists only the keys that start with it, each once', async () => {
  const { keys } = await listAll('/v1/kv/default?prefix=order%3A&limit=5');
  assert.deepEqual(
    [...keys].sort(),
    Array.from({ length: ORDER_KEYS }, (_, i) => `order:${i}`).sort(),
  );
  const { keys: none } = await listAll('/v1/kv/default?prefix=nothing-has-this');
  assert.deepEqual(none, []);
});

test('values=true lists each key with its value and expiry', async () => {
  const { pages } = await listAll('/v1/kv/default?prefix=order%3A&values=true&limit=9');
  const entries = pages.flatMap((onePage) => {
    assert.deepEqual(
      onePage.entries?.map((entry) => entry.key),
      onePage.keys,
    );
    return onePage.entries ?? [];
  });
  assert.equal(entries.length, ORDER_KEYS);
  for (const entry of entries) {
    assert.equal(entry.value, `o${entry.key.slice('order:'.length)}`);
    assert.equal(entry.encoding, 'utf8');
    assert.ok(entry.expiresAtMs !== null && entry.expiresAtMs > Date.now());
  }
  const users = await page('/v1/kv/default?prefix=user%3A1&values=true&limit=1000');
  for (const entry of users.entries ?? []) assert.equal(entry.expiresAtMs, null);
});

test('values=true stops a page once its values pass the byte budget', async () => {
  // 64 KiB values: the 8 MiB budget holds 128 of them, so a limit of 1000 cannot be met.
  const value = new Uint8Array(64 * 1024).fill(0x61);
  await writeDirect(
    node,
    'big',
    Array.from({ length: 150 }, (_, i) => [`v${i}`, value] as const),
  );
  const first = await page('/v1/kv/big?values=true&limit=1000');
  assert.equal(first.keys.length, 128);
  assert.ok(first.cursor !== null);
  const second = await page(
    `/v1/kv/big?values=true&limit=1000&cursor=${encodeURIComponent(first.cursor!)}`,
  );
  assert.equal(second.keys.length, 22);
  assert.equal(second.cursor, null);
  assert.equal(new Set([...first.keys, ...second.keys]).size, 150);
});

test('a page examines a bounded number of keys: a rare prefix may give empty pages, never a wrong one', async () => {
  const total = LIST_EXAMINED_EXTRA_MAX + 500;
  // Written through the node directly: over HTTP this would take seconds.
  await writeDirect(
    node,
    'sparse',
    Array.from({ length: total }, (_, i) => [`filler${i}`, new Uint8Array(0)] as const),
  );
  await node.call('PUT', '/v1/kv/sparse/needle', { body: 'found' });
  const { keys, pages } = await listAll('/v1/kv/sparse?prefix=needle&limit=1');
  assert.deepEqual(keys, ['needle']);
  assert.ok(pages.length >= 2, 'the scan was not bounded per page');
});

test('binary keys are listed in base64url, and the page says so', async () => {
  const binaryKeys = [Buffer.from([0xff, 0x00, 0x01]), Buffer.from([0xc3]), Buffer.from('plain')];
  for (const key of binaryKeys) {
    const path = `/v1/kv/binary/${key.toString('base64url')}?keyEncoding=base64`;
    assert.equal((await node.call('PUT', path, { body: 'b' })).status, 200);
  }
  // Asked for UTF-8, the page cannot give 0xff in it without loss: it switches to base64url.
  const { keys, pages } = await listAll('/v1/kv/binary');
  assert.deepEqual(
    pages.map((onePage) => onePage.keyEncoding),
    ['base64'],
  );
  assert.deepEqual(
    keys.map((key) => Buffer.from(key, 'base64url').toString('hex')).sort(),
    binaryKeys.map((key) => key.toString('hex')).sort(),
  );
  // A binary prefix is given in base64url too.
  const prefixed = await page(
    `/v1/kv/binary?keyEncoding=base64&prefix=${Buffer.from([0xff]).toString('base64url')}`,
  );
  assert.deepEqual(prefixed.keys, [Buffer.from([0xff, 0x00, 0x01]).toString('base64url')]);
});

test('bad listing parameters are refused with a clear error', async () => {
  const limitMax = node.runtime.limits.scanCountMax;
  const cases: [string, number, string][] = [
    ['/v1/kv/default?limit=0', 400, 'RINGKV_INVALID_ARGUMENT'],
    [`/v1/kv/default?limit=${limitMax + 1}`, 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?limit=abc', 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?limit=1.5', 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?cursor=not%2Fbase64', 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?cursor=A', 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?cursor=AA', 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?values=maybe', 400, 'RINGKV_INVALID_ARGUMENT'],
    ['/v1/kv/default?keyEncoding=hex', 400, 'RINGKV_BAD_REQUEST'],
    ['/v1/kv/default?keyEncoding=base64&prefix=%2B%2B', 400, 'RINGKV_BAD_REQUEST'],
    ['/v1/kv/default?limit=1&limit=2', 400, 'RINGKV_BAD_REQUEST'],
    ['/v1/kv/default?count=5', 400, 'RINGKV_BAD_REQUEST'],
    ['/v1/kv/nosuch', 404, 'RINGKV_UNKNOWN_KEYSPACE'],
  ];
  for (const [path, status, code] of cases) {
    assert.equal(await errorCodeOf(await node.call('GET', path), status), code, path);
  }
  // The largest limit is accepted.
  assert.equal((await node.call('GET', `/v1/kv/default?limit=${limitMax}`)).status, 200);
});
