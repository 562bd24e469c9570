// Every error a client can meet over HTTP comes as `{ error: { code, message } }` with the
// status its stable code maps to; bad input never stores anything. Also: the mapping of every
// node error code, and docs/ERRORS.md listing every code with its status.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { LateNodeApi } from '../../../src/runtime/late-node-api.ts';
import pino from 'pino';
import { buildHttpApp } from '../../../src/api/http/server.ts';
import {
  clientErrorResponse,
  HttpErrorCode,
  STATUS_BY_CODE,
} from '../../../src/api/http/http-errors.ts';
import { ErrorCode } from '../../../src/core/errors.ts';
import { DEFAULT_KEYSPACE } from '../../../src/core/keyspace.ts';
import { DEFAULT_LIMITS } from '../../../src/core/limits.ts';
import type { ClientReply, ClientRequest } from '../../../src/core/requests.ts';
import { DEFAULT_NODE_CONFIG } from '../../../src/runtime/config.ts';
import { Metrics } from '../../../src/runtime/metrics.ts';
import type { NodeApi } from '../../../src/runtime/node-api.ts';
import { errorCodeOf, startHttpNode, waitUntil, type HttpNode } from './http-harness.ts';

const VALUE_BYTES_MAX = 1024;
let node: HttpNode;

before(async () => {
  node = await startHttpNode({ config: { valueBytesMax: VALUE_BYTES_MAX } });
});

after(async () => {
  await node.close();
});

async function expectError(
  method: string,
  path: string,
  status: number,
  code: string,
  options: { headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<void> {
  const response = await node.call(method, path, options);
  assert.equal(await errorCodeOf(response, status), code, `${method} ${path.slice(0, 60)}`);
}

test('an unknown keyspace is 404 RINGKV_UNKNOWN_KEYSPACE on every key route', async () => {
  await expectError('GET', '/v1/kv/nosuch/k', 404, 'RINGKV_UNKNOWN_KEYSPACE');
  await expectError('PUT', '/v1/kv/nosuch/k', 404, 'RINGKV_UNKNOWN_KEYSPACE', { body: 'v' });
  await expectError('DELETE', '/v1/kv/nosuch/k', 404, 'RINGKV_UNKNOWN_KEYSPACE');
  await expectError('GET', '/v1/kv/nosuch', 404, 'RINGKV_UNKNOWN_KEYSPACE');
  // A name far longer than any keyspace's is refused by the router with the same code.
  await expectError('GET', `/v1/kv/${'n'.repeat(500)}/k`, 404, 'RINGKV_UNKNOWN_KEYSPACE');
  await expectError('GET', `/v1/kv/${'n'.repeat(500)}`, 404, 'RINGKV_UNKNOWN_KEYSPACE');
});

test('an empty key is 400 RINGKV_KEY_EMPTY', async () => {
  await expectError('GET', '/v1/kv/default/', 400, 'RINGKV_KEY_EMPTY');
  await expectError('PUT', '/v1/kv/default/', 400, 'RINGKV_KEY_EMPTY', { body: 'v' });
  await expectError('PUT', '/v1/kv/default/?keyEncoding=base64', 400, 'RINGKV_KEY_EMPTY', {
    body: 'v',
  });
});

test('a key over the limit is 414 RINGKV_KEY_TOO_LARGE, and a key at the limit works however it is encoded', async () => {
  const keyBytesMax = node.config.keyBytesMax;
  // Judged by the node.
  await expectError(
    'PUT',
    `/v1/kv/default/${'k'.repeat(keyBytesMax + 1)}`,
    414,
    'RINGKV_KEY_TOO_LARGE',
    {
      body: 'v',
    },
  );
  await expectError(
    'GET',
    `/v1/kv/default/${'k'.repeat(keyBytesMax * 3 + 2000)}`,
    414,
    'RINGKV_KEY_TOO_LARGE',
  );
  // Longer than the header limit: refused by Node's HTTP parser, still in our shape.
  await expectError(
    'GET',
    `/v1/kv/default/${'k'.repeat(keyBytesMax * 6)}`,
    431,
    'RINGKV_HEADERS_TOO_LARGE',
  );

  // The largest key, with every byte percent-encoded: three characters per byte.
  const largest = '%C3%A9'.repeat(keyBytesMax / 2);
  assert.equal(
    (await node.call('PUT', `/v1/kv/default/${largest}`, { body: 'big key' })).status,
    200,
  );
  assert.equal(await (await node.call('GET', `/v1/kv/default/${largest}`)).text(), 'big key');
  const binary = Buffer.alloc(keyBytesMax, 0xff).toString('base64url');
  const path = `/v1/kv/default/${binary}?keyEncoding=base64`;
  assert.equal((await node.call('PUT', path, { body: 'binary big key' })).status, 200);
  assert.equal(await (await node.call('GET', path)).text(), 'binary big key');
});

test('a value over the limit is 413 RINGKV_VALUE_TOO_LARGE and nothing is stored', async () => {
  await node.call('PUT', '/v1/kv/default/sized', { body: 'before' });
  const tooLarge = new Uint8Array(VALUE_BYTES_MAX + 1).fill(0x61);
  await expectError('PUT', '/v1/kv/default/sized', 413, 'RINGKV_VALUE_TOO_LARGE', {
    body: tooLarge,
  });
  await expectError('PUT', '/v1/kv/default/never-stored', 413, 'RINGKV_VALUE_TOO_LARGE', {
    body: tooLarge,
  });
  // Sent chunked, without a Content-Length, the limit is enforced while reading.
  const chunked = await fetch(`${node.url}/v1/kv/default/sized`, {
    method: 'PUT',
    body: new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(VALUE_BYTES_MAX / 2));
        controller.close();
      },
    }),
    duplex: 'half',
  } as RequestInit);
  assert.equal(await errorCodeOf(chunked, 413), 'RINGKV_VALUE_TOO_LARGE');

  assert.equal(await (await node.call('GET', '/v1/kv/default/sized')).text(), 'before');
  await expectError('GET', '/v1/kv/default/never-stored', 404, 'RINGKV_NOT_FOUND');
  // Exactly the limit is accepted.
  const atLimit = new Uint8Array(VALUE_BYTES_MAX).fill(0x62);
  assert.equal((await node.call('PUT', '/v1/kv/default/sized', { body: atLimit })).status, 200);
  assert.equal(
    (await (await node.call('GET', '/v1/kv/default/sized')).arrayBuffer()).byteLength,
    VALUE_BYTES_MAX,
  );
});

