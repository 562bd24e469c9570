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
// - Acceptor changes (docs/PAXOS.md, "Acceptor changes"): the acceptor keeps a fence epoch
//   per partition, durable, and refuses a prepare, accept or read sent from a map older than
//   it; it lists a partition's keys for a new acceptor only once its fence is durable, and
//   from stored rows (docs/PAXOS.md says why rows staged since do no harm). A new acceptor
//   copies each partition it receives by listing it from a majority of the current
//   acceptors and rewriting every key through joint quorums. Rows of partitions given away
//   are removed once the change has ended.
// - Those copies keep the node's handoff rate limit and pause (docs/HANDOFF.md, "Rate and
//   pause"): the handoff host hands each its share of the limit on every tick.

import { assert, bytesToKeyString, fromUtf8, prefixEnd, utf8 } from '../bytes.ts';
import { votersOf, type ClusterMap } from '../cluster/cluster-map.ts';
import { newVotersOf } from '../cluster/membership.ts';
import type { TransferStatus } from '../handoff/handoff-host.ts';
import { MonotonicClock } from '../monotonic-clock.ts';
import type { Prng } from '../prng.ts';
import { partitionOf } from '../ring/partition.ts';
import { metaKey, paxosKey, paxosPrefix } from '../store/layout.ts';
import type { StorageEntry, StorageWrite } from '../../storage/contract.ts';
import { INITIAL_FLOORS, stepAcceptor, type AcceptorFloors } from './acceptor.ts';
import { decodeFloors, decodeKeyState, encodeFloors, encodeKeyState } from './acceptor-codec.ts';
import {
  fenceRaises,
  registerCopiesTo,
  registersGivenAway,
  strongAcceptorsOf,
  type FenceRaise,
} from './acceptor-change.ts';
import { compareBallots, maxBallot } from './ballot.ts';
import {
  defaultProposerConfig,
  majority,
  REQUEST_IDS_PER_PROPOSER,
  type ProposerConfig,
} from './config.ts';
import {
  isAcceptorRequest,
  isValidPaxosMessage,
  LIST_KEYS_MAX,
  PaxosMessageType,
  type ListMessage,
  type ListReplyMessage,
  type PaxosMessage,
} from './messages.ts';
import {
  Proposer,
  type AcceptorConfiguration,
  type ProposerCompletion,
  type ProposerStats,
} from './proposer.ts';
import type { Command } from './register.ts';
import {
  DEFAULT_REGISTER_COPY_CONFIG,
  RegisterCopy,
  type RegisterCopyConfig,
} from './register-copy.ts';

/** Where the host keeps acceptor rows: the node's store, with writes readable at once. */
export interface RowStore {
  readRow(storageKey: Uint8Array): Uint8Array | undefined;
  /** Every row in [start, end) as written last, persisted or not (small ranges only). */
  scanRows(start: Uint8Array, end: Uint8Array): StorageWrite[];
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
  /** The map epoch to send it under (an operation's acceptors'); absent: the node's own. */
  readonly epoch?: number;
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
  /**
   * Up to `limit` rows in [start, end) as storage holds them (every batch of earlier steps,
   * durable or only staged), in order; for list pages.
   */
  readonly scanPersisted?: (start: Uint8Array, end: Uint8Array, limit: number) => StorageEntry[];
  /** Copies to new acceptors; `unsafe` is for negative controls only. */
  readonly copy?: Partial<RegisterCopyConfig>;
  /**
   * A negative control only, never set by a node: the acceptor takes proposals from maps
   * older than its fences.
   */
  readonly ignoreFences?: boolean;
  /**
   * A negative control only, never set by a node: the map register's acceptors take
   * proposals from maps older than their fence, and a new voter reports its copy without
   * the fence step.
   */
  readonly ignoreMapFences?: boolean;
}

