// One ringkv node as a pure state machine: `step(input)` takes a client request, a peer
// message, a tick or a storage completion and returns effects (writes to persist, replies,
// messages to send, a new cluster map). No I/O, no clocks, no awaits: the shell
// (src/runtime/, or the simulator in src/sim/) does those.
//
// The node composes:
// - the replica store (store/replica-store.ts): this node's copy of the data and its hints;
// - the cluster map (cluster/cluster-map.ts) and the ring walk of each partition;
// - SWIM (swim/) for liveness;
// - the Dynamo coordinator for eventual keyspaces, written here as op tables: a read or a
//   write is an entry in `ops` that peer answers, persist completions and ticks advance.
//
// Rules:
// - A write is coordinated by the first replica of its key that is up; others forward it
//   there (once: a forwarded request is never forwarded again). The coordinator first
//   merges R replicas' copies into its own, applies the mutation to it (a new dot of its
//   own), sends the resulting record to the other targets, and acknowledges after W of them
//   (itself included) made it durable.
// - Targets are the first N nodes of the ring walk that are not down; a fallback that
//   stands in for a down replica stores the record as a hint and hands it back later.
// - A read asks the targets, answers from the merge of the first R answers, and repairs
//   the targets whose copy the merge supersedes once all have answered (or time is up).
// - No client sees a value before it is durable on this node (replies wait for batches).
// - A cluster of one member takes the direct path: the request runs on the local store
//   exactly as a single node does, with no op entries.

import { assert, EMPTY_BYTES, equalBytes } from './bytes.ts';
import { ErrorCode, kvError, type KvError } from './errors.ts';
import type { Keyspace } from './keyspace.ts';
import type { Limits } from './limits.ts';
import { Prng } from './prng.ts';
import type {
  ClientReply,
  ClientRequest,
  QuorumSpec,
  ReadResult,
  WriteItem,
  WriteResult,
} from './requests.ts';
import { mergeRecords, recordDescends } from './kv/merge-records.ts';
import { globMatches } from './kv/glob.ts';
import { partitionOf } from './ring/partition.ts';
import { walkRing } from './ring/preference-list.ts';
import {
  decodeMap,
  encodeMap,
  initialMap,
  keyspaceFitProblem,
  keyspaceProblem,
  mapRegisterAcceptors,
  replicationFactor,
  withKeyspace,
  type ClusterMap,
  votersOf,
  withChains,
  type MemberInfo,
} from './cluster/cluster-map.ts';
import {
  isPeerMessage,
  MessageType,
  PutIfNewerStatus,
  type PeerMessage,
} from './cluster/messages.ts';
import {
  readResultOf,
  ReplicaStore,
  winnerOnlyOf,
  type HintEntry,
  type Outcome,
  type PersistEffect,
} from './store/replica-store.ts';
import { decodeRecord, encodeContext, encodeRecord, type StoredRecord } from './store/record.ts';
import { metaKey, parseDataKey } from './store/layout.ts';
import { DecodeError } from './store/byte-codec.ts';
import { Swim, type Liveness, type SwimOutput } from './swim/swim.ts';
import type { SwimConfig } from './swim/config.ts';
import { coversDot } from './versions/version-vector.ts';
import type { StorageReader } from '../storage/contract.ts';
import { MAP_REGISTER_KEYSPACE_ID, RegisterHost, type HostOutput } from './paxos/register-host.ts';
import { strongAcceptorsOf } from './paxos/acceptor-change.ts';
import type { Command, RegisterValue } from './paxos/register.ts';
import type { OperationOutcome } from './paxos/proposer.ts';
import {
  commandOf,
  strongError,
  strongReadResult,
  strongWriteResult,
} from './paxos/client-commands.ts';
import type { Mutation } from './requests.ts';
import { linearizableItemsProblem } from './kv/linearizable-items.ts';
import { ChainHost, chainKeyOf, type ChainHostOutput } from './chain/chain-host.ts';
import { chainOperationOf, chainResultOf } from './chain/client-operations.ts';
import { withTail, type ChainConfig } from './chain/chain-config.ts';
import type { ChainRequest } from './chain/requester.ts';
import { DEFAULT_CHAIN_LIMITS } from './chain/settings.ts';
import {
  addStandby,
  commitChange,
  markCopied,
  ownersOf,
  receiversOf,
  planMembership,
  chainReplicas,
  chainsTrimmed,
  chainWithoutSource,
  wantedChainMembers,
  planSummary,
} from './cluster/membership.ts';
import { HandoffHost, type HandoffStatus } from './handoff/handoff-host.ts';
import {
  answerLoadQuery,
  ElasticHost,
  type ElasticSettings,
  type ElasticStatus,
} from './cluster/elastic-host.ts';
import { LoadCensus } from './cluster/load-census.ts';
import type { NodeLoad } from './cluster/elastic.ts';
import { storagePartitionScan } from './handoff/sender.ts';
import { AntiEntropyHost, type ExchangeCandidate } from './antientropy/anti-entropy-host.ts';
import {
  GRACE_FACTOR_MIN,
  TombstonePurger,
  tombstoneGraceProblem,
  type SweptPartition,
} from './tombstones/tombstone-purger.ts';
import { isTombstoneMessageType } from './tombstones/messages.ts';
import { skipsRepairToAbsent } from './tombstones/tombstone-rules.ts';
import { BatchWaiters } from './batch-waiters.ts';

export interface NodeCoreConfig {
  readonly nodeId: string;
  /**
   * Keyspaces of a new cluster. For keyspaces the stored map already has, these entries
   * override the stored properties on this node (the node's `--durability` option).
   */
  readonly keyspaces: readonly Keyspace[];
  readonly limits: Limits;
  /** Ring partitions (a power of two); fixed for the life of the data. */
  readonly partitionCount: number;
  /** Absent: a cluster of this node alone. */
  readonly cluster?: ClusterConfig;
  /** A single node's own addresses (in a cluster, `cluster.self` says them). */
  readonly self?: MemberInfo;
}

export interface ClusterConfig {
  readonly clusterId: string;
  readonly self: MemberInfo;
  /** Ids of the other founding members; used only while no map is stored. */
  readonly founders: readonly string[];
  /**
   * A member of a running cluster to join through, as a standby (used only while no map is
   * stored; `founders` is then empty).
   */
  readonly joinVia?: string;
  /** Seeds the node's PRNG (SWIM's probe order). */
  readonly seed: number;
  readonly swim: SwimConfig;
  /** A coordinated request not answered by enough replicas in this time fails. */
  readonly requestTimeoutMs: number;
  /** Most hints this node holds for others; a fallback refuses writes beyond it. */
  readonly hintsMax: number;
  /** How often hints are offered back to owners that are alive. */
  readonly handoffIntervalMs: number;
  /** Hints sent to one owner per handoff round. */
  readonly handoffBatchMax: number;
  /**
   * Switches for the simulator's negative controls, on unless set false: a cluster without
   * them must fail its checkers. `hintedHandoff: false` keeps hints but never hands them
   * back; `readRepair: false` answers reads without repairing stale replicas.
   */
  readonly hintedHandoff?: boolean;
  readonly readRepair?: boolean;
  /**
   * Merkle exchanges between replicas: on unless set false (a negative control: replicas
   * that missed a write without a hint for it then stay apart).
   */
  readonly antiEntropy?: boolean;
  /** The pause after an exchange that found differences (default 1000 ms). */
  readonly antiEntropyIntervalMs?: number;
  /**
   * How old a tombstone of an eventual keyspace must be before a purge round may remove it
   * (default 1 hour; docs/ANTI-ENTROPY.md, "Tombstones"). At least ten request timeouts and
   * ten hint handoff intervals.
   */
  readonly tombstoneGraceMs?: number;
  /** The pause between two sweeps for tombstones over every partition (default 60 s). */
  readonly tombstoneSweepIntervalMs?: number;
  /**
   * A negative control only: tombstones purged on their age alone, without asking the other
   * members, which must let a replica that missed a delete bring the old value back.
   */
  readonly tombstonePurgeOnGraceAlone?: boolean;
  /**
   * A negative control only: strong keyspaces' operations need one acceptor's promise and
   * one accept instead of a majority, which must fail the linearizability checker.
   */
  readonly strongQuorumOfOne?: boolean;
  /**
   * A negative control only: chain replicas serve requests of an older chain epoch by the
   * role they had then, which must fail the linearizability checker.
   */
  readonly chainAcceptOlderEpochs?: boolean;
  /**
   * The elastic policy (docs/CLUSTER.md): when set, this node decides while it is the first
   * voter up. Every node answers load queries whether or not it has a policy.
   */
  readonly elastic?: ElasticSettings;
  /** How long one count of this node's data over every partition takes (default 30 s). */
  readonly loadCensusPassMs?: number;
  /**
   * A negative control only: a node that receives copies in a membership change reports
   * them made without making any, so the new replicas hold only what was written to them
   * during the change.
   */
  readonly handoffCopies?: boolean;
  /**
   * A negative control only: strong keyspaces change acceptors without fences (acceptors
   * take proposals from older maps) or without rewriting the registers to the new ones,
   * which must fail the linearizability checker (docs/PAXOS.md, "Acceptor changes").
   */
  readonly strongAcceptorChangeUnsafe?: 'ignore-fences' | 'skip-rewrite';
  /**
   * A negative control only: the map register's acceptors ignore their fence and a new
   * voter skips its fence step (docs/PAXOS.md, "Changing the voters").
   */
  readonly voterChangeUnsafe?: 'ignore-fences';
  /**
   * A negative control only, when false: chain replicas that a membership change adds join
   * their chains only after the commit, and the commit does not wait for them (the
   * behaviour before the tails joined first), which loses data a leaver held alone.
   */
  readonly chainTailsBeforeCommit?: boolean;
}

export const PROTOCOL_STAT_NAMES = [
  'paxos_one_round_trip_total',
  'paxos_two_round_trips_total',
  'paxos_quorum_reads_total',
  'paxos_quorum_reads_fallen_back_total',
  'paxos_retries_total',
  'paxos_conflicts_total',
  'paxos_timeouts_total',
  'paxos_purges_pending',
  'paxos_fenced_total',
  'paxos_keys_rewritten_total',
  'paxos_stray_rows_dropped_total',
  'chain_replicas',
  'handoff_copies_waiting',
  'handoff_copies_running',
  'handoff_copies_done',
  'handoff_keys_received',
  'handoff_bytes_received',
  'handoff_bytes_per_second',
  'handoff_pages_served_total',
  'handoff_stray_rows_dropped_total',
  'elastic_decisions_total',
  'tombstones_held',
  'tombstones_purged_total',
  'tombstone_purge_rounds_total',
  'tombstone_purge_rounds_refused_change_total',
  'tombstone_purge_rounds_refused_unreachable_total',
  'tombstone_purge_rounds_refused_timeout_total',
  'tombstone_purge_rounds_refused_declined_total',
  'tombstone_purge_keys_kept_total',
] as const;
export type ProtocolStatName = (typeof PROTOCOL_STAT_NAMES)[number];

/** How old a tombstone must be before it may be purged, unless the cluster says otherwise. */
export const DEFAULT_TOMBSTONE_GRACE_MS = 3_600_000;

export const DEFAULT_CLUSTER_TIMINGS = {
  requestTimeoutMs: 2000,
  hintsMax: 1_000_000,
  handoffIntervalMs: 1000,
  handoffBatchMax: 256,
} as const;

export type Input =
  | {
      readonly type: 'request';
      readonly nowMs: number;
      readonly requestId: number;
      readonly request: ClientRequest;
    }
  | {
      readonly type: 'peer';
      readonly nowMs: number;
      readonly from: string;
      readonly message: unknown;
    }
  | { readonly type: 'tick'; readonly nowMs: number }
  /** The shell's connection to a peer closed on its own: a hint that the peer may be dead. */
  | { readonly type: 'peer-lost'; readonly nowMs: number; readonly peer: string }
  /** Every batch emitted up to `batchId` (included) is persisted. */
  | { readonly type: 'persisted'; readonly nowMs: number; readonly batchId: number };

export type Effect =
  | PersistEffect
  | { readonly type: 'reply'; readonly requestId: number; readonly reply: ClientReply }
  | { readonly type: 'send'; readonly to: string; readonly message: PeerMessage }
  /** The node adopted a new cluster map (the shell updates its peer addresses). */
  | { readonly type: 'map'; readonly map: ClusterMap };

export interface MemberStatus {
  readonly id: string;
  /** A standby runs SWIM and owns nothing until it joins. */
  readonly role: 'member' | 'standby';
  /** An acceptor of the cluster map's register (docs/CLUSTER.md). */
  readonly voter: boolean;
  readonly peer: string;
  readonly http: string;
  readonly resp: string;
  readonly liveness: Liveness;
  readonly partitionsOwned: number;
  /** Partition chains this member belongs to (0 without chain keyspaces). */
  readonly chainsJoined: number;
}

export interface ClusterStatus {
  readonly clusterId: string;
  readonly state: 'forming' | 'ready';
  readonly epoch: number;
  readonly partitionCount: number;
  readonly members: readonly MemberStatus[];
  /** Hints this node holds, by the owner they wait for. */
  readonly hintsPending: Readonly<Record<string, number>>;
  readonly hintsTotal: number;
  /** While forming: the founders not heard from yet, or why formation is stuck. */
  readonly problem: string | null;
  /** With chain keyspaces: how many partition chains have fewer members than their n. */
  readonly chainsShort: number;
  /** 'left' once a map without this node arrived. */
  readonly left: boolean;
  /** The membership change in progress, if any. */
  readonly change: {
    readonly kind: string;
    readonly subject: string;
    readonly by: string | null;
    readonly epoch: number;
    /** Members that receive copies in it, and those that have made them all. */
    readonly receivers: readonly string[];
    readonly copied: readonly string[];
  } | null;
  /** This node's copies in the change in progress, and its handoff settings. */
  readonly handoff: HandoffStatus;
  /** This node's load as it reports it (null before its first count), and its policy. */
  readonly load: NodeLoad | null;
  readonly elastic: ElasticStatus | null;
}

/** Where a job's answer goes: a client of this node, or a peer that forwarded the request. */
type Origin =
  | { readonly kind: 'client'; readonly requestId: number }
  | { readonly kind: 'peer'; readonly to: string; readonly opId: number }
  /** Work the node started itself (a chain reconfiguration): told whether it succeeded. */
  | { readonly kind: 'internal'; readonly done: (ok: boolean) => void };

/** One client request in a cluster: its parts (keys) complete separately. */
interface Job {
  readonly origin: Origin;
  readonly op: 'get' | 'write';
  readonly results: (ReadResult | WriteResult | undefined)[];
  remaining: number;
  finished: boolean;
}

interface Target {
  readonly node: string;
  /** The down replica a fallback stands in for; '' for a replica. */
  readonly hintFor: string;
}

interface ReadOp {
  readonly kind: 'read';
  readonly job: Job;
  readonly index: number;
  readonly keyspace: Keyspace;
  readonly key: Uint8Array;
  readonly withVersions: boolean;
  readonly targets: readonly Target[];
  readonly needed: number;
  readonly answers: Map<string, StoredRecord | undefined>;
  failures: number;
  answered: boolean;
  readonly deadlineMs: number;
}

interface WriteOp {
  readonly kind: 'write';
  readonly job: Job;
  readonly indexes: readonly number[];
  readonly results: readonly WriteResult[];
  readonly needed: number;
  /** The nodes whose acknowledgement counts (this node included when it is a target). */
  readonly targets: readonly string[];
  /**
   * Targets whose acknowledgement is needed whatever the others say: the replicas a
   * membership change in progress adds (`needed` counts them on top of the W).
   */
  readonly required: readonly string[];
  readonly acked: Set<string>;
  readonly refused: Set<string>;
  answered: boolean;
  readonly deadlineMs: number;
  /** A conditional write (putIfNewer): what a new attempt needs; null for a plain one. */
  readonly conditional: ConditionalWrite | null;
}

interface ConditionalWrite {
  readonly keyspace: Keyspace;
  readonly items: readonly WriteItem[];
  readonly partition: number;
  readonly n: number;
  /** 1 for the first attempt. */
  readonly attempt: number;
}

interface ForwardOp {
  readonly kind: 'forward';
  readonly job: Job;
  readonly indexes: readonly number[];
  readonly deadlineMs: number;
  /** The coordinator it went to, and when. */
  readonly to: string;
  readonly sentMs: number;
  /**
   * Strong keys forwarded by one of their own replicas: the coordinator sends this node
   * CASPaxos messages while it works on them, so silence this long means it is gone (the
   * forward then fails at once instead of at its deadline). Null: wait for the deadline.
   */
  readonly silentAfterMs: number | null;
}

interface ScanOp {
  readonly kind: 'scan';
  readonly origin: Origin;
  readonly keyspace: Keyspace;
  readonly request: Extract<ClientRequest, { op: 'scan' }>;
  partition: number;
  afterKey: Uint8Array | null;
  readonly collected: Uint8Array[];
  rounds: number;
  waiting: number;
  answers: { keys: readonly Uint8Array[]; more: boolean }[];
  deadlineMs: number;
}

