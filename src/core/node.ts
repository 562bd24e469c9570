// One ringkv node as a pure state machine: `step(input)` takes a client request, a tick or a
// storage completion and returns effects (writes to persist, replies to send). No I/O, no
// clocks, no awaits: the shell (src/runtime/, or the simulator in src/sim/) does those.
//
// Writes and durability. A write request becomes one `persist` effect; its reply waits for
// the matching `persisted` input when the keyspace is `sync`, and goes out at once when it is
// `relaxed`. Until a batch is persisted its records live in `pending`, an overlay that every
// read consults first, so a node never answers from older data than it has accepted. A read
// that sees a record whose sync write is not yet durable is answered only after that write is
// persisted, so no client ever observes a value that a crash could take back.
//
// Batches are persisted in the order they were emitted; the shell must keep that order.

import { assert, bytesToKeyString, keyStringToBytes } from './bytes.ts';
import { ErrorCode, kvError, type KvError } from './errors.ts';
import { keyHashHigh } from './hash.ts';
import type { Keyspace } from './keyspace.ts';
import type { Limits } from './limits.ts';
import type { ClientReply, ClientRequest, ReadResult, WriteItem, WriteResult } from './requests.ts';
import { applyMutation, writeVersion } from './kv/apply-mutation.ts';
import { globMatches } from './kv/glob.ts';
import { liveSiblings, winningSibling } from './kv/siblings.ts';
import { ByteReader, ByteWriter, DecodeError } from './store/byte-codec.ts';
import {
  dataKey,
  dataPrefix,
  dataPrefixEnd,
  EXPIRY_TABLE_START,
  expiryKey,
  expiryKeyAfter,
  metaKey,
  parseExpiryKey,
} from './store/layout.ts';
import {
  decodeContext,
  decodeRecord,
  encodeContext,
  encodeRecord,
  readWinner,
  type StoredRecord,
} from './store/record.ts';
import { HybridLogicalClock, type HlcTimestamp } from './versions/hlc.ts';
import type { VersionVector } from './versions/version-vector.ts';
import type { StorageReader, StorageWrite } from '../storage/contract.ts';

export interface NodeCoreConfig {
  readonly nodeId: string;
  readonly keyspaces: readonly Keyspace[];
  readonly limits: Limits;
  /** Ring partitions (a power of two); fixed for the life of the data. */
  readonly partitionCount: number;
}

export type Input =
  | {
      readonly type: 'request';
      readonly nowMs: number;
      readonly requestId: number;
      readonly request: ClientRequest;
    }
  | { readonly type: 'tick'; readonly nowMs: number }
  | { readonly type: 'persisted'; readonly nowMs: number; readonly batchId: number };

export type Effect =
  | {
      readonly type: 'persist';
      readonly batchId: number;
      readonly writes: readonly StorageWrite[];
      readonly durable: boolean;
    }
  | { readonly type: 'reply'; readonly requestId: number; readonly reply: ClientReply };

interface PendingRecord {
  readonly record: StoredRecord | undefined;
  readonly batchId: number;
  readonly durable: boolean;
}

interface DeferredReply {
  readonly requestId: number;
  readonly reply: ClientReply;
}

const HLC_META_KEY = metaKey('hlc');
/**
 * How far ahead of the clock the stored HLC ceiling is set. A restarted node starts its
 * clock at the stored ceiling, so it never reissues a timestamp; the ceiling is rewritten
 * only when the clock passes it, about once a second under load, not with every batch.
 */
const HLC_CEILING_AHEAD_MS = 1000;
const COUNT_SCAN_CHUNK = 4096;
const FLUSH_BATCH_WRITES_MAX = 8192;
/** Bytes of a scan cursor before the key: partition (u16). */
const CURSOR_HEADER_BYTES = 2;

export class Node {
  readonly nodeId: string;
  private readonly config: NodeCoreConfig;
  private readonly view: StorageReader;
  private readonly keyspacesByName = new Map<string, Keyspace>();
  private readonly clock: HybridLogicalClock;
  /** Bits of the ring position that name the partition. */
  private readonly partitionBits: number;
  /** The HLC wall time stored as the ceiling: every timestamp issued is below it. */
  private hlcCeilingMs: number;
  /** Records written but not yet persisted, by storage key (as a key string). */
  private readonly pending = new Map<string, PendingRecord>();
  /** Replies waiting for a batch to be persisted, by batch id. */
  private readonly deferred = new Map<number, DeferredReply[]>();
  /** The pending keys each unpersisted batch wrote, so persisting one is O(its keys). */
  private readonly batchKeys = new Map<number, string[]>();
  private nextBatchId = 1;
  private lastPersistedBatchId = 0;
  private effects: Effect[] = [];