/** Copies to this node as an acceptor, of the change in progress, as the handoff shows them. */
export interface RegisterCopyStatus {
  readonly transfers: readonly TransferStatus[];
  readonly waiting: number;
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
const FENCES_META_KEY = metaKey('paxos-fences');
const MAP_FENCE_META_KEY = metaKey('paxos-map-fence');
/** How often a new voter asks the old voters that have not answered fenced yet. */
const VOTER_FENCE_RETRY_MS = 1_000;
/** How long a new voter waits before it tries its joint read of the map register again. */
const VOTER_READ_RETRY_MS = 100;
const COPY_SAVED_PREFIX = 'paxos-copy/';
/** Copies to this node that run at once; the others wait. */
export const RUNNING_REGISTER_COPIES_MAX = 4;
/** Bytes of keys in one list answer, at most (beside LIST_KEYS_MAX). */
const LIST_BYTES_MAX = 1 << 20;
/** Acceptor rows of partitions given away removed per tick. */
const STRAY_ROWS_PER_TICK = 1024;
const KEYSPACE_ID_BYTES = 4;

interface Register {
  readonly registerKey: Uint8Array;
  /** With the map epoch they came from, so that a purge later takes the newer ones. */
  readonly acceptors: readonly string[] | AcceptorConfiguration;
}

interface PendingPurge {
  readonly registerKey: Uint8Array;
  /** With the map epoch they came from, so that a purge later takes the newer ones. */
  readonly acceptors: readonly string[] | AcceptorConfiguration;
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

/**
 * A new voter's step before it reports its copy made (docs/PAXOS.md, "Changing the voters"):
 * fenced answers from a majority of the old voters, then one read of the map register
 * through joint quorums.
 */
interface VoterFenceStep {
  readonly changeEpoch: number;
  readonly oldVoters: readonly string[];
  /** Old voters that answered fenced at the change's epoch or later. */
  readonly fencedBy: Set<string>;
  /** Probe request ids, to the old voter each was sent to. */
  readonly probes: Map<number, string>;
  phase: 'fence' | 'read' | 'reading' | 'done';
  nextMs: number;
}

interface CopyEntry {
  readonly copy: RegisterCopy;
  started: boolean;
  /** The cursor and state last saved, to save again only when they move. */
  savedKey: string;
}

export class RegisterHost {
  readonly proposer: Proposer;
  private readonly nodeId: string;
  private readonly options: RegisterHostOptions;
  private readonly copyConfig: RegisterCopyConfig;
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
  /** Per partition of strong keyspaces: no proposal from a map older than this is taken. */
  private readonly fences = new Map<number, number>();
  /** The map register's fence: no proposal from a map older than this is taken for it. */
  private mapFence = 0;
  /** This node's step as a voter the change in progress adds, if it is one. */
  private voterStep: VoterFenceStep | null = null;
  private voterReadId: number | null = null;
  /** List requests waiting for the batch that makes the fence they report durable. */
  private readonly lists: { from: string; request: ListMessage; afterBatch: number }[] = [];
  /** This node's copies as a new acceptor, of the change named by `copiesEpoch`. */
  private copies: CopyEntry[] = [];
  private copiesEpoch: number | null = null;
  /** Each running copy's share of the node's handoff rate limit (0: unlimited), and pause. */
  private copyRate = 0;
  private copiesPaused = false;
  /** Bytes moved by copies of earlier changes. */
  private bytesMovedBefore = 0;
  /** Rewrites running, by operation id (negative, shared with purges). */
  private readonly rewrites = new Map<number, { entry: CopyEntry; key: Uint8Array }>();
  /** Acceptor row ranges of partitions given away, still to remove. */
  private strays: { keyspaceId: number; partition: number; start: Uint8Array; end: Uint8Array }[] =
    [];
  private acceptorsOfPartition:
    ((keyspaceId: number, partition: number) => AcceptorConfiguration | undefined) | null = null;
  /** Requests refused by a fence, and acceptor rows of given-away partitions removed. */
  fencedRequests = 0;
  strayRowsDropped = 0;
  /** Keys this node rewrote through joint quorums as a new acceptor, over every copy. */
  keysRewritten = 0;

