// "No acknowledged write lost" for eventual keyspaces, judged on a history whose writes to
// each key come from one client, one at a time (the simulator's workload with
// `keysPerClient`), against the values every key holds once faults have stopped and the
// cluster has settled.
//
// For each key, the writes (put, delete) are in the client's order. The last one that was
// acknowledged (outcome ok) must be there, unless a later write may have replaced it: a
// later write whose outcome is unknown may or may not have taken effect; a failed one did
// nothing. So the final value must be the last acknowledged write's (null for a delete, or
// for a key never acknowledged) or that of an unknown write after it. Anything else means an
// acknowledged write was lost, or a value came from nowhere.

import type { History, Operation, Value } from './history.ts';

export interface LostWrite {
  readonly key: string;
  /** What the key holds once the cluster settled. */
  readonly found: Value;
  /** The values it may hold, the last acknowledged write's first. */
  readonly allowed: readonly Value[];
}

export interface AcknowledgedWritesVerdict {
  readonly ok: boolean;
  readonly keysChecked: number;
  readonly violations: readonly LostWrite[];
}

/** Checks every key written in the history; `finalValues` must answer for each of them. */
export function checkAcknowledgedWrites(
  history: History,
  finalValues: ReadonlyMap<string, Value>,
): AcknowledgedWritesVerdict {
  const writesByKey = new Map<string, Operation[]>();
  for (const operation of history) {
    if (operation.op !== 'put' && operation.op !== 'delete') continue;
    let writes = writesByKey.get(operation.key);
    if (writes === undefined) writesByKey.set(operation.key, (writes = []));
    writes.push(operation);
  }
  const violations: LostWrite[] = [];
  for (const [key, writes] of writesByKey) {
    const writers = new Set(writes.map((write) => write.client));
    if (writers.size > 1) {
      throw new Error(
        `key ${key} is written by clients ${[...writers].join(', ')}: one writer per key`,
      );
    }
    if (!finalValues.has(key)) throw new Error(`no final value for key ${key}`);
    writes.sort((a, b) => a.invokedAt - b.invokedAt);
    let lastAcknowledged = -1;
    writes.forEach((write, index) => {
      if (write.outcome === 'ok') lastAcknowledged = index;
    });
    const allowed: Value[] = [
      lastAcknowledged < 0 ? null : valueWritten(writes[lastAcknowledged]!),
    ];
    for (let index = lastAcknowledged + 1; index < writes.length; index++) {
      if (writes[index]!.outcome === 'unknown') allowed.push(valueWritten(writes[index]!));
    }
    // A key whose only acknowledged history is "never written" may also keep an earlier
    // unknown write that took effect.
    if (lastAcknowledged < 0) {
      for (const write of writes)
        if (write.outcome === 'unknown') allowed.push(valueWritten(write));
    }
    const found = finalValues.get(key) ?? null;
    if (!allowed.includes(found)) violations.push({ key, found, allowed });
  }
  return { ok: violations.length === 0, keysChecked: writesByKey.size, violations };
}

function valueWritten(write: Operation): Value {
  return write.op === 'put' ? write.input.value : null;
}