  constructor(config: NodeCoreConfig, view: StorageReader) {
    assert(config.nodeId.length > 0, 'node id is empty');
    assert(Number.isInteger(Math.log2(config.partitionCount)), 'partition count is a power of two');
    this.config = config;
    this.nodeId = config.nodeId;
    this.view = view;
    for (const keyspace of config.keyspaces) {
      assert(!this.keyspacesByName.has(keyspace.name), `keyspace ${keyspace.name} twice`);
      this.keyspacesByName.set(keyspace.name, keyspace);
    }
    const storedCeiling = readHlc(view);
    this.clock = new HybridLogicalClock(storedCeiling);
    this.hlcCeilingMs = storedCeiling[0];
    this.partitionBits = Math.log2(config.partitionCount);
  }

  keyspaces(): readonly Keyspace[] {
    return this.config.keyspaces;
  }

  /** Batches emitted and not yet persisted. */
  pendingBatchCount(): number {
    return this.nextBatchId - 1 - this.lastPersistedBatchId;
  }

  step(input: Input): Effect[] {
    this.effects = [];
    switch (input.type) {
      case 'request':
        this.onRequest(input.requestId, input.request, input.nowMs);
        break;
      case 'tick':
        this.onTick(input.nowMs);
        break;
      case 'persisted':
        this.onPersisted(input.batchId);
        break;
    }
    return this.effects;
  }

  // ---- requests ----

  private onRequest(requestId: number, request: ClientRequest, nowMs: number): void {
    const keyspace = this.keyspacesByName.get(request.keyspace);
    if (keyspace === undefined) {
      this.fail(
        requestId,
        kvError(ErrorCode.UNKNOWN_KEYSPACE, `keyspace '${request.keyspace}' does not exist`),
      );
      return;
    }
    switch (request.op) {
      case 'get':
        this.get(requestId, keyspace, request.keys, request.withVersions !== false, nowMs);
        return;
      case 'write':
        this.write(requestId, keyspace, request.items, nowMs);
        return;
      case 'scan':
        this.scan(requestId, keyspace, request, nowMs);
        return;
      case 'count':
        this.count(requestId, keyspace, nowMs);
        return;
      case 'flush':
        this.flush(requestId, keyspace, nowMs);
        return;
    }
  }

  private get(
    requestId: number,
    keyspace: Keyspace,
    keys: readonly Uint8Array[],
    withVersions: boolean,
    nowMs: number,
  ): void {
    const invalid = this.checkKeys(keys);
    if (invalid !== null) return this.fail(requestId, invalid);
    let waitFor = 0;
    const results: ReadResult[] = [];
    for (const key of keys) {
      const storageKey = this.storageKeyOf(keyspace, key);
      const pending =
        this.pending.size === 0 ? undefined : this.pending.get(bytesToKeyString(storageKey));
      let record: StoredRecord | undefined;
      if (pending !== undefined) {
        record = pending.record;
        if (pending.durable) waitFor = Math.max(waitFor, pending.batchId);
      } else if (!withVersions) {
        // The hot path of a plain GET: the winner straight from the stored bytes.
        const bytes = this.view.get(storageKey);
        const winner = bytes === undefined ? null : readWinner(bytes, nowMs);
        results.push(
          winner === null
            ? ABSENT
            : { ...ABSENT, value: winner.value, expiresAtMs: winner.expiresAtMs },
        );
        continue;
      } else {
        record = this.readStored(storageKey);
      }
      results.push(withVersions ? readResultOf(record, nowMs) : winnerOnlyOf(record, nowMs));
    }
    this.replyAfter(waitFor, requestId, { ok: true, op: 'get', results });
  }