  constructor(
    nodeId: string,
    incarnation: number,
    partitionCount: number,
    rows: RowStore,
    prng: Prng,
    options: RegisterHostOptions = {},
  ) {
    this.rows = rows;
    this.nodeId = nodeId;
    this.options = options;
    this.copyConfig = { ...DEFAULT_REGISTER_COPY_CONFIG, ...options.copy };
    this.partitionCount = partitionCount;
    this.graceMs = options.tombstoneGraceMs ?? TOMBSTONE_GRACE_MS_DEFAULT;
    assert(Number.isSafeInteger(this.graceMs) && this.graceMs >= 0, 'a grace period in ms');
    const stored = rows.readRow(FLOORS_META_KEY);
    this.floors = stored === undefined ? INITIAL_FLOORS : decodeFloors(stored);
    for (const [partition, epoch] of decodeFences(rows.readRow(FENCES_META_KEY))) {
      this.fences.set(partition, epoch);
    }
    this.mapFence = decodeMapFence(rows.readRow(MAP_FENCE_META_KEY));
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
    acceptors: readonly string[] | AcceptorConfiguration,
    nowMs: number,
  ): HostOutput {
    assert(operationId >= 0, 'node operation ids are not negative');
    nowMs = this.clock.advance(nowMs);
    const registerKey = registerKeyOf(keyspaceId, key);
    this.running.set(operationId, { registerKey, acceptors });
    this.take(this.proposer.submit(operationId, registerKey, command, nowMs, acceptors), nowMs);
    return this.flush();
  }

  /**
   * Handles a CASPaxos message from a peer: a request to the acceptor or a reply to us.
   * `senderEpoch` is the map epoch it was sent under, which the acceptor's fences compare.
   */
  receive(from: string, message: unknown, wallMs: number, senderEpoch?: number): HostOutput {
    const nowMs = this.clock.advance(wallMs);
    if (!isValidPaxosMessage(message)) {
      this.malformedDropped += 1;
      return this.flush();
    }
    if (message[0] === PaxosMessageType.fenced && this.voterProbeAnswered(from, message)) {
      return this.flush();
    }
    if (message[0] === PaxosMessageType.list) {
      this.lists.push({ from, request: message, afterBatch: this.rows.lastBatchId });
    } else if (message[0] === PaxosMessageType.listReply) {
      this.receiveList(from, message, nowMs);
    } else if (isAcceptorRequest(message)) {
      if (!this.fenced(from, message, senderEpoch)) this.accept(from, message);
    } else {
      this.take(this.proposer.receive(from, message, nowMs), nowMs);
    }
    return this.flush();
  }

  /**
   * How the node's newest map gives a key's acceptors (undefined: as the operation named
   * them): asked by the proposer before every attempt, so a fenced operation goes on with
   * the newer map once the node has it.
   */
  setAcceptorsOf(
    acceptorsOf: (keyspaceId: number, partition: number) => AcceptorConfiguration | undefined,
  ): void {
    this.acceptorsOfPartition = acceptorsOf;
    this.proposer.configurationOf = (registerKey) => {
      const { keyspaceId, partition } = this.locate(registerKey);
      return acceptorsOf(keyspaceId, partition);
    };
  }

  /** The map register's fence epoch: 0 when the voters never changed. */
  get mapFenceEpoch(): number {
    return this.mapFence;
  }

  /** The fence epoch of a partition: 0 when its acceptors never changed. */
  fenceOf(partition: number): number {
    return this.fences.get(partition) ?? 0;
  }

