// The gossip queue: updates waiting to be piggybacked on outgoing messages. One entry per
// member (a newer update about a member replaces the older one), so the queue never holds
// more entries than there are members. Each message takes the entries sent the fewest
// times, so fresh news goes first; an entry leaves after its retransmit limit.

import { assert } from '../bytes.ts';
import { MEMBER_COUNT_MAX } from './config.ts';
import type { SwimUpdate } from './messages.ts';

interface QueuedUpdate {
  readonly update: SwimUpdate;
  transmissions: number;
}

export class UpdateQueue {
  private readonly entries = new Map<string, QueuedUpdate>();

  get size(): number {
    return this.entries.size;
  }

  /** Queues `update` with a fresh count, replacing any older update about the same member. */
  enqueue(update: SwimUpdate): void {
    // Delete first so the replacement goes to the back of the insertion order.
    this.entries.delete(update.id);
    this.entries.set(update.id, { update, transmissions: 0 });
    assert(this.entries.size <= MEMBER_COUNT_MAX, 'one queued update per member');
  }

  remove(id: string): void {
    this.entries.delete(id);
  }

  /**
   * Up to `count` updates for one message, least-sent first (ties: oldest first), skipping
   * updates about `excludedId`. Each taken update counts one transmission; those that reach
   * `limit` leave the queue.
   */
  take(count: number, limit: number, excludedId: string): SwimUpdate[] {
    assert(limit >= 1, 'an update is sent at least once');
    if (count <= 0 || this.entries.size === 0) return [];
    const candidates: QueuedUpdate[] = [];
    for (const entry of this.entries.values()) {
      if (entry.update.id !== excludedId) candidates.push(entry);
    }
    // Array.prototype.sort is stable, so equal counts keep insertion order.
    candidates.sort((a, b) => a.transmissions - b.transmissions);
    const taken: SwimUpdate[] = [];
    for (const entry of candidates) {
      if (taken.length >= count) break;
      taken.push(entry.update);
      entry.transmissions += 1;
      if (entry.transmissions >= limit) this.entries.delete(entry.update.id);
    }
    assert(taken.length <= count, 'at most count updates per message');
    return taken;
  }
}
