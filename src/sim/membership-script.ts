// What the scripted membership simulations (strong-membership.ts, voter-changes.ts) share
// in driving a change: asking for it until a node takes it, and polling the simulated
// world until a condition holds. What each waits for, and what it records, stays with it.

import type { ClusterMap } from '../core/cluster/cluster-map.ts';
import type { MembershipRequest } from '../core/requests.ts';
import type { ClusterWorld } from './cluster-world.ts';

/** Between two requests for a change that a node refused (another change was running). */
const CHANGE_RETRY_MS = 200;

/** A change as a run's report names it. */
export function describeChange(request: MembershipRequest): string {
  return request.kind === 'replace'
    ? `replace ${request.id} by ${request.by}`
    : `${request.kind} ${request.kind === 'abort' ? '' : request.id}`;
}

export interface ChangeAsk {
  readonly request: MembershipRequest;
  /** The node to ask, chosen again at each attempt. */
  readonly via: () => string;
  /**
   * Whether the change started although the reply was an error (the reply may be lost to
   * a timeout while the node planned it), judged on the asked node's map (null: down).
   */
  readonly startedOn: (map: ClusterMap | null) => boolean;
  /** Past it, a refusal ends the asking. */
  readonly deadlineMs: number;
}

/**
 * Asks for the change until a node accepts it (then `onStarted`) or the deadline passes
 * (then `onRefused` with the last refusal's message).
 */
export function askForChange(
  world: ClusterWorld,
  ask: ChangeAsk,
  onStarted: () => void,
  onRefused: (message: string) => void,
): void {
  const attempt = (): void => {
    const via = ask.via();
    world.submit(
      via,
      { op: 'changeMembership', keyspace: '', change: ask.request, dryRun: false },
      (reply) => {
        const map = world.isUp(via) ? world.node(via).clusterMap() : null;
        if (reply.ok || ask.startedOn(map)) return onStarted();
        if (world.nowMs > ask.deadlineMs) return onRefused(reply.ok ? '' : reply.error.message);
        world.at(world.nowMs + CHANGE_RETRY_MS, attempt);
      },
    );
  };
  attempt();
}

/** Checks every `pollMs` until `check` holds (then `then`) or the deadline passes. */
export function pollUntil(
  world: ClusterWorld,
  poll: {
    readonly check: () => boolean;
    readonly deadlineMs: number;
    readonly pollMs: number;
    readonly onTimeout: () => void;
  },
  then: () => void,
): void {
  if (poll.check()) return then();
  if (world.nowMs > poll.deadlineMs) return poll.onTimeout();
  world.at(world.nowMs + poll.pollMs, () => pollUntil(world, poll, then));
}