  private write(
    requestId: number,
    keyspace: Keyspace,
    items: readonly WriteItem[],
    nowMs: number,
  ): void {
    const invalid = this.checkWriteItems(items);
    if (invalid !== null) return this.fail(requestId, invalid);
    // Stage every item first: the request is atomic, so an error in a later item must leave
    // nothing written. Items on the same key see the earlier items' results.
    const staged = new Map<
      string,
      { storageKey: Uint8Array; before: StoredRecord | undefined; after: StoredRecord | undefined }
    >();
    const results: WriteResult[] = [];
    let waitFor = 0;
    for (const item of items) {
      const storageKey = this.storageKeyOf(keyspace, item.key);
      const keyString = bytesToKeyString(storageKey);
      let entry = staged.get(keyString);
      if (entry === undefined) {
        const pending = this.pending.get(keyString);
        if (pending !== undefined && pending.durable) waitFor = Math.max(waitFor, pending.batchId);
        const before = pending !== undefined ? pending.record : this.readStored(storageKey);
        entry = { storageKey, before, after: before };
        staged.set(keyString, entry);
      }
      let context: VersionVector | null = null;
      if (item.context !== undefined && item.context.length > 0) {
        try {
          context = decodeContext(item.context);
        } catch (error) {
          const reason = error instanceof DecodeError ? error.message : String(error);
          return this.fail(
            requestId,
            kvError(ErrorCode.INVALID_CONTEXT, `bad causal context: ${reason}`),
          );
        }
      }
      const outcome = applyMutation({
        record: entry.after,
        mutation: item.mutation,
        context,
        nodeId: this.nodeId,
        nowMs,
        clock: this.clock,
        policy: keyspace.conflicts,
        limits: this.config.limits,
      });
      if (!outcome.ok) return this.fail(requestId, outcome.error);
      if (outcome.next !== null) entry.after = outcome.next;
      results.push(outcome.result);
    }
    const writes: StorageWrite[] = [];
    const records = new Map<string, StoredRecord | undefined>();
    for (const [keyString, entry] of staged) {
      if (entry.after === entry.before) continue;
      this.stageRecordWrite(
        writes,
        records,
        keyString,
        entry.storageKey,
        entry.before,
        entry.after!,
      );
    }
    const reply: ClientReply = { ok: true, op: 'write', results };
    if (writes.length === 0) return this.replyAfter(waitFor, requestId, reply);
    const durable = keyspace.durability === 'sync';
    const batchId = this.persist(writes, durable, records);
    this.replyAfter(durable ? batchId : waitFor, requestId, reply);
  }

