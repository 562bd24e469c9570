// Key distributions: the zipfian generator gives the head items the probabilities YCSB's
// generator defines and follows the exact Zipf law's cumulative shape; the uniform one
// fills every item evenly. Seeded: a failure names the seed that replays it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../src/core/prng.ts';
import { UniformChooser, ZipfianChooser, zeta } from '../../src/loadgen/key-chooser.ts';

const SEED = 20240611;

function histogramOf(next: () => number, itemCount: number, draws: number): number[] {
  const counts = new Array<number>(itemCount).fill(0);
  for (let draw = 0; draw < draws; draw++) {
    const item = next();
    assert.ok(Number.isInteger(item) && item >= 0 && item < itemCount, `item ${item} out of range`);
    counts[item]!++;
  }
  return counts;
}

test('zipfian: items 0 and 1 are drawn with probabilities 1/ζ(n) and 0.5^θ/ζ(n)', () => {
  const itemCount = 1000;
  const draws = 200_000;
  const chooser = new ZipfianChooser(itemCount, new Prng(SEED));
  const counts = histogramOf(() => chooser.next(), itemCount, draws);
  for (const [item, probability] of chooser.headProbabilities().entries()) {
    const sigma = Math.sqrt(draws * probability * (1 - probability));
    const expected = draws * probability;
    assert.ok(
      Math.abs(counts[item]! - expected) < 5 * sigma,
      `item ${item}: ${counts[item]} draws, expected ${expected.toFixed(0)} (seed ${SEED})`,
    );
  }
});

test('zipfian: the share of draws among the k hottest items follows ζ(k)/ζ(n) within 0.03', () => {
  const itemCount = 1000;
  const draws = 200_000;
  const chooser = new ZipfianChooser(itemCount, new Prng(SEED + 1));
  const counts = histogramOf(() => chooser.next(), itemCount, draws);
  const zetaN = zeta(itemCount, 0.99);
  let cumulative = 0;
  for (let k = 1; k <= itemCount; k++) {
    cumulative += counts[k - 1]!;
    const expected = zeta(k, 0.99) / zetaN;
    assert.ok(
      Math.abs(cumulative / draws - expected) < 0.03,
      `top ${k}: share ${(cumulative / draws).toFixed(4)}, Zipf says ${expected.toFixed(4)} (seed ${SEED + 1})`,
    );
  }
  // The negative control: a uniform draw is far from that shape at the head.
  assert.ok(counts[0]! / draws > 0.1, 'the hottest item takes over a tenth of the draws');
});

test('zipfian over one or two items stays in range', () => {
  for (const itemCount of [1, 2]) {
    const chooser = new ZipfianChooser(itemCount, new Prng(SEED));
    const counts = histogramOf(() => chooser.next(), itemCount, 1000);
    assert.equal(
      counts.reduce((sum, count) => sum + count, 0),
      1000,
    );
  }
});

test('uniform: every item gets its share of draws within 5 standard deviations', () => {
  const itemCount = 100;
  const draws = 100_000;
  const chooser = new UniformChooser(itemCount, new Prng(SEED));
  const counts = histogramOf(() => chooser.next(), itemCount, draws);
  const expected = draws / itemCount;
  const sigma = Math.sqrt(expected * (1 - 1 / itemCount));
  for (const [item, count] of counts.entries()) {
    assert.ok(Math.abs(count - expected) < 5 * sigma, `item ${item}: ${count} (seed ${SEED})`);
  }
});
