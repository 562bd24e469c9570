// `ringkv cluster|ring|keyspace|fault` as a user runs them, against one real node started as
// a child process (a cluster of one), with an admin token: tables from /v1/cluster and the
// ring, keyspaces created and listed, faults set, shown and cleared, and the errors a user
// meets (wrong token, duplicate keyspace, bad arguments) with their exit codes.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  clusterCommand,
  faultAction,
  formatTable,
  type FaultAction,
} from '../../src/cli/commands/cluster-commands.ts';
import { UsageError } from '../../src/cli/options.ts';

const run = promisify(execFile);
const ringkv = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');
const ADMIN_TOKEN = 'cli-admin-token';
const START_TIMEOUT_MS = 20_000;

let child: ChildProcess | null = null;
let dataDir = '';
let nodeAddress = '';

before(async () => {
  // The in-process commands read these; the test names its node and token itself.
  for (const name of ['RINGKV_URL', 'RINGKV_ADMIN_TOKEN', 'RINGKV_PASSWORD']) {
    delete process.env[name];
  }
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'ringkv-cli-cluster-'));
  const started = spawn(
    process.execPath,
    [
      ringkv,
      'start',
      '--storage',
      'memory',
      '--data',
      dataDir,
      '--resp-port',
      '0',
      '--http-port',
      '0',
      '--admin-token',
      ADMIN_TOKEN,
      '--log-level',
      'error',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child = started;
  nodeAddress = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => reject(new Error(`the node did not print its HTTP address: ${output}`)),
      START_TIMEOUT_MS,
    );
    started.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /ringkv: http listening on http:\/\/(127\.0\.0\.1:\d+)/.exec(output);
      if (found !== null) {
        clearTimeout(timer);
        resolve(found[1]!);
      }
    });
    started.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the node exited with ${code}: ${output}`));
    });
  });
});

after(async () => {
  const started = child;
  if (started !== null && started.exitCode === null && started.signalCode === null) {
    const exited = new Promise((resolve) => started.once('exit', resolve));
    started.kill('SIGTERM');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ringkv, ...args], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, RINGKV_URL: '', RINGKV_ADMIN_TOKEN: '', RINGKV_PASSWORD: '' },
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

/**
 * A cluster command run in this process (a process per command would cost a second each),
 * with the exit code main.ts gives: 2 for a usage error, 1 for any other failure.
 */
async function command(
  name: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  try {
    const code = await clusterCommand(name, args, (text) => (stdout += text));
    return { stdout, stderr: '', code };
  } catch (error) {
    const usage =
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
    return { stdout, stderr: (error as Error).message, code: usage ? 2 : 1 };
  }
}

/** A command against the test node. */
function against(name: string, ...args: string[]) {
  return command(name, ...args, '--node', nodeAddress);
}

/** A command against the test node, with the admin token. */
function admin(name: string, ...args: string[]) {
  return command(name, ...args, '--node', nodeAddress, '--admin-token', ADMIN_TOKEN);
}

test('the ringkv command dispatches the cluster commands, with --help on each', async () => {
  const commands = ['cluster', 'ring', 'keyspace', 'fault'];
  const [main, viaHelp, printed, unauthorized, usage, ...helps] = await Promise.all([
    cli('--help'),
    cli('help', 'fault'),
    cli('cluster', '--node', nodeAddress),
    cli('fault', 'show', '--node', nodeAddress),
    cli('fault', 'bogus', '--node', nodeAddress),
    ...commands.map((name) => cli(name, '--help')),
  ]);
  for (const [index, name] of commands.entries()) {
    assert.equal(helps[index]!.code, 0, name);
    assert.match(helps[index]!.stdout, new RegExp(`^Usage: ringkv ${name}`), name);
    assert.match(helps[index]!.stdout, /--node HOST:PORT/, name);
    assert.match(main!.stdout, new RegExp(`^  ${name} `, 'm'), name);
  }
  assert.match(viaHelp!.stdout, /^Usage: ringkv fault/);
  assert.equal(printed!.code, 0, printed!.stderr);
  assert.match(printed!.stdout, /^node1 +member, voter +alive +256 /m);
  assert.equal(unauthorized!.code, 1);
  assert.match(unauthorized!.stderr, /^ringkv: RINGKV_UNAUTHORIZED/);
  assert.equal(usage!.code, 2);
  assert.match(usage!.stderr, /unknown action 'bogus'/);
});

test('ringkv cluster prints the members with role, liveness, partitions owned and hints pending', async () => {
  const result = await against('cluster');
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^cluster \S+ {2}state ready {2}epoch \d+ {2}partitions 256 /);
  assert.match(lines[1]!, /^MEMBER +ROLE +LIVENESS +PARTITIONS +HINTS PENDING +PEER +HTTP +RESP$/);
  // A single node has no peer address; its client addresses are the ones it listens on.
  const escaped = nodeAddress.replace(/[.]/g, '\\.');
  assert.match(
    lines[2]!,
    new RegExp(`^node1 +member, voter +alive +256 +0 +- +${escaped} +127\\.0\\.0\\.1:\\d+$`),
  );
  assert.equal(lines.length, 3);
});

test('ringkv ring prints the partitions each node owns, and every owner with --partitions', async () => {
  const summary = await against('ring');
  assert.equal(summary.code, 0, summary.stderr);
  assert.match(summary.stdout, /^NODE +LIVENESS +PARTITIONS +SHARE$/m);
  assert.match(summary.stdout, /^node1 +alive +256 +100\.0%$/m);
  const full = await against('ring', '--partitions');
  const owners = full.stdout.split('\n').filter((line) => /^\d+ +node1$/.test(line));
  assert.equal(owners.length, 256);
});

test('ringkv keyspace create adds a keyspace that list shows; a duplicate exits 1 with its code', async () => {
  const created = await admin(
    'keyspace',
    'create',
    'orders',
    '--n',
    '1',
    '--r',
    '1',
    '--w',
    '1',
    '--conflicts',
    'siblings',
    '--durability',
    'relaxed',
  );
  assert.equal(created.code, 0, created.stderr);
  assert.match(created.stdout, /^created keyspace orders$/m);
  assert.match(created.stdout, /^orders +\d+ +1 +1 +1 +eventual +siblings +relaxed$/m);

  const listed = await against('keyspace', 'list');
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^NAME +ID +N +R +W +CONSISTENCY +CONFLICTS +DURABILITY$/m);
  assert.match(listed.stdout, /^default +0 +3 +2 +2 +eventual +lww +sync$/m);
  assert.match(listed.stdout, /^orders +\d+ +1 +1 +1 +eventual +siblings +relaxed$/m);

  const duplicate = await admin('keyspace', 'create', 'orders');
  assert.equal(duplicate.code, 1);
  assert.match(duplicate.stderr, /RINGKV_KEYSPACE_EXISTS/);

  const everywhere = await admin('keyspace', 'create', 'everywhere', '--n', 'all');
  assert.equal(everywhere.code, 0, everywhere.stderr);
  assert.match(everywhere.stdout, /^everywhere +\d+ +all +2 +2 /m);
});

test('keyspace create needs the admin token and valid properties', async () => {
  const unauthorized = await against('keyspace', 'create', 'nope');
  assert.equal(unauthorized.code, 1);
  assert.match(unauthorized.stderr, /RINGKV_UNAUTHORIZED/);
  const invalid = await admin('keyspace', 'create', 'nope', '--conflicts', 'maybe');
  assert.equal(invalid.code, 1);
  assert.match(invalid.stderr, /RINGKV_INVALID_ARGUMENT|RINGKV_BAD_REQUEST/);
  assert.equal((await admin('keyspace', 'create', 'nope', '--n', 'three')).code, 2);
  assert.equal((await admin('keyspace', 'create')).code, 2);
  assert.equal((await admin('keyspace', 'drop', 'orders')).code, 2);
  const listed = await against('keyspace', 'list');
  assert.doesNotMatch(listed.stdout, /^nope /m);
});

test('ringkv fault sets, shows and clears the faults of a node', async () => {
  const delayed = await admin('fault', 'delay', '25');
  assert.equal(delayed.code, 0, delayed.stderr);
  assert.equal(delayed.stdout, 'failed false  delayMs 25  lossRate 0  cutPeers -\n');
  const lossy = await admin('fault', 'loss', '0.5');
  assert.equal(lossy.stdout, 'failed false  delayMs 25  lossRate 0.5  cutPeers -\n');
  const cut = await admin('fault', 'cut', 'node2,node3');
  assert.equal(cut.stdout, 'failed false  delayMs 25  lossRate 0.5  cutPeers node2,node3\n');
  assert.equal((await admin('fault', 'show')).stdout, cut.stdout);

  const failed = await admin('fault', 'fail');
  assert.match(failed.stdout, /^failed true /);
  // A failed node refuses its clients.
  const refused = await fetch(`http://${nodeAddress}/v1/kv/default/some-key`);
  assert.equal(refused.status, 503);
  assert.match(await refused.text(), /RINGKV_UNAVAILABLE/);

  const healed = await admin('fault', 'heal');
  assert.equal(healed.stdout, 'failed false  delayMs 0  lossRate 0  cutPeers -\n');
  assert.equal((await admin('fault', 'fail')).code, 0);
  assert.equal(
    (await admin('fault', 'recover')).stdout,
    'failed false  delayMs 0  lossRate 0  cutPeers -\n',
  );
});

