// The CASPaxos registers of one node: its acceptor, with its state in storage, and its
// proposer, for every strong keyspace and the cluster map. The node hands it commands and
// peer messages and gets back messages to send and operations completed; it keeps the rules
// of docs/PAXOS.md that are about a node rather than one register:
// - An acceptor's reply leaves only after its state is durable, and replies leave in the
//   order their steps ran: each waits for the last batch emitted before it (a reply that
//   wrote nothing may have been computed from a state not yet durable).
// - Request ids come from a range per life of the node (its incarnation), so a late reply to
//   an earlier life never counts for this one.
// - A register key is the keyspace id (u32) followed by the user key; its acceptor row is
//   stored with the keyspace's data layout (keyspace, partition, key) in the paxos table.
// - A key left holding a tombstone (deleted, or only read while absent, which stores a
//   promise) is purged in the background after a grace period by the proposer that left it
//   so; an incomplete purge is tried again later, a few times.

import { assert, bytesToKeyString } from '../bytes.ts';
import { MonotonicClock } from '../monotonic-clock.ts';
import type { Prng } from '../prng.ts';
import { partitionOf } from '../ring/partition.ts';
import { metaKey, paxosKey } from '../store/layout.ts';
import type { StorageWrite } from '../../storage/contract.ts';
import { INITIAL_FLOORS, stepAcceptor, type AcceptorFloors } from './acceptor.ts';
import { decodeFloors, decodeKeyState, encodeFloors, encodeKeyState } from './acceptor-codec.ts';
import { defaultProposerConfig, REQUEST_IDS_PER_PROPOSER, type ProposerConfig } from './config.ts';
import { isAcceptorRequest, isValidPaxosMessage, type PaxosMessage } from './messages.ts';
import { Proposer, type ProposerCompletion, type ProposerStats } from './proposer.ts';
import type { Command } from './register.ts';

/** Where the host keeps acceptor rows: the node's store, with writes readable at once. */
export interface RowStore {
  readRow(storageKey: Uint8Array): Uint8Array | undefined;
  /** Emits a durable batch of these writes; answers its id. */
  persistRows(writes: StorageWrite[], durable: boolean): number;
  readonly lastBatchId: number;
  readonly lastPersistedBatchId: number;
}

export interface HostSend {
  readonly to: string;
  readonly message: PaxosMessage;
  /** Send once this batch is persisted; 0: at once. */
  readonly afterBatch: number;
}

export interface HostOutput {
  readonly sends: readonly HostSend[];
  readonly completions: readonly ProposerCompletion[];
}

export interface RegisterHostOptions {
  /** Proposer settings other than the acceptors (each register names its own). */
  readonly proposer?: Partial<Omit<ProposerConfig, 'acceptorIds' | 'requestIdBase'>>;
  /** How long a tombstone stays before its purge is tried. */
  readonly tombstoneGraceMs?: number;
}

/** The keyspace id that holds the cluster map's register; user keyspaces stay below it. */
export const MAP_REGISTER_KEYSPACE_ID = 0xffff_ffff;
/** Purges waiting; deletes beyond it leave their tombstones (they still read as absent). */
export const PURGES_PENDING_MAX = 100_000;
/** Attempts at one purge before the tombstone is left in place. */
export const PURGE_ATTEMPTS_MAX = 5;
export const TOMBSTONE_GRACE_MS_DEFAULT = 10_000;
/** Lives whose request-id ranges are distinct (incarnations modulo this). */
const LIVES_IN_REQUEST_IDS = 2 ** 21;
const FLOORS_META_KEY = metaKey('paxos-floors');
const KEYSPACE_ID_BYTES = 4;

interface Register {
  readonly registerKey: Uint8Array;
  readonly acceptors: readonly string[];
}

interface PendingPurge {
  readonly registerKey: Uint8Array;
  readonly acceptors: readonly string[];
  dueMs: number;
  attempts: number;
}

