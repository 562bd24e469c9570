// `ringkv bench` as a user runs it: bad flags are usage errors that say what is wrong, and
// a run against a node started with `ringkv start` reports every request, with the reads
// of workload `gets` all finding the values its load phase wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseBenchOptions } from '../../src/cli/commands/bench.ts';
import type { LoadResult } from '../../src/loadgen/index.ts';

const run = promisify(execFile);
const ringkv = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ringkv, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

test('bench flags: defaults, per-target endpoints, and usage errors that name the flag', async () => {
  const defaults = parseBenchOptions([], {});
  assert.ok(defaults !== 'help');
  assert.deepEqual(
    [defaults.target, defaults.endpoints, defaults.workload, defaults.keyCount],
    ['resp', '127.0.0.1:6380', 'puts', 100_000],
  );
  assert.deepEqual(
    [defaults.valueBytes, defaults.concurrency, defaults.connections, defaults.requests],
    [100, 50, 50, 100_000],
  );
  const etcd = parseBenchOptions(['--target', 'etcd', '--duration-s', '3'], {});
  assert.ok(etcd !== 'help');
  assert.deepEqual(
    [etcd.endpoints, etcd.requests, etcd.durationS],
    ['127.0.0.1:2379', undefined, 3],
  );
  const cases: [string[], RegExp][] = [
    [['--target', 'mongo'], /--target: expected one of resp, client, etcd/],
    [['--workload', 'd'], /--workload: expected one of puts, gets, a, b, c/],
    [['--concurrency', '0'], /--concurrency: expected an integer from 1/],
    [['--keys', 'many'], /--keys: expected an integer/],
    [['--endpoints', 'localhost'], /--endpoints: 'localhost' is not host:port/],
    [['--requests', '10', '--duration-s', '1'], /--requests or --duration-s, not both/],
    [['--distribution', 'normal'], /--distribution/],
  ];
  for (const [argv, message] of cases) assert.throws(() => parseBenchOptions(argv, {}), message);
  const result = await cli('bench', '--workload', 'e');
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--workload/);
  const help = await cli('bench', '--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: ringkv bench/);
});

test('ringkv bench --target resp against a started node counts every request', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-bench-'));
  const node = spawn(
    process.execPath,
    [
      ringkv,
      'start',
      '--data',
      path.join(dataDir, 'node1'),
      '--resp-port',
      '0',
      '--http-port',
      '0',
      '--durability',
      'relaxed',
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise((resolve) => node.once('exit', resolve));
  try {
    const respPort = await new Promise<number>((resolve, reject) => {
      let output = '';
      node.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ringkv: resp listening on 127\.0\.0\.1:(\d+)/.exec(output);
        if (match !== null) resolve(Number(match[1]));
      });
      node.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      void exited.then((code) => reject(new Error(`node exited early with ${code}: ${output}`)));
    });
    const endpoints = ['--endpoints', `127.0.0.1:${respPort}`];
    const gets = await cli(
      'bench',
      ...endpoints,
      '--workload',
      'gets',
      '--keys',
      '300',
      '--requests',
      '2000',
      '--concurrency',
      '10',
      '--json',
    );
    assert.equal(gets.code, 0, gets.stderr);
    assert.equal(gets.stderr, '', 'no progress line when stderr is not a terminal');
    const result = JSON.parse(gets.stdout) as LoadResult;
    assert.equal(result.load?.succeeded, 300);
    assert.equal(result.succeeded, 2000);
    assert.equal(result.notFound, 0);
    assert.deepEqual(result.errors, {});
    assert.ok(result.latency.p50Us > 0 && result.latency.p50Us <= result.latency.p99Us);
    assert.ok(result.latency.p99Us <= result.latency.maxUs);

    const mixed = await cli(
      'bench',
      ...endpoints,
      '--workload',
      'a',
      '--keys',
      '300',
      '--distribution',
      'zipfian',
      '--requests',
      '1000',
    );
    assert.equal(mixed.code, 0, mixed.stderr);
    assert.match(mixed.stdout, /^run: 1000 ops in [\d.]+ s, \d+ ops\/s$/m);
    assert.match(mixed.stdout, /^ {2}get .* p50 [\d.]+ {2}p99 [\d.]+ {2}p999 [\d.]+/m);
    assert.match(mixed.stdout, /^ {2}put /m);
  } finally {
    if (node.exitCode === null) process.kill(node.pid!, 'SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a target that does not answer is reported, with exit code 1', async () => {
  const result = await cli('bench', '--endpoints', '127.0.0.1:1', '--requests', '1');
  assert.equal(result.code, 1);
  assert.match(result.stderr, /cannot reach resp at 127\.0\.0\.1:1/);
});
