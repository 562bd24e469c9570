// Workload mixes: the share of reads is the one YCSB defines for A (50%), B (95%) and C
// (100%), and `puts`/`gets` do only what they say. Keys stay within the key count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  keyName,
  OperationSource,
  READ_FRACTION,
  WORKLOAD_NAMES,
} from '../../src/loadgen/workload.ts';

const SEED = 99;

test('each workload reads with its YCSB share, within 5 standard deviations', () => {
  const draws = 100_000;
  for (const name of WORKLOAD_NAMES) {
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
