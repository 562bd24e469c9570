// The face a running node shows to its client protocols (RESP, HTTP): submit a request,
// get one reply through the callback, exactly once. Implemented by NodeRuntime (real clock,
// real storage); protocol layers depend on this interface only.

import type { HandoffStatus } from '../core/handoff/handoff-host.ts';
import type { ClusterMap } from '../core/cluster/cluster-map.ts';
import type { Keyspace } from '../core/keyspace.ts';
import type { ClusterStatus } from '../core/node.ts';
import type { FaultSettings } from './faults.ts';
import type { Limits } from '../core/limits.ts';
import type { ClientReply, ClientRequest } from '../core/requests.ts';

export type ReplyCallback = (reply: ClientReply) => void;

export interface NodeStatus {
  readonly nodeId: string;
  readonly startedAtMs: number;
  readonly uptimeMs: number;
  readonly storageEngine: string;
  readonly dataDir: string | null;
  readonly requestsInFlight: number;
  readonly commitsTotal: number;
  readonly commitBatchSizeMean: number;
}

export interface NodeApi {
  /**
   * Submits one request. `onReply` is called exactly once, possibly synchronously (reads
   * served from storage) or later (writes, once durable). When too many requests are in
   * flight the reply is an RINGKV_OVERLOADED error.
   */
  submit(request: ClientRequest, onReply: ReplyCallback): void;
  /** Keyspaces in id order; RESP's SELECT n picks the n-th. */
  keyspaces(): readonly Keyspace[];
  readonly limits: Limits;
  status(): NodeStatus;
  /** Members, liveness, ownership and hints, as this node sees them. */
  clusterStatus(): ClusterStatus;
  /** The cluster map, or null while the cluster is forming. */
  clusterMap(): ClusterMap | null;
  faultSettings(): FaultSettings;
  /** Changes fault injection; throws RangeError on a bad value. */
  setFaults(settings: Partial<FaultSettings>): FaultSettings;
  /**
   * Changes this node's handoff (the copies it pulls while the membership changes): bytes
   * per second in all (0: no limit) and pause; answers the handoff status after it.
   */
  setHandoff(settings: HandoffSettings): HandoffStatus;
}

export interface HandoffSettings {
  readonly bytesPerSecond?: number;
  readonly paused?: boolean;
}
