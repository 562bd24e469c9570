// Causal order between the versions a history records (plain objects of node id -> counter,
// src/check/history.ts). Written here, apart from the store's own version vectors, so that a
// checker never trusts the code it judges: a node missing from a version counts as 0.

import type { Version } from './history.ts';

/** How `a` stands to `b`: the same, causally before (b descends a), after, or concurrent. */
export type CausalOrder = 'equal' | 'before' | 'after' | 'concurrent';

function counterOf(version: Version, node: string): number {
  return Object.hasOwn(version, node) ? version[node]! : 0;
}

/** Whether `a` has seen everything `b` has (a >= b at every node). */
export function descends(a: Version, b: Version): boolean {
  for (const node of Object.keys(b)) if (counterOf(a, node) < counterOf(b, node)) return false;
  return true;
}

export function compareVersions(a: Version, b: Version): CausalOrder {
  const aSeesB = descends(a, b);
  const bSeesA = descends(b, a);
  if (aSeesB && bSeesA) return 'equal';
  if (aSeesB) return 'after';
  if (bSeesA) return 'before';
  return 'concurrent';
}

/** Whether `a` is strictly superseded by `b`: b has seen all of a, and more. */
export function strictlyBefore(a: Version, b: Version): boolean {
  return compareVersions(a, b) === 'before';
}

/** The least version that descends both (the pointwise maximum). */
export function joinVersions(a: Version, b: Version): Version {
  const joined: Record<string, number> = { ...a };
  for (const node of Object.keys(b)) {
    joined[node] = Math.max(counterOf(a, node), counterOf(b, node));
  }
  return joined;
}

/** `{n1:3,n2:1}`, nodes sorted, for verdicts. */
export function formatVersion(version: Version): string {
  const nodes = Object.keys(version).sort();
  return `{${nodes.map((node) => `${node}:${version[node]}`).join(',')}}`;
}
