// A map keyed by integer ids that are handed out in ascending order and mostly retired in
// about that order: the reply callbacks of requests still open after their step.
//
// Why not a Map. Under a durable write load every request stays open until its group
// commit, so a Map took a set, a lookup and a delete per request, each a hash probe, and its
// table churned (docs/ARCHITECTURE.md says why that costs the collector: "Long-lived
// objects keep short-lived entries out of plain Maps"). Here
// values sit in an array indexed by id minus the id of its first place: setting appends, a
// lookup indexes. Ids that never get a value (requests answered within their step) leave
// holes, which cost a place each until the window's start passes them.
//
// A value that stays long (a request waiting on peers) would hold the window's start while
// the ids behind it pile up: once the window spans more than `windowMax` ids, its oldest
// values move to a plain Map, so the array never grows past that. A value set for an id
// below the window's start (a request submitted from within another's step is set first)
// goes to that Map too. Values must not be undefined: undefined marks an empty place.

/** Ids the window spans before its oldest values move to the overflow map. */
const WINDOW_MAX = 1 << 16;

export class AscendingIdMap<V> {
  /** The id of `places[0]`. */
  private firstId = 0;
  private places: (V | undefined)[] = [];
  /** Places below this one are behind the window's start (empty). */
  private head = 0;
  /** Values moved out of the window, all with ids below the window's start. */
  private readonly overflow = new Map<number, V>();
  /** The largest id the overflow map holds (-1: none). */
  private overflowIdMax = -1;
  private live = 0;
  private readonly windowMax: number;

  /** `windowMax`: tests make it small. */
  constructor(windowMax = WINDOW_MAX) {
    this.windowMax = windowMax;
  }

  /** Values held. */
  get size(): number {
    return this.live;
  }

  /** Places the window spans (for tests). */
  get span(): number {
    return this.places.length - this.head;
  }

  get(id: number): V | undefined {
    const index = id - this.firstId;
    if (index >= this.head && index < this.places.length) return this.places[index];
    return this.overflow.size === 0 ? undefined : this.overflow.get(id);
  }

  /** Sets the value of `id`, which must hold none (ids are handed out once). */
  set(id: number, value: V): void {
    if (this.head === this.places.length && id > this.overflowIdMax) {
      // Empty: the window starts afresh here, still above every id of the overflow map.
      this.places.length = 0;
      this.head = 0;
      this.firstId = id;
    }
    const index = id - this.firstId;
    if (index < this.head) {
      if (this.overflow.has(id)) throw new Error(`id ${id} already has a value`);
      this.toOverflow(id, value);
      this.live++;
      return;
    }
    while (this.places.length < index) this.places.push(undefined);
    if (this.places[index] !== undefined) throw new Error(`id ${id} already has a value`);
    this.places[index] = value;
    this.live++;
    if (this.places.length - this.head > this.windowMax) this.spill();
  }

  /** Removes the value of `id` and answers it (undefined: there was none). */
  take(id: number): V | undefined {
    const index = id - this.firstId;
    if (index >= this.head && index < this.places.length) {
      const value = this.places[index];
      if (value === undefined) return undefined;
      this.places[index] = undefined;
      this.live--;
      if (index === this.head) this.advance();
      return value;
    }
    const value = this.overflow.get(id);
    if (value === undefined) return undefined;
    this.overflow.delete(id);
    if (this.overflow.size === 0) this.overflowIdMax = -1;
    this.live--;
    return value;
  }

  /** Every value, by id (for a failure's replies: not a hot path). */
  values(): V[] {
    const entries = [...this.overflow.entries()];
    for (let index = this.head; index < this.places.length; index++) {
      const value = this.places[index];
      if (value !== undefined) entries.push([this.firstId + index, value]);
    }
    return entries.sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
  }

  clear(): void {
    this.places = [];
    this.head = 0;
    this.overflow.clear();
    this.overflowIdMax = -1;
    this.live = 0;
  }

  private toOverflow(id: number, value: V): void {
    this.overflow.set(id, value);
    this.overflowIdMax = Math.max(this.overflowIdMax, id);
  }

  /** Moves the window's start past empty places, and drops or compacts what is behind it. */
  private advance(): void {
    const places = this.places;
    while (this.head < places.length && places[this.head] === undefined) this.head++;
    // Either way the window's start (firstId + head) stays where it is: the overflow map
    // holds ids below it, which the window must never cover.
    if (this.head === places.length) {
      places.length = 0;
      this.firstId += this.head;
      this.head = 0;
    } else if (this.head >= 1024 && 2 * this.head >= places.length) {
      this.places = places.slice(this.head);
      this.firstId += this.head;
      this.head = 0;
    }
  }

  /** Moves the oldest values to the overflow map until the window spans half its bound. */
  private spill(): void {
    const places = this.places;
    while (places.length - this.head > this.windowMax / 2) {
      const value = places[this.head];
      if (value !== undefined) {
        this.toOverflow(this.firstId + this.head, value);
        places[this.head] = undefined;
      }
      this.head++;
    }
    this.advance();
  }
}
