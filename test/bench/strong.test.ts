// The strong benchmark's verdicts, from made-up figures (no cluster is started): medians over
// runs, the ratios against etcd, a target met only when throughput is at least 2x etcd's and
// p99 no higher, lost updates flagged, and an outage called a gap only when the silence after
// the kill is more than twice the steady one before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  median,
  medianCell,
  outageTable,
  throughputTable,
  type Cell,
  type OutageRow,
} from '../../bench/strong.ts';
import type { OutageResult } from '../../src/loadgen/index.ts';

function cell(opsPerSecond: number, p99Ms: number, extra: Partial<Cell> = {}): Cell {
  return {
    opsPerSecond,
    p50Ms: p99Ms / 4,
    p99Ms,
    p999Ms: p99Ms * 2,
    errors: 0,
    retries: 0,
    mismatches: 0,
    ...extra,
  };
}

/** The table row of one workload and target, split into its cells. */
function row(table: string, workload: string, target: string): string[] {
  const line = table.split('\n').find((text) => text.startsWith(`| ${workload} | ${target} |`));
  assert.ok(line !== undefined, `no row for ${workload} ${target} in\n${table}`);
  return line
    .split('|')
    .slice(1, -1)
    .map((text) => text.trim());
}

test('medians are taken per figure over the runs, and errors, retries and lost updates are summed', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /median of nothing/);
  const merged = medianCell([
    cell(100, 10, { errors: 1, retries: 2 }),
    cell(300, 30, { mismatches: 1 }),
    cell(200, 50, { retries: 3 }),
  ]);
  assert.equal(merged.opsPerSecond, 200);
  assert.equal(merged.p99Ms, 30);
  assert.deepEqual([merged.errors, merged.retries, merged.mismatches], [1, 5, 1]);
});

test('a target is met only at 2x etcd throughput or more with a p99 no higher than etcd', () => {
  const cells = new Map<string, Cell[]>([
    ['etcd|puts', [cell(1000, 100), cell(1000, 100), cell(1000, 100)]],
    ['ringkv client (RESP)|puts', [cell(2500, 60), cell(2400, 70), cell(1000, 300)]],
    ['ringkv client|puts', [cell(1500, 80)]],
    ['etcd|gets', [cell(2000, 50)]],
    ['ringkv client (RESP)|gets', [cell(4100, 51)]],
    ['etcd|cas', [cell(500, 200)]],
    ['ringkv client (RESP)|cas', [cell(1500, 100, { retries: 7, mismatches: 2 })]],
  ]);
  const table = throughputTable(cells, ['ringkv client', 'ringkv client (RESP)', 'etcd']);
  const resp = row(table, 'puts', 'ringkv client (RESP)');
  assert.equal(resp[2], '2400', 'the median of the three runs');
  assert.deepEqual(resp.slice(8), ['2.40x', '0.70x', 'met']);
  assert.equal(row(table, 'puts', 'ringkv client')[10], 'missed: throughput');
  assert.equal(row(table, 'gets', 'ringkv client (RESP)')[10], 'missed: p99');
  assert.equal(row(table, 'puts', 'etcd')[10], 'baseline');
  const cas = row(table, 'cas', 'ringkv client (RESP)');
  assert.equal(cas[6], '0 (2 lost updates!)');
  assert.equal(cas[7], '7', 'retries show for cas');
  assert.equal(row(table, 'puts', 'ringkv client (RESP)')[7], '', 'and only for cas');
  assert.ok(!table.includes('| gets | ringkv client |'), 'a target without figures has no row');
});

function outage(
  afterMs: number,
  beforeMs: number,
  cutSecondMs: number,
  steadySecondsMs: number[],
): OutageResult {
  return {
    longestSilenceMs: afterMs,
    silenceStartMs: 4_000,
    cutSecondSilenceMs: cutSecondMs,
    steadySecondSilencesMs: steadySecondsMs,
    steadySilenceMs: beforeMs,
    steadyWindowMs: 10_000,
    opsPerSecondBefore: 1000,
    opsPerSecondAfter: 900,
    failuresAfter: 3,
    errors: {},
    errorExamples: {},
  };
}

test('the kill is a gap only when the second after it is silent longer than the worst steady second; the 10 s windows over twice the steady one', () => {
  const rows: OutageRow[] = [
    {
      system: 'quiet',
      cut: ['n1', 'n2', 'n3'],
      runs: [
        outage(40, 50, 12, [5, 8, 30]),
        outage(130, 60, 25, [6, 9, 20]),
        outage(120, 70, 9, [4, 7, 40]),
      ],
    },
    {
      system: 'paused',
      cut: ['leader', 'leader', 'leader'],
      runs: [
        outage(2100, 40, 1000, [5, 10, 40]),
        outage(1500, 60, 1000, [5, 12, 60]),
        outage(1800, 50, 1000, [5, 11, 50]),
      ],
    },
  ];
  const table = outageTable(rows);
  const [quiet, paused] = ['quiet', 'paused'].map((name) =>
    table
      .split('\n')
      .find((line) => line.startsWith(`| ${name} |`))!
      .split('|')
      .map((text) => text.trim()),
  );
  assert.equal(quiet![2], 'n1, n2, n3');
  assert.equal(quiet![3], '12.0 (12.0, 25.0, 9.00)');
  assert.equal(quiet![4], '8.00 / 30.0', "median of the runs' median seconds, and of their worst");
  assert.equal(quiet![5], 'none', '12 ms is within the worst steady second (30 ms)');
  assert.equal(quiet![6], '120 (40.0 at +4000, 130 at +4000, 120 at +4000)');
  assert.equal(quiet![8], '1000 / 900');
  assert.equal(quiet![10], 'none', 'twice the steady 60 ms is still noise');
  assert.equal(paused![5], '950 ms more');
  assert.equal(paused![6]!.split(' ')[0], '1800');
  assert.equal(paused![10], '1750 ms more');
  assert.equal(paused![9], '3, 3, 3');
});
