// Workloads: which operation comes next and on which key. `puts` and `gets` do one thing;
// YCSB's core workloads A (50% reads, 50% updates), B (95/5) and C (reads only) mix them.
// Every workload that reads starts with a load phase that writes each key once, so reads
// hit. Keys are `key` plus the item index, zero-padded so they sort in index order.

import { assert } from '../core/bytes.ts';
import { Prng } from '../core/prng.ts';
import { keyChooser, type KeyChooser, type KeyDistribution } from './key-chooser.ts';

export const WORKLOAD_NAMES = ['puts', 'gets', 'a', 'b', 'c'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];
export type OperationKind = 'get' | 'put';

/** The share of reads in each workload. */
export const READ_FRACTION: Readonly<Record<WorkloadName, number>> = {
  puts: 0,
  gets: 1,
  a: 0.5,
  b: 0.95,
  c: 1,
};

export interface WorkloadSpec {
  readonly name: WorkloadName;
  readonly keyCount: number;
  readonly distribution: KeyDistribution;
  readonly valueBytes: number;
  readonly seed: number;
}

export function needsLoadPhase(name: WorkloadName): boolean {
  return READ_FRACTION[name] > 0;
}

export function keyName(index: number, keyCount: number): string {
  assert(index >= 0 && index < keyCount, 'key index out of range');
  return `key${String(index).padStart(String(keyCount - 1).length, '0')}`;
}

/** Draws operations of one workload; one per worker so that workers share no state. */
export class OperationSource {
  private readonly prng: Prng;
  private readonly chooser: KeyChooser;
  private readonly readFraction: number;
  private readonly keyCount: number;

  constructor(spec: WorkloadSpec, stream: number) {
    assert(Number.isSafeInteger(spec.keyCount) && spec.keyCount > 0, 'key count must be > 0');
    this.prng = new Prng((spec.seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0);
    this.chooser = keyChooser(spec.distribution, spec.keyCount, this.prng);
    this.readFraction = READ_FRACTION[spec.name];
    this.keyCount = spec.keyCount;
  }

  nextKind(): OperationKind {
    if (this.readFraction === 0) return 'put';
    if (this.readFraction === 1) return 'get';
    return this.prng.next() < this.readFraction ? 'get' : 'put';
  }

  nextKey(): string {
    return keyName(this.chooser.next(), this.keyCount);
  }
}

/**
 * A value of `valueBytes` bytes. Values differ by their first bytes (the counter) so that a
 * store that deduplicates or compresses cannot make the benchmark cheaper than real data.
 */
export function makeValue(valueBytes: number, counter: number): Uint8Array {
  assert(Number.isSafeInteger(valueBytes) && valueBytes >= 0, 'value size must be >= 0');
  const value = new Uint8Array(valueBytes);
  for (let index = 0; index < valueBytes; index++) value[index] = 97 + ((counter + index) % 26);
  return value;
}
