// Which key an operation touches: uniform over the key count, or zipfian as in YCSB
// (Gray et al., "Quickly generating billion-record synthetic databases", SIGMOD 1994, the
// generator YCSB's ZipfianGenerator implements): item i is drawn with probability close to
// (1 / (i + 1)^θ) / ζ(n, θ), θ = 0.99, so item 0 is the hottest. Every draw comes from the
// seeded Prng handed in, so a run's key sequence is replayable from its seed.

import { assert } from '../core/bytes.ts';
import type { Prng } from '../core/prng.ts';

export type KeyDistribution = 'uniform' | 'zipfian';

/** YCSB's default skew. */
export const ZIPFIAN_CONSTANT = 0.99;

export interface KeyChooser {
  /** An item index in [0, itemCount). */
  next(): number;
}

/** ζ(n, θ) = Σ_{i=1..n} 1 / i^θ. */
export function zeta(itemCount: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= itemCount; i++) sum += 1 / Math.pow(i, theta);
  return sum;
}

export class UniformChooser implements KeyChooser {
  private readonly prng: Prng;
  private readonly itemCount: number;

  constructor(itemCount: number, prng: Prng) {
    assert(Number.isSafeInteger(itemCount) && itemCount > 0, 'item count must be positive');
    this.itemCount = itemCount;
    this.prng = prng;
  }

  next(): number {
    return this.prng.below(this.itemCount);
  }
}

export class ZipfianChooser implements KeyChooser {
  private readonly prng: Prng;
  private readonly itemCount: number;
  private readonly theta: number;
  private readonly alpha: number;
  private readonly zetaN: number;
  private readonly eta: number;
  private readonly secondItemThreshold: number;

  constructor(itemCount: number, prng: Prng, theta = ZIPFIAN_CONSTANT) {
    assert(Number.isSafeInteger(itemCount) && itemCount > 0, 'item count must be positive');
    assert(theta > 0 && theta < 1, 'the zipfian constant must be in (0, 1)');
    this.itemCount = itemCount;
    this.prng = prng;
    this.theta = theta;
    this.alpha = 1 / (1 - theta);
    this.zetaN = zeta(itemCount, theta);
    const zeta2 = zeta(Math.min(2, itemCount), theta);
    this.eta = (1 - Math.pow(2 / itemCount, 1 - theta)) / (1 - zeta2 / this.zetaN);
    this.secondItemThreshold = 1 + Math.pow(0.5, theta);
  }

  /** The exact probability the generator gives item 0 (and item 1): 1/ζ and 0.5^θ/ζ. */
  headProbabilities(): readonly [number, number] {
    return [1 / this.zetaN, Math.pow(0.5, this.theta) / this.zetaN];
  }

  next(): number {
    const u = this.prng.next();
    const uz = u * this.zetaN;
    if (uz < 1) return 0;
    if (uz < this.secondItemThreshold) return Math.min(1, this.itemCount - 1);
    const item = Math.floor(this.itemCount * Math.pow(this.eta * u - this.eta + 1, this.alpha));
    // Rounding can land on itemCount itself when u is within an ulp of 1.
    return Math.min(item, this.itemCount - 1);
  }
}

export function keyChooser(
  distribution: KeyDistribution,
  itemCount: number,
  prng: Prng,
): KeyChooser {
  return distribution === 'uniform'
    ? new UniformChooser(itemCount, prng)
    : new ZipfianChooser(itemCount, prng);
}
