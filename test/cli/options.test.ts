// Node options: flags beat the environment, which beats the config file, which beats the
// defaults; every bad value is refused with the option named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveNodeConfig, UsageError } from '../../src/cli/options.ts';
import { DEFAULT_NODE_CONFIG } from '../../src/runtime/config.ts';

function withConfigFile(content: unknown, run: (file: string) => void): void {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'ringkv-options-'));
  const file = path.join(directory, 'ringkv.json');
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  try {
    run(file);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

test('defaults apply when nothing is set, and listen on loopback', () => {
  const config = resolveNodeConfig({}, {}, undefined);
  assert.deepEqual(config, DEFAULT_NODE_CONFIG);
  assert.equal(config.host, '127.0.0.1');
});

test('precedence: flags > environment > file > defaults', () => {
  withConfigFile(
    { respPort: 7001, httpPort: 7002, nodeId: 'from-file', valueBytesMax: 1000 },
    (file) => {
      const config = resolveNodeConfig(
        { 'resp-port': '9001' },
        { RINGKV_RESP_PORT: '8001', RINGKV_HTTP_PORT: '8002' },
        file,
      );
      assert.equal(config.respPort, 9001);
      assert.equal(config.httpPort, 8002);
      assert.equal(config.nodeId, 'from-file');
      assert.equal(config.valueBytesMax, 1000);
      assert.equal(config.tickMs, DEFAULT_NODE_CONFIG.tickMs);
    },
  );
});

test('bad values are refused with the option named', () => {
  const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
    [{ 'resp-port': '70000' }, {}, /--resp-port: expected an integer from 0 to 65535/],
    [{ 'http-port': 'eighty' }, {}, /--http-port/],
    [{ storage: 'rocks' }, {}, /--storage: expected one of lmdb, memory/],
    [{}, { RINGKV_VALUE_BYTES_MAX: String(32 * 1024 * 1024) }, /RINGKV_VALUE_BYTES_MAX/],
    [{ 'key-bytes-max': '9000' }, {}, /--key-bytes-max: expected an integer from 1 to 8192/],
    [{ 'node-id': 'has space' }, {}, /--node-id/],
    [{ durability: 'sometimes' }, {}, /--durability/],
  ];
  for (const [flags, environment, message] of cases) {
    assert.throws(
      () => resolveNodeConfig(flags, environment, undefined),
      (error: Error) => error instanceof UsageError && message.test(error.message),
    );
  }
});

test('config files: unknown keys, wrong types and bad JSON are refused', () => {
  withConfigFile({ respPort: 1, colour: 'blue' }, (file) => {
    assert.throws(() => resolveNodeConfig({}, {}, file), /unknown option 'colour'/);
  });
  withConfigFile({ respPort: '80a' }, (file) => {
    assert.throws(() => resolveNodeConfig({}, {}, file), /config file key respPort/);
  });
  withConfigFile('{ not json', (file) => {
    assert.throws(() => resolveNodeConfig({}, {}, file), /not valid JSON/);
  });
  withConfigFile([1, 2], (file) => {
    assert.throws(() => resolveNodeConfig({}, {}, file), /must hold a JSON object/);
  });
  assert.throws(
    () => resolveNodeConfig({}, {}, '/nonexistent/ringkv.json'),
    /cannot read config file/,
  );
});

test('a password can be set from the file or the environment', () => {
  withConfigFile({ password: 'p1' }, (file) => {
    assert.equal(resolveNodeConfig({}, {}, file).password, 'p1');
    assert.equal(resolveNodeConfig({}, { RINGKV_PASSWORD: 'p2' }, file).password, 'p2');
  });
});

test('docs/CONFIGURATION.md lists every option with its flag and environment variable', async () => {
  const { readFileSync } = await import('node:fs');
  const { OPTION_TABLE } = await import('../../src/cli/options.ts');
  const doc = readFileSync(
    path.join(import.meta.dirname, '..', '..', 'docs', 'CONFIGURATION.md'),
    'utf8',
  );
  for (const spec of OPTION_TABLE) {
    assert.ok(
      doc.includes(`| \`${spec.key}\` | \`--${spec.flag}\` | \`${spec.env}\` |`),
      `${spec.key} missing from the doc`,
    );
  }
});

test('options that must agree are checked together: a tick inside a probe, a secret with seeds', () => {
  assert.throws(
    () => resolveNodeConfig({ 'tick-ms': '700' }, {}, undefined),
    /probeTimeoutMs \(400\) \+ tickMs \(700\) must be less than probeIntervalMs \(1000\)/,
  );
  assert.throws(
    () => resolveNodeConfig({ seeds: '127.0.0.1:6580,127.0.0.1:6581' }, {}, undefined),
    /--seeds needs a cluster secret/,
  );
  const config = resolveNodeConfig(
    { seeds: '127.0.0.1:6580,127.0.0.1:6581' },
    { RINGKV_CLUSTER_SECRET: 's' },
    undefined,
  );
  assert.deepEqual(config.seeds, ['127.0.0.1:6580', '127.0.0.1:6581']);
  assert.throws(() => resolveNodeConfig({ seeds: 'nohost' }, {}, undefined), /is not HOST:PORT/);
});

test('the elastic policy: JSON from a flag or the environment, an object in the file, checked', () => {
  assert.equal(resolveNodeConfig({}, {}, undefined).elastic, null, 'off by default');
  const fromFlag = resolveNodeConfig(
    { elastic: '{"joinAbove":{"keys":1000000},"leaveBelow":{"keys":100000}}' },
    {},
    undefined,
  );
  assert.deepEqual(fromFlag.elastic?.joinAbove, { keys: 1_000_000 });
  assert.equal(fromFlag.elastic?.minMembers, 3, 'defaults filled in');
  withConfigFile(
    { elastic: { joinAbove: { requestsPerSecond: 5000 }, coolDownMs: 60000 } },
    (file) => {
      assert.equal(resolveNodeConfig({}, {}, file).elastic?.coolDownMs, 60_000);
    },
  );
  assert.throws(
    () => resolveNodeConfig({}, { RINGKV_ELASTIC: '{"joinAbove":' }, undefined),
    (error: unknown) =>
      error instanceof UsageError && /RINGKV_ELASTIC: not valid JSON/.test(error.message),
  );
  assert.throws(
    () =>
      resolveNodeConfig(
        { elastic: '{"joinAbove":{"keys":10},"leaveBelow":{"keys":50}}' },
        {},
        undefined,
      ),
    /--elastic: leaveBelow.keys \(50\) must be below joinAbove.keys \(10\)/,
  );
});