interface SumOp {
  readonly kind: 'count' | 'flush';
  readonly origin: Origin;
  waiting: number;
  total: number;
  failed: boolean;
  readonly deadlineMs: number;
}

interface HandoffOp {
  readonly kind: 'handoff';
  readonly owner: string;
  readonly keyspaceId: number;
  readonly key: Uint8Array;
  readonly record: StoredRecord;
  readonly deadlineMs: number;
}

/** What coordinating a write on one key needs, whichever way it goes. */
interface WriteParts {
  readonly job: Job;
  readonly indexes: readonly number[];
  readonly keyspace: Keyspace;
  readonly items: readonly WriteItem[];
  readonly partition: number;
  readonly n: number;
  readonly needed: number;
}

/**
 * A write that reads before it writes: the coordinator first merges R replicas' copies into
 * its own, so a mutation that depends on the current value (INCR, DEL, SET NX) builds on
 * every acknowledged write even right after the coordinator changed.
 */
interface PrefetchOp extends WriteParts {
  readonly kind: 'prefetch';
  readonly readNeeded: number;
  readonly targets: readonly Target[];
  readonly answers: Map<string, StoredRecord | undefined>;
  readonly refused: Set<string>;
  done: boolean;
  readonly deadlineMs: number;
}

/** One key of a request on a strong keyspace, run by this node's proposer. */
interface StrongOp {
  readonly kind: 'strong';
  readonly job: Job;
  readonly index: number;
  /** Null for a read. */
  readonly mutation: Mutation | null;
  readonly withVersions: boolean;
  readonly deadlineMs: number;
}

/** A change to the cluster map, as a request asked for it. */
interface MapChange {
  readonly origin: Origin;
  /** What it does, for errors. */
  readonly describe: string;
  /** The next map from the current one, or why the change cannot be made. */
  readonly change: (map: ClusterMap) => ClusterMap | KvError;
  readonly replyOf: (map: ClusterMap) => ClientReply;
}

/** A map change being written to the map's register. */
interface MapChangeOp {
  readonly kind: 'map-change';
  readonly change: MapChange;
  readonly attempt: number;
  readonly next: ClusterMap;
  readonly deadlineMs: number;
}

/** One key of a request on a chain keyspace, run by this node's chain requester. */
interface ChainOp {
  readonly kind: 'chain';
  readonly job: Job;
  readonly index: number;
  /** Null for a read. */
  readonly mutation: Mutation | null;
  readonly withVersions: boolean;
  readonly deadlineMs: number;
}

/** A repair of anti-entropy fetching a peer's copy of a key, to merge it here. */
interface RepairPullOp {
  readonly kind: 'repair-pull';
  readonly keyspace: Keyspace;
  readonly key: Uint8Array;
  readonly deadlineMs: number;
}

type Op =
  | RepairPullOp
  | ChainOp
  | ReadOp
  | WriteOp
  | ForwardOp
  | ScanOp
  | SumOp
  | HandoffOp
  | PrefetchOp
  | StrongOp
  | MapChangeOp;

/** A message a node sends itself: its proposer to its acceptor, its requester to its replica. */
interface Loopback {
  readonly protocol: 'paxos' | 'chain';
  readonly message: unknown;
  /** The map epoch a CASPaxos request was sent under. */
  readonly epoch?: number;
}

/** What to do once a batch is persisted. */
type Waiter =
  | { readonly kind: 'reply'; readonly origin: Origin; readonly reply: ClientReply }
  | { readonly kind: 'write-ack'; readonly opId: number }
  /** A coordinated write waiting for this node's incarnation to be durable. */
  | (WriteParts & { readonly kind: 'coordinate'; readonly attempt: number })
  | {
      readonly kind: 'read-local';
      readonly opId: number;
      readonly record: StoredRecord | undefined;
    }
  | { readonly kind: 'send'; readonly to: string; readonly message: PeerMessage }
  | { readonly kind: 'sum'; readonly opId: number; readonly value: number }
  /** A message from this node to itself (CASPaxos, or chain replication). */
  | { readonly kind: 'loopback'; readonly message: Loopback };

const MAP_META_NAME = 'cluster-map';
const HELLO_INTERVAL_MS = 500;
/** How much longer a forwarding node waits than the coordinator's own request timeout. */
const FORWARD_GRACE_MS = 250;
/** Op ids: 2^32 per life, lives numbered mod 2^20, so ids stay safe integers. */
const OP_IDS_PER_LIFE = 2 ** 32;
const INCARNATIONS_IN_OP_IDS = 2 ** 20;
/** Forwards are remembered for this many forward timeouts, and at most this many. */
const FORWARD_MEMORY_FACTOR = 4;
const RECENT_FORWARDS_MAX = 100_000;
const MAP_FETCH_INTERVAL_MS = 500;
/** Partitions one listing request may visit before it answers with a cursor. */
const SCAN_ROUNDS_MAX = 32;
/** The proposer's longest backoff between attempts (its default). */
const PROPOSER_BACKOFF_MS_MAX = 200;
/** What a forwarding replica adds to a coordinator's longest silence, for the network. */
const SILENCE_MARGIN_MS = 100;
/** How often a node looks for chains to repair (members down, chains to join). */
const CHAIN_CHECK_INTERVAL_MS = 200;
/** A pre-copy pass that brought at most this many records lets the node join the chain. */
const JOIN_PASS_RECORDS_MAX = 256;
/** Bytes a chain key adds to the user key: the keyspace id. */
const CHAIN_KEY_PREFIX_BYTES = 4;
/** Compare-and-set attempts of one map change that other changes overtake. */
const MAP_CHANGE_ATTEMPTS_MAX = 3;
/** The key of the cluster map's register (in MAP_REGISTER_KEYSPACE_ID). */
const MAP_REGISTER_KEY = new Uint8Array([0x6d, 0x61, 0x70]); // "map"
/** Conditional attempts of a blind write before it is written plainly over what it merged. */
const CONDITIONAL_ATTEMPTS_MAX = 3;

/** Hint entries examined per handoff round to find the owners that have hints. */
const HINT_OWNER_SCAN_MAX = 4096;
/** Bytes of a cluster scan cursor before the key: partition (u16). */
const CURSOR_PARTITION_BYTES = 2;

export class Node {
  readonly nodeId: string;
  private readonly config: NodeCoreConfig;
  private readonly store: ReplicaStore;
  /** The batch that makes this node's incarnation durable (0: none needed). */
  private readonly incarnationBatchId: number;
  private readonly prng: Prng;
  private map: ClusterMap | null = null;
  private readonly keyspacesByName = new Map<string, Keyspace>();
  private readonly keyspacesById = new Map<number, Keyspace>();
  /** The ring walk of each partition (replicas first, then fallbacks), built lazily. */
  private walks: (readonly string[] | undefined)[] = [];
  /** addedReplicasOf's answers for this map, by partition and n. */
  private readonly addedReplicas = new Map<number, readonly string[]>();
  /** Members that own partitions (standbys own none): what `n: all` and n are capped at. */
  private ownerCount = 1;
  private swim: Swim | null = null;
  private readonly ops = new Map<number, Op>();
  /**
   * Op ids name a request to a peer and come back in its answer. Each life of a node draws
   * them from a range of its own (its incarnation times 2^32), so that an answer to a
   * request of an earlier life, arriving late (a peer paused, a message delayed), never
   * completes an op of this one. Within a life they wrap after 2^32, long after the op that
   * had an id last has timed out.
   */
  private opCounter = 0;
  private readonly waiters = new BatchWaiters<Waiter>();
  private effects: Effect[] = [];
  /** While forming: what each founder told us of itself. */
  /** Nodes whose request to join is being written to the map. */
  private readonly joinsRunning = new Set<string>();
  private readonly founderInfos = new Map<string, MemberInfo>();
  private formingProblem: string | null = null;
  private nextHelloMs = 0;
  private nextHandoffMs = 0;
  private lastMapFetchMs = -Infinity;
  private lastMapToDepartedMs = -Infinity;
  private droppedMessages = 0;
  /**
   * Forwards seen lately, by sender, its incarnation and op id, with when they came (oldest
   * first): a forward the network delivers twice must not run its write twice, since the
   * second run would come after, and undo, the client's next write.
   */
  private readonly recentForwards = new Map<string, number>();
  /** The time of the latest input, for work that an answer triggers (read repair). */
  private lastNowMs = 0;
  /** CASPaxos for strong keyspaces (and the cluster map): this node's acceptor and proposer. */
  private readonly registers: RegisterHost;
  /** Merkle trees and exchanges between replicas (docs/ANTI-ENTROPY.md); null: off. */
  private readonly antiEntropy: AntiEntropyHost | null;
  /** The partitions this node replicates and their other replicas, for exchanges. */
  private exchangeCandidatesCache: ExchangeCandidate[] | null = null;
  /** Tombstone purge rounds of eventual keyspaces (docs/ANTI-ENTROPY.md); null: no cluster. */
  private readonly tombstones: TombstonePurger | null;
  private sweptPartitionsCache: SweptPartition[] | null = null;
  /** Copies this node makes and serves while the membership changes (docs/HANDOFF.md). */
  private readonly handoff: HandoffHost;
  private readonly census: LoadCensus | null;
  private readonly elastic: ElasticHost | null;
  /** A report that this node's copies are made is being written to the map. */
  private copiesReportRunning = false;
  /** Set when a map without this node arrived: it left (or was removed from) the cluster. */
  private leftAtEpoch: number | null = null;
  /** When each peer was last heard from (any message). */
  private readonly lastHeardMs = new Map<string, number>();
  /** Coordinators that left a strong forward unanswered in silence; cleared by any message. */
  private readonly silentPeers = new Set<string>();
  /** Messages from this node to itself, handled before the step ends. */
  private loopback: Loopback[] = [];
  /** Chain replication for chain keyspaces: this node's replicas and its requester. */
  private readonly chains: ChainHost;
  /** The map epoch whose chains were last handed to the chain host. */
  private chainsSyncedEpoch = 0;
  /** Partitions this node is copying to join their chain, and those ready to join. */
  private readonly precopying = new Set<number>();
  private readonly readyToJoin = new Set<number>();
  /** A chain change (removals or joins) is being made. */
  private chainChangeRunning = false;
  private nextChainCheckMs = 0;

  constructor(config: NodeCoreConfig, view: StorageReader) {
    assert(config.nodeId.length > 0, 'node id is empty');
    assert(Number.isInteger(Math.log2(config.partitionCount)), 'partition count is a power of two');
    this.config = config;
    this.nodeId = config.nodeId;
    this.store = new ReplicaStore(config.nodeId, config.limits, config.partitionCount, view);
    // A single node sends no versions anywhere, so only a cluster member needs a new life.
    this.incarnationBatchId = config.cluster === undefined ? 0 : this.store.beginIncarnation();
    this.prng = new Prng(config.cluster?.seed ?? 1);
    this.chains = new ChainHost(config.nodeId, this.store.incarnation, this.store, {
      limits: {
        ...DEFAULT_CHAIN_LIMITS,
        keyBytesMax: config.limits.keyBytesMax + CHAIN_KEY_PREFIX_BYTES,
        valueBytesMax: config.limits.valueBytesMax,
      },
      ...(config.cluster?.chainAcceptOlderEpochs === true
        ? { unsafe: { acceptOlderEpochs: true } }
        : {}),
    });
    this.registers = new RegisterHost(
      config.nodeId,
      this.store.incarnation,
      config.partitionCount,
      this.store,
      // Its own sequence, so that SWIM's draws do not depend on strong keyspaces' traffic.
      new Prng(((config.cluster?.seed ?? 1) ^ 0x5bd1e995) >>> 0),
      {
        proposer: {
          // Several attempts fit in one request timeout.
          phaseTimeoutMs: this.strongPhaseTimeoutMs(),
          backoffMsMax: PROPOSER_BACKOFF_MS_MAX,
          ...(config.cluster?.strongQuorumOfOne === true
            ? { unsafe: { quorumOfOne: true, allowDisjointQuorums: true } }
            : {}),
        },
        scanPersisted: (start, end, limit) => view.scan({ start, end, limit }),
        ...(config.cluster?.strongAcceptorChangeUnsafe === 'ignore-fences'
          ? { ignoreFences: true, copy: { unsafe: { ignoreFence: true } } }
          : {}),
        ...(config.cluster?.strongAcceptorChangeUnsafe === 'skip-rewrite'
          ? { copy: { unsafe: { skipRewrite: true } } }
          : {}),
        ...(config.cluster?.voterChangeUnsafe === 'ignore-fences' ? { ignoreMapFences: true } : {}),
      },
    );
    this.registers.setAcceptorsOf((keyspaceId, partition) => {
      if (keyspaceId === MAP_REGISTER_KEYSPACE_ID) {
        return this.map === null ? undefined : mapRegisterAcceptors(this.map);
      }
      const keyspace = this.keyspacesById.get(keyspaceId);
      if (this.map === null || keyspace?.consistency !== 'strong') return undefined;
      return strongAcceptorsOf(this.map, keyspace, partition);
    });
    const store = this.store;
    this.handoff = new HandoffHost(config.nodeId, {
      mergeReceived: (keyspace, key, record, nowMs) => {
        const merged = store.mergeRecord(keyspace, key, record, nowMs);
        return merged.ok ? merged.waitFor : null;
      },
      persistRows: (writes, durable) => store.persistRows(writes, durable),
      scanRows: (start, end) => store.scanRows(start, end),
      readRow: (key) => store.readRow(key),
      partitionScan: (keyspaceId, partition) => storagePartitionScan(view, keyspaceId, partition),
      dropKeys: (keyspaceId, partition, keys) => store.dropKeys(keyspaceId, partition, keys),
      get lastPersistedBatchId() {
        return store.lastPersistedBatchId;
      },
    });
    this.handoff.otherCopies = this.registers;
    this.handoff.precopies = this.chains;
    this.antiEntropy =
      config.cluster === undefined || config.cluster.antiEntropy === false
        ? null
        : new AntiEntropyHost(store, store.incarnation, 0, {
            ...(config.cluster.antiEntropyIntervalMs === undefined
              ? {}
              : { intervalMs: config.cluster.antiEntropyIntervalMs }),
          });
    this.census =
      config.cluster === undefined
        ? null
        : new LoadCensus(config.partitionCount, config.cluster.loadCensusPassMs);
    this.elastic =
      config.cluster?.elastic === undefined
        ? null
        : new ElasticHost(config.nodeId, config.cluster.elastic);
    const cluster = config.cluster;
    if (cluster === undefined) {
      this.tombstones = null;
    } else {
      const graceMs =
        cluster.tombstoneGraceMs ??
        Math.max(
          DEFAULT_TOMBSTONE_GRACE_MS,
          GRACE_FACTOR_MIN * Math.max(cluster.requestTimeoutMs, cluster.handoffIntervalMs),
        );
      const problem = tombstoneGraceProblem(
        graceMs,
        cluster.requestTimeoutMs,
        cluster.handoffIntervalMs,
      );
      assert(problem === null, problem ?? '');
      this.tombstones = new TombstonePurger(config.nodeId, store, store.incarnation, 0, {
        graceMs,
        ...(cluster.tombstoneSweepIntervalMs === undefined
          ? {}
          : { passIntervalMs: cluster.tombstoneSweepIntervalMs }),
        purgeOnGraceAlone: cluster.tombstonePurgeOnGraceAlone === true,
      });
    }
    const antiEntropy = this.antiEntropy;
    if (antiEntropy !== null) {
      store.onDataChange = (storageKey, before, after) => {
        const { keyspaceId, partition, key } = parseDataKey(storageKey);
        antiEntropy.onDataChange(keyspaceId, partition, key, before, after);
      };
    }
    const storedBytes = this.store.readMeta(MAP_META_NAME);
    const stored = storedBytes === undefined ? null : decodeMap(storedBytes);
    if (stored !== null) {
      assert(stored.partitionCount === config.partitionCount, 'stored map has our partitions');
      assert(
        stored.members.some((member) => member.id === config.nodeId),
        'the stored map has this node as a member',
      );
      this.install(stored);
    } else if (
      config.cluster === undefined ||
      (config.cluster.founders.length === 0 && config.cluster.joinVia === undefined)
    ) {
      const self = config.cluster?.self ??
        config.self ?? { id: config.nodeId, peer: '', http: '', resp: '' };
      this.install(
        initialMap(
          config.cluster?.clusterId ?? 'local',
          config.partitionCount,
          [self],
          config.keyspaces,
        ),
      );
    } else {
      this.founderInfos.set(config.nodeId, config.cluster.self);
    }
  }

  keyspaces(): readonly Keyspace[] {
    return this.map?.keyspaces ?? [];
  }

  clusterMap(): ClusterMap | null {
    return this.map;
  }

  /** Batches emitted and not yet persisted. */
  pendingBatchCount(): number {
    return this.store.pendingBatchCount();
  }

  liveness(id: string): Liveness {
    if (id === this.nodeId || this.swim === null) return 'alive';
    return this.swim.liveness(id);
  }