test('bad arguments are 400 RINGKV_INVALID_ARGUMENT and store nothing', async () => {
  for (const ttl of ['0', '-5', 'abc', '1.5', '1e3', '99999999999999999999']) {
    await expectError(
      'PUT',
      `/v1/kv/default/ttl-bad?ttlMs=${ttl}`,
      400,
      'RINGKV_INVALID_ARGUMENT',
      {
        body: 'v',
      },
    );
  }
  await expectError('GET', '/v1/kv/default/ttl-bad', 404, 'RINGKV_NOT_FOUND');
});

test('a context that is not one the node gave is 400 RINGKV_INVALID_CONTEXT and stores nothing', async () => {
  for (const context of ['not base64!', 'AAAA', 'A']) {
    await expectError('PUT', '/v1/kv/default/ctx-bad', 400, 'RINGKV_INVALID_CONTEXT', {
      body: 'v',
      headers: { 'x-ringkv-context': context },
    });
  }
  await expectError('DELETE', '/v1/kv/default/ctx-bad', 400, 'RINGKV_INVALID_CONTEXT', {
    headers: { 'x-ringkv-context': 'AAAA' },
  });
  await expectError('GET', '/v1/kv/default/ctx-bad', 404, 'RINGKV_NOT_FOUND');
});

test('malformed requests are 400 RINGKV_BAD_REQUEST', async () => {
  const cases: [string, string, Record<string, string>?][] = [
    ['GET', '/v1/kv/default/%FF'],
    ['GET', '/v1/kv/default/%E2%82'],
    ['GET', '/v1/kv/default/%zz'],
    ['GET', '/v1/kv/default/k?format=%FF'],
    ['GET', '/v1/kv/default/k?format=xml'],
    ['GET', '/v1/kv/default/k?ttl=5'],
    ['GET', '/v1/kv/default/k?format=json&format=raw'],
    ['GET', '/v1/kv/default/k?keyEncoding=hex'],
    ['GET', '/v1/kv/default/not*base64?keyEncoding=base64'],
    ['GET', '/v1/kv/default/QR?keyEncoding=base64'],
    ['PUT', '/v1/kv/default/k', { 'if-none-match': '"etag"' }],
    ['PUT', '/v1/kv/default/k', { 'if-match': '*', 'if-none-match': '*' }],
    ['PUT', '/v1/kv/default/k', { 'content-encoding': 'gzip' }],
    ['GET', '/v1/status?verbose=1'],
  ];
  for (const [method, path, headers] of cases) {
    await expectError(method, path, 400, 'RINGKV_BAD_REQUEST', {
      ...(headers === undefined ? {} : { headers }),
      ...(method === 'PUT' ? { body: 'v' } : {}),
    });
  }
  await expectError('GET', '/v1/kv/default/k', 404, 'RINGKV_NOT_FOUND');
});

