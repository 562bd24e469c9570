// The simulator's agenda: events ordered by virtual time, ties broken by insertion order, so
// that the run is a pure function of the seed. A binary heap keeps push and pop O(log n).

export interface ScheduledEvent<T> {
  readonly atMs: number;
  readonly sequence: number;
  readonly payload: T;
}

export class EventQueue<T> {
  private readonly heap: ScheduledEvent<T>[] = [];
  private nextSequence = 0;

  get size(): number {
    return this.heap.length;
  }

  /** The time of the next event, if any. */
  peekTime(): number | undefined {
    return this.heap[0]?.atMs;
  }

  push(atMs: number, payload: T): void {
    this.heap.push({ atMs, sequence: this.nextSequence++, payload });
    let index = this.heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(index, parent)) break;
      this.swap(index, parent);
      index = parent;
    }
  }

  pop(): ScheduledEvent<T> | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined || this.heap.length === 0) return top;
    this.heap[0] = last;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < this.heap.length && this.before(left, smallest)) smallest = left;
      if (right < this.heap.length && this.before(right, smallest)) smallest = right;
      if (smallest === index) break;
      this.swap(index, smallest);
      index = smallest;
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.atMs !== y.atMs ? x.atMs < y.atMs : x.sequence < y.sequence;
  }

  private swap(a: number, b: number): void {
    const held = this.heap[a]!;
    this.heap[a] = this.heap[b]!;
    this.heap[b] = held;
  }
}
