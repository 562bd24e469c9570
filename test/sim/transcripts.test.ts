// Transcript tests: every script in test/sim/transcripts/*.txt runs against a simulated
// cluster and its output must match the recording beside it (NAME.out); a difference is
// shown as a line diff. `UPDATE_TRANSCRIPTS=1 npx node --test test/sim/transcripts.test.ts`
// rewrites the recordings. An expectation that fails fails the test even when the output
// was recorded that way: recording never launders a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTranscript, runTranscript, TranscriptSyntaxError } from '../../src/sim/transcript.ts';

const DIRECTORY = fileURLToPath(new URL('./transcripts/', import.meta.url));
const UPDATE = process.env.UPDATE_TRANSCRIPTS === '1';
const CONTEXT_LINES = 2;

const scripts = readdirSync(DIRECTORY)
  .filter((name) => name.endsWith('.txt'))
  .sort();

test('the transcript folder holds scripts', () => {
  assert.ok(scripts.length >= 4, `found ${scripts.join(', ')}`);
});

for (const name of scripts) {
  const base = name.slice(0, -'.txt'.length);
  test(`transcript ${base}: every expectation holds and the output is as recorded`, () => {
    const scriptPath = join(DIRECTORY, name);
    const recordPath = join(DIRECTORY, `${base}.out`);
    const result = runTranscript(readFileSync(scriptPath, 'utf8'));
    if (UPDATE) writeFileSync(recordPath, result.output);
    assert.equal(result.failure, null, `${name} ${result.failure}\n\n${result.output}`);
    assert.ok(
      existsSync(recordPath),
      `${base}.out is missing: record it with UPDATE_TRANSCRIPTS=1 npx node --test ${'test/sim/transcripts.test.ts'}`,
    );
    const recorded = readFileSync(recordPath, 'utf8');
    if (recorded !== result.output) {
      // Protocol timing or the simulator's draws move every virtual time; say when that is
      // all that moved, so the reviewer knows no result changed.
      const timesOnly = withoutTimes(recorded) === withoutTimes(result.output);
      assert.fail(
        `${name} differs from ${base}.out (- recorded, + now)` +
          (timesOnly ? ', in virtual times only' : '') +
          `; if the change is intended, rerun with UPDATE_TRANSCRIPTS=1 and review the diff\n` +
          lineDiff(recorded, result.output),
      );
    }
  });
}

test('a bad script line is an error naming its line number and the form expected', () => {
  const cases: readonly [script: string, line: number, mentions: string][] = [
    ['seed 1\nnodes 3\nfrobnicate 2\n', 3, 'unknown command "frobnicate"'],
    ['seed 1\nnodes 3\n\n# a comment\npause 2 500\n', 5, 'pause NODE DURATION'],
    ['seed 1\nnodes 3\ncrash 4\n', 3, 'nodes are numbered 1 to 3'],
    ['seed 1\ncrash 1\n', 2, 'no cluster yet'],
    ['nodes 3\n', 1, 'seed NUMBER'],
    ['seed 1\nnodes 3\nexpect get a via 2\n', 3, '= VALUE'],
    ['seed 1\nnodes 3\npartition 1,2\n', 3, 'at least two groups'],
    ['seed 1\nnodes 3\nput a "open\n', 3, 'not closed'],
    ['seed 1\nnodes 3 w=4\n', 2, 'from 1 to 3'],
    ['seed 1\nnodes 3\nget a r=most\n', 3, 'get KEY [via NODE] [r=QUORUM]'],
  ];
  for (const [script, line, mentions] of cases) {
    assert.throws(
      () => parseTranscript(script),
      (error: unknown) =>
        error instanceof TranscriptSyntaxError &&
        error.lineNumber === line &&
        error.message.startsWith(`line ${line}: `) &&
        error.message.includes(mentions),
      `${JSON.stringify(script)} should fail on line ${line} mentioning ${mentions}`,
    );
  }
});

test('a script parses into commands with 1-based nodes, durations in ms and quorums', () => {
  const lines = parseTranscript(
    [
      'seed 9',
      'nodes 4 n=3 w=all',
      'partition 1, 2 | 3,4  # a comment after a command',
      'pause 2 1.5s',
      'put "a key" "a value" via 3 w=all',
      'expect get "a key" via 2 r=1 = nil',
      'expect hints > 0 for 2',
    ].join('\n'),
  );
  assert.deepEqual(
    lines.map((line) => line.action),
    [
      { kind: 'seed', seed: 9 },
      {
        kind: 'nodes',
        count: 4,
        n: 3,
        r: 2,
        w: 3,
        conflicts: 'lww',
        hintedHandoff: true,
        readRepair: true,
        antiEntropy: true,
      },
      {
        kind: 'partition',
        groups: [
          [1, 2],
          [3, 4],
        ],
      },
      { kind: 'pause', node: 2, durationMs: 1_500 },
      { kind: 'put', key: 'a key', value: 'a value', via: 3, w: 'all' },
      { kind: 'expect-get', key: 'a key', via: 2, r: 1, value: null },
      { kind: 'expect-hints', comparison: '>', count: 0, on: undefined, owner: 2 },
    ],
  );
});

