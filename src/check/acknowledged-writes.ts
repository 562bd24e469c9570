// "No acknowledged write lost" for eventual keyspaces, judged on a history whose writes to
// each key come from one client, one at a time (the simulator's workload with
// `keysPerClient`), against the value every key holds once faults have stopped and the
// cluster has settled, and, when known, that value's causal context (its final version).
//
// The contract (DESIGN section 1): after faults heal, every replica holds each acknowledged
// write, or a version that causally supersedes it, or, under `lww` only, a concurrent write
// that won by timestamp. Judged in two steps, per key:
//
// 1. Causal (needs the final version): the final version must have seen every acknowledged
//    write's version. A store never forgets a dot it has seen, whichever value wins, so a
//    final version that lacks one means that write was lost, whatever value is there.
// 2. Value: the last acknowledged write L (in the client's order) is what the key holds,
//    unless something explains another value:
//    - a later write of unknown outcome, which may have taken effect;
//    - an earlier write of unknown outcome that landed after L (a request still in flight
//      lands late): only when the final version shows it, having seen L's and more;
//    - under `lww`, an earlier acknowledged write A that L does not causally supersede (L's
//      version does not descend A's): the two are concurrent, and the greater timestamp
//      wins. Under `siblings` both must be kept, and this checker sees only one value, so
//      there it is not an excuse.
//    A failed write did nothing. Anything else is a loss, or a value from nowhere. Every
//    value other than L's that is allowed is reported with the reason (`allowances`).
// 3. Under `siblings`, given every live value the key holds (`finalSiblings`), each of them
//    is judged instead: L's value must be among them unless a write of unknown outcome may
//    have superseded it (a later one, or an earlier one that landed after L, as above), and
//    every other value must be explained: a write of unknown outcome that may have taken
//    effect, or an acknowledged write concurrent with L (L's version does not descend it),
//    which this policy keeps. A value that L superseded is a write come back from the dead.

import { assert } from '../core/bytes.ts';
import type { History, Operation, Value, Version } from './history.ts';
import { descends, formatVersion, strictlyBefore } from './version.ts';

export type ConflictPolicy = 'lww' | 'siblings';

export interface AcknowledgedWritesOptions {
  /** The keyspace's policy for concurrent writes; `lww` when absent. */
  readonly policy?: ConflictPolicy;
  /** The causal context of each key's final value (as read with r = all), where known. */
  readonly finalVersions?: ReadonlyMap<string, Version>;
  /** Under `siblings`: every live value each key holds (empty: none), the winner first. */
  readonly finalSiblings?: ReadonlyMap<string, readonly string[]>;
}

export interface LostWrite {
  readonly key: string;
  /** What the key holds once the cluster settled. */
  readonly found: Value;
  /** The values it may hold, the last acknowledged write's first. */
  readonly allowed: readonly Value[];
  readonly reason: string;
}

/** A final value other than the last acknowledged write's, and why it is not a loss. */
export interface Allowance {
  readonly key: string;
  readonly found: Value;
  readonly reason: string;
}

export interface AcknowledgedWritesVerdict {
  readonly ok: boolean;
  readonly keysChecked: number;
  readonly violations: readonly LostWrite[];
  readonly allowances: readonly Allowance[];
}

/** Checks every key written in the history; `finalValues` must answer for each of them. */
export function checkAcknowledgedWrites(
  history: History,
  finalValues: ReadonlyMap<string, Value>,
  options: AcknowledgedWritesOptions = {},
): AcknowledgedWritesVerdict {
  const policy = options.policy ?? 'lww';
  assert(policy === 'lww' || policy === 'siblings', 'a known conflict policy');
  const writesByKey = new Map<string, { operation: Operation; index: number }[]>();
  history.forEach((operation, index) => {
    if (operation.op !== 'put' && operation.op !== 'delete') return;
    let writes = writesByKey.get(operation.key);
    if (writes === undefined) writesByKey.set(operation.key, (writes = []));
    writes.push({ operation, index });
  });
  const violations: LostWrite[] = [];
  const allowances: Allowance[] = [];
  for (const [key, writes] of writesByKey) {
    const writers = new Set(writes.map((write) => write.operation.client));
    if (writers.size > 1) {
      throw new Error(
        `key ${key} is written by clients ${[...writers].join(', ')}: one writer per key`,
      );
    }
    if (!finalValues.has(key)) throw new Error(`no final value for key ${key}`);
    writes.sort((a, b) => a.operation.invokedAt - b.operation.invokedAt);
    const siblings = options.finalSiblings?.get(key);
    const judged: LostWrite | Allowance | null =
      policy === 'siblings' && siblings !== undefined
        ? judgeSiblings(key, writes, siblings, options.finalVersions?.get(key))
        : judgeKey(
            key,
            writes,
            finalValues.get(key) ?? null,
            options.finalVersions?.get(key),
            policy,
          );
    if (judged === null) continue;
    if (isLoss(judged)) violations.push(judged);
    else allowances.push(judged);
  }
  return {
    ok: violations.length === 0,
    keysChecked: writesByKey.size,
    violations,
    allowances,
  };
}