  /**
   * A map adopted after `previous` (null at start-up): fences raised, durably, for the
   * partitions whose acceptors it changes; the copies of its change to this node listed
   * (resumed from their saved cursors for the same change); and once a change has ended,
   * the acceptor rows of partitions this node no longer replicates queued for removal.
   */
  syncMap(previous: ClusterMap | null, map: ClusterMap, wallMs: number): void {
    const nowMs = this.clock.advance(wallMs);
    this.raiseFences(fenceRaises(previous, map));
    this.raiseMapFence(previous, map);
    this.syncVoterStep(map, nowMs);
    const epoch = map.change?.epoch ?? null;
    if (epoch !== this.copiesEpoch) {
      this.copiesEpoch = epoch;
      for (const { copy } of this.copies) this.bytesMovedBefore += copy.bytesMoved;
      this.copies = [];
      this.rewrites.clear();
      this.forgetSavedCopies(epoch);
      for (const plan of epoch === null ? [] : registerCopiesTo(map, this.nodeId)) {
        const savedKey = copySavedKey(plan.changeEpoch, plan.keyspaceId, plan.partition);
        const resume = decodeSavedCopy(this.rows.readRow(savedKey));
        const copy = new RegisterCopy(plan, this.copyConfig, nowMs, resume);
        copy.setRate(this.copyRate);
        copy.setPaused(this.copiesPaused);
        this.copies.push({ copy, started: false, savedKey: '' });
      }
    }
    if (previous !== null && map.change === undefined) {
      for (const { keyspaceId, partition } of registersGivenAway(
        previous.owners,
        map,
        this.nodeId,
      )) {
        const start = paxosPrefix(keyspaceId, partition);
        this.strays.push({ keyspaceId, partition, start, end: prefixEnd(start)! });
      }
    }
    // A partition this node is an acceptor of again (a later change gives it back) keeps
    // its rows: a copy may be writing them.
    this.strays = this.strays.filter(({ keyspaceId, partition }) => {
      const keyspace = map.keyspaces.find((candidate) => candidate.id === keyspaceId);
      if (keyspace?.consistency !== 'strong') return true;
      const { ids, nextIds } = strongAcceptorsOf(map, keyspace, partition);
      return !ids.includes(this.nodeId) && nextIds?.includes(this.nodeId) !== true;
    });
  }

  /** The copies this node receives as an acceptor in the change in progress. */
  copyStatus(wallMs: number): RegisterCopyStatus {
    const nowMs = this.clock.advance(wallMs);
    const transfers: TransferStatus[] = [];
    let waiting = 0;
    for (const { copy, started } of this.copies) {
      if (!started && copy.state !== 'done') {
        waiting++;
        continue;
      }
      const { keyspaceId, partition } = copy.plan;
      transfers.push({ keyspaceId, partition, ...copy.progress(nowMs) });
    }
    return { transfers, waiting };
  }

  /** Whether this node receives register copies in the change in progress, and made them all. */
  get registerCopies(): { readonly count: number; readonly done: number } {
    let done = 0;
    for (const { copy } of this.copies) if (copy.state === 'done') done++;
    // A new voter's fence step counts as one copy, so the handoff reports it with the rest.
    const voter = this.voterStep === null ? 0 : 1;
    if (this.voterStep?.phase === 'done') done++;
    return { count: this.copies.length + voter, done };
  }

  /** Copies started and not done: each takes a share of the node's rate limit. */
  get activeCopies(): number {
    let active = 0;
    for (const { copy, started } of this.copies) if (started && copy.state !== 'done') active++;
    return active;
  }

  /** Bytes every copy to this node moved, over its life: list answers and rewrites. */
  get bytesMoved(): number {
    let bytes = this.bytesMovedBefore;
    for (const { copy } of this.copies) bytes += copy.bytesMoved;
    return bytes;
  }

  /** Each copy's rate limit in bytes per second (0: unlimited), changed at once. */
  setCopyRate(bytesPerSecond: number): void {
    assert(Number.isFinite(bytesPerSecond) && bytesPerSecond >= 0, 'a rate in bytes per second');
    this.copyRate = bytesPerSecond;
    for (const { copy } of this.copies) copy.setRate(bytesPerSecond);
  }

  /** Paused copies start no list round and no rewrite; those in flight finish. */
  setCopiesPaused(paused: boolean): void {
    this.copiesPaused = paused;
    for (const { copy } of this.copies) copy.setPaused(paused);
  }