test('an expectation that does not hold stops the run and says what was found', () => {
  const result = runTranscript(
    ['seed 5', 'nodes 3', 'put a one', 'expect get a = two', 'put a three'].join('\n'),
  );
  assert.equal(result.failure, 'line 4: expect get a = two: wanted "two", got "one"');
  assert.match(result.output, /expect get a = two -> FAILED: wanted "two", got "one"\n/);
  assert.ok(!result.output.includes('put a three'), 'nothing after the failure runs');
});

test('stabilize with a crashed node fails at once and names the node', () => {
  const result = runTranscript(['seed 6', 'nodes 3', 'crash 3', 'stabilize'].join('\n'));
  assert.equal(result.failure, 'line 4: stabilize: cannot settle while n3 crashed');
});

test('a wait that times out fails and says what each node still sees', () => {
  const result = runTranscript(['seed 7', 'nodes 3', 'wait down 2 within 1s'].join('\n'));
  assert.equal(
    result.failure,
    'line 3: wait down 2 within 1s: after 1.000s: n1 sees n2 alive, n3 sees n2 alive',
  );
});

test('every command runs, and the same script gives the same output every run', () => {
  const script = [
    'seed 8',
    'nodes 4 conflicts=siblings',
    'crash 2',
    'put k v via 3',
    'del k via 1',
    'get k',
    'put "a key" "two words" w=all',
    'loss 0.1',
    'isolate 4',
    'cut 1>3',
    'skew 3 -2s',
    'pause 1 100ms',
    'tick 2s',
    'status',
    'heal',
    'restart 2',
    'stabilize',
    'expect get "a key" r=all = "two words"',
  ].join('\n');
  const first = runTranscript(script);
  assert.equal(first.failure, null, first.output);
  assert.match(first.output, /\] del k via 1 -> ok\n.*\] get k -> nil\n/);
  assert.match(first.output, /put "a key" "two words" w=all -> RINGKV_UNAVAILABLE\n/);
  assert.match(first.output, /\n {11}n4: sees n1 down, n2 down, n3 down; hints 0\n/);
  assert.equal(runTranscript(script).output, first.output);
});

/** A recording with its virtual times (`1.234s`) blanked. */
function withoutTimes(output: string): string {
  return output.replace(/\d+\.\d{3}s/g, 'T');
}

/**
 * A line diff of `before` and `after` (longest common subsequence), changed lines with
 * `CONTEXT_LINES` of context around them, each hunk headed by its line numbers.
 */
function lineDiff(before: string, after: string): string {
  const a = before.split('\n');
  const b = after.split('\n');
  // common[i][j]: the length of the longest common subsequence of a[i..] and b[j..].
  const common = Array.from({ length: a.length + 1 }, () =>
    new Array<number>(b.length + 1).fill(0),
  );
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i]![j] =
        a[i] === b[j]
          ? common[i + 1]![j + 1]! + 1
          : Math.max(common[i + 1]![j]!, common[i]![j + 1]!);
    }
  }
  const rows: { mark: ' ' | '-' | '+'; text: string; lineA: number; lineB: number }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      rows.push({ mark: ' ', text: a[i]!, lineA: i++, lineB: j++ });
    } else if (i < a.length && (j === b.length || common[i + 1]![j]! >= common[i]![j + 1]!)) {
      rows.push({ mark: '-', text: a[i]!, lineA: i++, lineB: j });
    } else {
      rows.push({ mark: '+', text: b[j]!, lineA: i, lineB: j++ });
    }
  }
  const shown = rows.map((_, index) =>
    rows
      .slice(Math.max(0, index - CONTEXT_LINES), index + CONTEXT_LINES + 1)
      .some((near) => near.mark !== ' '),
  );
  const out: string[] = [];
  rows.forEach((row, index) => {
    if (!shown[index]) return;
    if (index === 0 || !shown[index - 1])
      out.push(`@@ recorded line ${row.lineA + 1}, now line ${row.lineB + 1}`);
    out.push(`${row.mark} ${row.text}`);
  });
  return out.join('\n');
}
