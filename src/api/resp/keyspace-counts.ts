// The key counts INFO's keyspace section shows. Counting is O(keys) and, in a cluster, asks
// every node; clients ask INFO often (ioredis on every connect, as its ready check), so the
// counts are shared: at most one count runs at a time, every INFO that arrives meanwhile gets
// its result, and a result serves for COUNTS_MAX_AGE_MS.

import type { ClientReply, ClientRequest } from '../../core/requests.ts';
import type { NodeApi } from '../../runtime/node-api.ts';

/** How old the counts INFO shows may be. */
export const COUNTS_MAX_AGE_MS = 5_000;

export class KeyspaceCounts {
  private lines: readonly string[] | null = null;
  private countedAtMs = 0;
  private waiting: ((lines: readonly string[]) => void)[] | null = null;

  /** The `dbN:keys=...` lines, one per non-empty keyspace, now or once counted. */
  get(
    node: NodeApi,
    call: (request: ClientRequest, onReply: (reply: ClientReply) => void) => void,
    deliver: (lines: readonly string[]) => void,
  ): void {
    if (this.lines !== null && Date.now() - this.countedAtMs < COUNTS_MAX_AGE_MS) {
      return deliver(this.lines);
    }
    if (this.waiting !== null) {
      this.waiting.push(deliver);
      return;
    }
    this.waiting = [deliver];
    const keyspaces = node.keyspaces();
    const lines: string[] = [];
    const countNext = (index: number): void => {
      const keyspace = keyspaces[index];
      if (keyspace === undefined) {
        this.lines = lines;
        this.countedAtMs = Date.now();
        const waiting = this.waiting ?? [];
        this.waiting = null;
        for (const waiter of waiting) waiter(lines);
        return;
      }
      call({ op: 'count', keyspace: keyspace.name }, (reply) => {
        // Empty keyspaces are left out, as Redis does; a failed count shows as none.
        if (reply.ok && reply.op === 'count' && reply.count > 0) {
          lines.push(`db${index}:keys=${reply.count},expires=0,avg_ttl=0`);
        }
        countNext(index + 1);
      });
    };
    countNext(0);
  }
}