function isLoss(judged: LostWrite | Allowance): judged is LostWrite {
  return 'allowed' in judged;
}

interface NumberedWrite {
  readonly operation: Operation;
  /** Its position in the history, to name it in verdicts. */
  readonly index: number;
}

/** A loss, an allowance, or null when the key holds its last acknowledged write. */
function judgeKey(
  key: string,
  writes: readonly NumberedWrite[],
  found: Value,
  finalVersion: Version | undefined,
  policy: ConflictPolicy,
): LostWrite | Allowance | null {
  let last = -1;
  writes.forEach((write, position) => {
    if (write.operation.outcome === 'ok') last = position;
  });
  const lastWrite = last < 0 ? undefined : writes[last];
  const laterUnknown = writes.filter(
    (write, position) => position > last && write.operation.outcome === 'unknown',
  );
  const allowed: Value[] = [
    lastWrite === undefined ? null : valueWritten(lastWrite.operation),
    ...laterUnknown.map((write) => valueWritten(write.operation)),
  ];
  const lose = (reason: string): LostWrite => ({ key, found, allowed, reason });

  const unseen = unseenAcknowledged(writes, finalVersion);
  if (unseen !== null) return lose(unseen);
  if (lastWrite === undefined) {
    // Never acknowledged: absent, or any write of unknown outcome that took effect.
    if (found === null) return null;
    const unknownWrite = writes.find(
      (write) => write.operation.outcome === 'unknown' && valueWritten(write.operation) === found,
    );
    if (unknownWrite !== undefined) {
      return { key, found, reason: `${describe(unknownWrite)} (unknown outcome) took effect` };
    }
    return lose('no write of this value may have taken effect');
  }
  if (found === valueWritten(lastWrite.operation)) return null;
  const later = laterUnknown.find((write) => valueWritten(write.operation) === found);
  if (later !== undefined) {
    return { key, found, reason: `${describe(later)} (unknown outcome, later) took effect` };
  }
  const lastVersion = lastWrite.operation.version;
  const earlier = writes.slice(0, last).filter((write) => valueWritten(write.operation) === found);
  const reasonsRefused: string[] = [];
  for (const write of earlier) {
    const verdict = judgeEarlier(write, lastWrite, lastVersion, finalVersion, policy);
    if (verdict.allowed) return { key, found, reason: verdict.reason };
    reasonsRefused.push(verdict.reason);
  }
  const lastDescription = describe(lastWrite);
  if (reasonsRefused.length === 0) {
    return lose(
      `no write of this value may have replaced the last acknowledged ${lastDescription}`,
    );
  }
  return lose(reasonsRefused.join('; '));
}

/**
 * Step 1: the latest acknowledged write whose version the final version has not seen, as a
 * reason, or null. A store never forgets a dot it has seen, so such a write was lost.
 */
function unseenAcknowledged(
  writes: readonly NumberedWrite[],
  finalVersion: Version | undefined,
): string | null {
  if (finalVersion === undefined) return null;
  for (let position = writes.length - 1; position >= 0; position--) {
    const write = writes[position]!;
    const version = write.operation.version;
    if (write.operation.outcome !== 'ok' || version === undefined) continue;
    if (!descends(finalVersion, version)) {
      return (
        `the final version ${formatVersion(finalVersion)} has not seen acknowledged ` +
        `${describe(write)} ${formatVersion(version)}`
      );
    }
  }
  return null;
}

/**
 * Under `siblings`: every live value of the key, judged (step 3 of the file's opening).
 * Answers the first loss found, else an allowance naming every value other than L's, or
 * null when the key holds exactly L's value (or nothing, after an acknowledged delete).
 */
