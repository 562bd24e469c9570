// A NodeApi whose node arrives later. A cluster node binds its client ports before it has
// found the other founders (peers must learn the real addresses); until the runtime exists,
// requests are refused as unavailable and status says the node is starting.

import type { ClusterMap } from '../core/cluster/cluster-map.ts';
import { ErrorCode, kvError } from '../core/errors.ts';
import type { Keyspace } from '../core/keyspace.ts';
import type { Limits } from '../core/limits.ts';
import type { ClusterStatus } from '../core/node.ts';
import type { ClientRequest } from '../core/requests.ts';
import { NO_FAULTS, type FaultSettings } from './faults.ts';
import type { HandoffSettings, NodeApi, NodeStatus, ReplyCallback } from './node-api.ts';
import type { HandoffStatus } from '../core/handoff/handoff-host.ts';

export class LateNodeApi implements NodeApi {
  readonly limits: Limits;
  private target: NodeApi | null = null;
  private readonly startingStatus: () => NodeStatus;
  private readonly clusterId: string;

  constructor(limits: Limits, clusterId: string, startingStatus: () => NodeStatus) {
    this.limits = limits;
    this.clusterId = clusterId;
    this.startingStatus = startingStatus;
  }

  bind(target: NodeApi): void {
    this.target = target;
  }

  submit(request: ClientRequest, onReply: ReplyCallback): void {
    if (this.target !== null) return this.target.submit(request, onReply);
    onReply({
      ok: false,
      error: kvError(ErrorCode.UNAVAILABLE, 'the node is starting: it is looking for the founders'),
    });
  }

  keyspaces(): readonly Keyspace[] {
    return this.target?.keyspaces() ?? [];
  }

  status(): NodeStatus {
    return this.target?.status() ?? this.startingStatus();
  }

  clusterStatus(): ClusterStatus {
    return (
      this.target?.clusterStatus() ?? {
        clusterId: this.clusterId,
        state: 'forming',
        epoch: 0,
        partitionCount: 0,
        members: [],
        hintsPending: {},
        hintsTotal: 0,
        chainsShort: 0,
        left: false,
        change: null,
        handoff: {
          changeEpoch: null,
          transfers: [],
          copiesWaiting: 0,
          copiesDone: 0,
          bytesPerSecondLimit: 0,
          paused: false,
          bytesPerSecond: 0,
        },
        load: null,
        elastic: null,
        problem: 'the node is starting: it is looking for the founders',
      }
    );
  }

  clusterMap(): ClusterMap | null {
    return this.target?.clusterMap() ?? null;
  }

  faultSettings(): FaultSettings {
    return this.target?.faultSettings() ?? NO_FAULTS;
  }

  setFaults(settings: Partial<FaultSettings>): FaultSettings {
    if (this.target === null) throw new RangeError('the node is starting');
    return this.target.setFaults(settings);
  }

  setHandoff(settings: HandoffSettings): HandoffStatus {
    if (this.target === null) throw new RangeError('the node is starting');
    return this.target.setHandoff(settings);
  }
}
