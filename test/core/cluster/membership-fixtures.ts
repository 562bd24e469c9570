// What the membership tests of the cluster map share: members with addresses made from an
// index, and the map or the refusal a membership function answered.

import assert from 'node:assert/strict';
import type { ClusterMap, MemberInfo } from '../../../src/core/cluster/cluster-map.ts';
import type { MembershipResult } from '../../../src/core/cluster/membership.ts';

/** A member named `id` whose addresses are made from `index` (0 to 65535). */
export function member(id: string, index: number): MemberInfo {
  const host = `10.0.${index >> 8}.${index & 255}`;
  return { id, peer: `${host}:6580`, http: `${host}:8080`, resp: `${host}:6379` };
}

/** The map of an accepted change; fails the test on a refusal. */
export function mapOf(result: MembershipResult): ClusterMap {
  if (!result.ok) assert.fail(`refused: ${result.problem}`);
  return result.map;
}

/** Why a change was refused; fails the test if it was accepted. */
export function problemOf(result: MembershipResult): string {
  if (result.ok) assert.fail('expected a refusal');
  return result.problem;
}
