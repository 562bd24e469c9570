// No read returns a version causally superseded by one its reader already knew of: judged on
// the versions a history records (src/check/history.ts), per key, for every ok read with a
// version. Three rules, in this order; the first that fails names the violation:
//
// - read-your-writes: a read must have seen every write its own client had acknowledged
//   before the read began (its version descends the write's);
// - monotonic reads: a read must not return a version strictly older than one its client
//   read earlier. Promised only when everything the earlier read saw had been acknowledged
//   before the later read began: an earlier read may see a write still in flight, on one
//   replica, that never reaches a quorum, and a later read may then rightly miss it. Such
//   pairs are counted (`monotonicOutsidePromise`), not reported;
// - read-after-acknowledged-write: a read must have seen the writes of other clients
//   acknowledged before it began (DESIGN section 1 promises it for any reader). "Before" is
//   judged on the history's one clock, the simulator's; a real-cluster history has no such
//   clock, so there turn `realTime` off: other clients' writes then order nothing, and
//   count neither here nor for monotonic reads.
//
// Scope: DESIGN section 1 promises this only with R + W > N and no fallback replica involved
// (a strict quorum: every read quorum meets every write quorum). Under a sloppy quorum, or
// with R + W <= N, a stale read is allowed, and this checker would rightly report it: run it
// where it is promised, or as a negative control where it is not.

import { assert } from '../core/bytes.ts';
import type { History, Operation, Version } from './history.ts';
import { descends, formatVersion, joinVersions, strictlyBefore } from './version.ts';

export type SessionViolationKind =
  'read-your-writes' | 'read-after-acknowledged-write' | 'monotonic-reads';

export interface SessionViolation {
  readonly kind: SessionViolationKind;
  readonly client: number;
  readonly key: string;
  /** Indices into the history: the stale read, and what it should have seen. */
  readonly read: number;
  readonly earlier: number;
  readonly explanation: string;
}

export interface SessionOrderOptions {
  /** Also judge reads against other clients' acknowledged writes. Default true. */
  readonly realTime?: boolean;
}

export interface SessionOrderVerdict {
  readonly ok: boolean;
  /** Ok reads with a version, each judged. */
  readonly readsChecked: number;
  /** Ok reads without a version: nothing to judge them by. */
  readonly readsWithoutVersion: number;
  /** Reads older than an earlier read that had seen a write not acknowledged in time. */
  readonly monotonicOutsidePromise: number;
  readonly violations: readonly SessionViolation[];
}

interface Numbered {
  readonly operation: Operation;
  readonly index: number;
  readonly version: Version;
}

export function checkSessionOrder(
  history: History,
  options: SessionOrderOptions = {},
): SessionOrderVerdict {
  const realTime = options.realTime ?? true;
  const byKey = new Map<string, { writes: Numbered[]; reads: Numbered[] }>();
  let readsWithoutVersion = 0;
  history.forEach((operation, index) => {
    if (operation.outcome !== 'ok') return;
    const isRead = operation.op === 'get';
    if (operation.version === undefined) {
      if (isRead) readsWithoutVersion++;
      return;
    }
    let entry = byKey.get(operation.key);
    if (entry === undefined) byKey.set(operation.key, (entry = { writes: [], reads: [] }));
    (isRead ? entry.reads : entry.writes).push({ operation, index, version: operation.version });
  });
  const violations: SessionViolation[] = [];
  let readsChecked = 0;
  let monotonicOutsidePromise = 0;
  for (const [key, { writes, reads }] of byKey) {
    // Completion order: "acknowledged before the read began" is a prefix of it.
    writes.sort((a, b) => completedAt(a) - completedAt(b));
    reads.sort((a, b) => a.operation.invokedAt - b.operation.invokedAt);
    for (let position = 0; position < reads.length; position++) {
      const read = reads[position]!;
      readsChecked++;
      const judged = judgeRead(key, read, writes, reads.slice(0, position), realTime);
      if (judged === 'outside-promise') monotonicOutsidePromise++;
      else if (judged !== null) violations.push(judged);
    }
  }
  assert(readsChecked + readsWithoutVersion >= violations.length, 'one violation per read');
  return {
    ok: violations.length === 0,
    readsChecked,
    readsWithoutVersion,
    monotonicOutsidePromise,
    violations,
  };
}

function completedAt(numbered: Numbered): number {
  const at = numbered.operation.completedAt;
  assert(at !== null, 'an ok operation has completed');
  return at;
}

/** The first rule `read` breaks, 'outside-promise', or null. */
function judgeRead(
  key: string,
  read: Numbered,
  writes: readonly Numbered[],
  earlierReads: readonly Numbered[],
  realTime: boolean,
): SessionViolation | 'outside-promise' | null {
  const client = read.operation.client;
  const startedAt = read.operation.invokedAt;
  // A client's own write that completed at the very instant its next read began is before
  // it (one operation at a time); another client's is concurrent with it, as in the
  // linearizability checker.
  let floor: Version = {};
  let missedOwn: Numbered | undefined;
  let missedOther: Numbered | undefined;
  for (const write of writes) {
    const own = write.operation.client === client;
    const before = own
      ? completedAt(write) <= startedAt && write.index < read.index
      : realTime && completedAt(write) < startedAt;
    if (!before) continue;
    floor = joinVersions(floor, write.version);
    if (descends(read.version, write.version)) continue;
    if (own) missedOwn = write;
    else missedOther = write;
  }
  const violation = (
    kind: SessionViolationKind,
    earlier: Numbered,
    what: string,
  ): SessionViolation => ({
    kind,
    client,
    key,
    read: read.index,
    earlier: earlier.index,
    explanation:
      `client ${client} read ${key} at #${read.index} with version ` +
      `${formatVersion(read.version)} after ${what} #${earlier.index} with ` +
      `${formatVersion(earlier.version)}, ` +
      (strictlyBefore(read.version, earlier.version)
        ? 'which supersedes it'
        : 'which it has not seen'),
  });
  if (missedOwn !== undefined) {
    return violation('read-your-writes', missedOwn, 'its own write was acknowledged at');
  }
  let outsidePromise = false;
  for (let position = earlierReads.length - 1; position >= 0; position--) {
    const earlier = earlierReads[position]!;
    if (earlier.operation.client !== client) continue;
    if (!strictlyBefore(read.version, earlier.version)) continue;
    // Everything the earlier read saw was acknowledged before this read began: promised.
    if (descends(floor, earlier.version)) {
      return violation('monotonic-reads', earlier, 'it read');
    }
    outsidePromise = true;
  }
  if (missedOther !== undefined) {
    const writer = missedOther.operation.client;
    return violation(
      'read-after-acknowledged-write',
      missedOther,
      `client ${writer}'s write was acknowledged at`,
    );
  }
  return outsidePromise ? 'outside-promise' : null;
}
