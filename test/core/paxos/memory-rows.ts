// Acceptor rows in memory for register host tests: batches are numbered as the node's
// storage numbers them, and become durable only when the test says so (persistAll).

import { bytesToKeyString, keyStringToBytes } from '../../../src/core/bytes.ts';
import type { RowStore } from '../../../src/core/paxos/register-host.ts';
import type { StorageWrite } from '../../../src/storage/contract.ts';

export class MemoryRows implements RowStore {
  readonly rows = new Map<string, Uint8Array>();
  lastBatchId = 0;
  lastPersistedBatchId = 0;
  readRow(key: Uint8Array): Uint8Array | undefined {
    return this.rows.get(bytesToKeyString(key));
  }
  scanRows(start: Uint8Array, end: Uint8Array): StorageWrite[] {
    const low = bytesToKeyString(start);
    const high = bytesToKeyString(end);
    return [...this.rows.keys()]
      .filter((key) => key >= low && key < high)
      .sort()
      .map((key) => ({ key: keyStringToBytes(key), value: this.rows.get(key)! }));
  }
  persistRows(writes: StorageWrite[]): number {
    for (const write of writes) {
      if (write.value === null) this.rows.delete(bytesToKeyString(write.key));
      else this.rows.set(bytesToKeyString(write.key), write.value);
    }
    return ++this.lastBatchId;
  }
  persistAll(): void {
    this.lastPersistedBatchId = this.lastBatchId;
  }
}