/** The register key of a user key: keyspace id (u32, big-endian), then the key. */
export function registerKeyOf(keyspaceId: number, key: Uint8Array): Uint8Array {
  const registerKey = new Uint8Array(KEYSPACE_ID_BYTES + key.length);
  new DataView(registerKey.buffer).setUint32(0, keyspaceId);
  registerKey.set(key, KEYSPACE_ID_BYTES);
  return registerKey;
}

export class RegisterHost {
  readonly proposer: Proposer;
  private readonly rows: RowStore;
  private readonly partitionCount: number;
  private readonly graceMs: number;
  private floors: AcceptorFloors;
  /** Purges by operation id (negative, apart from the node's), oldest due first. */
  private readonly purges = new Map<number, PendingPurge>();
  private nextPurgeId = -1;
  /** The register of each operation running, by operation id. */
  private readonly running = new Map<number, Register>();
  /** Register keys (as key strings) with a purge pending. */
  private readonly purging = new Set<string>();
  private sends: HostSend[] = [];
  private completions: ProposerCompletion[] = [];
  /** Acceptor messages that were not well-formed requests. */
  malformedDropped = 0;
  /** Phases, backoffs and purges are timed on this: the wall clock may step back. */
  private readonly clock = new MonotonicClock();

  constructor(
    nodeId: string,
    incarnation: number,
    partitionCount: number,
    rows: RowStore,
    prng: Prng,
    options: RegisterHostOptions = {},
  ) {
    this.rows = rows;
    this.partitionCount = partitionCount;
    this.graceMs = options.tombstoneGraceMs ?? TOMBSTONE_GRACE_MS_DEFAULT;
    assert(Number.isSafeInteger(this.graceMs) && this.graceMs >= 0, 'a grace period in ms');
    const stored = rows.readRow(FLOORS_META_KEY);
    this.floors = stored === undefined ? INITIAL_FLOORS : decodeFloors(stored);
    const requestIdBase = (incarnation % LIVES_IN_REQUEST_IDS) * REQUEST_IDS_PER_PROPOSER;
    this.proposer = new Proposer(
      nodeId,
      defaultProposerConfig([nodeId], { ...options.proposer, requestIdBase }),
      prng,
    );
  }

  get stats(): ProposerStats {
    return this.proposer.stats;
  }

  /** Runs `command` on `key` of `keyspaceId`, whose acceptors are `acceptors`. */
  submit(
    operationId: number,
    keyspaceId: number,
    key: Uint8Array,
    command: Command,
    acceptors: readonly string[],
    nowMs: number,
  ): HostOutput {
    assert(operationId >= 0, 'node operation ids are not negative');
    nowMs = this.clock.advance(nowMs);
    const registerKey = registerKeyOf(keyspaceId, key);
    this.running.set(operationId, { registerKey, acceptors });
    this.take(this.proposer.submit(operationId, registerKey, command, nowMs, acceptors), nowMs);
    return this.flush();
  }

  /** Handles a CASPaxos message from a peer: a request to the acceptor or a reply to us. */
  receive(from: string, message: unknown, wallMs: number): HostOutput {
    const nowMs = this.clock.advance(wallMs);
    if (!isValidPaxosMessage(message)) {
      this.malformedDropped += 1;
      return this.flush();
    }
    if (isAcceptorRequest(message)) this.accept(from, message);
    else this.take(this.proposer.receive(from, message, nowMs), nowMs);
    return this.flush();
  }

  tick(wallMs: number): HostOutput {
    const nowMs = this.clock.advance(wallMs);
    this.take(this.proposer.tick(nowMs), nowMs);
    for (const [purgeId, purge] of this.purges) {
      if (purge.dueMs > nowMs) continue;
      purge.dueMs = Number.POSITIVE_INFINITY; // running
      purge.attempts += 1;
      this.take(this.proposer.purge(purgeId, purge.registerKey, nowMs, purge.acceptors), nowMs);
    }
    return this.flush();
  }

  nextDeadlineMs(): number | undefined {
    let earliest = this.proposer.nextDeadlineMs();
    for (const purge of this.purges.values()) {
      if (earliest === undefined || purge.dueMs < earliest) earliest = purge.dueMs;
    }
    return earliest === Number.POSITIVE_INFINITY ? undefined : earliest;
  }