  clusterStatus(): ClusterStatus {
    const map = this.map;
    const owned = new Map<string, number>();
    for (const owner of map?.owners ?? []) owned.set(owner, (owned.get(owner) ?? 0) + 1);
    const joined = new Map<string, number>();
    let chainsShort = 0;
    if (map?.chains !== undefined) {
      const n = chainLengthOf(map);
      for (const config of map.chains) {
        if (config.members.length < n) chainsShort++;
        for (const { id } of config.members) joined.set(id, (joined.get(id) ?? 0) + 1);
      }
    }
    const voters = map === null ? [] : votersOf(map);
    const members: MemberStatus[] = (map?.members ?? []).map((member) => ({
      ...member,
      role: member.role ?? 'member',
      voter: voters.includes(member.id),
      liveness: this.liveness(member.id),
      partitionsOwned: owned.get(member.id) ?? 0,
      chainsJoined: joined.get(member.id) ?? 0,
    }));
    const founders = this.config.cluster?.founders ?? [];
    const missing = founders.filter((id) => !this.founderInfos.has(id));
    return {
      clusterId: map?.clusterId ?? this.config.cluster?.clusterId ?? 'local',
      state: map === null ? 'forming' : 'ready',
      epoch: map?.epoch ?? 0,
      partitionCount: this.config.partitionCount,
      members,
      hintsPending: Object.fromEntries(this.store.hintOwners(HINT_OWNER_SCAN_MAX)),
      hintsTotal: this.store.hintCount(),
      chainsShort,
      left: this.leftAtEpoch !== null,
      change:
        map?.change === undefined
          ? null
          : {
              kind: map.change.kind,
              subject: map.change.subject,
              by: map.change.by ?? null,
              epoch: map.change.epoch,
              receivers: receiversOf(map),
              copied: map.change.copied,
            },
      handoff: this.handoff.status(this.lastNowMs),
      load: this.census?.load(this.lastNowMs) ?? null,
      elastic: this.elastic?.status() ?? null,
      problem:
        map !== null
          ? null
          : (this.formingProblem ?? `waiting to hear from ${missing.join(', ') || 'peers'}`),
    };
  }

  /**
   * Counters of the linearizable protocols, for metrics: CASPaxos operations by path,
   * retries, conflicts, timeouts and purges waiting; chain replicas held here.
   */
  protocolStats(): Readonly<Record<ProtocolStatName, number>> {
    const paxos = this.registers.stats;
    return {
      paxos_one_round_trip_total: paxos.oneRoundTrip,
      paxos_two_round_trips_total: paxos.twoRoundTrips,
      paxos_quorum_reads_total: paxos.quorumReads,
      paxos_quorum_reads_fallen_back_total: paxos.quorumReadsFallenBack,
      paxos_retries_total: paxos.retries,
      paxos_conflicts_total: paxos.conflicts,
      paxos_timeouts_total: paxos.timeouts,
      paxos_purges_pending: this.registers.pendingPurgeCount(),
      paxos_fenced_total: this.registers.fencedRequests,
      paxos_keys_rewritten_total: this.registers.keysRewritten,
      paxos_stray_rows_dropped_total: this.registers.strayRowsDropped,
      chain_replicas: this.chains.replicaCount(),
      ...this.handoff.stats(this.lastNowMs),
      elastic_decisions_total: this.elastic?.status().decisions ?? 0,
      ...this.tombstoneStats(),
    };
  }

  private tombstoneStats(): Record<Extract<ProtocolStatName, `tombstone${string}`>, number> {
    const stats = this.tombstones?.stats();
    return {
      tombstones_held: stats?.tombstonesHeld ?? 0,
      tombstones_purged_total: stats?.tombstonesPurged ?? 0,
      tombstone_purge_rounds_total: stats?.roundsStarted ?? 0,
      tombstone_purge_rounds_refused_change_total: stats?.roundsRefusedChange ?? 0,
      tombstone_purge_rounds_refused_unreachable_total: stats?.roundsRefusedUnreachable ?? 0,
      tombstone_purge_rounds_refused_timeout_total: stats?.roundsRefusedTimeout ?? 0,
      tombstone_purge_rounds_refused_declined_total: stats?.roundsRefusedDeclined ?? 0,
      tombstone_purge_keys_kept_total:
        (stats?.keysKeptDiffering ?? 0) + (stats?.keysKeptHinted ?? 0),
    };
  }

  /**
   * Sets this node's handoff: the bytes per second its copies may pull in all (0: no limit),
   * and whether they are paused. Takes effect at once; not saved across restarts.
   */
  setHandoff(settings: { readonly bytesPerSecond?: number; readonly paused?: boolean }): void {
    if (settings.bytesPerSecond !== undefined) this.handoff.setRate(settings.bytesPerSecond);
    if (settings.paused !== undefined) this.handoff.setPaused(settings.paused, this.lastNowMs);
  }

  /** Peer messages dropped as malformed or unexpected, for metrics. */
  droppedMessageCount(): number {
    return this.droppedMessages;
  }

  step(input: Input): Effect[] {
    this.effects = [];
    this.syncChains(input.nowMs);
    switch (input.type) {
      case 'request':
        this.onRequest(input.requestId, input.request, input.nowMs);
        break;
      case 'peer':
        this.onPeerMessage(input.from, input.message, input.nowMs);
        break;
      case 'tick':
        this.onTick(input.nowMs);
        break;
      case 'peer-lost':
        this.onPeerLost(input.peer);
        break;
      case 'persisted':
        this.onPersisted(input.batchId);
        break;
    }
    this.drainLoopback(input.nowMs);
    const persists = this.store.drainPersists();
    if (persists.length === 0) return this.effects;
    // Persists go first: the shell starts them before it sends what this step produced. The
    // drained list is ours to extend: no third list per step.
    const effects: Effect[] = persists;
    for (const effect of this.effects) effects.push(effect);
    return effects;
  }

  // ---- client requests ----

  private onRequest(requestId: number, request: ClientRequest, nowMs: number): void {
    this.census?.countRequest(nowMs);
    this.handleRequest({ kind: 'client', requestId }, request, nowMs, false);
  }

  private handleRequest(
    origin: Origin,
    request: ClientRequest,
    nowMs: number,
    forwarded: boolean,
  ): void {
    const map = this.map;
    if (map === null) {
      return this.fail(
        origin,
        kvError(ErrorCode.UNAVAILABLE, 'the cluster is forming: not every founder has answered'),
      );
    }
    if (this.leftAtEpoch !== null) {
      return this.fail(
        origin,
        kvError(
          ErrorCode.UNAVAILABLE,
          `this node left the cluster (map epoch ${this.leftAtEpoch}): ask another node, and stop this one`,
        ),
      );
    }
    if (request.op === 'createKeyspace') return this.createKeyspace(origin, request, nowMs);
    if (request.op === 'changeMembership') return this.changeMembership(origin, request, nowMs);
    const keyspace = this.keyspacesByName.get(request.keyspace);
    if (keyspace === undefined) {
      return this.fail(
        origin,
        kvError(ErrorCode.UNKNOWN_KEYSPACE, `keyspace '${request.keyspace}' does not exist`),
      );
    }
    if (keyspace.consistency === 'strong') {
      return this.strongRequest(origin, keyspace, request, nowMs, forwarded);
    }
    if (keyspace.consistency === 'chain')
      return this.chainRequest(origin, keyspace, request, nowMs);
    if (map.members.length === 1) return this.localRequest(origin, keyspace, request, nowMs);
    switch (request.op) {
      case 'get':
        return this.clusterGet(origin, keyspace, request, nowMs);
      case 'write':
        return this.clusterWrite(origin, keyspace, request, nowMs, forwarded);
      case 'scan':
        if (request.scope === 'node') return this.localRequest(origin, keyspace, request, nowMs);
        return this.startScan(origin, keyspace, request, nowMs);
      case 'count':
        return this.startSum('count', origin, keyspace, nowMs);
      case 'flush':
        return this.startSum('flush', origin, keyspace, nowMs);
    }
  }

  // ---- strong keyspaces (CASPaxos, docs/PAXOS.md) ----

  /**
   * A request on a strong keyspace. Each key is a register whose acceptors are its N
   * replicas, strictly (no fallbacks). The key's first replica that is alive runs the
   * operation with its proposer; other nodes forward it there. One proposer per key keeps the
   * one-round-trip path and spares the retries (and unknown outcomes) of proposers outbidding
   * each other; two proposers on a key (while liveness views differ) are safe, only slower.
   */
  private strongRequest(
    origin: Origin,
    keyspace: Keyspace,
    request: KeyspaceRequest,
    nowMs: number,
    forwarded: boolean,
  ): void {
    const problem = this.linearizableRequestProblem('strong', request);
    if (problem !== null) return this.fail(origin, problem);
    if (request.op !== 'get' && request.op !== 'write') return;
    const keys = request.op === 'get' ? request.keys : request.items.map((item) => item.key);
    const commands: Command[] = [];
    if (request.op === 'write') {
      for (const item of request.items) {
        commands.push(commandOf(item.mutation));
      }
    }
    const job = this.newJob(origin, request.op, keys.length);
    // Keys for one coordinator go in one forward, in order: items on one key stay in order.
    const forwards = new Map<string, number[]>();
    const replicaOfAll = new Map<string, boolean>();
    const withVersions = request.op === 'get' ? request.withVersions !== false : true;
    for (let index = 0; index < keys.length && !job.finished; index++) {
      const key = keys[index]!;
      // While a change moves the partition, both acceptor sets (joint quorums).
      const configuration = strongAcceptorsOf(
        this.map!,
        keyspace,
        partitionOf(keyspace.id, key, this.config.partitionCount),
      );
      const acceptors = configuration.ids;
      // One proposer per key where possible: its first replica that is alive (a suspect one
      // is passed over, so a dead coordinator costs only the time SWIM takes to suspect it).
      const coordinator =
        acceptors.find(
          (id) =>
            id === this.nodeId || (this.liveness(id) === 'alive' && !this.silentPeers.has(id)),
        ) ?? acceptors.find((id) => this.isUp(id));
      if (forwarded || coordinator === this.nodeId) {
        const opId = this.takeOpId();
        this.ops.set(opId, {
          kind: 'strong',
          job,
          index,
          mutation: request.op === 'write' ? request.items[index]!.mutation : null,
          withVersions,
          deadlineMs: nowMs + this.requestTimeoutMs(),
        });
        const command: Command = request.op === 'write' ? commands[index]! : { kind: 'get' };
        this.applyRegisters(
          this.registers.submit(opId, keyspace.id, key, command, configuration, nowMs),
        );
        continue;
      }
      if (coordinator === undefined) {
        return this.failJob(job, unavailable(`no replica of key's partition is up`));
      }
      let indexes = forwards.get(coordinator);
      if (indexes === undefined) forwards.set(coordinator, (indexes = []));
      indexes.push(index);
      const isReplica = acceptors.includes(this.nodeId);
      replicaOfAll.set(coordinator, (replicaOfAll.get(coordinator) ?? true) && isReplica);
    }
    for (const [coordinator, indexes] of forwards) {
      if (job.finished) break;
      const forwardedRequest: ClientRequest =
        request.op === 'get'
          ? {
              op: 'get',
              keyspace: keyspace.name,
              keys: indexes.map((i) => request.keys[i]!),
              withVersions,
            }
          : { op: 'write', keyspace: keyspace.name, items: indexes.map((i) => request.items[i]!) };
      // A replica of these keys hears from a live coordinator while it works on them.
      const silentAfterMs =
        replicaOfAll.get(coordinator) === true ? this.silencePatienceMs() : null;
      this.forward(coordinator, job, indexes, forwardedRequest, nowMs, silentAfterMs);
    }
  }

  /** Carries out what the register host asks: sends (some after a batch), completions. */
  private applyRegisters(output: HostOutput): void {
    for (const { to, message, afterBatch, epoch } of output.sends) {
      // An operation's requests carry the epoch of the map its acceptors came from.
      const sentEpoch = epoch ?? this.epoch();
      if (to === this.nodeId) {
        this.after(afterBatch, {
          kind: 'loopback',
          message: { protocol: 'paxos', message, epoch: sentEpoch },
        });
        continue;
      }
      const peerMessage: PeerMessage = [MessageType.paxos, sentEpoch, message];
      if (afterBatch === 0) this.send(to, peerMessage);
      else this.after(afterBatch, { kind: 'send', to, message: peerMessage });
    }
    for (const { operationId, outcome } of output.completions) {
      const op = this.ops.get(operationId);
      if (op?.kind === 'map-change') {
        this.ops.delete(operationId);
        this.onMapChangeDone(op, outcome, this.lastNowMs);
        continue;
      }
      if (op === undefined || op.kind !== 'strong') continue;
      this.ops.delete(operationId);
      if (outcome.kind === 'error') {
        this.failJob(op.job, strongError(outcome));
      } else if (outcome.kind === 'ok') {
        this.completePart(
          op.job,
          op.index,
          op.mutation === null
            ? strongReadResult(outcome.current, op.withVersions)
            : strongWriteResult(op.mutation, outcome),
        );
      }
    }
  }

  /** Hands this node's messages to itself to its hosts, until none are left. */
  private drainLoopback(nowMs: number): void {
    while (this.loopback.length > 0) {
      const messages = this.loopback;
      this.loopback = [];
      for (const { protocol, message, epoch } of messages) {
        if (protocol === 'paxos') {
          this.applyRegisters(this.registers.receive(this.nodeId, message, nowMs, epoch));
        } else {
          this.applyChains(this.chains.receive(this.nodeId, message, nowMs), nowMs);
        }
      }
    }
  }

  // ---- chain keyspaces (chain replication, docs/CHAIN.md) ----

  /**
   * A request on a chain keyspace. Every node runs a chain requester: it sends each write to
   * the head of the key's partition chain and each read to its tail, as the map says; no
   * forwarding is needed. All chain keyspaces share the partitions' chains (keys carry the
   * keyspace id).
   */
  private chainRequest(
    origin: Origin,
    keyspace: Keyspace,
    request: KeyspaceRequest,
    nowMs: number,
  ): void {
    const problem = this.linearizableRequestProblem('chain', request);
    if (problem !== null) return this.fail(origin, problem);
    const read = request.op === 'get';
    const keys = read ? request.keys : (request as WriteRequest).items.map((item) => item.key);
    const chainRequests: ChainRequest[] = [];
    for (let index = 0; index < keys.length; index++) {
      const chainKey = chainKeyOf(keyspace.id, keys[index]!);
      if (read) {
        chainRequests.push({ kind: 'read', key: chainKey });
        continue;
      }
      const mutation = (request as WriteRequest).items[index]!.mutation;
      const operation = chainOperationOf(mutation, chainKey);
      if ('code' in operation) return this.fail(origin, operation);
      chainRequests.push({ kind: 'write', operation });
    }
    const job = this.newJob(origin, read ? 'get' : 'write', keys.length);
    const withVersions = read ? request.withVersions !== false : true;
    for (let index = 0; index < keys.length && !job.finished; index++) {
      const opId = this.takeOpId();
      const partition = partitionOf(keyspace.id, keys[index]!, this.config.partitionCount);
      const output = this.chains.submit(
        opId,
        partition,
        chainRequests[index]!,
        nowMs,
        this.requestTimeoutMs(),
      );
      if (output === null) {
        return this.failJob(
          job,
          kvError(ErrorCode.OVERLOADED, 'too many chain requests outstanding on this node'),
        );
      }
      this.ops.set(opId, {
        kind: 'chain',
        job,
        index,
        mutation: read ? null : (request as WriteRequest).items[index]!.mutation,
        withVersions,
        deadlineMs: nowMs + this.requestTimeoutMs() + FORWARD_GRACE_MS,
      });
      this.applyChains(output, nowMs);
    }
  }

  /**
   * What a strong or chain keyspace refuses in any request: listing, counting and flushing
   * (not supported yet), quorum overrides, bad keys, and the eventual-only parts of writes.
   */
  private linearizableRequestProblem(
    consistency: 'strong' | 'chain',
    request: KeyspaceRequest,
  ): KvError | null {
    if (request.op !== 'get' && request.op !== 'write') {
      const what =
        request.op === 'flush' ? 'flushing' : request.op === 'count' ? 'counting' : 'listing';
      return kvError(
        ErrorCode.INVALID_ARGUMENT,
        `${what} a ${consistency} keyspace is not supported yet`,
      );
    }
    const quorum = request.op === 'get' ? request.r : request.w;
    if (quorum !== undefined) {
      return kvError(
        ErrorCode.INVALID_ARGUMENT,
        `${consistency} keyspaces take no ${request.op === 'get' ? 'r' : 'w'}: ${
          consistency === 'strong'
            ? "every operation needs a majority of the key's replicas"
            : 'every write reaches the whole chain and every read its tail'
        }`,
      );
    }
    const keys = request.op === 'get' ? request.keys : request.items.map((item) => item.key);
    const invalid = this.store.checkKeys(keys);
    if (invalid !== null) return invalid;
    return request.op === 'write'
      ? linearizableItemsProblem(request.items, this.config.limits, consistency)
      : null;
  }