  private scan(
    requestId: number,
    keyspace: Keyspace,
    request: Extract<ClientRequest, { op: 'scan' }>,
    nowMs: number,
  ): void {
    const countMax = this.config.limits.scanCountMax;
    if (!(Number.isInteger(request.count) && request.count >= 1 && request.count <= countMax)) {
      return this.fail(
        requestId,
        kvError(ErrorCode.INVALID_ARGUMENT, `scan count must be an integer from 1 to ${countMax}`),
      );
    }
    const prefix = dataPrefix(keyspace.id);
    let start = prefix;
    if (request.cursor !== null && request.cursor.length > 0) {
      if (request.cursor.length < CURSOR_HEADER_BYTES) {
        return this.fail(requestId, kvError(ErrorCode.INVALID_ARGUMENT, 'invalid scan cursor'));
      }
      start = new Uint8Array(prefix.length + request.cursor.length);
      start.set(prefix);
      start.set(request.cursor, prefix.length);
    }
    // Examine at most `count` stored entries (a hint, as in Redis), plus one to learn
    // whether more follow.
    const entries = this.view.scan({
      start,
      end: dataPrefixEnd(keyspace.id),
      limit: request.count + 1,
    });
    const keys: Uint8Array[] = [];
    let cursor: Uint8Array | null = null;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (i === request.count) {
        cursor = entry.key.slice(prefix.length);
        break;
      }
      const userKey = entry.key.subarray(prefix.length + CURSOR_HEADER_BYTES);
      if (request.prefix !== null && !startsWith(userKey, request.prefix)) continue;
      if (request.match !== null && !globMatches(request.match, userKey)) continue;
      const pending = this.pending.get(bytesToKeyString(entry.key));
      const record = pending !== undefined ? pending.record : decodeStored(entry.value);
      if (liveSiblings(record, nowMs).length === 0) continue;
      keys.push(userKey.slice());
    }
    this.reply(requestId, { ok: true, op: 'scan', keys, cursor });
  }

  private count(requestId: number, keyspace: Keyspace, nowMs: number): void {
    let count = 0;
    this.forEachLiveKey(keyspace, nowMs, () => {
      count++;
    });
    this.reply(requestId, { ok: true, op: 'count', count });
  }

  private flush(requestId: number, keyspace: Keyspace, nowMs: number): void {
    const targets: { storageKey: Uint8Array; record: StoredRecord }[] = [];
    this.forEachLiveKey(keyspace, nowMs, (storageKey, record) =>
      targets.push({ storageKey, record }),
    );
    let writes: StorageWrite[] = [];
    let records = new Map<string, StoredRecord | undefined>();
    let lastBatchId = 0;
    const durable = keyspace.durability === 'sync';
    for (const { storageKey, record } of targets) {
      const tombstone = writeVersion(
        {
          record,
          mutation: { kind: 'delete' },
          context: null,
          nodeId: this.nodeId,
          nowMs,
          clock: this.clock,
          policy: keyspace.conflicts,
          limits: this.config.limits,
        },
        null,
        0,
      );
      const keyString = bytesToKeyString(storageKey);
      this.stageRecordWrite(writes, records, keyString, storageKey, record, tombstone);
      if (writes.length >= FLUSH_BATCH_WRITES_MAX) {
        lastBatchId = this.persist(writes, durable, records);
        writes = [];
        records = new Map();
      }
    }
    if (writes.length > 0) lastBatchId = this.persist(writes, durable, records);
    const reply: ClientReply = { ok: true, op: 'flush', removed: targets.length };
    this.replyAfter(durable ? lastBatchId : 0, requestId, reply);
  }

  /** Visits every live key of a keyspace, in storage order (pending state included). */
  private forEachLiveKey(
    keyspace: Keyspace,
    nowMs: number,
    visit: (storageKey: Uint8Array, record: StoredRecord) => void,
  ): void {
    const end = dataPrefixEnd(keyspace.id);
    let start = dataPrefix(keyspace.id);
    const seen = new Set<string>();
    for (;;) {
      const entries = this.view.scan({ start, end, limit: COUNT_SCAN_CHUNK });
      for (const entry of entries) {
        const keyString = bytesToKeyString(entry.key);
        seen.add(keyString);
        const pending = this.pending.get(keyString);
        const record = pending !== undefined ? pending.record : decodeStored(entry.value);
        if (record !== undefined && liveSiblings(record, nowMs).length > 0)
          visit(entry.key, record);
      }
      if (entries.length < COUNT_SCAN_CHUNK) break;
      const last = entries[entries.length - 1]!.key;
      start = new Uint8Array(last.length + 1);
      start.set(last);
    }
    // Keys written but not yet in storage.
    const prefix = dataPrefix(keyspace.id);
    for (const [keyString, pending] of this.pending) {
      if (seen.has(keyString) || pending.record === undefined) continue;
      if (!keyStringStartsWith(keyString, prefix)) continue;
      if (liveSiblings(pending.record, nowMs).length > 0)
        visit(keyStringToBytes(keyString), pending.record);
    }
  }

  // ---- ticks: expiry ----

  private onTick(nowMs: number): void {
    const expired = this.view.scan({
      start: EXPIRY_TABLE_START,
      end: expiryKeyAfter(nowMs),
      limit: this.config.limits.expiryPurgePerTickMax,
    });
    if (expired.length === 0) return;
    const writes: StorageWrite[] = [];
    const records = new Map<string, StoredRecord | undefined>();
    const done = new Set<string>();
    for (const entry of expired) {
      const { expiresAtMs, dataKey: storageKey } = parseExpiryKey(entry.key);
      writes.push({ key: entry.key, value: null });
      const keyString = bytesToKeyString(storageKey);
      if (done.has(keyString)) continue;
      done.add(keyString);
      const pending = this.pending.get(keyString);
      const record = pending !== undefined ? pending.record : this.readStored(storageKey);
      if (record === undefined) continue;
      // Expiry turns the expired versions into tombstones with the same dots: it is not a
      // new write, and every replica reaches the same record on its own.
      let changed = false;
      const siblings = record.siblings.map((sibling) => {
        if (sibling.value === null || sibling.expiresAtMs === 0 || sibling.expiresAtMs > nowMs) {
          return sibling;
        }
        changed = true;
        return { ...sibling, value: null, expiresAtMs: 0 };
      });
      if (!changed || !siblings.some((s) => s.expiresAtMs === expiresAtMs || s.value === null))
        continue;
      const next: StoredRecord = { context: record.context, siblings };
      writes.push({ key: storageKey, value: encodeRecord(next) });
      this.pending.set(keyString, { record: next, batchId: this.nextBatchId, durable: false });
    }
    // The purge need not be durable: if it is lost, the index entries are still there and a
    // later tick does it again.
    this.persist(writes, false, records);
  }

  // ---- persistence ----

  private onPersisted(batchId: number): void {
    assert(batchId === this.lastPersistedBatchId + 1, `batch ${batchId} persisted out of order`);
    assert(batchId < this.nextBatchId, `batch ${batchId} was never emitted`);
    this.lastPersistedBatchId = batchId;
    for (const keyString of this.batchKeys.get(batchId) ?? []) {
      if (this.pending.get(keyString)?.batchId === batchId) this.pending.delete(keyString);
    }
    this.batchKeys.delete(batchId);
    const replies = this.deferred.get(batchId);
    if (replies !== undefined) {
      this.deferred.delete(batchId);
      for (const { requestId, reply } of replies) this.reply(requestId, reply);
    }
  }

  /**
   * Emits a persist effect and returns its batch id. `records` are the records the batch
   * stores, by key string: they stay readable in `pending` until the batch is persisted.
   */
  private persist(
    writes: StorageWrite[],
    durable: boolean,
    records: Map<string, StoredRecord | undefined>,
  ): number {
    const batchId = this.nextBatchId++;
    for (const [keyString, record] of records) {
      this.pending.set(keyString, { record, batchId, durable });
    }
    this.batchKeys.set(batchId, [...records.keys()]);
    // A batch whose timestamps may pass the stored ceiling raises it, in the same batch: a
    // record cannot survive a crash without the ceiling that covers its timestamp.
    if (this.clock.last()[0] >= this.hlcCeilingMs) {
      this.hlcCeilingMs = this.clock.last()[0] + HLC_CEILING_AHEAD_MS;
      writes.push({ key: HLC_META_KEY, value: encodeHlc([this.hlcCeilingMs, 0]) });
    }
    this.effects.push({ type: 'persist', batchId, writes, durable });
    return batchId;
  }

  /** Adds the writes that store `after` in place of `before`, expiry index included. */
  private stageRecordWrite(
    writes: StorageWrite[],
    records: Map<string, StoredRecord | undefined>,
    keyString: string,
    storageKey: Uint8Array,
    before: StoredRecord | undefined,
    after: StoredRecord,
  ): void {
    // Index entries for expiry times that appear or disappear (most records have none).
    const beforeExpiries = expiryTimesOf(before);
    const afterExpiries = expiryTimesOf(after);
    for (const expiresAtMs of beforeExpiries) {
      if (!afterExpiries.includes(expiresAtMs)) {
        writes.push({ key: expiryKey(expiresAtMs, storageKey), value: null });
      }
    }
    for (const expiresAtMs of afterExpiries) {
      if (!beforeExpiries.includes(expiresAtMs)) {
        writes.push({ key: expiryKey(expiresAtMs, storageKey), value: new Uint8Array(0) });
      }
    }
    writes.push({ key: storageKey, value: encodeRecord(after) });
    records.set(keyString, after);
  }

  // ---- helpers ----

  private readStored(storageKey: Uint8Array): StoredRecord | undefined {
    const bytes = this.view.get(storageKey);
    return bytes === undefined ? undefined : decodeStored(bytes);
  }

  private storageKeyOf(keyspace: Keyspace, key: Uint8Array): Uint8Array {
    const partition =
      this.partitionBits === 0 ? 0 : keyHashHigh(keyspace.id, key) >>> (32 - this.partitionBits);
    return dataKey(keyspace.id, partition, key);
  }

  private checkKeys(keys: readonly Uint8Array[]): KvError | null {
    const limits = this.config.limits;
    if (keys.length > limits.keysPerRequestMax) {
      return kvError(
        ErrorCode.INVALID_ARGUMENT,
        `${keys.length} keys in one request, the limit is ${limits.keysPerRequestMax}`,
      );
    }
    for (const key of keys) {
      if (key.length === 0) return kvError(ErrorCode.KEY_EMPTY, 'keys must not be empty');
      if (key.length > limits.keyBytesMax) {
        return kvError(
          ErrorCode.KEY_TOO_LARGE,
          `key is ${key.length} bytes, the limit is ${limits.keyBytesMax}`,
        );
      }
    }
    return null;
  }

  private checkWriteItems(items: readonly WriteItem[]): KvError | null {
    const keyError = this.checkKeys(items.map((item) => item.key));
    if (keyError !== null) return keyError;
    const valueBytesMax = this.config.limits.valueBytesMax;
    for (const { mutation } of items) {
      const bytes =
        mutation.kind === 'set'
          ? mutation.value.length
          : mutation.kind === 'append'
            ? mutation.suffix.length
            : 0;
      if (bytes > valueBytesMax) {
        return kvError(
          ErrorCode.VALUE_TOO_LARGE,
          `value is ${bytes} bytes, the limit is ${valueBytesMax}`,
        );
      }
      if (mutation.kind === 'set' || mutation.kind === 'expire') {
        const expiry = mutation.expiry;
        if (
          (expiry.kind === 'at' && !(Number.isSafeInteger(expiry.atMs) && expiry.atMs > 0)) ||
          (expiry.kind === 'after' && !(Number.isSafeInteger(expiry.ms) && expiry.ms > 0))
        ) {
          return kvError(ErrorCode.INVALID_ARGUMENT, 'invalid expire time');
        }
      }
    }
    return null;
  }

  private reply(requestId: number, reply: ClientReply): void {
    this.effects.push({ type: 'reply', requestId, reply });
  }

  private fail(requestId: number, error: KvError): void {
    this.reply(requestId, { ok: false, error });
  }

  /** Replies now, or once batch `batchId` is persisted. */
  private replyAfter(batchId: number, requestId: number, reply: ClientReply): void {
    if (batchId <= this.lastPersistedBatchId) return this.reply(requestId, reply);
    let waiting = this.deferred.get(batchId);
    if (waiting === undefined) {
      waiting = [];
      this.deferred.set(batchId, waiting);
    }
    waiting.push({ requestId, reply });
  }
}