  tick(wallMs: number): HostOutput {
    const nowMs = this.clock.advance(wallMs);
    this.take(this.proposer.tick(nowMs), nowMs);
    this.tickCopies(nowMs);
    this.tickVoterStep(nowMs);
    this.dropStrayRows();
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

  /** The keyspace and partition of a register key (the map register: partition 0). */
  private locate(registerKey: Uint8Array): {
    keyspaceId: number;
    partition: number;
    key: Uint8Array;
  } {
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
    return { keyspaceId, partition, key };
  }

  /**
   * Refuses a prepare, accept or read sent from a map older than the fence of its key's
   * partition: a proposer that may still use the acceptors before a change. A purge is not
   * fenced: it removes only a tombstone sealed on every acceptor it names, which no
   * proposer's value can be. Messages without an epoch (tests driving the host) are taken.
   */
  private fenced(from: string, message: PaxosMessage, senderEpoch: number | undefined): boolean {
    if (senderEpoch === undefined || this.options.ignoreFences === true) return false;
    const type = message[0];
    if (
      type !== PaxosMessageType.prepare &&
      type !== PaxosMessageType.accept &&
      type !== PaxosMessageType.read
    ) {
      return false;
    }
    const { keyspaceId, partition } = this.locate(message[2]);
    if (keyspaceId === MAP_REGISTER_KEYSPACE_ID && this.options.ignoreMapFences === true) {
      return false;
    }
    const fence = keyspaceId === MAP_REGISTER_KEYSPACE_ID ? this.mapFence : this.fenceOf(partition);
    if (senderEpoch >= fence) return false;
    this.fencedRequests += 1;
    // The fence this reply reports may itself still be on its way to disk.
    const last = this.rows.lastBatchId;
    const afterBatch = last > this.rows.lastPersistedBatchId ? last : 0;
    this.sends.push({
      to: from,
      message: [PaxosMessageType.fenced, message[1], fence],
      afterBatch,
    });
    return true;
  }

  /**
   * The map register's fence, raised durably when a map changes the voters: to the change's
   * epoch for a map whose change names next voters, to the map's own epoch when its voters
   * differ from the previous map's (the commit, or maps this node skipped).
   */
  private raiseMapFence(previous: ClusterMap | null, map: ClusterMap): void {
    let epoch = map.change?.nextVoters !== undefined ? map.change.epoch : 0;
    if (previous !== null && votersOf(previous).join() !== votersOf(map).join()) epoch = map.epoch;
    assert(epoch <= map.epoch, 'no fence is above the map that raised it');
    if (epoch <= this.mapFence) return;
    this.mapFence = epoch;
    this.rows.persistRows([{ key: MAP_FENCE_META_KEY, value: utf8(String(epoch)) }], true);
  }

  /** Starts or drops this node's step as a new voter, as the map's change says. */
  private syncVoterStep(map: ClusterMap, nowMs: number): void {
    const change = map.change;
    const isNewVoter = change !== undefined && newVotersOf(map).includes(this.nodeId);
    if (!isNewVoter) {
      this.voterStep = null;
      this.voterReadId = null;
      return;
    }
    if (this.voterStep?.changeEpoch === change.epoch) return;
    this.voterReadId = null;
    this.voterStep = {
      changeEpoch: change.epoch,
      oldVoters: votersOf(map),
      fencedBy: new Set(),
      probes: new Map(),
      phase: this.options.ignoreMapFences === true ? 'done' : 'fence',
      nextMs: nowMs,
    };
    assert(!this.voterStep.oldVoters.includes(this.nodeId), 'a new voter is not an old one');
  }

  /**
   * Probes the old voters with a read sent under the epoch before the change: one that has
   * adopted the change answers fenced (once its fence is durable), which is the answer the
   * step counts. Once a majority has, one joint read of the map register.
   */
  private tickVoterStep(nowMs: number): void {
    const step = this.voterStep;
    if (step === null || step.nextMs > nowMs) return;
    if (step.phase === 'fence') {
      step.nextMs = nowMs + VOTER_FENCE_RETRY_MS;
      for (const voter of step.oldVoters) {
        if (step.fencedBy.has(voter)) continue;
        const requestId = this.proposer.newRequestId();
        step.probes.set(requestId, voter);
        const probe: PaxosMessage = [PaxosMessageType.read, requestId, MAP_REGISTER_PROBE_KEY];
        this.sends.push({ to: voter, message: probe, afterBatch: 0, epoch: step.changeEpoch - 1 });
      }
      // Probes of earlier rounds may still answer; only the last few rounds are kept.
      while (step.probes.size > step.oldVoters.length * 4) {
        step.probes.delete(step.probes.keys().next().value!);
      }
    } else if (step.phase === 'read') {
      const acceptors = this.acceptorsOfPartition?.(MAP_REGISTER_KEYSPACE_ID, 0);
      if (acceptors === undefined) return;
      step.phase = 'reading';
      const operationId = this.takeInternalId();
      this.voterReadId = operationId;
      const output = this.proposer.submit(
        operationId,
        MAP_REGISTER_PROBE_KEY,
        { kind: 'get' },
        nowMs,
        acceptors,
      );
      this.take(output, nowMs);
    }
  }

  /** Counts a fenced answer to a new voter's probe; false when the reply is not one. */
  private voterProbeAnswered(from: string, message: PaxosMessage): boolean {
    const step = this.voterStep;
    if (step === null || message[0] !== PaxosMessageType.fenced) return false;
    const voter = step.probes.get(message[1]);
    if (voter === undefined || voter !== from) return false;
    step.probes.delete(message[1]);
    if (message[2] < step.changeEpoch || step.phase !== 'fence') return true;
    step.fencedBy.add(from);
    if (step.fencedBy.size >= majority(step.oldVoters.length)) {
      step.phase = 'read';
      step.nextMs = 0;
    }
    return true;
  }

  private raiseFences(raises: readonly FenceRaise[]): void {
    let raised = false;
    for (const { partition, epoch } of raises) {
      if (epoch <= this.fenceOf(partition)) continue;
      this.fences.set(partition, epoch);
      raised = true;
    }
    if (!raised) return;
    this.rows.persistRows([{ key: FENCES_META_KEY, value: encodeFences(this.fences) }], true);
    assert(
      raises.every(({ partition, epoch }) => this.fenceOf(partition) >= epoch),
      'fences only go up',
    );
  }

  /** List requests whose fence is durable now, answered from stored rows. */
  private serveLists(): void {
    while (this.lists.length > 0 && this.lists[0]!.afterBatch <= this.rows.lastPersistedBatchId) {
      const { from, request } = this.lists.shift()!;
      const [, requestId, keyspaceId, partition, after] = request;
      const prefix = paxosPrefix(keyspaceId, partition);
      const end = prefixEnd(prefix)!;
      let start = prefix;
      if (after !== null) {
        start = paxosKey(keyspaceId, partition, after);
        const next = new Uint8Array(start.length + 1);
        next.set(start);
        start = next;
      }
      const rows = this.options.scanPersisted
        ? this.options.scanPersisted(start, end, LIST_KEYS_MAX + 1)
        : this.rows.scanRows(start, end).slice(0, LIST_KEYS_MAX + 1);
      const keys: Uint8Array[] = [];
      let bytes = 0;
      for (const row of rows) {
        if (keys.length >= LIST_KEYS_MAX || bytes >= LIST_BYTES_MAX) break;
        const key = row.key.subarray(prefix.length);
        keys.push(key);
        bytes += key.length;
      }
      const done = keys.length === rows.length;
      const reply: ListReplyMessage = [
        PaxosMessageType.listReply,
        requestId,
        this.fenceOf(partition),
        keys,
        done,
        this.floors.promised.counter,
        this.floors.promised.proposerId,
        this.floors.version,
      ];
      this.sends.push({ to: from, message: reply, afterBatch: 0 });
    }
  }

  private receiveList(from: string, reply: ListReplyMessage, nowMs: number): void {
    for (const entry of this.copies) {
      if (!entry.copy.receiveList(from, reply, nowMs)) continue;
      this.copyMoved(entry, nowMs);
      return;
    }
  }

  private tickCopies(nowMs: number): void {
    let running = 0;
    for (const entry of this.copies) if (entry.started && entry.copy.state !== 'done') running++;
    for (const entry of this.copies) {
      if (entry.copy.state === 'done') continue;
      if (!entry.started) {
        if (running >= RUNNING_REGISTER_COPIES_MAX) continue;
        entry.started = true;
        running++;
      }
      for (const send of entry.copy.tick(nowMs, () => this.proposer.newRequestId())) {
        this.sends.push({ to: send.to, message: send.message, afterBatch: 0 });
      }
      this.copyMoved(entry, nowMs);
    }
  }

  /** Starts the rewrites a copy has due, and saves its cursor when it moved. */
  private copyMoved(entry: CopyEntry, nowMs: number): void {
    const copy = entry.copy;
    const { keyspaceId, partition } = copy.plan;
    for (const key of copy.rewritesDue(nowMs)) {
      const acceptors = this.acceptorsOfPartition?.(keyspaceId, partition);
      if (acceptors === undefined) {
        copy.rewritten(key, false, 0, nowMs);
        continue;
      }
      const operationId = this.takeInternalId();
      this.rewrites.set(operationId, { entry, key });
      this.take(
        this.proposer.submit(
          operationId,
          registerKeyOf(keyspaceId, key),
          { kind: 'get' },
          nowMs,
          acceptors,
        ),
        nowMs,
      );
    }
    const saved = savedCopyString(copy.cursor, copy.state === 'done');
    if (saved === entry.savedKey) return;
    entry.savedKey = saved;
    if (copy.state === 'done') {
      // A new acceptor reads a key no one listed at the highest floors of those that listed.
      const floors: AcceptorFloors = {
        promised: maxBallot(this.floors.promised, copy.floors.promised),
        version: Math.max(this.floors.version, copy.floors.version),
      };
      if (
        compareBallots(floors.promised, this.floors.promised) > 0 ||
        floors.version > this.floors.version
      ) {
        this.floors = floors;
        this.rows.persistRows([{ key: FLOORS_META_KEY, value: encodeFloors(floors) }], true);
      }
    }
    // Losing it costs rewrites done again, never safety: not waited on.
    this.rows.persistRows(
      [
        {
          key: copySavedKey(copy.plan.changeEpoch, keyspaceId, partition),
          value: encodeSavedCopy(copy.cursor, copy.state === 'done'),
        },
      ],
      false,
    );
  }

  private forgetSavedCopies(keep: number | null): void {
    const start = metaKey(COPY_SAVED_PREFIX);
    const keepPrefix = keep === null ? null : `${COPY_SAVED_PREFIX}${keep}/`;
    const stale = this.rows
      .scanRows(start, prefixEnd(start)!)
      .filter(
        (row) => keepPrefix === null || !fromUtf8(row.key.subarray(1)).startsWith(keepPrefix),
      );
    if (stale.length === 0) return;
    this.rows.persistRows(
      stale.map((row) => ({ key: row.key, value: null })),
      false,
    );
  }

  private dropStrayRows(): void {
    let budget = STRAY_ROWS_PER_TICK;
    while (this.strays.length > 0 && budget > 0) {
      const range = this.strays[0]!;
      const rows = this.options.scanPersisted
        ? this.options.scanPersisted(range.start, range.end, budget)
        : this.rows.scanRows(range.start, range.end).slice(0, budget);
      if (rows.length > 0) {
        this.rows.persistRows(
          rows.map((row) => ({ key: row.key, value: null })),
          false,
        );
        this.strayRowsDropped += rows.length;
        budget -= rows.length;
        const last = rows[rows.length - 1]!.key;
        const next = new Uint8Array(last.length + 1);
        next.set(last);
        range.start = next;
      }
      if (budget > 0) this.strays.shift();
    }
  }

  private takeInternalId(): number {
    const id = this.nextPurgeId;
    this.nextPurgeId -= 1;
    if (this.nextPurgeId < -Number.MAX_SAFE_INTEGER) this.nextPurgeId = -1;
    return id;
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
    const { keyspaceId, partition, key } = this.locate(registerKey);
    return paxosKey(keyspaceId, partition, key);
  }

  private take(output: ReturnType<Proposer['tick']>, nowMs: number): void {
    for (const send of output.sends) this.sends.push({ ...send, afterBatch: 0 });
    for (const completion of output.completions) {
      if (completion.operationId === this.voterReadId && this.voterStep !== null) {
        this.voterReadId = null;
        const ok = completion.outcome.kind === 'ok';
        this.voterStep.phase = ok ? 'done' : 'read';
        this.voterStep.nextMs = ok ? 0 : nowMs + VOTER_READ_RETRY_MS;
        continue;
      }
      const rewrite = this.rewrites.get(completion.operationId);
      if (rewrite !== undefined) {
        this.rewrites.delete(completion.operationId);
        const outcome = completion.outcome;
        const ok = outcome.kind === 'ok';
        if (ok) this.keysRewritten += 1;
        rewrite.entry.copy.rewritten(
          rewrite.key,
          ok,
          ok ? (outcome.current.bytes?.length ?? 0) : 0,
          nowMs,
        );
        this.copyMoved(rewrite.entry, nowMs);
        continue;
      }
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
    this.purges.set(this.takeInternalId(), {
      registerKey: register.registerKey,
      acceptors: register.acceptors,
      dueMs: nowMs + this.graceMs,
      attempts: 0,
    });
  }

  private flush(): HostOutput {
    this.serveLists();
    const output = { sends: this.sends, completions: this.completions };
    this.sends = [];
    this.completions = [];
    return output;
  }
}

/** The map register's key, as the node's map changes write it: keyspace id, then "map". */
const MAP_REGISTER_PROBE_KEY = registerKeyOf(
  MAP_REGISTER_KEYSPACE_ID,
  new Uint8Array([0x6d, 0x61, 0x70]),
);

function decodeMapFence(bytes: Uint8Array | undefined): number {
  if (bytes === undefined) return 0;
  const epoch = Number(fromUtf8(bytes));
  assert(Number.isSafeInteger(epoch) && epoch >= 0, 'a stored map fence is an epoch');
  return epoch;
}

/** Fences as a meta row: JSON pairs [partition, epoch], sorted by partition. */
function encodeFences(fences: ReadonlyMap<number, number>): Uint8Array {
  const pairs = [...fences].sort((a, b) => a[0] - b[0]);
  return utf8(JSON.stringify(pairs));
}

function decodeFences(bytes: Uint8Array | undefined): [number, number][] {
  if (bytes === undefined) return [];
  const pairs: unknown = JSON.parse(fromUtf8(bytes));
  assert(Array.isArray(pairs), 'stored fences are a list');
  return (pairs as unknown[]).map((pair) => {
    assert(
      Array.isArray(pair) &&
        pair.length === 2 &&
        pair.every((field) => Number.isSafeInteger(field) && (field as number) >= 0),
      'a stored fence is [partition, epoch]',
    );
    return [pair[0] as number, pair[1] as number];
  });
}

function copySavedKey(changeEpoch: number, keyspaceId: number, partition: number): Uint8Array {
  return metaKey(`${COPY_SAVED_PREFIX}${changeEpoch}/${keyspaceId}/${partition}`);
}

/** A copy's saved state: a byte (1 done, 0 not), then its cursor (absent: none). */
function encodeSavedCopy(cursor: Uint8Array | null, done: boolean): Uint8Array {
  const bytes = new Uint8Array(1 + (cursor?.length ?? 0));
  bytes[0] = done ? 1 : 0;
  if (cursor !== null) bytes.set(cursor, 1);
  return bytes;
}

function decodeSavedCopy(bytes: Uint8Array | undefined): {
  cursor: Uint8Array | null;
  done: boolean;
} {
  if (bytes === undefined || bytes.length === 0 || bytes[0]! > 1)
    return { cursor: null, done: false };
  return { cursor: bytes.length > 1 ? bytes.slice(1) : null, done: bytes[0] === 1 };
}

function savedCopyString(cursor: Uint8Array | null, done: boolean): string {
  return `${done ? 1 : 0}:${cursor === null ? '' : bytesToKeyString(cursor)}`;
}
