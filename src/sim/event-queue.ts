// The simulator's agenda: events ordered by virtual time, ties broken by insertion order, so
// that the run is a pure function of the seed. A binary heap keeps push and pop O(log n).
//
// The heap lives in three parallel arrays (times, sequence numbers, payloads) rather than an
// array of entry objects, and sifts move a hole instead of swapping: every simulated event
// passes through here (millions in a large run), and this halves the cost of a push and a
// pop next to a heap of objects.

import { assert } from '../core/bytes.ts';

export interface ScheduledEvent<T> {
  readonly atMs: number;
  readonly sequence: number;
  readonly payload: T;
}

export class EventQueue<T> {
  private readonly times: number[] = [];
  private readonly sequences: number[] = [];
  private readonly payloads: T[] = [];
  private nextSequence = 0;

  get size(): number {
    return this.times.length;
  }

  /** The time of the next event, if any. */
  peekTime(): number | undefined {
    return this.times[0];
  }

  push(atMs: number, payload: T): void {
    assert(!Number.isNaN(atMs), 'an event has a time');
    const { times, sequences, payloads } = this;
    const sequence = this.nextSequence++;
    let index = times.length;
    times.push(atMs);
    sequences.push(sequence);
    payloads.push(payload);
    // Move the hole up past every parent that comes later than the new event.
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const parentMs = times[parent]!;
      if (parentMs < atMs || (parentMs === atMs && sequences[parent]! < sequence)) break;
      times[index] = parentMs;
      sequences[index] = sequences[parent]!;
      payloads[index] = payloads[parent]!;
      index = parent;
    }
    times[index] = atMs;
    sequences[index] = sequence;
    payloads[index] = payload;
  }

  pop(): ScheduledEvent<T> | undefined {
    const { times, sequences, payloads } = this;
    if (times.length === 0) return undefined;
    const top: ScheduledEvent<T> = {
      atMs: times[0]!,
      sequence: sequences[0]!,
      payload: payloads[0]!,
    };
    const lastMs = times.pop()!;
    const lastSequence = sequences.pop()!;
    const lastPayload = payloads.pop()!;
    const size = times.length;
    if (size === 0) return top;
    // The last entry fills the hole at the root and moves down past every earlier child.
    let index = 0;
    for (;;) {
      let child = index * 2 + 1;
      if (child >= size) break;
      const right = child + 1;
      if (
        right < size &&
        (times[right]! < times[child]! ||
          (times[right] === times[child] && sequences[right]! < sequences[child]!))
      ) {
        child = right;
      }
      const childMs = times[child]!;
      if (lastMs < childMs || (lastMs === childMs && lastSequence < sequences[child]!)) break;
      times[index] = childMs;
      sequences[index] = sequences[child]!;
      payloads[index] = payloads[child]!;
      index = child;
    }
    times[index] = lastMs;
    sequences[index] = lastSequence;
    payloads[index] = lastPayload;
    assert(top.atMs <= times[0]!, 'the earliest event leaves first');
    return top;
  }
}