  /** Carries out what the chain host asks: sends (some after a batch), completions, joins. */
  private applyChains(output: ChainHostOutput, nowMs: number): void {
    for (const { to, message, afterBatch } of output.sends) {
      if (to === this.nodeId) {
        this.after(afterBatch, { kind: 'loopback', message: { protocol: 'chain', message } });
        continue;
      }
      const peerMessage: PeerMessage = [MessageType.chain, this.epoch(), message];
      if (afterBatch === 0) this.send(to, peerMessage);
      else this.after(afterBatch, { kind: 'send', to, message: peerMessage });
    }
    for (const { operationId, completion } of output.completions) {
      const op = this.ops.get(operationId);
      if (op === undefined || op.kind !== 'chain') continue;
      this.ops.delete(operationId);
      const result = chainResultOf(completion, op.mutation, op.withVersions);
      if ('code' in result) this.failJob(op.job, result);
      else this.completePart(op.job, op.index, result);
    }
    for (const { partition, report } of output.precopied) {
      // A small pass: joining now leaves little for the copy that follows.
      if (this.precopying.has(partition) && report.recordsInPass <= JOIN_PASS_RECORDS_MAX) {
        this.readyToJoin.add(partition);
      }
    }
    if (output.configWanted) this.fetchMap(nowMs);
  }

  /** Hands the map's chains to the chain host when the map changed since the last time. */
  private syncChains(nowMs: number): void {
    const map = this.map;
    if (map?.chains === undefined || this.chainsSyncedEpoch === map.epoch) return;
    this.chainsSyncedEpoch = map.epoch;
    for (const config of map.chains) {
      if (config.members.some((member) => member.id === this.nodeId)) {
        this.precopying.delete(config.partition);
        this.readyToJoin.delete(config.partition);
      }
      this.applyChains(this.chains.configure(config, nowMs), nowMs);
    }
  }

  /**
   * Keeps chains whole, through map changes: a chain's first member that this node does not
   * see down is the one that removes the members it sees down, and only while its own replica
   * has caught up; and this node copies, then joins as the tail, every chain of a partition
   * it is a replica of but not a member (after a restart or a false suspicion), or will be
   * one under the owners of the membership change in progress (it joins before the commit:
   * docs/CHAIN.md, "Membership changes"). A caught-up member that the chain wants removes the
   * members it does not want (tails of an aborted change); a replica this node holds for a
   * chain that neither names nor wants it is dropped. One change at a time.
   *
   * Why the remover must be caught up: a member appended as the tail holds only part of the
   * partition until its copy from its predecessor ends. Were its predecessors removed before
   * that (they went down), the chain would be left with replicas missing writes it had
   * acknowledged. So a chain whose surviving replicas are all still copying waits for a
   * caught-up one to return instead.
   */
  private checkChains(nowMs: number): void {
    const map = this.map;
    if (map?.chains === undefined || this.chainChangeRunning || nowMs < this.nextChainCheckMs) {
      return;
    }
    this.nextChainCheckMs = nowMs + CHAIN_CHECK_INTERVAL_MS;
    const isDown = (id: string): boolean => this.liveness(id) === 'down';
    const caughtUpHere = (config: ChainConfig): boolean => {
      const replica = this.chains.replica(config.partition);
      return replica !== undefined && replica.epoch === config.epoch && replica.isCaughtUp;
    };
    const mayRemoveFrom = (config: ChainConfig): boolean => {
      const first = config.members.find((member) => !isDown(member.id));
      return first?.id === this.nodeId && caughtUpHere(config);
    };
    if (removalsOf(map, isDown, mayRemoveFrom).length > 0) {
      return this.changeChains(
        'remove members marked down from their chains',
        (current) => removalsOf(current, isDown, mayRemoveFrom),
        nowMs,
      );
    }
    const wantedIn = (current: ClusterMap, partition: number): string[] =>
      this.config.cluster?.chainTailsBeforeCommit === false
        ? chainReplicas(current, current.owners, partition)
        : wantedChainMembers(current, partition);
    const mayTrim = (config: ChainConfig): boolean => {
      const wanted = wantedIn(map, config.partition);
      const first = config.members.find((member) => wanted.includes(member.id));
      return first?.id === this.nodeId && caughtUpHere(config);
    };
    if (chainsTrimmed(map, mayTrim).length > 0) {
      return this.changeChains(
        'remove members their chains no longer want',
        (current) => chainsTrimmed(current, mayTrim),
        nowMs,
      );
    }
    for (const config of map.chains) {
      const partition = config.partition;
      if (config.members.some((member) => member.id === this.nodeId)) continue;
      if (!wantedIn(map, partition).includes(this.nodeId)) {
        this.precopying.delete(partition);
        this.readyToJoin.delete(partition);
        if (this.chains.replica(partition) !== undefined) this.chains.drop(partition);
        continue;
      }
      if (!this.precopying.has(partition)) {
        this.precopying.add(partition);
        this.applyChains(this.chains.precopy(config, nowMs), nowMs);
      }
    }
    if (this.readyToJoin.size > 0) {
      const ready = [...this.readyToJoin];
      this.changeChains(
        `join ${ready.length} chains as their tail`,
        (current) =>
          ready
            .map((partition) => current.chains![partition]!)
            .filter(
              (config) =>
                !config.members.some((member) => member.id === this.nodeId) &&
                wantedIn(current, config.partition).includes(this.nodeId),
            )
            .map((config) => withTail(config, this.nodeId)),
        nowMs,
      );
    }
  }

  /**
   * Tells the handoff host which chains of the change in progress this node has joined: a
   * member at the map's chain epoch, caught up. Its report waits for every one of them.
   */
  private noteChainJoins(map: ClusterMap): void {
    for (const partition of this.handoff.chainPartitions()) {
      const config = map.chains?.[partition];
      const replica = this.chains.replica(partition);
      const joined =
        this.config.cluster?.chainTailsBeforeCommit === false ||
        chainWithoutSource(map, partition) ||
        (config !== undefined &&
          config.members.some((member) => member.id === this.nodeId) &&
          replica !== undefined &&
          replica.epoch === config.epoch &&
          replica.isCaughtUp);
      this.handoff.noteChainJoined(partition, joined);
    }
  }

  /** Makes a change to some chains; nothing happens when the change finds nothing to do. */
  private changeChains(
    describe: string,
    changes: (map: ClusterMap) => ChainConfig[],
    nowMs: number,
  ): void {
    this.chainChangeRunning = true;
    this.changeMap(
      {
        origin: {
          kind: 'internal',
          done: () => {
            this.chainChangeRunning = false;
          },
        },
        describe,
        change: (map) => {
          const changed = changes(map);
          if (changed.length === 0) return kvError(ErrorCode.INVALID_ARGUMENT, 'nothing to change');
          return withChains(map, changed);
        },
        replyOf: () => ({ ok: true, op: 'count', count: 0 }),
      },
      1,
      nowMs,
    );
  }

  /** Asks a voter for the map, at most every MAP_FETCH_INTERVAL_MS. */
  private fetchMap(nowMs: number): void {
    const map = this.map;
    if (map === null || nowMs - this.lastMapFetchMs < MAP_FETCH_INTERVAL_MS) return;
    const peer = votersOf(map).find((id) => id !== this.nodeId && this.liveness(id) === 'alive');
    if (peer === undefined) return;
    this.lastMapFetchMs = nowMs;
    this.send(peer, [MessageType.mapFetch, map.epoch]);
  }

  /** A cluster of one: the request runs on the local store, as on a single node. */
  private localRequest(
    origin: Origin,
    keyspace: Keyspace,
    request: KeyspaceRequest,
    nowMs: number,
  ): void {
    switch (request.op) {
      case 'get': {
        const quorumError = this.checkQuorum(request.r, keyspace, 1);
        if (quorumError !== null) return this.fail(origin, quorumError);
        const outcome = this.store.get(
          keyspace,
          request.keys,
          request.withVersions !== false,
          nowMs,
        );
        if (!outcome.ok) return this.fail(origin, outcome.error);
        return this.replyAfter(outcome.waitFor, origin, {
          ok: true,
          op: 'get',
          results: outcome.value,
        });
      }
      case 'write': {
        const quorumError = this.checkQuorum(request.w, keyspace, 1);
        if (quorumError !== null) return this.fail(origin, quorumError);
        // Nothing to replicate in a cluster of one.
        const outcome = this.store.write(keyspace, request.items, nowMs, false);
        if (!outcome.ok) return this.fail(origin, outcome.error);
        return this.replyAfter(outcome.waitFor, origin, {
          ok: true,
          op: 'write',
          results: outcome.value.results,
        });
      }
      case 'scan': {
        const outcome = this.store.scan(keyspace, request, nowMs);
        if (!outcome.ok) return this.fail(origin, outcome.error);
        return this.reply(origin, { ok: true, op: 'scan', ...outcome.value });
      }
      case 'count':
        return this.reply(origin, {
          ok: true,
          op: 'count',
          count: this.store.count(keyspace, nowMs, null),
        });
      case 'flush': {
        const outcome = this.store.flush(keyspace, nowMs);
        assert(outcome.ok, 'a local flush cannot fail');
        return this.replyAfter(outcome.waitFor, origin, {
          ok: true,
          op: 'flush',
          removed: outcome.value,
        });
      }
    }
  }

  private clusterGet(
    origin: Origin,
    keyspace: Keyspace,
    request: Extract<ClientRequest, { op: 'get' }>,
    nowMs: number,
  ): void {
    const invalid = this.store.checkKeys(request.keys);
    if (invalid !== null) return this.fail(origin, invalid);
    const n = replicationFactor(keyspace, this.ownerCount);
    const needed = this.resolveQuorum(request.r, keyspace.r, n);
    if (typeof needed !== 'number') return this.fail(origin, needed);
    const job = this.newJob(origin, 'get', request.keys.length);
    const withVersions = request.withVersions !== false;
    for (let index = 0; index < request.keys.length && !job.finished; index++) {
      this.startRead(job, index, keyspace, request.keys[index]!, withVersions, needed, nowMs);
    }
  }

  private clusterWrite(
    origin: Origin,
    keyspace: Keyspace,
    request: Extract<ClientRequest, { op: 'write' }>,
    nowMs: number,
    forwarded: boolean,
  ): void {
    const invalid = this.store.checkWriteItems(request.items);
    if (invalid !== null) return this.fail(origin, invalid);
    const n = replicationFactor(keyspace, this.ownerCount);
    const needed = this.resolveQuorum(request.w, keyspace.w, n);
    if (typeof needed !== 'number') return this.fail(origin, needed);
    // Items on one key stay together and in order (SET then INCR of one key in one request);
    // different keys are coordinated separately, each by its own replicas.
    const groups = new Map<string, { items: WriteItem[]; indexes: number[] }>();
    request.items.forEach((item, index) => {
      const id = keyIdOf(item.key);
      let group = groups.get(id);
      if (group === undefined) {
        group = { items: [], indexes: [] };
        groups.set(id, group);
      }
      group.items.push(item);
      group.indexes.push(index);
    });
    const job = this.newJob(origin, 'write', request.items.length);
    for (const { items, indexes } of groups.values()) {
      if (job.finished) break;
      const partition = partitionOf(keyspace.id, items[0]!.key, this.config.partitionCount);
      const walk = this.walkOf(partition);
      const coordinator = walk.slice(0, n).find((id) => this.isUp(id)) ?? this.nodeId;
      if (coordinator === this.nodeId || forwarded) {
        if (writesBlindly(items) && 2 * needed > n) {
          this.coordinateWrite(job, indexes, keyspace, items, partition, n, needed, nowMs, 1);
        } else {
          this.prefetchThenWrite(job, indexes, keyspace, items, partition, n, needed, nowMs);
        }
      } else {
        this.forward(
          coordinator,
          job,
          indexes,
          {
            op: 'write',
            keyspace: keyspace.name,
            items,
            ...(request.w !== undefined ? { w: request.w } : {}),
          },
          nowMs,
        );
      }
    }
  }

  private forward(
    to: string,
    job: Job,
    indexes: readonly number[],
    request: ClientRequest,
    nowMs: number,
    silentAfterMs: number | null = null,
  ): void {
    const opId = this.takeOpId();
    this.ops.set(opId, {
      kind: 'forward',
      job,
      indexes,
      // The coordinator answers within its own timeout, with a more precise error (how many
      // replicas a write reached): give it that long, and a little more.
      deadlineMs: nowMs + this.requestTimeoutMs() + FORWARD_GRACE_MS,
      to,
      sentMs: nowMs,
      silentAfterMs,
    });
    // The receiver knows a forward by its sender's incarnation and op id, so one leaves only
    // once that incarnation is durable: a life that crashed before could not share its ids.
    const message: PeerMessage = [
      MessageType.forward,
      this.epoch(),
      opId,
      request,
      this.store.incarnation,
    ];
    this.after(this.incarnationBatchId, { kind: 'send', to, message });
  }

  /**
   * Runs a write after a read of R replicas, merged into this node's copy: the new version
   * then supersedes every acknowledged one, even right after this node took over as
   * coordinator or came back missing writes (no anti-entropy yet). Without the read, a
   * plain SET through such a node would be concurrent with what it missed, and timestamps
   * would decide (a restarted node's clock starts at its stored ceiling, up to a second
   * ahead), so an earlier write could win.
   *
   * Blind writes (SET, DEL) with a majority W skip the read: they go out as putIfNewer,
   * which a replica stores only if the new version covers its copy, else it answers with
   * the copy. W replicas that stored it then include one of the W that acknowledged any
   * earlier write, so the new version covers it, as after the read; a stale answer is
   * merged and the write tried again (coordinateWrite). One round trip instead of two.
   */
  private prefetchThenWrite(
    job: Job,
    indexes: readonly number[],
    keyspace: Keyspace,
    items: readonly WriteItem[],
    partition: number,
    n: number,
    needed: number,
    nowMs: number,
  ): void {
    const targets = this.targetsOf(partition, n);
    const readNeeded = Math.min(keyspace.r, n);
    if (targets.length < readNeeded) {
      return this.failJob(
        job,
        unavailable(
          `only ${targets.length} nodes are up to hold the key; the write reads ${readNeeded} first`,
        ),
      );
    }
    const opId = this.takeOpId();
    const op: PrefetchOp = {
      kind: 'prefetch',
      job,
      indexes,
      keyspace,
      items,
      partition,
      n,
      needed,
      readNeeded,
      targets,
      answers: new Map(),
      refused: new Set(),
      done: false,
      deadlineMs: nowMs + this.requestTimeoutMs(),
    };
    this.ops.set(opId, op);
    this.askCopies(opId, keyspace, items[0]!.key, targets);
  }

  private onPrefetchAnswer(
    opId: number,
    op: PrefetchOp,
    from: string,
    record: StoredRecord | undefined | null,
  ): void {
    if (op.done || op.answers.has(from) || op.refused.has(from)) return;
    if (!op.targets.some((target) => target.node === from)) return;
    if (record === null) op.refused.add(from);
    else op.answers.set(from, record);
    if (op.answers.size >= op.readNeeded) {
      op.done = true;
      this.ops.delete(opId);
      const key = op.items[0]!.key;
      for (const copy of op.answers.values()) {
        if (copy !== undefined) this.store.mergeRecord(op.keyspace, key, copy, this.lastNowMs);
      }
      this.coordinateWrite(
        op.job,
        op.indexes,
        op.keyspace,
        op.items,
        op.partition,
        op.n,
        op.needed,
        this.lastNowMs,
      );
    } else if (op.targets.length - op.refused.size < op.readNeeded) {
      op.done = true;
      this.ops.delete(opId);
      this.failJob(op.job, this.prefetchShortfall(op));
    }
  }

  private prefetchShortfall(op: PrefetchOp): KvError {
    return unavailable(
      `the write reads ${op.readNeeded} replicas first and ${op.answers.size} answered; ` +
        'nothing was written',
    );
  }

