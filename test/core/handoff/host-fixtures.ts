// What the handoff host tests share: members named n1, n2, ..., maps out of membership
// results, and a store with nothing saved.

import assert from 'node:assert/strict';
import type { MemberInfo } from '../../../src/core/cluster/cluster-map.ts';
import type { MembershipResult } from '../../../src/core/cluster/membership.ts';
import type { HandoffStore } from '../../../src/core/handoff/handoff-host.ts';

export function member(index: number): MemberInfo {
  return { id: `n${index}`, peer: `p${index}`, http: `h${index}`, resp: `r${index}` };
}

export function mapOf(result: MembershipResult) {
  if (!result.ok) assert.fail(result.problem);
  return result.map;
}

/** A store with nothing saved: the host reads and removes saved copy states only. */
export const EMPTY_STORE: HandoffStore = {
  mergeReceived: () => null,
  persistRows: () => 0,
  scanRows: () => [],
  readRow: () => undefined,
  partitionScan: () => () => [],
  dropKeys: () => {},
  lastPersistedBatchId: 0,
};
