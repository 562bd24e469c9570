// Metrics and logs: /metrics counts key-value requests by operation and outcome with a
// latency histogram, in the Prometheus text format; the log has one line per request, at the
// documented level, and never the password.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { PROMETHEUS_CONTENT_TYPE } from '../../../src/api/http/status-routes.ts';
import { startHttpNode, waitUntil, type HttpNode } from './http-harness.ts';

const PASSWORD = 'do-not-log-me';
const auth = { authorization: `Bearer ${PASSWORD}` };

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  method?: string;
  url?: string;
  status?: number;
  ms?: number;
  code?: string;
  component?: string;
}

const rawLines: string[] = [];
let node: HttpNode;

before(async () => {
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      rawLines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((line) => line.length > 0),
      );
      done();
    },
  });
  node = await startHttpNode({
    config: { password: PASSWORD, valueBytesMax: 100 },
    logStream,
    logLevel: 'debug',
  });
});

after(async () => {
  await node.close();
});

function requestLines(): LogLine[] {
  return rawLines
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.status !== undefined);
}

async function metricsText(): Promise<string> {
  const response = await node.call('GET', '/metrics', { headers: auth });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), PROMETHEUS_CONTENT_TYPE);
  return response.text();
}

function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

test('metrics count each key-value request by operation and outcome, with a latency histogram', async () => {
  const call = (method: string, path: string, body?: string | Uint8Array) =>
    node.call(method, path, { headers: auth, ...(body === undefined ? {} : { body }) });
  assert.equal((await call('PUT', '/v1/kv/default/m1', 'a')).status, 200);
  assert.equal((await call('PUT', '/v1/kv/default/m2', 'b')).status, 200);
  assert.equal((await call('GET', '/v1/kv/default/m1')).status, 200);
  // A miss is an answer: counted ok.
  assert.equal((await call('GET', '/v1/kv/default/missing')).status, 404);
  assert.equal((await call('GET', '/v1/kv/nosuch/m1')).status, 404);
  assert.equal((await call('PUT', '/v1/kv/default/m3', new Uint8Array(101))).status, 413);
  assert.equal((await call('DELETE', '/v1/kv/default/m2')).status, 200);
  assert.equal((await call('GET', '/v1/kv/default?limit=10')).status, 200);
  // Refused for want of the token: still a key-value request, and an error.
  assert.equal((await node.call('GET', '/v1/kv/default/m1')).status, 401);

  const expected: Record<string, number> = {
    'operation="put",outcome="ok"': 2,
    'operation="put",outcome="error"': 1,
    'operation="get",outcome="ok"': 2,
    'operation="get",outcome="error"': 2,
    'operation="delete",outcome="ok"': 1,
    'operation="list",outcome="ok"': 1,
  };
  const counter = (labels: string) => `ringkv_requests_total{${labels},protocol="http"}`;
  // Observations are made once each response has gone out, so wait for the last one.
  let text = '';
  await waitUntil(
    async () => {
      text = await metricsText();
      return Object.entries(expected).every(([labels, n]) => sample(text, counter(labels)) === n);
    },
    5000,
    `the counters ${JSON.stringify(expected)}`,
  );
  assert.match(text, /^# TYPE ringkv_requests_total counter$/m);
  assert.match(text, /^# TYPE ringkv_request_duration_seconds histogram$/m);
  const histogram = (suffix: string, labels: string) =>
    `ringkv_request_duration_seconds${suffix}{operation="${labels}",protocol="http"`;
  for (const [operation, count] of [
    ['put', 3],
    ['get', 4],
    ['delete', 1],
    ['list', 1],
  ] as const) {
    assert.equal(sample(text, `${histogram('_count', operation)}}`), count, operation);
    assert.equal(sample(text, `${histogram('_bucket', operation)},le="+Inf"}`), count, operation);
    const sum = sample(text, `${histogram('_sum', operation)}}`);
    assert.ok(sum !== null && sum > 0 && sum < 60, `${operation} sum ${sum}`);
  }
  // Routes that are not key-value operations are not counted.
  assert.doesNotMatch(text, /operation="(status|metrics|health)"/);
  assert.ok((sample(text, 'ringkv_connections{protocol="http"}') ?? 0) >= 1);
});

test('each request is one log line at its level, and the password is never logged', async () => {
  const before = requestLines().length;
  await node.call('GET', '/v1/status', { headers: auth });
  await node.call('GET', '/v1/kv/default/m1', { headers: auth });
  await node.call('GET', '/v1/kv/default/m1', { headers: { authorization: 'Bearer wrong' } });
  await node.call('GET', '/health');
  // Refused by the router itself, before any hook.
  await node.call('GET', '/v1/kv/default/%FF', { headers: auth });
  await waitUntil(async () => requestLines().length >= before + 5, 5000, 'five log lines');
  const lines = requestLines().slice(before);
  assert.equal(lines.length, 5);
  assert.equal(new Set(lines.map((line) => line.reqId)).size, 5, 'a request logged twice');
  const [status, get, refused, health, badUrl] = lines as [
    LogLine,
    LogLine,
    LogLine,
    LogLine,
    LogLine,
  ];
  assert.deepEqual([status.level, status.url, status.status], [30, '/v1/status', 200]);
  assert.deepEqual([get.level, get.method, get.status], [20, 'GET', 200]);
  assert.deepEqual([refused.level, refused.status, refused.code], [40, 401, 'RINGKV_UNAUTHORIZED']);
  assert.deepEqual([health.level, health.url], [20, '/health']);
  assert.deepEqual([badUrl.level, badUrl.status, badUrl.code], [30, 400, 'RINGKV_BAD_REQUEST']);
  for (const line of lines) {
    assert.equal(line.component, 'http');
    assert.equal(typeof line.ms, 'number');
  }
  for (const line of rawLines) assert.ok(!line.includes(PASSWORD), `logged: ${line}`);
});