  private coordinateWrite(
    job: Job,
    indexes: readonly number[],
    keyspace: Keyspace,
    items: readonly WriteItem[],
    partition: number,
    n: number,
    needed: number,
    nowMs: number,
    /** 1.. for a conditional write (putIfNewer) and its retries; 0 for a plain one. */
    attempt = 0,
  ): void {
    if (this.incarnationBatchId > this.store.lastPersistedBatchId) {
      const waiter = { job, indexes, keyspace, items, partition, n, needed, attempt };
      return this.after(this.incarnationBatchId, { kind: 'coordinate', ...waiter });
    }
    const targets = this.targetsOf(partition, n);
    if (targets.length < needed) {
      return this.failJob(
        job,
        unavailable(
          `only ${targets.length} nodes are up to hold the key; the write needs ${needed}`,
        ),
      );
    }
    // While a membership change is in progress, the replicas it adds receive every write
    // and must acknowledge it on top of the W: one they missed behind their copy's cursor
    // would be gone from them once the change commits. One that is down gets a hint here.
    const added = this.addedReplicasOf(partition, n, keyspace.n === 'all').filter(
      (id) => !targets.some((target) => target.node === id),
    );
    const addedUp = added.filter((id) => this.isUp(id));
    for (const id of addedUp) targets.push({ node: id, hintFor: '' });
    const outcome = this.store.write(keyspace, items, nowMs);
    if (!outcome.ok) return this.failJob(job, outcome.error);
    const { written } = outcome.value;
    assert(written.length <= 1, 'one key per coordinated write');
    assert(attempt === 0 || written.length === 1, 'a blind write always writes a version');
    const results =
      written.length === 1
        ? outcome.value.results.map((result) => ({
            ...result,
            context: encodeContext(written[0]!.record.context),
          }))
        : outcome.value.results;
    const opId = this.takeOpId();
    const selfTarget = targets.find((target) => target.node === this.nodeId);
    let selfIsTarget = selfTarget !== undefined;
    let ownWaitFor = outcome.waitFor;
    if (selfTarget !== undefined && selfTarget.hintFor !== '' && written.length === 1) {
      // This node coordinates as a fallback (every replica it could reach is down): its copy
      // must also be a hint, or the replica it stands in for would never receive it.
      const { key, record } = written[0]!;
      const hinted = this.store.mergeHint(
        selfTarget.hintFor,
        keyspace,
        key,
        record,
        this.hintsMax(),
        nowMs,
      );
      if (hinted.ok) ownWaitFor = Math.max(ownWaitFor, hinted.waitFor);
      else selfIsTarget = false;
    }
    if (written.length === 1) {
      const { key, record } = written[0]!;
      for (const id of added) {
        if (addedUp.includes(id)) continue;
        const hinted = this.store.mergeHint(id, keyspace, key, record, this.hintsMax(), nowMs);
        if (!hinted.ok) return this.failJob(job, hinted.error);
        ownWaitFor = Math.max(ownWaitFor, hinted.waitFor);
      }
    }
    // Nothing to replicate (a condition did not hold): the answer waits only for the local
    // state it was computed from to be durable.
    const counted = written.length === 0 ? [this.nodeId] : targets.map((target) => target.node);
    const op: WriteOp = {
      kind: 'write',
      job,
      indexes,
      results,
      needed: written.length === 0 ? 1 : needed + addedUp.length,
      targets: counted,
      required: written.length === 0 ? [] : addedUp,
      acked: new Set(),
      refused: new Set(),
      answered: false,
      deadlineMs: nowMs + this.requestTimeoutMs(),
      conditional: attempt > 0 ? { keyspace, items, partition, n, attempt } : null,
    };
    this.ops.set(opId, op);
    if (written.length === 1) {
      const { key, record } = written[0]!;
      const encoded = encodeRecord(record);
      for (const target of targets) {
        if (target.node === this.nodeId) continue;
        this.send(target.node, [
          attempt > 0 ? MessageType.putIfNewer : MessageType.put,
          this.epoch(),
          opId,
          keyspace.id,
          key,
          encoded,
          target.hintFor,
        ]);
      }
    }
    // The coordinator's own durable copy counts as one acknowledgement when it is a target
    // (it is not only when every replica is down and a stranger coordinates).
    if (selfIsTarget || written.length === 0) {
      this.after(ownWaitFor, { kind: 'write-ack', opId });
    }
  }

  private startRead(
    job: Job,
    index: number,
    keyspace: Keyspace,
    key: Uint8Array,
    withVersions: boolean,
    needed: number,
    nowMs: number,
  ): void {
    const n = replicationFactor(keyspace, this.ownerCount);
    const partition = partitionOf(keyspace.id, key, this.config.partitionCount);
    const targets = this.targetsOf(partition, n);
    const opId = this.takeOpId();
    const op: ReadOp = {
      kind: 'read',
      job,
      index,
      keyspace,
      key,
      withVersions,
      targets,
      needed,
      answers: new Map(),
      failures: 0,
      answered: false,
      deadlineMs: nowMs + this.requestTimeoutMs(),
    };
    if (targets.length < needed) {
      return this.failJob(
        job,
        unavailable(
          `only ${targets.length} nodes are up to hold the key; the read needs ${needed}`,
        ),
      );
    }
    this.ops.set(opId, op);
    this.askCopies(opId, keyspace, key, targets);
  }

  /** Asks every target for its copy of a key; the answers come to op `opId`. */
  private askCopies(
    opId: number,
    keyspace: Keyspace,
    key: Uint8Array,
    targets: readonly Target[],
  ): void {
    for (const target of targets) {
      if (target.node === this.nodeId) {
        const local = this.localCopy(keyspace, key, target.hintFor);
        this.after(local.waitFor, { kind: 'read-local', opId, record: local.value });
      } else {
        this.send(target.node, [
          MessageType.read,
          this.epoch(),
          opId,
          keyspace.id,
          key,
          target.hintFor,
        ]);
      }
    }
  }

  /** This node's copy of a key: its replica copy, merged with a hint it holds for `owner`. */
  private localCopy(
    keyspace: Keyspace,
    key: Uint8Array,
    hintFor: string,
  ): { value: StoredRecord | undefined; waitFor: number } {
    const copy = this.store.readRecord(keyspace, key);
    assert(copy.ok, 'local reads do not fail');
    if (hintFor === '') return copy;
    const hint = this.store.readHint(hintFor, keyspace, key);
    assert(hint.ok, 'local reads do not fail');
    return {
      value: mergeRecords(copy.value, hint.value),
      waitFor: Math.max(copy.waitFor, hint.waitFor),
    };
  }

