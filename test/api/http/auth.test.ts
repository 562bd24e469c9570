// Access control: with a password, every route but /health needs `Authorization: Bearer
// <password>` and a refused request changes nothing; without one, no header is needed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodeOf, startHttpNode, type HttpNode } from './http-harness.ts';

const PASSWORD = 'pässwörd';
/** The header value that carries the password's UTF-8 bytes (headers are byte strings). */
const GOOD_TOKEN = `Bearer ${Buffer.from(PASSWORD, 'utf8').toString('latin1')}`;

let guarded: HttpNode;
let open: HttpNode;

before(async () => {
  guarded = await startHttpNode({ config: { password: PASSWORD } });
  open = await startHttpNode();
});

after(async () => {
  await guarded.close();
  await open.close();
});

test('a request without the right bearer token is 401 RINGKV_UNAUTHORIZED', async () => {
  const refused: (string | undefined)[] = [
    undefined,
    'Bearer',
    'Bearer wrong',
    `Bearer ${Buffer.from('pässwör', 'utf8').toString('latin1')}`,
    `${GOOD_TOKEN}x`,
    // The password's characters sent as latin1 bytes are not its UTF-8 bytes.
    `Bearer ${PASSWORD}`,
    `Basic ${Buffer.from(`user:${PASSWORD}`).toString('base64')}`,
    Buffer.from(PASSWORD, 'utf8').toString('latin1'),
  ];
  // (fetch trims header values, so a token with a trailing space cannot be sent from here.)
  for (const authorization of refused) {
    const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
    const response = await guarded.call('GET', '/v1/status', { headers });
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="ringkv"');
    assert.equal(await errorCodeOf(response, 401), 'RINGKV_UNAUTHORIZED', String(authorization));
  }
});

test('every route but /health needs the token, and a refused write stores nothing', async () => {
  const routes: [string, string][] = [
    ['GET', '/v1/status'],
    ['GET', '/v1/keyspaces'],
    ['GET', '/metrics'],
    ['GET', '/v1/kv/default/k'],
    ['PUT', '/v1/kv/default/k'],
    ['DELETE', '/v1/kv/default/k'],
    ['GET', '/v1/kv/default'],
    // Unknown routes and bad URLs reveal nothing without the token either.
    ['GET', '/no/such/route'],
    ['GET', '/v1/kv/default/%FF'],
  ];
  for (const [method, path] of routes) {
    const response = await guarded.call(method, path, method === 'PUT' ? { body: 'v' } : {});
    assert.equal(await errorCodeOf(response, 401), 'RINGKV_UNAUTHORIZED', `${method} ${path}`);
  }
  assert.deepEqual(await (await guarded.call('GET', '/health')).json(), { ok: true });

  const withToken = { headers: { authorization: GOOD_TOKEN } };
  const read = await guarded.call('GET', '/v1/kv/default/k', withToken);
  assert.equal(await errorCodeOf(read, 404), 'RINGKV_NOT_FOUND', 'the refused PUT stored a value');
  assert.equal(
    await errorCodeOf(await guarded.call('GET', '/no/such/route', withToken), 404),
    'RINGKV_NOT_FOUND',
  );
});

test('the right token opens every route; the scheme is case-insensitive', async () => {
  for (const authorization of [GOOD_TOKEN, GOOD_TOKEN.replace('Bearer', 'bearer')]) {
    const headers = { authorization };
    const put = await guarded.call('PUT', '/v1/kv/default/guarded', { body: 'v', headers });
    assert.equal(put.status, 200);
    assert.equal(
      await (await guarded.call('GET', '/v1/kv/default/guarded', { headers })).text(),
      'v',
    );
    assert.equal((await guarded.call('GET', '/v1/kv/default', { headers })).status, 200);
    assert.equal((await guarded.call('GET', '/metrics', { headers })).status, 200);
    assert.equal((await guarded.call('GET', '/v1/status', { headers })).status, 200);
    assert.equal((await guarded.call('DELETE', '/v1/kv/default/guarded', { headers })).status, 200);
  }
});

test('without a password no token is needed and any Authorization header is ignored', async () => {
  for (const headers of [{}, { authorization: 'Bearer anything' }] as Record<string, string>[]) {
    assert.equal(
      (await open.call('PUT', '/v1/kv/default/open', { body: 'v', headers })).status,
      200,
    );
    assert.equal(await (await open.call('GET', '/v1/kv/default/open', { headers })).text(), 'v');
    assert.equal((await open.call('GET', '/v1/status', { headers })).status, 200);
  }
});
