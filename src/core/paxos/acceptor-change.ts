// What a membership change means for the registers of strong keyspaces (docs/PAXOS.md,
// "Acceptor changes"), computed from cluster maps alone: each key's acceptors while a change
// is in progress (both sets, joint quorums), the fence each partition's acceptors keep, the
// copies a node makes as a new acceptor, and the partitions it gives away.
//
// Rules kept:
// - Pure functions of the maps: every node computes the same acceptors and fences from the
//   same map.
// - A partition "changes" when, for some strong keyspace, its replica set under `owners`
//   differs from the one under `nextOwners`; fences are per partition, over every strong
//   keyspace, so one table serves them all (a keyspace whose replicas stay is fenced along,
//   which costs a retry, never safety).
// - Fence epochs only go up: a map's change fences at the change's epoch, a map whose owners
//   differ from the previous one's fences the partitions that moved at its own epoch.

import { assert } from '../bytes.ts';
import type { ClusterMap } from '../cluster/cluster-map.ts';
import { replicationFactor } from '../cluster/cluster-map.ts';
import type { Keyspace } from '../keyspace.ts';
import { preferenceList } from '../ring/preference-list.ts';
import type { AcceptorConfiguration } from './proposer.ts';

/** A fence to raise: no proposal from a map older than `epoch` is taken for the partition. */
export interface FenceRaise {
  readonly partition: number;
  readonly epoch: number;
}

/** One partition of one strong keyspace this node becomes an acceptor of. */
export interface RegisterCopyPlan {
  readonly keyspaceId: number;
  readonly partition: number;
  /** The partition's acceptors before the change, whose keys are listed and rewritten. */
  readonly currentAcceptors: readonly string[];
  /** The epoch that names the change. */
  readonly changeEpoch: number;
}

function distinctCount(owners: readonly string[]): number {
  return new Set(owners).size;
}

function replicasUnder(owners: readonly string[], keyspace: Keyspace, partition: number): string[] {
  return preferenceList(owners, partition, replicationFactor(keyspace, distinctCount(owners)));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}

function strongKeyspaces(map: ClusterMap): Keyspace[] {
  return map.keyspaces.filter((keyspace) => keyspace.consistency === 'strong');
}

/**
 * The acceptors of a strong keyspace's partition under `map`: its replicas under `owners`,
 * and while a change moves them, its replicas under `nextOwners` as well; with the map's
 * epoch, which every request of an operation on them carries.
 */
export function strongAcceptorsOf(
  map: ClusterMap,
  keyspace: Keyspace,
  partition: number,
): AcceptorConfiguration {
  const ids = replicasUnder(map.owners, keyspace, partition);
  assert(ids.length > 0, 'a partition has replicas');
  const change = map.change;
  if (change === undefined) return { ids, epoch: map.epoch };
  const nextIds = replicasUnder(change.nextOwners, keyspace, partition);
  if (sameSet(ids, nextIds)) return { ids, epoch: map.epoch };
  return { ids, nextIds, epoch: map.epoch };
}

/** Whether the change in progress moves the acceptors of any strong keyspace of a partition. */
export function acceptorsChange(map: ClusterMap, partition: number): boolean {
  const change = map.change;
  if (change === undefined) return false;
  return strongKeyspaces(map).some(
    (keyspace) =>
      !sameSet(
        replicasUnder(map.owners, keyspace, partition),
        replicasUnder(change.nextOwners, keyspace, partition),
      ),
  );
}

/**
 * The fences a node raises when it adopts `next` after `previous` (null: at start-up, from
 * its stored map): partitions the change in progress moves, at the change's epoch, and
 * partitions whose replicas under `owners` differ from the previous map's (a commit, or
 * maps this node skipped), at `next`'s epoch.
 */
export function fenceRaises(previous: ClusterMap | null, next: ClusterMap): FenceRaise[] {
  const keyspaces = strongKeyspaces(next);
  if (keyspaces.length === 0) return [];
  const raises: FenceRaise[] = [];
  for (let partition = 0; partition < next.partitionCount; partition++) {
    let epoch = 0;
    if (next.change !== undefined && acceptorsChange(next, partition)) epoch = next.change.epoch;
    if (
      previous !== null &&
      keyspaces.some(
        (keyspace) =>
          !sameSet(
            replicasUnder(previous.owners, keyspace, partition),
            replicasUnder(next.owners, keyspace, partition),
          ),
      )
    ) {
      epoch = next.epoch;
    }
    if (epoch > 0) raises.push({ partition, epoch });
  }
  assert(
    raises.every((raise) => raise.epoch <= next.epoch),
    'no fence is above the map that raised it',
  );
  return raises;
}

/**
 * The copies the change in progress gives `nodeId` in strong keyspaces: every partition
 * whose replicas under `nextOwners` include it and those under `owners` do not.
 */
export function registerCopiesTo(map: ClusterMap, nodeId: string): RegisterCopyPlan[] {
  const change = map.change;
  if (change === undefined) return [];
  const plans: RegisterCopyPlan[] = [];
  for (const keyspace of strongKeyspaces(map)) {
    for (let partition = 0; partition < map.partitionCount; partition++) {
      const current = replicasUnder(map.owners, keyspace, partition);
      if (current.includes(nodeId)) continue;
      if (!replicasUnder(change.nextOwners, keyspace, partition).includes(nodeId)) continue;
      plans.push({
        keyspaceId: keyspace.id,
        partition,
        currentAcceptors: current,
        changeEpoch: change.epoch,
      });
    }
  }
  return plans;
}

/**
 * Partitions of strong keyspaces `nodeId` was an acceptor of under `ownersBefore` and is not
 * under `map` (which has no change in progress): their acceptor rows are its to remove.
 */
export function registersGivenAway(
  ownersBefore: readonly string[],
  map: ClusterMap,
  nodeId: string,
): { keyspaceId: number; partition: number }[] {
  assert(map.change === undefined, 'rows are given away once the change has ended');
  const away: { keyspaceId: number; partition: number }[] = [];
  for (const keyspace of strongKeyspaces(map)) {
    for (let partition = 0; partition < map.partitionCount; partition++) {
      if (!replicasUnder(ownersBefore, keyspace, partition).includes(nodeId)) continue;
      if (replicasUnder(map.owners, keyspace, partition).includes(nodeId)) continue;
      away.push({ keyspaceId: keyspace.id, partition });
    }
  }
  return away;
}
