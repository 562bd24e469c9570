// Workload mixes: the share of reads is the one YCSB defines for A (50%), B (95%) and C
// (100%), and `puts`/`gets` do only what they say. Keys stay within the key count. The
// `cas` workload's counters: one key per worker, decimal text that round-trips, and
// anything else refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  counterKeyName,
  encodeCounter,
  keyName,
  needsLoadPhase,
  OperationSource,
  parseCounter,
  READ_FRACTION,
  WORKLOAD_NAMES,
  type MixWorkloadName,
} from '../../src/loadgen/workload.ts';

const SEED = 99;

test('each workload reads with its YCSB share, within 5 standard deviations', () => {
  const draws = 100_000;
  const mixes = WORKLOAD_NAMES.filter((name): name is MixWorkloadName => name !== 'cas');
  for (const name of mixes) {
    const source = new OperationSource(
      { name, keyCount: 50, distribution: 'zipfian', valueBytes: 10, seed: SEED },
      0,
    );
    let reads = 0;
    for (let draw = 0; draw < draws; draw++) if (source.nextKind() === 'get') reads++;
    const share = READ_FRACTION[name];
    const sigma = Math.sqrt(draws * share * (1 - share));
    assert.ok(
      Math.abs(reads - draws * share) <= 5 * sigma,
      `workload ${name}: ${reads} reads of ${draws}, expected share ${share} (seed ${SEED})`,
    );
  }
  assert.deepEqual(READ_FRACTION, { puts: 0, gets: 1, a: 0.5, b: 0.95, c: 1 });
});

test('cas workers own one counter each, start from nothing and draw no mixed operations', () => {
  const keys = Array.from({ length: 1000 }, (_, worker) => counterKeyName(worker));
  assert.equal(new Set(keys).size, 1000);
  assert.ok(keys.every((key) => /^counter\d{5}$/.test(key)));
  assert.equal(needsLoadPhase('cas'), false);
  assert.equal(needsLoadPhase('gets'), true);
  assert.throws(
    () =>
      new OperationSource(
        { name: 'cas', keyCount: 1, distribution: 'uniform', valueBytes: 1, seed: SEED },
        0,
      ),
    /owns one key/,
  );
});

test('a counter round-trips through its text for every signed 64-bit integer, absent is 0', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (counter) => {
      assert.equal(parseCounter(encodeCounter(counter)), counter);
    }),
    { seed: SEED, numRuns: 500 },
  );
  assert.equal(parseCounter(null), 0n);
  const text = new TextEncoder();
  for (const bad of ['', 'x', '1.5', '01', '-', ' 1', '1'.repeat(25)]) {
    assert.throws(() => parseCounter(text.encode(bad)), /not a decimal integer/, `'${bad}'`);
  }
});

test('keys are named within the key count, padded to sort in index order', () => {
  assert.equal(keyName(7, 1000), 'key007');
  assert.equal(keyName(0, 1), 'key0');
  assert.throws(() => keyName(1000, 1000), /out of range/);
  const source = new OperationSource(
    { name: 'a', keyCount: 1000, distribution: 'uniform', valueBytes: 10, seed: SEED },
    3,
  );
  const seen = new Set<string>();
  for (let draw = 0; draw < 20_000; draw++) seen.add(source.nextKey());
  assert.equal(seen.size, 1000);
  assert.ok([...seen].every((key) => /^key\d{3}$/.test(key)));
});

test('workers draw different key sequences from one seed, and the same seed replays them', () => {
  const spec = {
    name: 'c' as const,
    keyCount: 1_000_000,
    distribution: 'uniform' as const,
    valueBytes: 1,
    seed: SEED,
  };
  const draw = (stream: number): string[] => {
    const source = new OperationSource(spec, stream);
    return Array.from({ length: 20 }, () => source.nextKey());
  };
  assert.deepEqual(draw(0), draw(0));
  assert.notDeepEqual(draw(0), draw(1));
});