  private onReadAnswer(opId: number, from: string, record: StoredRecord | undefined | null): void {
    const pull = this.ops.get(opId);
    if (pull?.kind === 'repair-pull') {
      this.ops.delete(opId);
      if (record !== null && record !== undefined) {
        const own = this.store.readRecord(pull.keyspace, pull.key);
        assert(own.ok, 'local reads do not fail');
        if (!this.skipsTombstoneRepair(record, own.value)) {
          this.store.mergeRecord(pull.keyspace, pull.key, record, this.lastNowMs);
        }
      }
      return;
    }
    const prefetch = this.ops.get(opId);
    if (prefetch?.kind === 'prefetch') return this.onPrefetchAnswer(opId, prefetch, from, record);
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'read' || op.answers.has(from)) return;
    if (!op.targets.some((target) => target.node === from)) return;
    if (record === null) {
      op.failures++;
    } else {
      op.answers.set(from, record);
    }
    if (!op.answered && op.answers.size >= op.needed) {
      op.answered = true;
      const merged = this.mergeAnswers(op);
      const result = op.withVersions
        ? readResultOf(merged, this.lastNowMs, op.keyspace.conflicts)
        : winnerOnlyOf(merged, this.lastNowMs, op.keyspace.conflicts);
      this.completePart(op.job, op.index, result);
    } else if (!op.answered && op.targets.length - op.failures < op.needed) {
      op.answered = true;
      this.failJob(
        op.job,
        unavailable(`${op.answers.size} of the ${op.needed} replicas needed answered`),
      );
    }
    if (op.answers.size + op.failures === op.targets.length) this.finishRead(opId, op);
  }

  private mergeAnswers(op: ReadOp): StoredRecord | undefined {
    let merged: StoredRecord | undefined;
    for (const record of op.answers.values()) merged = mergeRecords(merged, record);
    return merged;
  }

  /** Read repair: every target whose copy the merge supersedes gets the merge. */
  private finishRead(opId: number, op: ReadOp): void {
    this.ops.delete(opId);
    if (this.config.cluster?.readRepair === false) return;
    const merged = this.mergeAnswers(op);
    if (merged === undefined) return;
    const encoded = encodeRecord(merged);
    for (const target of op.targets) {
      if (!op.answers.has(target.node)) continue;
      if (recordDescends(op.answers.get(target.node), merged)) continue;
      if (this.skipsTombstoneRepair(merged, op.answers.get(target.node))) continue;
      if (target.node === this.nodeId) {
        this.storeIncoming(op.keyspace, op.key, merged, target.hintFor);
      } else {
        this.send(target.node, [
          MessageType.put,
          this.epoch(),
          0,
          op.keyspace.id,
          op.key,
          encoded,
          target.hintFor,
        ]);
      }
    }
  }

  /**
   * A replica did not store a conditional write: its copy holds a version the write did not
   * cover. The copy is merged into this node's, and the write runs again over the merge (a
   * plain write after a few attempts, so contention cannot starve it).
   */
  private onStaleWrite(opId: number, from: string, copy: StoredRecord | null): void {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'write' || op.conditional === null) return;
    if (!op.targets.includes(from) || op.acked.has(from) || op.refused.has(from)) return;
    const { keyspace, items, partition, n, attempt } = op.conditional;
    if (copy !== null) this.store.mergeRecord(keyspace, items[0]!.key, copy, this.lastNowMs);
    if (!op.answered) {
      op.answered = true;
      const next = attempt < CONDITIONAL_ATTEMPTS_MAX ? attempt + 1 : 0;
      this.coordinateWrite(
        op.job,
        op.indexes,
        keyspace,
        items,
        partition,
        n,
        op.needed,
        this.lastNowMs,
        next,
      );
    }
    this.onWriteAck(opId, from, false);
  }

  private onWriteAck(opId: number, from: string, ok: boolean): void {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'write' || !op.targets.includes(from)) return;
    if (op.acked.has(from) || op.refused.has(from)) return;
    if (ok) op.acked.add(from);
    else op.refused.add(from);
    const requiredAcked = op.required.every((id) => op.acked.has(id));
    const requiredRefused = op.required.some((id) => op.refused.has(id));
    if (!op.answered && op.acked.size >= op.needed && requiredAcked) {
      op.answered = true;
      op.indexes.forEach((jobIndex, i) => this.completePart(op.job, jobIndex, op.results[i]!));
    } else if (
      !op.answered &&
      (op.targets.length - op.refused.size < op.needed || requiredRefused)
    ) {
      op.answered = true;
      this.failJob(op.job, this.writeShortfall(op));
    }
    if (op.acked.size + op.refused.size === op.targets.length) this.ops.delete(opId);
  }

  private writeShortfall(op: WriteOp): KvError {
    return unavailable(
      `the write reached ${op.acked.size} of the ${op.needed} replicas needed; ` +
        'it may still become visible',
    );
  }

  // ---- whole-cluster listing, counting and flushing ----

  private startScan(
    origin: Origin,
    keyspace: Keyspace,
    request: Extract<ClientRequest, { op: 'scan' }>,
    nowMs: number,
  ): void {
    const countMax = this.config.limits.scanCountMax;
    if (!(Number.isInteger(request.count) && request.count >= 1 && request.count <= countMax)) {
      return this.fail(
        origin,
        kvError(ErrorCode.INVALID_ARGUMENT, `scan count must be an integer from 1 to ${countMax}`),
      );
    }
    let partition = 0;
    let afterKey: Uint8Array | null = null;
    if (request.cursor !== null && request.cursor.length > 0) {
      const cursor = request.cursor;
      partition = cursor.length >= CURSOR_PARTITION_BYTES ? (cursor[0]! << 8) | cursor[1]! : -1;
      if (partition < 0 || partition >= this.config.partitionCount) {
        return this.fail(origin, kvError(ErrorCode.INVALID_ARGUMENT, 'invalid scan cursor'));
      }
      afterKey =
        cursor.length > CURSOR_PARTITION_BYTES ? cursor.slice(CURSOR_PARTITION_BYTES) : null;
    }
    const opId = this.takeOpId();
    const op: ScanOp = {
      kind: 'scan',
      origin,
      keyspace,
      request,
      partition,
      afterKey,
      collected: [],
      rounds: 0,
      waiting: 0,
      answers: [],
      deadlineMs: nowMs + this.requestTimeoutMs(),
    };
    this.ops.set(opId, op);
    this.scanRound(opId, op, nowMs);
  }

  private scanRound(opId: number, op: ScanOp, nowMs: number): void {
    op.rounds++;
    op.answers = [];
    op.deadlineMs = nowMs + this.requestTimeoutMs();
    const n = replicationFactor(op.keyspace, this.ownerCount);
    const replicas = this.walkOf(op.partition)
      .slice(0, n)
      .filter((id) => this.isUp(id));
    if (replicas.length === 0) {
      this.ops.delete(opId);
      return this.fail(op.origin, unavailable(`no replica of partition ${op.partition} is up`));
    }
    op.waiting = replicas.length;
    const limit = op.request.count;
    for (const replica of replicas) {
      if (replica === this.nodeId) {
        const page = this.store.scanPartition(op.keyspace, op.partition, op.afterKey, limit, nowMs);
        this.onScanAnswer(opId, page.keys, page.more, nowMs);
      } else {
        this.send(replica, [
          MessageType.scan,
          this.epoch(),
          opId,
          op.keyspace.id,
          op.partition,
          op.afterKey ?? new Uint8Array(0),
          limit,
        ]);
      }
    }
  }

  private onScanAnswer(
    opId: number,
    keys: readonly Uint8Array[] | null,
    more: boolean,
    nowMs: number,
  ): void {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'scan') return;
    op.waiting--;
    if (keys !== null) op.answers.push({ keys, more });
    if (op.waiting > 0) return;
    if (op.answers.length === 0) {
      this.ops.delete(opId);
      return this.fail(op.origin, unavailable(`no replica of partition ${op.partition} answered`));
    }
    // Every replica's answer is complete up to its last key when it has more: the union is
    // complete up to the smallest of those.
    let cut: Uint8Array | null = null;
    for (const answer of op.answers) {
      if (!answer.more || answer.keys.length === 0) continue;
      const last = answer.keys[answer.keys.length - 1]!;
      if (cut === null || compareKeys(last, cut) < 0) cut = last;
    }
    const union = new Map<string, Uint8Array>();
    for (const answer of op.answers) {
      for (const key of answer.keys) {
        if (cut !== null && compareKeys(key, cut) > 0) continue;
        union.set(keyIdOf(key), key);
      }
    }
    const ordered = [...union.values()].sort(compareKeys);
    const { prefix, match } = op.request;
    for (const key of ordered) {
      if (prefix !== null && !startsWith(key, prefix)) continue;
      if (match !== null && !globMatches(match, key)) continue;
      op.collected.push(key);
    }
    if (cut !== null) {
      op.afterKey = cut;
    } else {
      op.partition++;
      op.afterKey = null;
    }
    const done = op.partition >= this.config.partitionCount;
    if (done || op.collected.length >= op.request.count || op.rounds >= SCAN_ROUNDS_MAX) {
      this.ops.delete(opId);
      return this.reply(op.origin, {
        ok: true,
        op: 'scan',
        keys: op.collected,
        cursor: done ? null : scanCursor(op.partition, op.afterKey),
      });
    }
    this.scanRound(opId, op, nowMs);
  }

  /** DBSIZE and FLUSHDB: each partition counted by its first replica that is up; flushed by all. */
  private startSum(
    kind: 'count' | 'flush',
    origin: Origin,
    keyspace: Keyspace,
    nowMs: number,
  ): void {
    const map = this.map!;
    const assignments = new Map<string, number[]>();
    if (kind === 'count') {
      const n = replicationFactor(keyspace, this.ownerCount);
      for (let partition = 0; partition < this.config.partitionCount; partition++) {
        const counter = this.walkOf(partition)
          .slice(0, n)
          .find((id) => this.isUp(id));
        if (counter === undefined) {
          return this.fail(origin, unavailable(`no replica of partition ${partition} is up`));
        }
        let list = assignments.get(counter);
        if (list === undefined) assignments.set(counter, (list = []));
        list.push(partition);
      }
    } else {
      for (const member of map.members) if (this.isUp(member.id)) assignments.set(member.id, []);
    }
    const opId = this.takeOpId();
    const op: SumOp = {
      kind,
      origin,
      waiting: assignments.size,
      total: 0,
      failed: false,
      deadlineMs: nowMs + this.requestTimeoutMs(),
    };
    this.ops.set(opId, op);
    for (const [member, partitions] of assignments) {
      if (member === this.nodeId) {
        if (kind === 'count') {
          this.onSumAnswer(opId, this.store.count(keyspace, nowMs, new Set(partitions)));
        } else {
          const flushed = this.store.flush(keyspace, nowMs);
          assert(flushed.ok, 'a local flush cannot fail');
          this.after(flushed.waitFor, { kind: 'sum', opId, value: flushed.value });
        }
      } else if (kind === 'count') {
        this.send(member, [MessageType.count, this.epoch(), opId, keyspace.id, partitions]);
      } else {
        this.send(member, [MessageType.flush, this.epoch(), opId, keyspace.id]);
      }
    }
  }

  private onSumAnswer(opId: number, value: number): void {
    const op = this.ops.get(opId);
    if (op === undefined || (op.kind !== 'count' && op.kind !== 'flush')) return;
    op.waiting--;
    // Flush counts the keys each node tombstoned; replicas overlap, so the largest is kept.
    op.total = op.kind === 'count' ? op.total + value : Math.max(op.total, value);
    if (op.waiting > 0) return;
    this.ops.delete(opId);
    this.reply(
      op.origin,
      op.kind === 'count'
        ? { ok: true, op: 'count', count: op.total }
        : { ok: true, op: 'flush', removed: op.total },
    );
  }

  // ---- map changes: compare-and-set on the map's register among the voters ----

  private createKeyspace(
    origin: Origin,
    request: Extract<ClientRequest, { op: 'createKeyspace' }>,
    nowMs: number,
  ): void {
    const spec = { name: request.keyspace, ...request.spec };
    const problem = keyspaceProblem(spec);
    if (problem !== null) return this.fail(origin, kvError(ErrorCode.INVALID_ARGUMENT, problem));
    this.changeMap(
      {
        origin,
        describe: `create keyspace '${spec.name}'`,
        change: (map) => {
          if (map.keyspaces.some((keyspace) => keyspace.name === spec.name)) {
            return kvError(ErrorCode.KEYSPACE_EXISTS, `keyspace '${spec.name}' already exists`);
          }
          const misfit = keyspaceFitProblem(map, spec);
          if (misfit !== null) return kvError(ErrorCode.INVALID_ARGUMENT, misfit);
          return withKeyspace(map, spec);
        },
        replyOf: (map) => ({
          ok: true,
          op: 'createKeyspace',
          keyspace: map.keyspaces.find((keyspace) => keyspace.name === spec.name)!,
        }),
      },
      1,
      nowMs,
    );
  }

  /**
   * Plans a membership change on this node's map and answers the plan (a dry run), or makes
   * the change by a map change and answers the plan of the map it made.
   */
  private changeMembership(
    origin: Origin,
    request: Extract<ClientRequest, { op: 'changeMembership' }>,
    nowMs: number,
  ): void {
    const change = request.change;
    const describe =
      change.kind === 'abort'
        ? 'abort the membership change in progress'
        : change.kind === 'replace'
          ? `replace ${change.id} by ${change.by}`
          : `${change.kind} ${change.id}`;
    const next = (map: ClusterMap): ClusterMap | KvError => {
      const result = planMembership(map, change);
      return result.ok ? result.map : kvError(ErrorCode.INVALID_ARGUMENT, result.problem);
    };
    const replyOf = (map: ClusterMap, made: boolean): ClientReply => ({
      ok: true,
      op: 'changeMembership',
      epoch: map.epoch,
      plan: planSummary(map, (keyspaceId, partition) =>
        this.store.partitionSize(keyspaceId, partition),
      ),
      made,
    });
    if (request.dryRun) {
      const planned = next(this.map!);
      if ('code' in planned) return this.fail(origin, planned);
      return this.reply(origin, replyOf(planned, false));
    }
    this.changeMap(
      { origin, describe, change: next, replyOf: (map) => replyOf(map, true) },
      1,
      nowMs,
    );
  }

  /**
   * Makes a map change: the next map, computed from this node's map, is written to the
   * map's register by a compare-and-set on its version (the map's epoch minus one), with the
   * voters as acceptors (jointly with the next voters while a change replaces them). If
   * another change came first, the register's map is adopted and the change computed again
   * on it, a few times. The map is adopted, stored and sent to every
   * member once chosen; the request is answered once it is durable here.
   */
  private changeMap(change: MapChange, attempt: number, nowMs: number): void {
    const map = this.map!;
    const next = change.change(map);
    if ('code' in next) return this.fail(change.origin, next);
    assert(next.epoch === map.epoch + 1, 'a change makes the next epoch');
    const opId = this.takeOpId();
    this.ops.set(opId, {
      kind: 'map-change',
      change,
      attempt,
      next,
      deadlineMs: nowMs + this.requestTimeoutMs(),
    });
    this.applyRegisters(
      this.registers.submit(
        opId,
        MAP_REGISTER_KEYSPACE_ID,
        MAP_REGISTER_KEY,
        { kind: 'cas-version', expectedVersion: map.epoch - 1, value: encodeMap(next) },
        mapRegisterAcceptors(map),
        nowMs,
      ),
    );
  }

  private onMapChangeDone(op: MapChangeOp, outcome: OperationOutcome, nowMs: number): void {
    const { change } = op;
    if (outcome.kind === 'error') return this.fail(change.origin, strongError(outcome));
    if (outcome.kind !== 'ok') return;
    if (outcome.applied) {
      // Members the change drops (they left) hear of it too, and first: once this node adopts
      // the map, they are no longer peers it reaches.
      for (const member of this.map?.members ?? []) {
        const kept = op.next.members.some((next) => next.id === member.id);
        if (!kept && member.id !== this.nodeId) {
          this.send(member.id, [MessageType.map, op.next.epoch, encodeMap(op.next)]);
        }
      }
      const batchId =
        this.map !== null && this.map.epoch >= op.next.epoch ? 0 : this.adoptMap(op.next);
      this.after(batchId, { kind: 'reply', origin: change.origin, reply: change.replyOf(op.next) });
      this.spreadMap(op.next);
      return;
    }
    // Another change was chosen first: learn it, then compute this one again on top of it.
    const chosen = this.registerMap(outcome.current);
    if (chosen === null) {
      return this.fail(
        change.origin,
        unavailable(
          `the cluster map's register holds version ${outcome.current.version}, behind this node's map at epoch ${this.map!.epoch}: ${change.describe} cannot be made`,
        ),
      );
    }
    if (chosen.epoch > this.map!.epoch) this.adoptMap(chosen);
    if (op.attempt >= MAP_CHANGE_ATTEMPTS_MAX) {
      return this.fail(
        change.origin,
        unavailable(
          `other map changes came first ${op.attempt} times: ${change.describe} was not made`,
        ),
      );
    }
    this.changeMap(change, op.attempt + 1, nowMs);
  }

  /** The map a register value holds, if it is one of this cluster at the epoch it should be. */
  private registerMap(value: RegisterValue): ClusterMap | null {
    if (value.bytes === null) return null;
    let map: ClusterMap;
    try {
      map = decodeMap(value.bytes);
    } catch {
      return null;
    }
    return map.epoch === value.version + 1 ? map : null;
  }

  private spreadMap(map: ClusterMap): void {
    const bytes = encodeMap(map);
    for (const member of map.members) {
      if (member.id !== this.nodeId) this.send(member.id, [MessageType.map, map.epoch, bytes]);
    }
  }

  /** Installs a newer map and stores it; answers the batch that makes it durable. */
  private adoptMap(map: ClusterMap): number {
    assert(this.map === null || map.epoch > this.map.epoch, 'maps only move forward');
    this.install(map);
    return this.store.persistMeta(MAP_META_NAME, encodeMap(map), true);
  }

  private install(stored: ClusterMap): void {
    // This node's own keyspace options (durability of `default`) override the stored ones.
    const overrides = new Map(this.config.keyspaces.map((keyspace) => [keyspace.id, keyspace]));
    // A single node's addresses are those it has now (its ports may differ from the last run).
    const self = this.config.self;
    const members =
      self !== undefined && stored.members.length === 1 && stored.members[0]!.id === self.id
        ? [self]
        : stored.members;
    const map: ClusterMap = {
      ...stored,
      members,
      keyspaces: stored.keyspaces.map((keyspace) => {
        const local = overrides.get(keyspace.id);
        return local !== undefined && local.name === keyspace.name ? local : keyspace;
      }),
    };
    const previous = this.map;
    this.map = map;
    this.keyspacesByName.clear();
    this.keyspacesById.clear();
    for (const keyspace of map.keyspaces) {
      this.keyspacesByName.set(keyspace.name, keyspace);
      this.keyspacesById.set(keyspace.id, keyspace);
    }
    this.walks = new Array<readonly string[] | undefined>(map.partitionCount);
    this.ownerCount = ownersOf(map).length;
    this.addedReplicas.clear();
    this.handoff.sync(map, (id) => this.keyspacesById.get(id), this.lastNowMs);
    this.registers.syncMap(previous, map, this.lastNowMs);
    this.antiEntropy?.forgetTrees();
    this.exchangeCandidatesCache = null;
    this.tombstones?.forget();
    this.sweptPartitionsCache = null;
    const ids = map.members.map((member) => member.id);
    if (map.members.length > 1 && this.config.cluster !== undefined) {
      if (this.swim === null) {
        this.swim = new Swim(this.nodeId, ids, this.config.cluster.swim, this.prng);
      } else {
        this.swim.setMembers(ids);
      }
    }
    this.effects.push({ type: 'map', map });
  }

  // ---- peer messages ----

  private onPeerMessage(from: string, message: unknown, nowMs: number): void {
    this.lastNowMs = nowMs;
    this.lastHeardMs.set(from, nowMs);
    this.silentPeers.delete(from);
    if (!isPeerMessage(message)) {
      this.droppedMessages++;
      return;
    }
    const map = this.map;
    if (
      map !== null &&
      message[1] > map.epoch &&
      nowMs - this.lastMapFetchMs >= MAP_FETCH_INTERVAL_MS
    ) {
      this.lastMapFetchMs = nowMs;
      this.send(from, [MessageType.mapFetch, map.epoch]);
    }
    if (
      map !== null &&
      message[1] < map.epoch &&
      nowMs - this.lastMapToDepartedMs >= MAP_FETCH_INTERVAL_MS &&
      !map.members.some((member) => member.id === from)
    ) {
      // A node the map no longer holds that still speaks missed the map that dropped it (it
      // was down or cut off then), and would go on serving clients on its old map: it is
      // told, so that it stops. At most one such map every MAP_FETCH_INTERVAL_MS.
      this.lastMapToDepartedMs = nowMs;
      this.send(from, [MessageType.map, map.epoch, encodeMap(map)]);
    }
    switch (message[0]) {
      case MessageType.hello:
        return this.onHello(from, message[2], message[3], message[4]);
      case MessageType.join:
        return this.onJoin(from, message[2], nowMs);
      case MessageType.antiEntropy: {
        if (map !== null && this.tombstones !== null && isTombstoneMessageType(message[2])) {
          return this.onTombstoneMessage(from, message[2], map, nowMs);
        }
        if (map === null || this.antiEntropy === null) return;
        const sends = this.antiEntropy.receive(
          from,
          message[2],
          (keyspaceId, partition) => {
            const keyspace = this.keyspacesById.get(keyspaceId);
            return keyspace !== undefined &&
              keyspace.consistency === 'eventual' &&
              this.replicatesHere(keyspace, partition)
              ? keyspace
              : null;
          },
          nowMs,
        );
        if (sends === null) this.droppedMessages++;
        for (const send of sends ?? []) {
          this.send(send.to, [MessageType.antiEntropy, map.epoch, send.message]);
        }
        return;
      }
      case MessageType.load: {
        const answer = answerLoadQuery(from, message[2], this.census?.load(nowMs));
        if (answer !== null) this.send(answer.to, [MessageType.load, this.epoch(), answer.message]);
        else this.elastic?.receiveReport(from, message[2]);
        return;
      }
      case MessageType.handoff: {
        if (map === null) return;
        const sends = this.handoff.receive(
          from,
          message[2],
          (keyspaceId, partition) => {
            const keyspace = this.keyspacesById.get(keyspaceId);
            return keyspace !== undefined && this.replicatesHere(keyspace, partition);
          },
          nowMs,
        );
        if (sends === null) this.droppedMessages++;
        for (const send of sends ?? []) {
          this.send(send.to, [MessageType.handoff, map.epoch, send.message]);
        }
        return;
      }
      case MessageType.map:
        return this.onMap(message[2]);
      case MessageType.mapFetch:
        if (map !== null && map.members.some((member) => member.id === from)) {
          this.send(from, [MessageType.map, map.epoch, encodeMap(map)]);
        }
        return;
    }
    if (map === null) {
      this.droppedMessages++;
      return;
    }
    switch (message[0]) {
      case MessageType.swim:
        if (this.swim !== null && this.swim.isValidMessage(message[2])) {
          this.applySwim(this.swim.receive(from, message[2], nowMs));
        } else {
          this.droppedMessages++;
        }
        return;
      case MessageType.forward:
        if (this.isRepeatedForward(from, message[4], message[2], nowMs)) {
          this.droppedMessages++;
          return;
        }
        return this.handleRequest(
          { kind: 'peer', to: from, opId: message[2] },
          message[3],
          nowMs,
          true,
        );
      case MessageType.forwardReply:
        return this.onForwardReply(message[2], message[3]);
      case MessageType.read:
        return this.onReadRequest(from, message[2], message[3], message[4], message[5]);
      case MessageType.readReply:
        return this.onReadAnswer(
          message[2],
          from,
          message[3]
            ? message[4].length === 0
              ? undefined
              : this.decodePeerRecord(message[4])
            : null,
        );
      case MessageType.put:
      case MessageType.putIfNewer:
        return this.onPutRequest(
          from,
          message[2],
          message[3],
          message[4],
          message[5],
          message[6],
          nowMs,
          message[0] === MessageType.putIfNewer,
        );
      case MessageType.putReply:
        return this.onPutReply(message[2], from, message[3]);
      case MessageType.putIfNewerReply:
        if (message[3] === PutIfNewerStatus.stale) {
          return this.onStaleWrite(message[2], from, this.decodePeerRecord(message[4]));
        }
        return this.onWriteAck(message[2], from, message[3] === PutIfNewerStatus.stored);
      case MessageType.scan: {
        const keyspace = this.keyspacesById.get(message[3]);
        const limit = Math.min(Math.max(message[6], 1), this.config.limits.scanCountMax);
        const partition = message[4];
        if (keyspace === undefined || partition < 0 || partition >= this.config.partitionCount) {
          return this.send(from, [MessageType.scanReply, map.epoch, message[2], [], false]);
        }
        const after = message[5].length === 0 ? null : message[5];
        const page = this.store.scanPartition(keyspace, partition, after, limit, nowMs);
        return this.send(from, [
          MessageType.scanReply,
          map.epoch,
          message[2],
          page.keys,
          page.more,
        ]);
      }
      case MessageType.scanReply:
        return this.onScanAnswer(message[2], message[3], message[4], nowMs);
      case MessageType.count: {
        const keyspace = this.keyspacesById.get(message[3]);
        const count =
          keyspace === undefined ? 0 : this.store.count(keyspace, nowMs, new Set(message[4]));
        return this.send(from, [MessageType.countReply, map.epoch, message[2], count]);
      }
      case MessageType.countReply:
        return this.onSumAnswer(message[2], message[3]);
      case MessageType.flush: {
        const keyspace = this.keyspacesById.get(message[3]);
        if (keyspace === undefined) {
          return this.send(from, [MessageType.flushReply, map.epoch, message[2], 0]);
        }
        const flushed = this.store.flush(keyspace, nowMs);
        assert(flushed.ok, 'a local flush cannot fail');
        return this.after(flushed.waitFor, {
          kind: 'send',
          to: from,
          message: [MessageType.flushReply, map.epoch, message[2], flushed.value],
        });
      }
      case MessageType.flushReply:
        return this.onSumAnswer(message[2], message[3]);
      case MessageType.paxos:
        return this.applyRegisters(this.registers.receive(from, message[2], nowMs, message[1]));
      case MessageType.chain:
        return this.applyChains(this.chains.receive(from, message[2], nowMs), nowMs);
    }
  }

  /** A purge round's query, answer or purge (docs/ANTI-ENTROPY.md, "Tombstones"). */
  private onTombstoneMessage(from: string, message: unknown, map: ClusterMap, nowMs: number): void {
    const sends = this.tombstones!.receive(
      from,
      message,
      {
        keyspaceOf: (keyspaceId) => {
          const keyspace = this.keyspacesById.get(keyspaceId);
          // A change in progress declines, as its copies are still being made.
          return keyspace !== undefined &&
            keyspace.consistency === 'eventual' &&
            map.change === undefined
            ? keyspace
            : null;
        },
        members: map.members.map((member) => member.id),
      },
      nowMs,
    );
    if (sends === null) this.droppedMessages++;
    for (const send of sends ?? []) {
      this.send(send.to, [MessageType.antiEntropy, map.epoch, send.message]);
    }
  }

  private decodePeerRecord(bytes: Uint8Array): StoredRecord | null {
    let record: StoredRecord;
    try {
      record = decodeRecord(bytes);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.droppedMessages++;
      return null;
    }
    // The merge is a join only for records whose context covers their own versions.
    if (!record.siblings.every((sibling) => coversDot(record.context, sibling.dot))) {
      this.droppedMessages++;
      return null;
    }
    return record;
  }

  private onReadRequest(
    from: string,
    opId: number,
    keyspaceId: number,
    key: Uint8Array,
    hintFor: string,
  ): void {
    const epoch = this.epoch();
    const keyspace = this.keyspacesById.get(keyspaceId);
    if (keyspace === undefined || this.store.checkKeys([key]) !== null) {
      return this.send(from, [
        MessageType.readReply,
        epoch,
        opId,
        false,
        new Uint8Array(0),
        'unknown keyspace',
      ]);
    }
    const copy = this.localCopy(keyspace, key, hintFor);
    const encoded = copy.value === undefined ? new Uint8Array(0) : encodeRecord(copy.value);
    this.after(copy.waitFor, {
      kind: 'send',
      to: from,
      message: [MessageType.readReply, epoch, opId, true, encoded, ''],
    });
  }

  private onPutRequest(
    from: string,
    opId: number,
    keyspaceId: number,
    key: Uint8Array,
    encoded: Uint8Array,
    hintFor: string,
    nowMs: number,
    ifNewer = false,
  ): void {
    const epoch = this.epoch();
    const keyspace = this.keyspacesById.get(keyspaceId);
    const record = this.decodePeerRecord(encoded);
    const answer = (status: number, copy: Uint8Array, reason: string): PeerMessage =>
      ifNewer
        ? [MessageType.putIfNewerReply, epoch, opId, status, copy, reason]
        : [MessageType.putReply, epoch, opId, status === PutIfNewerStatus.stored, reason];
    const refuse = (reason: string): void => {
      if (opId !== 0) this.send(from, answer(PutIfNewerStatus.refused, EMPTY_BYTES, reason));
    };
    if (keyspace === undefined) return refuse('unknown keyspace');
    if (record === null || this.store.checkKeys([key]) !== null) return refuse('malformed');
    if (hintFor !== '' && !this.map!.members.some((member) => member.id === hintFor)) {
      return refuse('hint for a node that is not a member');
    }
    if (ifNewer) {
      const copy = this.localCopy(keyspace, key, hintFor);
      if (!recordDescends(record, copy.value)) {
        const message = answer(PutIfNewerStatus.stale, encodeRecord(copy.value!), '');
        return this.after(copy.waitFor, { kind: 'send', to: from, message });
      }
    }
    const stored = this.storeIncoming(keyspace, key, record, hintFor, nowMs);
    if (!stored.ok) return refuse(stored.error.message);
    if (opId === 0) return;
    this.after(stored.waitFor, {
      kind: 'send',
      to: from,
      message: answer(PutIfNewerStatus.stored, EMPTY_BYTES, ''),
    });
  }

  private storeIncoming(
    keyspace: Keyspace,
    key: Uint8Array,
    record: StoredRecord,
    hintFor: string,
    nowMs = this.lastNowMs,
  ): Outcome<StoredRecord> {
    if (hintFor === '' || hintFor === this.nodeId) {
      return this.store.mergeRecord(keyspace, key, record, nowMs);
    }
    return this.store.mergeHint(hintFor, keyspace, key, record, this.hintsMax(), nowMs);
  }

  private onPutReply(opId: number, from: string, ok: boolean): void {
    const op = this.ops.get(opId);
    if (op === undefined) return;
    if (op.kind === 'write') return this.onWriteAck(opId, from, ok);
    if (op.kind === 'handoff' && op.owner === from) {
      this.ops.delete(opId);
      if (ok) this.store.dropHint(op.owner, op.keyspaceId, op.key, op.record);
    }
  }

  private onForwardReply(opId: number, reply: ClientReply): void {
    const op = this.ops.get(opId);
    if (op === undefined || op.kind !== 'forward') return;
    this.ops.delete(opId);
    if (!reply.ok) return this.failJob(op.job, reply.error);
    if (
      (reply.op !== 'write' && reply.op !== 'get') ||
      reply.op !== op.job.op ||
      reply.results.length !== op.indexes.length
    ) {
      return this.failJob(op.job, unavailable('the coordinator answered out of turn'));
    }
    op.indexes.forEach((jobIndex, i) => this.completePart(op.job, jobIndex, reply.results[i]!));
  }

  private onHello(
    from: string,
    member: MemberInfo,
    founders: readonly string[],
    isReply: boolean,
  ): void {
    const map = this.map;
    if (map !== null) {
      // A founder that lost its state, or missed the end of formation: it gets the map.
      if (map.members.some((m) => m.id === from)) {
        this.send(from, [MessageType.map, map.epoch, encodeMap(map)]);
      }
      return;
    }
    const cluster = this.config.cluster!;
    const ours = [...cluster.founders, this.nodeId].sort();
    const theirs = [...founders].sort();
    if (member.id !== from || ours.join(',') !== theirs.join(',')) {
      this.formingProblem =
        `${from} expects the founders ${theirs.join(', ')}, this node ${ours.join(', ')}: ` +
        'start every node with the same seeds';
      return;
    }
    this.founderInfos.set(from, member);
    if (!isReply) this.send(from, [MessageType.hello, 0, cluster.self, ours, true]);
    if (ours.every((id) => this.founderInfos.has(id))) {
      const infos = ours.map((id) => this.founderInfos.get(id)!);
      this.adoptMap(
        initialMap(cluster.clusterId, this.config.partitionCount, infos, this.config.keyspaces),
      );
    }
  }

  /**
   * A node asks to join the cluster: it is added as a standby (in the map and SWIM, owning
   * nothing) by a map change, and gets the map. Owning partitions is a later change an
   * operator makes (`ringkv cluster join`), after reading its plan.
   */
  private onJoin(from: string, member: MemberInfo, nowMs: number): void {
    const map = this.map;
    if (map === null || member.id !== from || this.joinsRunning.has(from)) return;
    if (map.members.some((m) => m.id === from)) {
      this.send(from, [MessageType.map, map.epoch, encodeMap(map)]);
      return;
    }
    this.joinsRunning.add(from);
    this.changeMap(
      {
        origin: { kind: 'internal', done: () => this.joinsRunning.delete(from) },
        describe: `add ${from} as a standby`,
        change: (current) => {
          if (current.members.some((m) => m.id === from)) {
            return kvError(ErrorCode.INVALID_ARGUMENT, `${from} is already in the map`);
          }
          const result = addStandby(current, member);
          return result.ok ? result.map : kvError(ErrorCode.INVALID_ARGUMENT, result.problem);
        },
        replyOf: () => ({ ok: true, op: 'count', count: 0 }),
      },
      1,
      nowMs,
    );
  }

  private onMap(bytes: Uint8Array): void {
    let map: ClusterMap;
    try {
      map = decodeMap(bytes);
    } catch {
      this.droppedMessages++;
      return;
    }
    const clusterId = this.config.cluster?.clusterId;
    if (map.clusterId !== clusterId || map.partitionCount !== this.config.partitionCount) {
      this.droppedMessages++;
      return;
    }
    if (this.map !== null && map.epoch <= this.map.epoch) return;
    if (!map.members.some((member) => member.id === this.nodeId)) {
      // A later map without this node: it left, or was removed. It serves nothing more.
      if (this.map !== null) this.leftAtEpoch = map.epoch;
      return;
    }
    this.adoptMap(map);
  }

  // ---- ticks ----

  private onTick(nowMs: number): void {
    this.lastNowMs = nowMs;
    this.store.tick(nowMs);
    if (this.map === null) return this.tickForming(nowMs);
    if (this.swim !== null) this.applySwim(this.swim.tick(nowMs));
    this.applyRegisters(this.registers.tick(nowMs));
    if (this.map.chains !== undefined) {
      this.applyChains(this.chains.tick(nowMs), nowMs);
      this.checkChains(nowMs);
    }
    this.expireOps(nowMs);
    this.failSilentForwards(nowMs);
    this.forgetOldForwards(nowMs);
    if (nowMs >= this.nextHandoffMs) {
      this.nextHandoffMs = nowMs + (this.config.cluster?.handoffIntervalMs ?? 1000);
      this.handOffHints(nowMs);
    }
    if (this.config.cluster !== undefined) this.tickMembership(nowMs);
    if (this.census !== null) this.tickLoad(nowMs);
    if (this.antiEntropy !== null && this.map.members.length > 1) this.tickAntiEntropy(nowMs);
    if (this.tombstones !== null) this.tickTombstones(nowMs);
  }

  /** The sweep for tombstones past their grace, and the purge round it may start. */
  private tickTombstones(nowMs: number): void {
    const map = this.map!;
    const sends = this.tombstones!.tick(nowMs, () => this.sweptPartitions(), {
      refusal: () => {
        // As exchanges pause: the copies of a change in progress are still being made.
        if (map.change !== undefined) return 'change';
        // Any member may hold a hint or a stray copy; one that cannot answer keeps it all.
        return map.members.every((member) => this.liveness(member.id) === 'alive')
          ? null
          : 'unreachable';
      },
      members: () => map.members.map((member) => member.id),
    });
    for (const send of sends) {
      this.send(send.to, [MessageType.antiEntropy, map.epoch, send.message]);
    }
  }

  /** Every partition of an eventual keyspace this node replicates, with its place there. */
  private sweptPartitions(): SweptPartition[] {
    if (this.sweptPartitionsCache !== null) return this.sweptPartitionsCache;
    const map = this.map!;
    const swept: SweptPartition[] = [];
    for (const keyspace of map.keyspaces) {
      if (keyspace.consistency !== 'eventual') continue;
      const n = replicationFactor(keyspace, this.ownerCount);
      for (let partition = 0; partition < map.partitionCount; partition++) {
        const position = this.walkOf(partition).slice(0, n).indexOf(this.nodeId);
        if (position >= 0) swept.push({ keyspace, partition, position });
      }
    }
    this.sweptPartitionsCache = swept;
    return swept;
  }

  /**
   * Whether a repair should leave out sending `record` to a copy that holds nothing
   * (`held` undefined): a tombstone past its grace is gone there already or never needed
   * there, and sending it would only bring back a row the next purge round removes again.
   */
  private skipsTombstoneRepair(record: StoredRecord, held: StoredRecord | undefined): boolean {
    if (held !== undefined || this.tombstones === null) return false;
    return skipsRepairToAbsent(record, this.lastNowMs, this.tombstones.settings.graceMs);
  }

  /**
   * Counts this node's data, a partition at a time, and runs the elastic policy: the decider
   * asks for loads and proposes the change they call for.
   */
  private tickLoad(nowMs: number): void {
    const map = this.map!;
    this.census!.tick(nowMs, (partition) => {
      let keys = 0;
      let bytes = 0;
      for (const keyspace of map.keyspaces) {
        const size = this.store.partitionSize(keyspace.id, partition, Number.MAX_SAFE_INTEGER);
        keys += size?.keys ?? 0;
        bytes += size?.bytes ?? 0;
      }
      return { keys, bytes };
    });
    if (this.elastic === null || this.leftAtEpoch !== null) return;
    const { sends, decision } = this.elastic.tick(
      nowMs,
      map,
      (id) => this.isUp(id),
      this.census!.load(nowMs),
    );
    for (const send of sends) this.send(send.to, [MessageType.load, map.epoch, send.message]);
    if (decision === null) return;
    const elastic = this.elastic;
    const change =
      decision.kind === 'join'
        ? { kind: 'join' as const, id: decision.member.id }
        : { kind: 'leave' as const, id: decision.id };
    this.changeMap(
      {
        origin: { kind: 'internal', done: (ok) => elastic.proposed(ok, this.lastNowMs) },
        describe: `${change.kind} ${change.id} by the elastic policy: ${decision.reason}`,
        change: (current) => {
          const result = planMembership(current, change);
          return result.ok ? result.map : kvError(ErrorCode.INVALID_ARGUMENT, result.problem);
        },
        replyOf: () => ({ ok: true, op: 'count', count: 0 }),
      },
      1,
      nowMs,
    );
  }

  /** The next exchange between replicas, and the repairs earlier ones found. */
  private tickAntiEntropy(nowMs: number): void {
    const epoch = this.map!.epoch;
    const { sends, repairs } = this.antiEntropy!.tick(nowMs, () => this.exchangeCandidates());
    for (const send of sends) this.send(send.to, [MessageType.antiEntropy, epoch, send.message]);
    for (const repair of repairs) {
      if (!this.isUp(repair.peer)) continue;
      if (repair.action !== 'pull') {
        const own = this.store.readRecord(repair.keyspace, repair.key);
        // `push`: the peer holds nothing for the key (a `both` is sent whatever it holds).
        const peerAbsent = repair.action === 'push';
        if (
          own.ok &&
          own.value !== undefined &&
          !(peerAbsent && this.skipsTombstoneRepair(own.value, undefined))
        ) {
          // Fire and forget: opId 0 names no op, so the answer is dropped.
          this.send(repair.peer, [
            MessageType.put,
            epoch,
            0,
            repair.keyspace.id,
            repair.key,
            encodeRecord(own.value),
            '',
          ]);
        }
      }
      if (repair.action !== 'push') {
        const opId = this.takeOpId();
        this.ops.set(opId, {
          kind: 'repair-pull',
          keyspace: repair.keyspace,
          key: repair.key,
          deadlineMs: nowMs + this.requestTimeoutMs(),
        });
        this.send(repair.peer, [MessageType.read, epoch, opId, repair.keyspace.id, repair.key, '']);
      }
    }
  }

  /**
   * Every partition of an eventual keyspace this node replicates, with its other replicas
   * that are up. Without a membership change in progress only: while one runs, replicas
   * are being copied and the exchanges would only race the copies.
   */
  private exchangeCandidates(): ExchangeCandidate[] {
    const map = this.map!;
    if (map.change !== undefined) return [];
    if (this.exchangeCandidatesCache === null) {
      const candidates: ExchangeCandidate[] = [];
      for (const keyspace of map.keyspaces) {
        if (keyspace.consistency !== 'eventual') continue;
        const n = replicationFactor(keyspace, this.ownerCount);
        for (let partition = 0; partition < map.partitionCount; partition++) {
          const replicas = this.walkOf(partition).slice(0, n);
          if (!replicas.includes(this.nodeId)) continue;
          const peers = replicas.filter((id) => id !== this.nodeId);
          candidates.push({ keyspace, partition, peers });
        }
      }
      this.exchangeCandidatesCache = candidates;
    }
    return this.exchangeCandidatesCache.map((candidate) => ({
      ...candidate,
      peers: candidate.peers.filter((id) => this.liveness(id) === 'alive'),
    }));
  }

  /**
   * The membership change in progress, from this node's side: its copies move on, and once
   * they are all made it says so in the map (the last receiver's report commits the change).
   * Without a change, the data of partitions it gave away is removed, a little per tick.
   */
  private tickMembership(nowMs: number): void {
    const map = this.map!;
    for (const send of this.handoff.tick(nowMs, (id) => this.isUp(id))) {
      this.send(send.to, [MessageType.handoff, map.epoch, send.message]);
    }
    if (map.change === undefined) {
      this.handoff.planStrayDrop(
        map.keyspaces,
        map.partitionCount,
        (keyspace, partition) => this.replicatesHere(keyspace, partition),
        nowMs,
      );
      return;
    }
    if (this.copiesReportRunning) return;
    this.noteChainJoins(map);
    // A change that copies nothing (a standby removed) is committed by the first voter up.
    const nothingToCopy =
      receiversOf(map).length === 0 && votersOf(map).find((id) => this.isUp(id)) === this.nodeId;
    const copiesMade =
      this.handoff.copiesMade ||
      (this.config.cluster?.handoffCopies === false && receiversOf(map).includes(this.nodeId));
    if (!nothingToCopy && (!copiesMade || map.change.copied.includes(this.nodeId))) {
      return;
    }
    this.copiesReportRunning = true;
    this.changeMap(
      {
        origin: {
          kind: 'internal',
          done: () => {
            this.copiesReportRunning = false;
          },
        },
        describe: nothingToCopy
          ? 'commit a membership change that copies nothing'
          : `record that ${this.nodeId} has made its copies`,
        change: (current) => {
          if (nothingToCopy && receiversOf(current).length > 0) {
            return kvError(ErrorCode.INVALID_ARGUMENT, 'the change now copies data');
          }
          // The chains this node joined may have dropped it since (it went down): not yet.
          const outOfChain = this.handoff
            .chainPartitions()
            .find(
              (partition) =>
                !chainWithoutSource(current, partition) &&
                current.chains?.[partition]?.members.some((member) => member.id === this.nodeId) !==
                  true,
            );
          const control = this.config.cluster?.chainTailsBeforeCommit === false;
          if (!nothingToCopy && !control && outOfChain !== undefined) {
            return kvError(ErrorCode.INVALID_ARGUMENT, `not in the chain of ${outOfChain} now`);
          }
          const result = nothingToCopy ? commitChange(current) : markCopied(current, this.nodeId);
          return result.ok ? result.map : kvError(ErrorCode.INVALID_ARGUMENT, result.problem);
        },
        replyOf: () => ({ ok: true, op: 'count', count: 0 }),
      },
      1,
      nowMs,
    );
  }

  /** Whether this node is one of the partition's n replicas under the current owners. */
  private replicatesHere(keyspace: Keyspace, partition: number): boolean {
    const n = replicationFactor(keyspace, this.ownerCount);
    const walk = this.walkOf(partition);
    for (let i = 0; i < n && i < walk.length; i++) if (walk[i] === this.nodeId) return true;
    return false;
  }

  /**
   * A peer whose connection closed on its own is taken as silent at once: strong forwards
   * waiting on it fail now (their outcome is unknown) and its keys are coordinated
   * elsewhere until it speaks again. A killed process closes its sockets at once, long
   * before SWIM suspects it.
   */
  private onPeerLost(peer: string): void {
    if (peer === this.nodeId || this.map === null) return;
    this.silentPeers.add(peer);
    for (const [opId, op] of this.ops) {
      if (op.kind !== 'forward' || op.silentAfterMs === null || op.to !== peer) continue;
      this.ops.delete(opId);
      this.failSilentForward(op);
    }
  }

  private failSilentForward(op: ForwardOp): void {
    const error = unavailable(
      `the coordinating replica ${op.to} fell silent; a write may or may not have happened`,
    );
    this.failJob(op.job, error);
  }

  /**
   * Strong forwards whose coordinator fell silent (see ForwardOp.silentAfterMs) fail now:
   * the client learns at once that the outcome is unknown, and this node routes the
   * coordinator's keys elsewhere until it hears from it again, rather than waiting out the
   * request timeout while SWIM makes up its mind.
   */
  private failSilentForwards(nowMs: number): void {
    for (const [opId, op] of this.ops) {
      if (op.kind !== 'forward' || op.silentAfterMs === null) continue;
      // Silent: nothing from the coordinator for that long, since before the forward or after.
      if (nowMs - op.sentMs < op.silentAfterMs) continue;
      if (nowMs - (this.lastHeardMs.get(op.to) ?? -Infinity) < op.silentAfterMs) continue;
      this.ops.delete(opId);
      this.silentPeers.add(op.to);
      this.failSilentForward(op);
    }
  }

  /**
   * How long a forwarding replica waits for a word from a strong key's coordinator. A live
   * coordinator working on the keys sends their acceptors a prepare or an accept at every
   * attempt, and attempts follow each other within a phase timeout and a backoff; a margin
   * covers the network.
   */
  private silencePatienceMs(): number {
    return this.strongPhaseTimeoutMs() + PROPOSER_BACKOFF_MS_MAX + SILENCE_MARGIN_MS;
  }

  private strongPhaseTimeoutMs(): number {
    return Math.max(1, Math.floor(this.requestTimeoutMs() / 4));
  }

  private isRepeatedForward(
    from: string,
    incarnation: number,
    opId: number,
    nowMs: number,
  ): boolean {
    const id = `${from} ${incarnation} ${opId}`;
    if (this.recentForwards.has(id)) return true;
    this.recentForwards.set(id, nowMs);
    if (this.recentForwards.size > RECENT_FORWARDS_MAX) {
      this.recentForwards.delete(this.recentForwards.keys().next().value!);
    }
    return false;
  }

  /** A copy later than this is no longer waited for by anyone: its forwarder gave up. */
  private forgetOldForwards(nowMs: number): void {
    const horizonMs = nowMs - FORWARD_MEMORY_FACTOR * (this.requestTimeoutMs() + FORWARD_GRACE_MS);
    for (const [id, seenMs] of this.recentForwards) {
      if (seenMs >= horizonMs) break;
      this.recentForwards.delete(id);
    }
  }

  private takeOpId(): number {
    this.opCounter = (this.opCounter % OP_IDS_PER_LIFE) + 1;
    return (this.store.incarnation % INCARNATIONS_IN_OP_IDS) * OP_IDS_PER_LIFE + this.opCounter;
  }

  private tickForming(nowMs: number): void {
    if (nowMs < this.nextHelloMs) return;
    this.nextHelloMs = nowMs + HELLO_INTERVAL_MS;
    const cluster = this.config.cluster!;
    if (cluster.joinVia !== undefined) {
      this.send(cluster.joinVia, [MessageType.join, 0, cluster.self]);
      return;
    }
    const founders = [...cluster.founders, this.nodeId].sort();
    for (const id of cluster.founders) {
      if (!this.founderInfos.has(id)) {
        this.send(id, [MessageType.hello, 0, cluster.self, founders, false]);
      }
    }
  }

  private applySwim(output: SwimOutput): void {
    // A member back to life gets its hints at the next tick, not a round later.
    if (output.changes.some((change) => change.liveness === 'alive')) this.nextHandoffMs = 0;
    const epoch = this.epoch();
    for (const { to, message } of output.sends) {
      this.send(to, [MessageType.swim, epoch, message]);
    }
  }

  /** Ops whose time is up: a request fails, a read repairs with what it has. */
  private expireOps(nowMs: number): void {
    for (const [opId, op] of this.ops) {
      if (op.deadlineMs > nowMs) continue;
      switch (op.kind) {
        case 'read':
          if (!op.answered) {
            op.answered = true;
            this.failJob(
              op.job,
              unavailable(
                `${op.answers.size} of the ${op.needed} replicas needed answered in time`,
              ),
            );
          }
          this.finishRead(opId, op);
          break;
        case 'write':
          this.ops.delete(opId);
          if (!op.answered) this.failJob(op.job, this.writeShortfall(op));
          break;
        case 'forward':
          this.ops.delete(opId);
          this.failJob(
            op.job,
            unavailable(
              'the coordinating replica did not answer in time; the write may or may not have happened',
            ),
          );
          break;
        case 'scan':
        case 'count':
        case 'flush':
          this.ops.delete(opId);
          this.fail(op.origin, unavailable('not every replica answered in time'));
          break;
        case 'handoff':
        case 'repair-pull':
          this.ops.delete(opId);
          break;
        case 'chain':
          // The requester's own deadline comes first; this is the backstop.
          this.ops.delete(opId);
          this.failJob(
            op.job,
            unavailable('the chain did not answer in time; a write may or may not have happened'),
          );
          break;
        case 'map-change':
          this.ops.delete(opId);
          this.fail(
            op.change.origin,
            unavailable(
              `no majority of the voters answered in time; ${op.change.describe} may or may not have been made`,
            ),
          );
          break;
        case 'strong':
          // The proposer may still finish it; its answer then finds no op and is dropped.
          this.ops.delete(opId);
          this.failJob(
            op.job,
            unavailable(
              op.mutation === null
                ? 'no quorum of acceptors answered in time'
                : 'no quorum of acceptors answered in time; the write may or may not have happened',
            ),
          );
          break;
        case 'prefetch':
          this.ops.delete(opId);
          if (!op.done) {
            op.done = true;
            this.failJob(op.job, this.prefetchShortfall(op));
          }
          break;
      }
    }
  }

  /** Offers the hints this node holds back to their owners that are alive. */
  private handOffHints(nowMs: number): void {
    if (this.store.hintCount() === 0 || this.config.cluster?.hintedHandoff === false) return;
    const busy = new Set<string>();
    for (const op of this.ops.values()) if (op.kind === 'handoff') busy.add(op.owner);
    const members = new Set(this.map!.members.map((member) => member.id));
    const batchMax = this.config.cluster?.handoffBatchMax ?? 256;
    for (const owner of this.store.hintOwners(HINT_OWNER_SCAN_MAX).keys()) {
      if (!members.has(owner)) {
        // The owner left or was removed: it will never take these back.
        for (const hint of this.store.hintsFor(owner, batchMax)) this.retargetHint(owner, hint);
        continue;
      }
      if (busy.has(owner) || this.liveness(owner) !== 'alive') continue;
      for (const hint of this.store.hintsFor(owner, batchMax)) {
        if (this.retargetHint(owner, hint)) continue;
        const opId = this.takeOpId();
        this.ops.set(opId, {
          kind: 'handoff',
          owner,
          keyspaceId: hint.keyspaceId,
          key: hint.key,
          record: hint.record,
          deadlineMs: nowMs + this.requestTimeoutMs(),
        });
        this.send(owner, [
          MessageType.put,
          this.epoch(),
          opId,
          hint.keyspaceId,
          hint.key,
          encodeRecord(hint.record),
          '',
        ]);
      }
    }
  }

  /**
   * A hint whose owner no longer replicates its key (a membership change moved the
   * partition, or the owner is gone) goes to the key's replicas now instead: this node's
   * own copy if it is one, a hint for each of the others. Handed back to its old owner, it
   * would sit there in a partition that node gives away, and the acknowledged write it
   * holds could be lost. Answers whether the hint was moved.
   */
  private retargetHint(owner: string, hint: HintEntry): boolean {
    const keyspace = this.keyspacesById.get(hint.keyspaceId);
    if (keyspace === undefined || keyspace.consistency !== 'eventual') return false;
    const partition = partitionOf(keyspace.id, hint.key, this.config.partitionCount);
    const n = replicationFactor(keyspace, this.ownerCount);
    const replicas = [
      ...this.walkOf(partition).slice(0, n),
      ...this.addedReplicasOf(partition, n, keyspace.n === 'all'),
    ];
    if (replicas.includes(owner)) return false;
    for (const id of replicas) {
      const moved =
        id === this.nodeId
          ? this.store.mergeRecord(keyspace, hint.key, hint.record, this.lastNowMs)
          : this.store.mergeHint(
              id,
              keyspace,
              hint.key,
              hint.record,
              this.hintsMax(),
              this.lastNowMs,
            );
      // The hint table is full: the hint stays with its owner's name, tried again later.
      if (!moved.ok) return true;
    }
    assert(replicas.length > 0, 'a key has replicas');
    this.store.dropHint(owner, keyspace.id, hint.key, hint.record);
    return true;
  }

  // ---- persistence and waiting ----

  /** Every batch through `batchId` is persisted: a shell may report a whole group at once. */
  private onPersisted(batchId: number): void {
    assert(batchId > this.store.lastPersistedBatchId, `batch ${batchId} reported twice`);
    for (let id = this.store.lastPersistedBatchId + 1; id <= batchId; id++) {
      this.store.persisted(id);
      this.handoff.persisted(id);
      for (
        let waiter = this.waiters.take(id);
        waiter !== undefined;
        waiter = this.waiters.take(id)
      ) {
        this.run(waiter);
      }
    }
  }

  /** Runs `waiter` once batch `batchId` is persisted (now, if it already is). */
  private after(batchId: number, waiter: Waiter): void {
    if (batchId <= this.store.lastPersistedBatchId) return this.run(waiter);
    this.waiters.add(batchId, waiter);
  }

  private run(waiter: Waiter): void {
    switch (waiter.kind) {
      case 'reply':
        return this.reply(waiter.origin, waiter.reply);
      case 'write-ack':
        return this.onWriteAck(waiter.opId, this.nodeId, true);
      case 'coordinate':
        return this.coordinateWrite(
          waiter.job,
          waiter.indexes,
          waiter.keyspace,
          waiter.items,
          waiter.partition,
          waiter.n,
          waiter.needed,
          this.lastNowMs,
          waiter.attempt,
        );
      case 'read-local':
        return this.onReadAnswer(waiter.opId, this.nodeId, waiter.record);
      case 'send':
        return this.send(waiter.to, waiter.message);
      case 'sum':
        return this.onSumAnswer(waiter.opId, waiter.value);
      case 'loopback':
        this.loopback.push(waiter.message);
        return;
    }
  }

  // ---- jobs and replies ----

  private newJob(origin: Origin, op: 'get' | 'write', parts: number): Job {
    return {
      origin,
      op,
      results: new Array(parts).fill(undefined),
      remaining: parts,
      finished: false,
    };
  }

  private completePart(job: Job, index: number, result: ReadResult | WriteResult): void {
    if (job.finished || job.results[index] !== undefined) return;
    job.results[index] = result;
    job.remaining--;
    if (job.remaining > 0) return;
    job.finished = true;
    const reply: ClientReply =
      job.op === 'get'
        ? { ok: true, op: 'get', results: job.results as ReadResult[] }
        : { ok: true, op: 'write', results: job.results as WriteResult[] };
    this.reply(job.origin, reply);
  }

  private failJob(job: Job, error: KvError): void {
    if (job.finished) return;
    job.finished = true;
    this.fail(job.origin, error);
  }

  private reply(origin: Origin, reply: ClientReply): void {
    if (origin.kind === 'client') {
      this.effects.push({ type: 'reply', requestId: origin.requestId, reply });
    } else if (origin.kind === 'internal') {
      origin.done(reply.ok);
    } else {
      this.send(origin.to, [MessageType.forwardReply, this.epoch(), origin.opId, reply]);
    }
  }

  private fail(origin: Origin, error: KvError): void {
    this.reply(origin, { ok: false, error });
  }

  /** Replies now, or once batch `batchId` is persisted. */
  private replyAfter(batchId: number, origin: Origin, reply: ClientReply): void {
    if (batchId <= this.store.lastPersistedBatchId) return this.reply(origin, reply);
    this.after(batchId, { kind: 'reply', origin, reply });
  }

  private send(to: string, message: PeerMessage): void {
    assert(to !== this.nodeId, 'a node does not message itself');
    this.effects.push({ type: 'send', to, message });
  }

  // ---- ring and liveness ----

  private walkOf(partition: number): readonly string[] {
    let walk = this.walks[partition];
    if (walk === undefined) {
      walk = walkRing(this.map!.owners, partition);
      this.walks[partition] = walk;
    }
    return walk;
  }

  /**
   * The replicas of a partition that the membership change in progress adds (none without
   * one): the first n of the next owners' walk (all of it for `n: all`) that are not among
   * the first n of the owners' walk.
   */
  private addedReplicasOf(partition: number, n: number, all: boolean): readonly string[] {
    const change = this.map!.change;
    if (change === undefined) return [];
    const key = (partition * 128 + Math.min(n, 127)) * 2 + (all ? 1 : 0);
    let added = this.addedReplicas.get(key);
    if (added === undefined) {
      const now = new Set(this.walkOf(partition).slice(0, n));
      const next = walkRing(change.nextOwners, partition);
      added = next.slice(0, all ? next.length : n).filter((id) => !now.has(id));
      this.addedReplicas.set(key, added);
    }
    return added;
  }

  private isUp(id: string): boolean {
    return this.liveness(id) !== 'down';
  }

  /**
   * The first n nodes of the partition's walk that are not down; a fallback taken in place
   * of a down replica carries that replica's id (sloppy quorum).
   */
  private targetsOf(partition: number, n: number): Target[] {
    const walk = this.walkOf(partition);
    const targets: Target[] = [];
    const skipped: string[] = [];
    for (let i = 0; i < walk.length && targets.length < n; i++) {
      const node = walk[i]!;
      if (!this.isUp(node)) {
        if (i < n) skipped.push(node);
        continue;
      }
      targets.push({ node, hintFor: i < n ? '' : (skipped.shift() ?? '') });
    }
    return targets;
  }

  private resolveQuorum(
    spec: QuorumSpec | undefined,
    fallback: number,
    n: number,
  ): number | KvError {
    if (spec === undefined) return Math.min(fallback, n);
    if (spec === 'one') return 1;
    if (spec === 'quorum') return Math.floor(n / 2) + 1;
    if (spec === 'all') return n;
    if (Number.isInteger(spec) && spec >= 1 && spec <= n) return spec;
    return kvError(
      ErrorCode.INVALID_ARGUMENT,
      `quorum must be one, quorum, all or a number from 1 to ${n}`,
    );
  }

  private checkQuorum(spec: QuorumSpec | undefined, keyspace: Keyspace, n: number): KvError | null {
    const resolved = this.resolveQuorum(spec, keyspace.r, n);
    return typeof resolved === 'number' ? null : resolved;
  }

  private epoch(): number {
    return this.map?.epoch ?? 0;
  }

  private requestTimeoutMs(): number {
    return this.config.cluster?.requestTimeoutMs ?? DEFAULT_CLUSTER_TIMINGS.requestTimeoutMs;
  }

  private hintsMax(): number {
    return this.config.cluster?.hintsMax ?? DEFAULT_CLUSTER_TIMINGS.hintsMax;
  }
}

