// The `ringkv` command as a user runs it: help everywhere, then a node started as a child
// process with LMDB, used through get/put/del/scan/status, stopped with SIGTERM, and started
// again on the same data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ringkv = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ringkv, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

test('every command has --help, and usage errors exit 2', async () => {
  for (const command of ['start', 'get', 'put', 'del', 'scan', 'status']) {
    const result = await cli(command, '--help');
    assert.equal(result.code, 0, command);
    assert.match(result.stdout, new RegExp(`^Usage: ringkv ${command}`), command);
  }
  assert.match((await cli('--help')).stdout, /Commands:/);
  assert.match((await cli('help', 'put')).stdout, /^Usage: ringkv put/);
  const unknown = await cli('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const badFlag = await cli('start', '--resp-port', '70000');
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.stderr, /--resp-port/);
  const badArity = await cli('get');
  assert.equal(badArity.code, 2);
});

interface Started {
  readonly child: ChildProcess;
  readonly httpUrl: string;
  readonly respPort: number;
}

function startNode(dataDir: string): Promise<Started> {
  const child = spawn(
    process.execPath,
    [
      ringkv,
      'start',
      '--storage',
      'lmdb',
      '--data',
      dataDir,
      '--resp-port',
      '0',
      '--http-port',
      '0',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let output = '';
    let respPort = 0;
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const resp = /ringkv: resp listening on 127\.0\.0\.1:(\d+)/.exec(output);
      const http = /ringkv: http listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (resp !== null) respPort = Number(resp[1]);
      if (resp !== null && http !== null) resolve({ child, httpUrl: http[1]!, respPort });
    });
    child.once('exit', (code) => reject(new Error(`node exited early with ${code}: ${output}`)));
  });
}

async function stopNode(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) =>
    started.child.once('exit', (code) => resolve(code)),
  );
  process.kill(started.child.pid!, 'SIGTERM');
  return exited;
}

test('start a node, use it from the CLI, stop it, and find the data after a restart', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-cli-'));
  try {
    let node = await startNode(dataDir);
    const url = ['--url', node.httpUrl];
    assert.deepEqual(await cli('put', 'greeting', 'hello', ...url), {
      stdout: 'OK\n',
      stderr: '',
      code: 0,
    });
    assert.equal((await cli('get', 'greeting', ...url)).stdout, 'hello');
    assert.equal((await cli('put', 'brief', 'x', '--ttl', '60000', ...url)).code, 0);
    for (let i = 0; i < 5; i++) await cli('put', `user:${i}`, String(i), ...url);
    const scan = await cli('scan', '--prefix', 'user:', ...url);
    assert.deepEqual(scan.stdout.trim().split('\n').sort(), [
      'user:0',
      'user:1',
      'user:2',
      'user:3',
      'user:4',
    ]);
    assert.deepEqual(await cli('del', 'user:0', ...url), {
      stdout: 'deleted\n',
      stderr: '',
      code: 0,
    });
    const missing = await cli('get', 'user:0', ...url);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /RINGKV_NOT_FOUND/);
    const status = JSON.parse((await cli('status', ...url)).stdout) as {
      node: { storageEngine: string };
    };
    assert.equal(status.node.storageEngine, 'lmdb');
    const unknownKeyspace = await cli('get', 'k', '--keyspace', 'nope', ...url);
    assert.equal(unknownKeyspace.code, 1);
    assert.match(unknownKeyspace.stderr, /RINGKV_UNKNOWN_KEYSPACE/);
    assert.equal(await stopNode(node), 0, 'SIGTERM did not stop the node cleanly');

    node = await startNode(dataDir);
    assert.equal((await cli('get', 'greeting', '--url', node.httpUrl)).stdout, 'hello');
    assert.equal((await cli('get', 'user:4', '--url', node.httpUrl)).stdout, '4');
    assert.equal((await cli('get', 'user:0', '--url', node.httpUrl)).code, 1);
    assert.equal(await stopNode(node), 0);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a client pointed at no node says so and exits 1', async () => {
  const result = await cli('get', 'k', '--url', 'http://127.0.0.1:1');
  assert.equal(result.code, 1);
  assert.match(result.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
});