test('bytes that are not HTTP get a 400 RINGKV_BAD_REQUEST body before the socket closes', async () => {
  const port = node.server.port;
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 400 /);
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
  assert.equal(body.error.code, 'RINGKV_BAD_REQUEST');
  // The node still serves.
  assert.equal((await node.call('GET', '/health')).status, 200);
});

test('a slow client is told RINGKV_REQUEST_TIMEOUT, headers too large RINGKV_HEADERS_TOO_LARGE', () => {
  const timeout = clientErrorResponse('ERR_HTTP_REQUEST_TIMEOUT');
  assert.match(timeout, /^HTTP\/1\.1 408 /);
  assert.match(timeout, /"code":"RINGKV_REQUEST_TIMEOUT"/);
  const overflow = clientErrorResponse('HPE_HEADER_OVERFLOW');
  assert.match(overflow, /^HTTP\/1\.1 431 /);
  // Content-Length counts bytes of the body exactly.
  const [head, body] = overflow.split('\r\n\r\n') as [string, string];
  assert.equal(Number(/Content-Length: (\d+)/.exec(head)?.[1]), Buffer.byteLength(body));
});

test('an unknown route or method is 404 RINGKV_NOT_FOUND', async () => {
  await expectError('GET', '/nope', 404, 'RINGKV_NOT_FOUND');
  await expectError('GET', '/v1', 404, 'RINGKV_NOT_FOUND');
  await expectError('PATCH', '/v1/kv/default/k', 404, 'RINGKV_NOT_FOUND', { body: 'v' });
  await expectError('POST', '/v1/status', 404, 'RINGKV_NOT_FOUND', { body: 'v' });
});

test('too many requests in flight is 503 RINGKV_OVERLOADED', async () => {
  const overloaded = await startHttpNode({ config: { requestsInFlightMax: 0 } });
  try {
    const response = await overloaded.call('PUT', '/v1/kv/default/k', { body: 'v' });
    assert.equal(await errorCodeOf(response, 503), 'RINGKV_OVERLOADED');
    // Routes that do not go through the node still answer.
    assert.equal((await overloaded.call('GET', '/v1/status')).status, 200);
  } finally {
    await overloaded.close();
  }
});

test('a node that has stopped serving answers 503 RINGKV_UNAVAILABLE', async () => {
  const stopped = await startHttpNode();
  try {
    await stopped.runtime.close();
    const response = await stopped.call('GET', '/v1/kv/default/k');
    assert.equal(await errorCodeOf(response, 503), 'RINGKV_UNAVAILABLE');
  } finally {
    await stopped.server.close();
  }
});

/** A node that answers every request with one reply, or throws. */
function scriptedNode(answer: (request: ClientRequest) => ClientReply): NodeApi {
  return {
    submit: (request, onReply) => onReply(answer(request)),
    keyspaces: () => [DEFAULT_KEYSPACE],
    limits: DEFAULT_LIMITS,
    status: () => ({
      nodeId: 'scripted',
      startedAtMs: 0,
      uptimeMs: 0,
      storageEngine: 'memory',
      dataDir: null,
      requestsInFlight: 0,
      commitsTotal: 0,
      commitBatchSizeMean: 0,
    }),
    // The cluster side comes from a node that never starts: forming, no map, no faults.
    clusterStatus: () => unbound.clusterStatus(),
    clusterMap: () => null,
    faultSettings: () => unbound.faultSettings(),
    setFaults: (settings) => unbound.setFaults(settings),
    setHandoff: (settings) => unbound.setHandoff(settings),
  };
}

const unbound = new LateNodeApi(DEFAULT_LIMITS, 'scripted', () => {
  throw new Error('not used');
});

