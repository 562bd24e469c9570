// `ringkv sim` as a user runs it, as a child process: one seed prints its summary (outcomes by
// operation, faults, anomalies, history file, replay command) and writes a history that
// parses back; a range prints a line per seed and a total; --keyspace strong and --keyspace
// chain run the linearizable swarms (what they checked; the quorum-of-one and the
// older-epochs controls fail); unknown keyspace and fault kinds are refused as usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseHistoryLines } from '../../src/check/history.ts';
import { parseSimOptions, replayCommand } from '../../src/cli/commands/sim.ts';

const run = promisify(execFile);
const ringkv = path.join(import.meta.dirname, '..', '..', 'bin', 'ringkv.js');

async function cli(
  cwd: string,
  ...args: string[]
): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [ringkv, ...args], {
      cwd,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { stdout, stderr, code: 0 };
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; code: number };
    return { stdout: failed.stdout, stderr: failed.stderr, code: failed.code };
  }
}

function scratch(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'ringkv-sim-'));
}

test('one seed: a summary with outcomes, faults, anomalies, history and replay; the history parses back', async () => {
  const directory = scratch();
  try {
    const result = await cli(directory, 'sim', '--seed', '2', '--ops', '120');
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const out = result.stdout;
    assert.match(out, /^ringkv sim: seed 2, configuration n3-quorum \(N=3 R=2 W=2 lww/);
    assert.match(out, /120 operations\n/);
    assert.match(out, /^operations\s+ok\s+failed\s+unknown$/m);
    for (const kind of ['get', 'put', 'delete', 'all']) {
      assert.match(out, new RegExp(`^  ${kind}\\s+\\d+\\s+\\d+\\s+\\d+$`, 'm'), kind);
    }
    assert.match(out, /^faults drawn: /m);
    assert.match(out, /^faults injected \(virtual ms since the world began/m);
    assert.match(out, /^anomalies: none$/m);
    assert.match(out, /^replay: ringkv sim --seed 2 --config n3-quorum --ops 120$/m);
    const historyLine = /^history: (.+)$/m.exec(out);
    assert.ok(historyLine !== null, 'the summary names the history file');
    assert.equal(historyLine[1], path.join('sim-histories', 'n3-quorum-seed-2.jsonl'));
    const history = parseHistoryLines(readFileSync(path.join(directory, historyLine[1]!), 'utf8'));
    assert.equal(history.length, 120);
    const all = /^ {2}all\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(out)!;
    assert.equal(Number(all[1]) + Number(all[2]) + Number(all[3]), 120);
    assert.equal(Number(all[1]), history.filter((operation) => operation.outcome === 'ok').length);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a range of two seeds: a line per seed, a total, a history per seed', async () => {
  const directory = scratch();
  try {
    const result = await cli(
      directory,
      'sim',
      '--seeds',
      '4..5',
      '--ops',
      '80',
      '--config',
      'n5-quorum',
      '--history',
      'out',
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /^n5-quorum seed 4: ok, \d nodes, 80 operations \(ok \d+/m);
    assert.match(result.stdout, /^n5-quorum seed 5: ok, /m);
    assert.match(
      result.stdout,
      /^ringkv sim: 2 runs \(seeds 4\.\.5, n5-quorum\) in [\d.]+ s: 2 passed, 0 failed$/m,
    );
    assert.match(result.stdout, /^fault events: /m);
    assert.deepEqual(readdirSync(path.join(directory, 'out')).sort(), [
      'n5-quorum-seed-4.jsonl',
      'n5-quorum-seed-5.jsonl',
    ]);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('--keyspace strong: one seed of strong-n3 is judged linearizable, every key read through every node; the history parses back', async () => {
  const directory = scratch();
  try {
    const result = await cli(
      directory,
      'sim',
      '--keyspace',
      'strong',
      '--seed',
      '2',
      '--ops',
      '120',
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const out = result.stdout;
    assert.match(out, /^ringkv sim: seed 2, configuration strong-n3 \(strong N=3 on 3 nodes/);
    for (const kind of ['get', 'put', 'delete', 'cas', 'incr', 'all']) {
      assert.match(out, new RegExp(`^  ${kind}\\s+\\d+\\s+\\d+\\s+\\d+$`, 'm'), kind);
    }
    assert.match(out, /^ {2}final reads: 8 keys through each of 3 nodes, 24 of 24 answered$/m);
    assert.match(out, /^ {2}linearizability: linearizable, 8 of 8 keys, 144 operations$/m);
    assert.match(out, /^ {2}versions: \d+ observed, 0 problems$/m);
    assert.match(out, /^anomalies: none$/m);
    assert.match(out, /^replay: ringkv sim --seed 2 --config strong-n3 --ops 120$/m);
    const history = parseHistoryLines(
      readFileSync(path.join(directory, 'sim-histories', 'strong-n3-seed-2.jsonl'), 'utf8'),
    );
    assert.equal(history.length, 120 + 24, 'the workload and the final reads');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('--strong-quorum-of-one: the control fails the linearizability checker and exits 1, naming itself in the replay', async () => {
  const directory = scratch();
  try {
    const result = await cli(
      directory,
      'sim',
      '--config',
      'strong-n3',
      '--seed',
      '1',
      '--strong-quorum-of-one',
      '--history-of',
      'failed',
    );
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^ {2}not linearizable: key "default\/k\d+"/m);
    assert.match(
      result.stdout,
      /^replay: ringkv sim --seed 1 --config strong-n3 --strong-quorum-of-one$/m,
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('--keyspace chain: one seed of chain-n3 waits for whole chains, reads every key through every node and is judged linearizable', async () => {
  const directory = scratch();
  try {
    const result = await cli(
      directory,
      'sim',
      '--keyspace',
      'chain',
      '--seed',
      '2',
      '--ops',
      '120',
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const out = result.stdout;
    assert.match(out, /^ringkv sim: seed 2, configuration chain-n3 \(chain N=3 on 3 nodes/);
    for (const kind of ['get', 'put', 'delete', 'cas', 'incr', 'all']) {
      assert.match(out, new RegExp(`^  ${kind}\\s+\\d+\\s+\\d+\\s+\\d+$`, 'm'), kind);
    }
    assert.match(out, /^ {2}chains: whole again, 3 replicas each$/m);
    assert.match(out, /^ {2}final reads: 12 keys through each of 3 nodes, 36 of 36 answered$/m);
    assert.match(out, /^ {2}linearizability: linearizable, 12 of 12 keys, 156 operations$/m);
    assert.match(out, /^ {2}versions: \d+ observed, 0 problems$/m);
    assert.match(out, /^anomalies: none$/m);
    assert.match(out, /^replay: ringkv sim --seed 2 --config chain-n3 --ops 120$/m);
    const history = parseHistoryLines(
      readFileSync(path.join(directory, 'sim-histories', 'chain-n3-seed-2.jsonl'), 'utf8'),
    );
    assert.equal(history.length, 120 + 36, 'the workload and the final reads');
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('--chain-accept-older-epochs: the control fails the linearizability checker and exits 1, naming itself in the replay', async () => {
  const directory = scratch();
  try {
    const result = await cli(
      directory,
      'sim',
      '--config',
      'chain-n5',
      '--seed',
      '126',
      '--chain-accept-older-epochs',
      '--history-of',
      'failed',
    );
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /^ {2}not linearizable: key "(chain|second)\/k\d+"/m);
    assert.match(
      result.stdout,
      /^replay: ringkv sim --seed 126 --config chain-n5 --chain-accept-older-epochs$/m,
    );
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('an unknown fault kind is refused with exit 2, and --help explains every flag and configuration', async () => {
  const directory = scratch();
  try {
    const faults = await cli(directory, 'sim', '--faults', 'crash,meteor');
    assert.equal(faults.code, 2);
    assert.match(
      faults.stderr,
      /--faults: no fault kind 'meteor'; expected none or some of crash, /,
    );
    assert.equal(faults.stdout, '', 'nothing ran');
    assert.deepEqual(readdirSync(directory), [], 'no history written');
    const help = await cli(directory, 'sim', '--help');
    assert.equal(help.code, 0);
    for (const flag of ['--seed', '--seeds', '--config', '--nodes', '--ops', '--faults']) {
      assert.ok(help.stdout.includes(`  ${flag} `), `--help explains ${flag}`);
    }
    for (const flag of [
      '--keyspace',
      '--history',
      '--history-of',
      '--quiet',
      '--skip-fsync',
      '--strong-quorum-of-one',
    ]) {
      assert.ok(help.stdout.includes(`  ${flag} `), `--help explains ${flag}`);
    }
    assert.match(help.stdout, /^ {2}--chain-accept-older-epochs\n {25}negative control/m);
    for (const name of ['n3-quorum', 'strong-n3', 'strong-n5', 'chain-n3', 'chain-n5']) {
      assert.ok(help.stdout.includes(`  ${name} `), `--help lists ${name}`);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('sim flags: defaults, and usage errors that name the flag', () => {
  const defaults = parseSimOptions([]);
  assert.ok(defaults !== 'help');
  assert.deepEqual(
    [defaults.firstSeed, defaults.lastSeed, defaults.configurations, defaults.operations],
    [1, 1, ['n3-quorum'], 300],
  );
  assert.deepEqual([defaults.faults, defaults.historyDirectory], [undefined, 'sim-histories']);
  const set = parseSimOptions(['--config', 'default-set', '--faults', 'none']);
  assert.ok(set !== 'help');
  assert.deepEqual(set.configurations, [
    'n3-quorum',
    'n3-siblings',
    'n5-quorum',
    'n-all',
    'read-heavy',
  ]);
  assert.deepEqual(set.faults, []);
  const strong = parseSimOptions(['--keyspace', 'strong']);
  assert.ok(strong !== 'help');
  assert.deepEqual([strong.keyspace, strong.configurations], ['strong', ['strong-n3']]);
  const strongSet = parseSimOptions(['--keyspace', 'strong', '--config', 'default-set']);
  assert.ok(strongSet !== 'help');
  assert.deepEqual(strongSet.configurations, ['strong-n3', 'strong-n5']);
  const chain = parseSimOptions(['--keyspace', 'chain']);
  assert.ok(chain !== 'help');
  assert.deepEqual([chain.keyspace, chain.configurations], ['chain', ['chain-n3']]);
  const chainSet = parseSimOptions(['--keyspace', 'chain', '--config', 'default-set']);
  assert.ok(chainSet !== 'help');
  assert.deepEqual(chainSet.configurations, ['chain-n3', 'chain-n5']);
  assert.equal(chainSet.chainAcceptOlderEpochs, false);
  // A strong configuration named without --keyspace is taken as it is.
  const named = parseSimOptions(['--config', 'strong-n5,n3-quorum']);
  assert.ok(named !== 'help');
  assert.deepEqual(named.configurations, ['strong-n5', 'n3-quorum']);
  const cases: [string[], RegExp][] = [
    [
      ['--keyspace', 'chain', '--config', 'strong-n3'],
      /--config: strong-n3 is a configuration of strong keyspaces, not of --keyspace chain; expected chain-n3, chain-n5, default-set/,
    ],
    [
      ['--chain-accept-older-epochs', '--config', 'chain-n5,strong-n3'],
      /--chain-accept-older-epochs: a control of chain configurations; strong-n3 runs strong keyspaces/,
    ],
    [
      ['--strong-quorum-of-one', '--keyspace', 'chain'],
      /--strong-quorum-of-one: a control of strong configurations; chain-n3 runs chain keyspaces/,
    ],
    [
      ['--nodes', '2', '--config', 'chain-n3'],
      /--nodes 2: configuration chain-n3 needs at least 3/,
    ],
    [
      ['--keyspace', 'strong', '--config', 'n3-quorum'],
      /--config: n3-quorum is a configuration of eventual keyspaces, not of --keyspace strong; expected strong-n3, strong-n5, default-set/,
    ],
    [
      ['--keyspace', 'eventual', '--config', 'strong-n3'],
      /--config: strong-n3 is a configuration of strong keyspaces, not of --keyspace eventual/,
    ],
    [
      ['--strong-quorum-of-one', '--config', 'strong-n3,n3-quorum'],
      /--strong-quorum-of-one: a control of strong configurations; n3-quorum runs eventual keyspaces/,
    ],
    [
      ['--nodes', '3', '--config', 'strong-n5'],
      /--nodes 3: configuration strong-n5 needs at least 5 nodes/,
    ],
    [['--keyspace', 'weak'], /--keyspace: expected eventual, strong or chain/],
    [['--faults', 'crash,,loss'], /--faults: expected names separated by commas/],
    [['--config', 'n9'], /--config: no configuration 'n9'/],
    [['--seeds', '5..2'], /--seeds: A must not be above B/],
    [['--seeds', '5-9'], /--seeds: expected A\.\.B/],
    [['--seed', '1', '--seeds', '1..2'], /give --seed or --seeds, not both/],
    [
      ['--nodes', '2', '--config', 'n5-quorum'],
      /--nodes 2: configuration n5-quorum needs at least 5/,
    ],
    [['--nodes', '99'], /--nodes: expected an integer from 1 to 16/],
    [['--ops', '0'], /--ops: expected an integer from 1/],
    [['--history-of', 'some'], /--history-of: expected all or failed/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseSimOptions(args), message, args.join(' '));
  }
});

test('the replay command names every flag that shaped the run, and no other', () => {
  const options = parseSimOptions([
    '--seeds',
    '1..9',
    '--nodes',
    '5',
    '--ops',
    '50',
    '--faults',
    'pause,crash',
    '--quiet',
  ]);
  assert.ok(options !== 'help');
  assert.equal(
    replayCommand(7, 'n-all', options),
    'ringkv sim --seed 7 --config n-all --nodes 5 --ops 50 --faults pause,crash',
  );
  const plain = parseSimOptions(['--faults', 'none', '--skip-fsync']);
  assert.ok(plain !== 'help');
  assert.equal(
    replayCommand(3, 'n3-quorum', plain),
    'ringkv sim --seed 3 --config n3-quorum --faults none --skip-fsync',
  );
  const control = parseSimOptions(['--keyspace', 'chain', '--chain-accept-older-epochs']);
  assert.ok(control !== 'help');
  assert.equal(
    replayCommand(20, 'chain-n3', control),
    'ringkv sim --seed 20 --config chain-n3 --chain-accept-older-epochs',
  );
});