function judgeSiblings(
  key: string,
  writes: readonly NumberedWrite[],
  siblings: readonly string[],
  finalVersion: Version | undefined,
): LostWrite | Allowance | null {
  const found: Value = siblings[0] ?? null;
  let last = -1;
  writes.forEach((write, position) => {
    if (write.operation.outcome === 'ok') last = position;
  });
  const lastWrite = last < 0 ? undefined : writes[last];
  const lastValue = lastWrite === undefined ? null : valueWritten(lastWrite.operation);
  const lastVersion = lastWrite?.operation.version;
  const allowed: Value[] = [lastValue];
  const lose = (reason: string): LostWrite => ({ key, found, allowed, reason });
  const unseen = unseenAcknowledged(writes, finalVersion);
  if (unseen !== null) return lose(unseen);
  // Unknown writes that may have superseded L: later ones, and earlier ones shown to have
  // landed after it.
  const landedLate =
    lastVersion !== undefined &&
    finalVersion !== undefined &&
    strictlyBefore(lastVersion, finalVersion);
  const supersedingUnknown = writes.filter(
    (write, position) => write.operation.outcome === 'unknown' && (position > last || landedLate),
  );
  if (lastValue !== null && !siblings.includes(lastValue) && supersedingUnknown.length === 0) {
    return lose(
      `the last acknowledged ${describe(lastWrite!)} is not among the values kept ` +
        `(${siblings.map((value) => JSON.stringify(value)).join(', ') || 'none'}), and no write may have superseded it`,
    );
  }
  const reasons: string[] = [];
  for (const value of siblings) {
    if (value === lastValue) continue;
    const write = writes.find((candidate) => valueWritten(candidate.operation) === value);
    if (write === undefined) return lose(`${JSON.stringify(value)} was never written`);
    if (write.operation.outcome === 'failed') {
      return lose(`${describe(write)} failed, yet its value is kept`);
    }
    if (write.operation.outcome === 'unknown') {
      reasons.push(`${describe(write)} (unknown outcome) took effect`);
      continue;
    }
    const version = write.operation.version;
    if (version === undefined || lastVersion === undefined) {
      return lose(
        `acknowledged ${describe(write)} is kept beside the last acknowledged write, without versions to show them concurrent`,
      );
    }
    if (descends(lastVersion, version)) {
      return lose(
        `acknowledged ${describe(write)} ${formatVersion(version)} came back though the last ` +
          `acknowledged ${describe(lastWrite!)} ${formatVersion(lastVersion)} superseded it`,
      );
    }
    reasons.push(
      `acknowledged ${describe(write)} ${formatVersion(version)} is concurrent with the last ` +
        `acknowledged ${describe(lastWrite!)} ${formatVersion(lastVersion)}: both are kept`,
    );
  }
  if (reasons.length === 0) return null;
  return { key, found, reason: reasons.join('; ') };
}

/** Whether an earlier write `write` may be the final value though `lastWrite` came later. */
function judgeEarlier(
  write: NumberedWrite,
  lastWrite: NumberedWrite,
  lastVersion: Version | undefined,
  finalVersion: Version | undefined,
  policy: ConflictPolicy,
): { allowed: boolean; reason: string } {
  const earlier = describe(write);
  const last = `the last acknowledged ${describe(lastWrite)}`;
  if (write.operation.outcome === 'failed') {
    return { allowed: false, reason: `${earlier} failed: it did nothing` };
  }
  if (write.operation.outcome === 'unknown') {
    if (lastVersion === undefined || finalVersion === undefined) {
      return {
        allowed: false,
        reason: `${earlier} (unknown outcome) came before ${last}; without versions nothing shows it landed after`,
      };
    }
    if (!strictlyBefore(lastVersion, finalVersion)) {
      return {
        allowed: false,
        reason:
          `${earlier} (unknown outcome) came before ${last}, and the final version ` +
          `${formatVersion(finalVersion)} has seen nothing after its ${formatVersion(lastVersion)}`,
      };
    }
    return {
      allowed: true,
      reason:
        `${earlier} (unknown outcome, invoked before ${last}) landed after it: the final ` +
        `version ${formatVersion(finalVersion)} has seen ${formatVersion(lastVersion)} and more`,
    };
  }
  assert(write.operation.outcome === 'ok', 'every outcome is handled');
  const version = write.operation.version;
  if (version === undefined || lastVersion === undefined) {
    return {
      allowed: false,
      reason: `acknowledged ${earlier} came before ${last}; without both versions they cannot be shown concurrent`,
    };
  }
  if (descends(lastVersion, version)) {
    return {
      allowed: false,
      reason:
        `acknowledged ${earlier} ${formatVersion(version)} is causally superseded by ${last} ` +
        `${formatVersion(lastVersion)}: it must not win`,
    };
  }
  if (policy !== 'lww') {
    return {
      allowed: false,
      reason: `acknowledged ${earlier} is concurrent with ${last}, but under siblings both must be kept`,
    };
  }
  return {
    allowed: true,
    reason:
      `acknowledged ${earlier} ${formatVersion(version)} is concurrent with ${last} ` +
      `${formatVersion(lastVersion)} (neither version descends the other); under lww the ` +
      'greater timestamp wins',
  };
}

function describe(write: NumberedWrite): string {
  const operation = write.operation;
  const what = operation.op === 'put' ? `put ${JSON.stringify(operation.input.value)}` : 'delete';
  return `write #${write.index} (${what})`;
}

function valueWritten(write: Operation): Value {
  return write.op === 'put' ? write.input.value : null;
}