/** The cluster map a node's storage holds, or null (a node that has not formed or joined). */
type WriteRequest = Extract<ClientRequest, { op: 'write' }>;
/** A request on the data of one keyspace (not a change of the cluster map). */
type KeyspaceRequest = Exclude<ClientRequest, { op: 'createKeyspace' | 'changeMembership' }>;

/** Replicas per chain: the n of the map's chain keyspaces, at most the members. */
function chainLengthOf(map: ClusterMap): number {
  const keyspace = map.keyspaces.find((candidate) => candidate.consistency === 'chain');
  assert(keyspace !== undefined && keyspace.n !== 'all', 'the map has a chain keyspace');
  return Math.min(keyspace.n, ownersOf(map).length);
}

/**
 * The chains `mayChange` allows without the members `isDown` names, one epoch on; a chain
 * keeps its last replica.
 */
function removalsOf(
  map: ClusterMap,
  isDown: (id: string) => boolean,
  mayChange: (config: ChainConfig) => boolean,
): ChainConfig[] {
  const changed: ChainConfig[] = [];
  for (const config of map.chains ?? []) {
    if (!mayChange(config)) continue;
    const kept = config.members.filter((member) => !isDown(member.id));
    const members = kept.length > 0 ? kept : config.members.slice(0, 1);
    if (members.length === config.members.length) continue;
    changed.push({ ...config, epoch: config.epoch + 1, members });
  }
  return changed;
}