test('ringkv fault refuses a missing token, bad actions and bad values', async () => {
  const unauthorized = await against('fault', 'show');
  assert.equal(unauthorized.code, 1);
  assert.match(unauthorized.stderr, /RINGKV_UNAUTHORIZED/);
  for (const args of [
    ['bogus'],
    ['delay'],
    ['delay', 'soon'],
    ['loss', '2'],
    ['cut'],
    ['fail', 'extra'],
  ]) {
    const result = await admin('fault', ...args);
    assert.equal(result.code, 2, args.join(' '));
  }
  assert.equal((await command('cluster', '--node', 'not-an-address')).code, 2);
  const unreachable = await command('cluster', '--node', '127.0.0.1:1');
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach/);
  assert.equal(
    (await admin('fault', 'show')).stdout,
    'failed false  delayMs 0  lossRate 0  cutPeers -\n',
  );
});

test('fault actions map to the admin route: fail, heal, delay, loss, cut, show', () => {
  const cases: [string, string | undefined, FaultAction][] = [
    ['fail', undefined, { kind: 'set', change: { failed: true } }],
    ['recover', undefined, { kind: 'clear' }],
    ['heal', undefined, { kind: 'clear' }],
    ['delay', '0', { kind: 'set', change: { delayMs: 0 } }],
    ['loss', '0.25', { kind: 'set', change: { lossRate: 0.25 } }],
    ['cut', 'a,b,', { kind: 'set', change: { cutPeers: ['a', 'b'] } }],
    ['show', undefined, { kind: 'show' }],
  ];
  for (const [action, argument, expected] of cases) {
    assert.deepEqual(faultAction(action, argument), expected, action);
  }
  assert.equal(
    formatTable([
      ['A', 'BB'],
      ['ccc', 'd'],
    ]),
    'A    BB\nccc  d\n',
  );
});