const NO_EXPIRY_TIMES: readonly number[] = [];

/** The distinct nonzero expiry times of a record's siblings. */
function expiryTimesOf(record: StoredRecord | undefined): readonly number[] {
  if (record === undefined) return NO_EXPIRY_TIMES;
  let times: number[] | null = null;
  for (const sibling of record.siblings) {
    if (sibling.expiresAtMs === 0) continue;
    times ??= [];
    if (!times.includes(sibling.expiresAtMs)) times.push(sibling.expiresAtMs);
  }
  return times ?? NO_EXPIRY_TIMES;
}

function readResultOf(record: StoredRecord | undefined, nowMs: number): ReadResult {
  const live = liveSiblings(record, nowMs);
  const winner = live[0];
  return {
    value: winner?.value ?? null,
    expiresAtMs: winner?.expiresAtMs ?? 0,
    context: record === undefined ? new Uint8Array(0) : encodeContext(record.context),
    siblings: live.map((sibling) => ({ value: sibling.value!, timestamp: sibling.timestamp })),
  };
}

const ABSENT: ReadResult = {
  value: null,
  expiresAtMs: 0,
  context: new Uint8Array(0),
  siblings: [],
};

function winnerOnlyOf(record: StoredRecord | undefined, nowMs: number): ReadResult {
  const winner = winningSibling(record, nowMs);
  if (winner === null) return ABSENT;
  return {
    value: winner.value,
    expiresAtMs: winner.expiresAtMs,
    context: ABSENT.context,
    siblings: [],
  };
}

function decodeStored(bytes: Uint8Array): StoredRecord {
  // Storage is ours: a record that does not decode is corruption, and must stop the node
  // rather than be served or overwritten.
  return decodeRecord(bytes);
}

function encodeHlc(timestamp: HlcTimestamp): Uint8Array {
  return new ByteWriter(16).varint(timestamp[0]).varint(timestamp[1]).finish();
}

function readHlc(view: StorageReader): HlcTimestamp {
  const bytes = view.get(HLC_META_KEY);
  if (bytes === undefined) return [0, 0];
  const reader = new ByteReader(bytes);
  return [reader.varint(), reader.varint()];
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

function keyStringStartsWith(keyString: string, prefix: Uint8Array): boolean {
  if (keyString.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (keyString.charCodeAt(i) !== prefix[i]) return false;
  return true;
}