  pendingPurgeCount(): number {
    return this.purges.size;
  }

  private accept(from: string, message: PaxosMessage): void {
    const output = stepAcceptor(message, (key) => this.stateOf(key), this.floors);
    if (output === null) {
      this.malformedDropped += 1;
      return;
    }
    const write = output.write;
    if (write.kind === 'put') {
      this.rows.persistRows(
        [{ key: this.rowKeyOf(write.key), value: encodeKeyState(write.state) }],
        true,
      );
    } else if (write.kind === 'purge') {
      this.floors = write.floors;
      this.rows.persistRows(
        [
          { key: this.rowKeyOf(write.key), value: null },
          { key: FLOORS_META_KEY, value: encodeFloors(write.floors) },
        ],
        true,
      );
    }
    const last = this.rows.lastBatchId;
    const afterBatch = last > this.rows.lastPersistedBatchId ? last : 0;
    this.sends.push({ to: from, message: output.reply, afterBatch });
  }

  private stateOf(registerKey: Uint8Array): ReturnType<typeof decodeKeyState> | undefined {
    const bytes = this.rows.readRow(this.rowKeyOf(registerKey));
    return bytes === undefined ? undefined : decodeKeyState(bytes);
  }

  private rowKeyOf(registerKey: Uint8Array): Uint8Array {
    // Messages are validated, but a register key shorter than its prefix is still possible.
    const keyspaceId =
      registerKey.length >= KEYSPACE_ID_BYTES
        ? new DataView(registerKey.buffer, registerKey.byteOffset).getUint32(0)
        : MAP_REGISTER_KEYSPACE_ID;
    const key = registerKey.subarray(Math.min(KEYSPACE_ID_BYTES, registerKey.length));
    const partition =
      keyspaceId === MAP_REGISTER_KEYSPACE_ID
        ? 0
        : partitionOf(keyspaceId, key, this.partitionCount);
    return paxosKey(keyspaceId, partition, key);
  }

  private take(output: ReturnType<Proposer['tick']>, nowMs: number): void {
    for (const send of output.sends) this.sends.push({ ...send, afterBatch: 0 });
    for (const completion of output.completions) {
      if (completion.operationId < 0) {
        this.purgeDone(completion, nowMs);
        continue;
      }
      this.completions.push(completion);
      const register = this.running.get(completion.operationId);
      if (register === undefined) continue;
      this.running.delete(completion.operationId);
      // A key left holding a tombstone (a delete, or any operation on a key that has no
      // value, which stores a promise): purge it once the grace period is over.
      const outcome = completion.outcome;
      if (outcome.kind === 'ok' && outcome.current.bytes === null) {
        this.schedulePurge(register, nowMs);
      }
    }
  }

  private purgeDone(completion: ProposerCompletion, nowMs: number): void {
    const purge = this.purges.get(completion.operationId);
    if (purge === undefined) return;
    const outcome = completion.outcome;
    const finished =
      (outcome.kind === 'purge' && (outcome.complete || !outcome.wasTombstone)) ||
      purge.attempts >= PURGE_ATTEMPTS_MAX;
    if (finished) {
      this.purges.delete(completion.operationId);
      this.purging.delete(bytesToKeyString(purge.registerKey));
      return;
    }
    purge.dueMs = nowMs + Math.max(this.graceMs, 1);
  }

  private schedulePurge(register: Register, nowMs: number): void {
    if (this.purges.size >= PURGES_PENDING_MAX) return;
    const keyString = bytesToKeyString(register.registerKey);
    if (this.purging.has(keyString)) return;
    this.purging.add(keyString);
    this.purges.set(this.nextPurgeId, {
      registerKey: register.registerKey,
      acceptors: register.acceptors,
      dueMs: nowMs + this.graceMs,
      attempts: 0,
    });
    this.nextPurgeId -= 1;
    if (this.nextPurgeId < -Number.MAX_SAFE_INTEGER) this.nextPurgeId = -1;
  }

  private flush(): HostOutput {
    const output = { sends: this.sends, completions: this.completions };
    this.sends = [];
    this.completions = [];
    return output;
  }
}
