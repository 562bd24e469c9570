// A node's configuration: every option, its default, and its limits. The CLI fills it from
// flags, a config file and RINGKV_* environment variables (src/cli/options.ts); the table in
// docs/CONFIGURATION.md lists the same fields.

import type { ElasticSettings } from '../core/cluster/elastic-host.ts';
import type { Durability } from '../core/keyspace.ts';

export type StorageEngineName = 'lmdb' | 'memory';

export interface NodeConfig {
  /** Stable identity of the node; appears in version vectors. */
  readonly nodeId: string;
  /** Data directory (LMDB engine). */
  readonly dataDir: string;
  readonly storage: StorageEngineName;
  /**
   * Durability of the `default` keyspace: `sync` acknowledges a write once it is fsynced,
   * `relaxed` once it is applied in memory (a crash may lose the last writes).
   */
  readonly durability: Durability;
  /** Address the client ports listen on; loopback unless told otherwise. */
  readonly host: string;
  readonly respPort: number;
  readonly httpPort: number;
  /** Client password (Redis requirepass, HTTP bearer token); null: no authentication. */
  readonly password: string | null;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /** Most client connections at once, on each client port (RESP and HTTP). */
  readonly connectionsMax: number;
  /**
   * Most requests submitted to the node and not yet answered; also most write batches
   * waiting for a storage commit.
   */
  readonly requestsInFlightMax: number;
  /** Most bytes a RESP connection may buffer of unparsed input (one command). */
  readonly respInputBytesMax: number;
  /** Period of the core's tick (expiry, failure detection, timeouts, hinted handoff). */
  readonly tickMs: number;
  /** Port other nodes reach this one on (cluster mode: when `seeds` or `join` is set). */
  readonly peerPort: number;
  /**
   * Peer addresses (host:port) of every founding member, this node included. Empty: a
   * single node that talks to no peer.
   */
  readonly seeds: readonly string[];
  /**
   * Peer address (host:port) of a member of a running cluster to join through: the node
   * becomes a standby. Null: a founder (or a single node). Used only while no map is stored.
   */
  readonly join: string | null;
  /** Name of the cluster; nodes of different clusters refuse each other. */
  readonly clusterId: string;
  /** Shared secret that peers prove they hold (required in cluster mode). */
  readonly clusterSecret: string | null;
  /** Bearer token the admin routes (fault injection, keyspaces) require; null: none. */
  readonly adminToken: string | null;
  /** A request not answered by enough replicas within this time fails. */
  readonly requestTimeoutMs: number;
  /** SWIM: one probe per period. */
  readonly probeIntervalMs: number;
  /** SWIM: wait for a direct ack before indirect probes. */
  readonly probeTimeoutMs: number;
  /** SWIM: a suspect not refuted within this time is marked down. */
  readonly suspicionTimeoutMs: number;
  /** Most hints this node holds for unreachable replicas. */
  readonly hintsMax: number;
  /**
   * The elastic policy (docs/CLUSTER.md, "Elastic policy"): when this node is the first voter
   * up, it joins a standby or lets a member leave by the load per member. Null: off.
   */
  readonly elastic: ElasticSettings | null;
  /**
   * How old a tombstone of an eventual keyspace must be before it may be purged
   * (docs/ANTI-ENTROPY.md, "Tombstones"): at least ten request timeouts and ten hint
   * handoff intervals.
   */
  readonly tombstoneGraceMs: number;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const DEFAULT_NODE_CONFIG: NodeConfig = {
  nodeId: 'node1',
  dataDir: 'data/node1',
  storage: 'lmdb',
  durability: 'sync',
  host: '127.0.0.1',
  respPort: 6380,
  httpPort: 6480,
  password: null,
  keyBytesMax: 8 * 1024,
  valueBytesMax: 16 * 1024 * 1024,
  connectionsMax: 10_000,
  requestsInFlightMax: 100_000,
  respInputBytesMax: 64 * 1024 * 1024,
  tickMs: 100,
  peerPort: 0,
  seeds: [],
  join: null,
  clusterId: 'ringkv',
  clusterSecret: null,
  adminToken: null,
  requestTimeoutMs: 2000,
  probeIntervalMs: 1000,
  probeTimeoutMs: 400,
  suspicionTimeoutMs: 5000,
  hintsMax: 1_000_000,
  elastic: null,
  tombstoneGraceMs: 3_600_000,
  logLevel: 'info',
};