export function storedClusterMap(view: StorageReader): ClusterMap | null {
  const bytes = view.get(metaKey(MAP_META_NAME));
  return bytes === undefined ? null : decodeMap(bytes);
}

function unavailable(message: string): KvError {
  return kvError(ErrorCode.UNAVAILABLE, message);
}

/** A Map key for a byte string. */
function keyIdOf(key: Uint8Array): string {
  let id = '';
  for (let i = 0; i < key.length; i++) id += String.fromCharCode(key[i]!);
  return id;
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return prefix.length <= bytes.length && equalBytes(bytes.subarray(0, prefix.length), prefix);
}

function scanCursor(partition: number, afterKey: Uint8Array | null): Uint8Array {
  const cursor = new Uint8Array(CURSOR_PARTITION_BYTES + (afterKey?.length ?? 0));
  cursor[0] = partition >>> 8;
  cursor[1] = partition & 0xff;
  if (afterKey !== null) cursor.set(afterKey, CURSOR_PARTITION_BYTES);
  return cursor;
}

/**
 * Whether a write's outcome depends on nothing but its own items: a plain SET or a DEL
 * (every other mutation reads the current value: conditions, KEEPTTL, INCR, APPEND).
 */
function writesBlindly(items: readonly WriteItem[]): boolean {
  return items.every(
    ({ mutation }) =>
      mutation.kind === 'delete' ||
      (mutation.kind === 'set' &&
        mutation.condition === 'always' &&
        mutation.expiry.kind !== 'keep'),
  );
}