async function scriptedApp(answer: (request: ClientRequest) => ClientReply) {
  const config = { ...DEFAULT_NODE_CONFIG, storage: 'memory' as const, httpPort: 0 };
  return buildHttpApp({
    node: scriptedNode(answer),
    config,
    metrics: new Metrics(),
    logger: pino({ level: 'silent' }),
  });
}

test('a request that arrives while the server closes is 503 RINGKV_UNAVAILABLE, in our shape', async () => {
  let release: ((reply: ClientReply) => void) | null = null;
  const blocking: NodeApi = {
    ...scriptedNode(() => {
      throw new Error('not used');
    }),
    submit: (_request, onReply) => {
      release = onReply;
    },
  };
  const app = await buildHttpApp({
    node: blocking,
    config: { ...DEFAULT_NODE_CONFIG, storage: 'memory', httpPort: 0 },
    metrics: new Metrics(),
    logger: pino({ level: 'silent' }),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as { port: number }).port;
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  const socketClosed = new Promise((resolve) => socket.once('close', resolve));
  // One request held by the node, and the start of a second one on the same connection.
  socket.write('GET /v1/kv/default/k HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n');
  await waitUntil(async () => release !== null, 5000, 'the node to hold the first request');
  const closing = app.close();
  await waitUntil(async () => !app.server.listening, 5000, 'the server to stop listening');
  socket.write('Host: x\r\n\r\n');
  release!({
    ok: true,
    op: 'get',
    results: [
      { value: Buffer.from('hi'), expiresAtMs: 0, context: new Uint8Array(0), siblings: [] },
    ],
  });
  await socketClosed;
  await closing;
  // The request in flight is answered; the one that came during close is refused.
  const responses = received.split(/(?=HTTP\/1\.1 )/);
  assert.equal(responses.length, 2, received);
  assert.match(responses[0]!, /^HTTP\/1\.1 200 [^]*\r\n\r\nhi$/);
  assert.match(responses[1]!, /^HTTP\/1\.1 503 /);
  assert.match(responses[1]!, /\{"error":\{"code":"RINGKV_UNAVAILABLE"/);
});

test('every node error code comes out with the status of the table', async () => {
  for (const code of Object.values(ErrorCode)) {
    const app = await scriptedApp(() => ({
      ok: false,
      error: { code, message: `scripted ${code}` },
    }));
    for (const [method, url] of [
      ['GET', '/v1/kv/default/k'],
      ['PUT', '/v1/kv/default/k'],
      ['DELETE', '/v1/kv/default/k'],
      ['GET', '/v1/kv/default'],
    ] as const) {
      const response = await app.inject({
        method,
        url,
        payload: method === 'PUT' ? 'v' : undefined,
      });
      assert.equal(response.statusCode, STATUS_BY_CODE[code], `${code} on ${method} ${url}`);
      assert.deepEqual(response.json(), { error: { code, message: `scripted ${code}` } });
    }
    await app.close();
  }
});

test('a failure the server did not foresee is 500 RINGKV_INTERNAL without its details', async () => {
  const app = await scriptedApp(() => {
    throw new Error('secret internal detail');
  });
  const response = await app.inject({ method: 'GET', url: '/v1/kv/default/k' });
  assert.equal(response.statusCode, 500);
  assert.deepEqual(response.json(), {
    error: { code: HttpErrorCode.INTERNAL, message: 'internal error' },
  });
  // A reply of the wrong kind is a bug in the node, caught rather than misread.
  const confused = await scriptedApp(() => ({ ok: true, op: 'count', count: 1 }));
  const wrongKind = await confused.inject({ method: 'GET', url: '/v1/kv/default/k' });
  assert.equal(wrongKind.statusCode, 500);
  await app.close();
  await confused.close();
});

for (const docName of ['ERRORS.md', 'HTTP.md']) {
  test(`docs/${docName} lists every stable code with its HTTP status`, () => {
    const doc = readFileSync(new URL(`../../../docs/${docName}`, import.meta.url), 'utf8');
    const rows = new Map<string, number>();
    for (const match of doc.matchAll(/^\|\s*`(RINGKV_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
      rows.set(match[1]!, Number(match[2]));
    }
    const codes = [...Object.values(ErrorCode), ...Object.values(HttpErrorCode)];
    for (const code of codes) assert.equal(rows.get(code), STATUS_BY_CODE[code], code);
    assert.equal(rows.size, codes.length, 'the table lists a code that does not exist');
  });
}
