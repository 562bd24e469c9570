// The elastic policy: from the load each member reports, whether a standby should join or a
// member should leave (DESIGN section 4). It only decides; the caller plans the change with
// membership.ts and proposes it like any other.
//
// Rules kept here:
// - One change at a time: nothing while the map holds a change, nor within the cool-down
//   after the last one.
// - Hysteresis: a member leaves only when every watched average is under its leave
//   threshold and would stay under its join threshold with one member fewer, so a leave never
//   sets up the next join (and a join, which lowers the averages, never sets up a leave
//   unless the load itself fell).
// - Never fewer owning members than minMembers, never a voter leaving, never a decision from
//   partial reports: every owning member must have reported.

import { assert } from '../bytes.ts';
import { votersOf, type ClusterMap, type MemberInfo } from './cluster-map.ts';
import { ownersOf, standbysOf } from './membership.ts';

/** What one member reports about itself. */
export interface NodeLoad {
  readonly keys: number;
  readonly bytes: number;
  readonly requestsPerSecond: number;
}

export type LoadMetric = keyof NodeLoad;

const METRICS: readonly LoadMetric[] = ['keys', 'bytes', 'requestsPerSecond'];

/** Thresholds on the average per owning member; an absent metric is not watched. */
export type LoadThresholds = Partial<Record<LoadMetric, number>>;

export interface ElasticPolicy {
  /** A standby joins when any of these averages is above its threshold. */
  readonly joinAbove: LoadThresholds;
  /** A member leaves when every one of these averages is below its threshold. */
  readonly leaveBelow: LoadThresholds;
  /** Owning members never fall below this many through a leave. */
  readonly minMembers: number;
  /** The least time between two changes this policy asks for, and after any change. */
  readonly coolDownMs: number;
}

export type ElasticDecision =
  | { readonly kind: 'join'; readonly member: MemberInfo; readonly reason: string }
  | { readonly kind: 'leave'; readonly id: string; readonly reason: string };

/** What is wrong with a policy, or null. */
export function elasticPolicyProblem(policy: ElasticPolicy): string | null {
  if (!(Number.isSafeInteger(policy.minMembers) && policy.minMembers >= 1)) {
    return 'minMembers must be an integer of at least 1';
  }
  if (!(Number.isFinite(policy.coolDownMs) && policy.coolDownMs >= 0)) {
    return 'coolDownMs must be a finite number of milliseconds, 0 or more';
  }
  let watched = 0;
  for (const metric of METRICS) {
    const join = policy.joinAbove[metric];
    const leave = policy.leaveBelow[metric];
    for (const [name, value] of [
      ['joinAbove', join],
      ['leaveBelow', leave],
    ] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
        return `${name}.${metric} must be a finite number, 0 or more`;
      }
    }
    if (leave !== undefined && join === undefined) {
      return `leaveBelow.${metric} needs a joinAbove.${metric} above it, for hysteresis`;
    }
    if (leave !== undefined && join !== undefined && !(leave < join)) {
      return `leaveBelow.${metric} (${leave}) must be below joinAbove.${metric} (${join})`;
    }
    if (join !== undefined) watched++;
  }
  if (watched === 0) return 'the policy watches no metric: give joinAbove at least one threshold';
  return null;
}

/**
 * The change the policy asks for now: a join of the first standby by id, a leave of the
 * member that holds the least data (the cheapest to move), or null. `lastChangeMs` is when
 * the last membership change ended, null if there was none. Throws on an invalid policy.
 */
export function elasticDecision(
  map: ClusterMap,
  loads: ReadonlyMap<string, NodeLoad>,
  policy: ElasticPolicy,
  nowMs: number,
  lastChangeMs: number | null,
): ElasticDecision | null {
  const problem = elasticPolicyProblem(policy);
  assert(problem === null, `elastic policy: ${String(problem)}`);
  if (map.change !== undefined) return null;
  if (lastChangeMs !== null && nowMs - lastChangeMs < policy.coolDownMs) return null;
  const owners = ownersOf(map);
  // A missing or malformed report would skew the averages: wait for a full set.
  if (!owners.every((id) => isValidLoad(loads.get(id)))) return null;
  const total: Record<LoadMetric, number> = { keys: 0, bytes: 0, requestsPerSecond: 0 };
  for (const id of owners) {
    const load = loads.get(id)!;
    for (const metric of METRICS) total[metric] += load[metric];
  }
  const average = (metric: LoadMetric, members: number): number => total[metric] / members;

  const over = METRICS.find((metric) => {
    const threshold = policy.joinAbove[metric];
    return threshold !== undefined && average(metric, owners.length) > threshold;
  });
  if (over !== undefined) {
    const standby = standbysOf(map)[0];
    if (standby === undefined || owners.length + 1 > map.partitionCount) return null;
    const reason =
      `${over} per member ${round(average(over, owners.length))} is above ` +
      `${String(policy.joinAbove[over])}`;
    return { kind: 'join', member: standby, reason };
  }

  const leaveMetrics = METRICS.filter((metric) => policy.leaveBelow[metric] !== undefined);
  if (leaveMetrics.length === 0 || owners.length - 1 < policy.minMembers) return null;
  const under = leaveMetrics.every(
    (metric) => average(metric, owners.length) < policy.leaveBelow[metric]!,
  );
  const staysUnderJoin = METRICS.every((metric) => {
    const threshold = policy.joinAbove[metric];
    return threshold === undefined || average(metric, owners.length - 1) <= threshold;
  });
  if (!under || !staysUnderJoin) return null;
  const voters = votersOf(map);
  const candidates = owners.filter((id) => !voters.includes(id));
  candidates.sort((a, b) => {
    const loadA = loads.get(a)!;
    const loadB = loads.get(b)!;
    return loadA.bytes - loadB.bytes || loadA.keys - loadB.keys || (a < b ? -1 : a > b ? 1 : 0);
  });
  const leaver = candidates[0];
  if (leaver === undefined) return null;
  assert(!voters.includes(leaver), 'a voter never leaves');
  const reason = leaveMetrics
    .map(
      (metric) =>
        `${metric} per member ${round(average(metric, owners.length))} is below ` +
        `${String(policy.leaveBelow[metric])}`,
    )
    .join(', ');
  return { kind: 'leave', id: leaver, reason };
}

function isValidLoad(load: NodeLoad | undefined): boolean {
  return (
    load !== undefined &&
    METRICS.every((metric) => Number.isFinite(load[metric]) && load[metric] >= 0)
  );
}

function round(value: number): string {
  return String(Math.round(value * 100) / 100);
}
