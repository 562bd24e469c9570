// Workloads: which operation comes next and on which key. `puts` and `gets` do one thing;
// YCSB's core workloads A (50% reads, 50% updates), B (95/5) and C (reads only) mix them.
// Every workload that reads starts with a load phase that writes each key once, so reads
// hit. Keys are `key` plus the item index, zero-padded so they sort in index order.
// `cas` is a read-modify-write loop instead: each worker owns one counter key, reads it with
// its version, and writes the number plus one on condition of that version (the runner
// drives it; see run-load.ts). Counters are decimal text; a key never written counts as 0.

import { assert } from '../core/bytes.ts';
import { Prng } from '../core/prng.ts';
import { keyChooser, type KeyChooser, type KeyDistribution } from './key-chooser.ts';

export const WORKLOAD_NAMES = ['puts', 'gets', 'a', 'b', 'c', 'cas'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];
/** The workloads made of gets and puts over the whole key space. */
export type MixWorkloadName = Exclude<WorkloadName, 'cas'>;
/** A `cas` operation is one whole loop: read, then compare-and-set until one applies. */
export type OperationKind = 'get' | 'put' | 'cas';

/** Most compare-and-sets one `cas` loop tries before it gives up (a bound on a loop). */
export const CAS_ATTEMPTS_MAX = 100;
/** Longest counter text a `cas` loop accepts: a signed 64-bit integer. */
const COUNTER_DIGITS_MAX = 19;

/** The share of reads in each workload of gets and puts. */
export const READ_FRACTION: Readonly<Record<MixWorkloadName, number>> = {
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
  // A counter starts absent (0), so `cas` needs nothing written first.
  return name !== 'cas' && READ_FRACTION[name] > 0;
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
    assert(spec.name !== 'cas', 'a cas loop draws no operations: its worker owns one key');
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

/** The counter key a `cas` worker owns: one per worker, so workers do not contend. */
export function counterKeyName(worker: number): string {
  assert(Number.isSafeInteger(worker) && worker >= 0, 'a worker index is a natural number');
  return `counter${String(worker).padStart(5, '0')}`;
}

const counterDecoder = new TextDecoder();
const counterEncoder = new TextEncoder();

/** A counter's number from its stored text; an absent key is 0. Throws on anything else. */
export function parseCounter(value: Uint8Array | null): bigint {
  if (value === null) return 0n;
  const text = counterDecoder.decode(value);
  if (!(text.length <= COUNTER_DIGITS_MAX + 1 && /^-?(0|[1-9][0-9]*)$/.test(text))) {
    throw new Error(`a counter holds '${text.slice(0, 40)}', not a decimal integer`);
  }
  return BigInt(text);
}

export function encodeCounter(counter: bigint): Uint8Array {
  const bytes = counterEncoder.encode(counter.toString());
  assert(bytes.length <= COUNTER_DIGITS_MAX + 1, 'a counter fits a signed 64-bit integer');
  return bytes;
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
