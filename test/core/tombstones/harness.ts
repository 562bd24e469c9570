// A few members' purgers over in-memory stores, wired by a loopback that may lose messages:
// the pure purge protocol without a node, a network or a clock other than `nowMs`.
import { bytesToKeyString, keyStringToBytes, utf8 } from '../../../src/core/bytes.ts';
import { DEFAULT_KEYSPACE, type Keyspace } from '../../../src/core/keyspace.ts';
import { recordsEqual } from '../../../src/core/kv/merge-records.ts';
import type { StoredRecord } from '../../../src/core/store/record.ts';
import {
  TombstonePurger,
  type PurgeGate,
  type TombstoneSend,
  type TombstoneSettings,
  type TombstoneStore,
} from '../../../src/core/tombstones/tombstone-purger.ts';

export const KEYSPACE: Keyspace = DEFAULT_KEYSPACE;
export const DELETED_AT_MS = 1_000_000;

/** A tombstone written by `node` at `atMs`, with the value version it deleted in its context. */
export function tombstone(node = 'a', counter = 2, atMs = DELETED_AT_MS): StoredRecord {
  return {
    context: [[node, counter]],
    siblings: [{ dot: { node, counter }, timestamp: [atMs, 0], value: null, expiresAtMs: 0 }],
  };
}

/** The value version a tombstone from `tombstone(node, counter)` covers. */
export function oldValue(node = 'a', counter = 1): StoredRecord {
  return {
    context: [[node, counter]],
    siblings: [
      {
        dot: { node, counter },
        timestamp: [DELETED_AT_MS - 10, 0],
        value: utf8('old'),
        expiresAtMs: 0,
      },
    ],
  };
}

export class MemoryTombstoneStore implements TombstoneStore {
  readonly rows = new Map<string, StoredRecord>();
  readonly hints = new Set<string>();
  purges = 0;

  set(key: string, record: StoredRecord | undefined): void {
    if (record === undefined) this.rows.delete(bytesToKeyString(utf8(key)));
    else this.rows.set(bytesToKeyString(utf8(key)), record);
  }

  get(key: string): StoredRecord | undefined {
    return this.rows.get(bytesToKeyString(utf8(key)));
  }

  partitionRecordsAfter(
    _keyspaceId: number,
    _partition: number,
    afterKey: Uint8Array | null,
    limit: number,
  ): {
    records: { key: Uint8Array; record: StoredRecord }[];
    more: boolean;
    lastKey: Uint8Array | null;
  } {
    const after = afterKey === null ? null : bytesToKeyString(afterKey);
    const keys = [...this.rows.keys()].sort().filter((key) => after === null || key > after);
    const page = keys.slice(0, limit);
    return {
      records: page.map((key) => ({ key: keyStringToBytes(key), record: this.rows.get(key)! })),
      more: keys.length > limit,
      lastKey: page.length === 0 ? null : keyStringToBytes(page[page.length - 1]!),
    };
  }

  holdsHintFor(_owners: readonly string[], _keyspaceId: number, key: Uint8Array): boolean {
    return this.hints.has(bytesToKeyString(key));
  }

  readRecord(_keyspace: Keyspace, key: Uint8Array) {
    return { ok: true as const, value: this.rows.get(bytesToKeyString(key)), waitFor: 0 };
  }

  purgeIfEqual(_keyspaceId: number, key: Uint8Array, expected: StoredRecord): boolean {
    const id = bytesToKeyString(key);
    const current = this.rows.get(id);
    if (current === undefined || !recordsEqual(current, expected)) return false;
    this.rows.delete(id);
    this.purges++;
    return true;
  }
}

export interface Member {
  readonly id: string;
  readonly store: MemoryTombstoneStore;
  readonly purger: TombstonePurger;
}

/** Members `ids`; the first is the partitions' first replica, and runs the rounds. */
export class PurgeCluster {
  readonly members: Member[];
  nowMs = DELETED_AT_MS;
  /** Whether a message is delivered (default: all). */
  deliver: (send: TombstoneSend, from: string) => boolean = () => true;
  refusal: ReturnType<PurgeGate['refusal']> = null;
  /** The place of the ticking member among the partition's replicas (0: the first). */
  position = 0;
  /** Called before a purge message reaches its member (to race a write against it). */
  beforePurge: (to: Member) => void = () => {};

  constructor(ids: readonly string[], settings: Partial<TombstoneSettings> = {}) {
    this.members = ids.map((id, index) => {
      const store = new MemoryTombstoneStore();
      return {
        id,
        store,
        purger: new TombstonePurger(id, store, index + 1, this.nowMs, {
          graceMs: 10_000,
          passIntervalMs: 1_000,
          retryIntervalMs: 500,
          ...settings,
        }),
      };
    });
  }

  member(id: string): Member {
    return this.members.find((member) => member.id === id)!;
  }

  /** Ticks member `id` once at `nowMs` and carries every message to the end. */
  tick(id: string, nowMs: number): void {
    this.nowMs = nowMs;
    const ids = this.members.map((member) => member.id);
    const sends = this.member(id).purger.tick(
      nowMs,
      () => [{ keyspace: KEYSPACE, partition: 0, position: this.position }],
      { refusal: () => this.refusal, members: () => ids },
    );
    this.carry(id, sends);
  }

  private carry(from: string, sends: readonly TombstoneSend[]): void {
    const ids = this.members.map((member) => member.id);
    for (const send of sends) {
      if (!this.deliver(send, from)) continue;
      const to = this.member(send.to);
      if (send.message[0] === 'tp') this.beforePurge(to);
      const replies = to.purger.receive(
        from,
        send.message,
        { keyspaceOf: () => KEYSPACE, members: ids },
        this.nowMs,
      );
      if (replies === null) throw new Error(`malformed message from ${from}`);
      this.carry(send.to, replies);
    }
  }
}
