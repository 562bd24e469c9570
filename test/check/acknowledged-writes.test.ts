// The acknowledged-writes checker on hand-made histories: each case names what it shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAcknowledgedWrites } from '../../src/check/acknowledged-writes.ts';
import type { Operation, Outcome, Value, Version } from '../../src/check/history.ts';

let clock = 0;
function put(
  key: string,
  value: string,
  outcome: Outcome,
  client = 0,
  version?: Version,
): Operation {
  clock += 10;
  return {
    client,
    key,
    op: 'put',
    input: { value },
    output: null,
    invokedAt: clock,
    completedAt: outcome === 'unknown' ? null : clock + 5,
    outcome,
    ...(version === undefined ? {} : { version }),
  };
}
function del(key: string, outcome: Outcome, client = 0, version?: Version): Operation {
  clock += 10;
  return {
    client,
    key,
    op: 'delete',
    input: null,
    output: null,
    invokedAt: clock,
    completedAt: outcome === 'unknown' ? null : clock + 5,
    outcome,
    ...(version === undefined ? {} : { version }),
  };
}
const finals = (entries: [string, Value][]): Map<string, Value> => new Map(entries);
const versions = (entries: [string, Version][]): Map<string, Version> => new Map(entries);

test('the last acknowledged write is what the key holds: accepted', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'ok'), del('b', 'ok')];
  const verdict = checkAcknowledgedWrites(
    history,
    finals([
      ['a', '2'],
      ['b', null],
    ]),
  );
  assert.deepEqual(verdict, { ok: true, keysChecked: 2, violations: [], allowances: [] });
});

test('an acknowledged write replaced by an older one is a lost write', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'ok')];
  const verdict = checkAcknowledgedWrites(history, finals([['a', '1']]));
  assert.equal(verdict.ok, false);
  assert.equal(verdict.violations.length, 1);
  assert.deepEqual(
    { ...verdict.violations[0]!, reason: undefined },
    { key: 'a', found: '1', allowed: ['2'], reason: undefined },
  );
  assert.match(
    verdict.violations[0]!.reason,
    /without both versions they cannot be shown concurrent/,
  );
});

test('an acknowledged write that vanished (the key is absent) is a lost write', () => {
  const verdict = checkAcknowledgedWrites([put('a', '1', 'ok')], finals([['a', null]]));
  assert.equal(verdict.ok, false);
});

test('a later write of unknown outcome may or may not have replaced it', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'unknown')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '1']])).ok, true);
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '2']])).ok, true);
});

test('a failed write did nothing: its value must not be there', () => {
  const history = [put('a', '1', 'ok'), put('a', '2', 'failed')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '2']])).ok, false);
});

test('a value no write wrote comes from nowhere', () => {
  const history = [put('a', '1', 'ok')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', 'x']])).ok, false);
});

test('a key never acknowledged may be absent or hold an unknown write', () => {
  const history = [put('a', '1', 'unknown'), put('a', '2', 'failed')];
  assert.equal(checkAcknowledgedWrites(history, finals([['a', null]])).ok, true);
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '1']])).ok, true);
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '2']])).ok, false);
});

test('a key with two writers, or without a final value, is refused as a malformed check', () => {
  assert.throws(
    () =>
      checkAcknowledgedWrites(
        [put('a', '1', 'ok', 0), put('a', '2', 'ok', 1)],
        finals([['a', '2']]),
      ),
    /one writer per key/,
  );
  assert.throws(() => checkAcknowledgedWrites([put('a', '1', 'ok')], finals([])), /no final value/);
});

// Judged with versions and the lww policy (the contract's third case).

test('under lww, an earlier acknowledged write concurrent with the last one may win, and the verdict says why', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n2: 1 })];
  const verdict = checkAcknowledgedWrites(history, finals([['a', '1']]), {
    policy: 'lww',
    finalVersions: versions([['a', { n1: 1, n2: 1 }]]),
  });
  assert.equal(verdict.ok, true, JSON.stringify(verdict.violations));
  assert.equal(verdict.allowances.length, 1);
  assert.match(verdict.allowances[0]!.reason, /concurrent with the last acknowledged write/);
  assert.match(verdict.allowances[0]!.reason, /\{n1:1\}.*\{n2:1\}/);
});

test('an earlier acknowledged write that the last one causally supersedes must not win, even under lww', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n1: 2 })];
  const verdict = checkAcknowledgedWrites(history, finals([['a', '1']]), {
    policy: 'lww',
    finalVersions: versions([['a', { n1: 2 }]]),
  });
  assert.equal(verdict.ok, false);
  assert.match(verdict.violations[0]!.reason, /causally superseded by the last acknowledged/);
});

test('under siblings, a concurrent earlier write is no excuse: both must be kept', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n2: 1 })];
  const verdict = checkAcknowledgedWrites(history, finals([['a', '1']]), {
    policy: 'siblings',
    finalVersions: versions([['a', { n1: 1, n2: 1 }]]),
  });
  assert.equal(verdict.ok, false);
  assert.match(verdict.violations[0]!.reason, /under siblings both must be kept/);
});

test('a final version that has not seen an acknowledged write loses it, whatever value is there', () => {
  // The value is the concurrent earlier write's, allowed by value alone; the version shows
  // the last write never reached the replicas read.
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n2: 1 })];
  const verdict = checkAcknowledgedWrites(history, finals([['a', '1']]), {
    finalVersions: versions([['a', { n1: 1 }]]),
  });
  assert.equal(verdict.ok, false);
  assert.match(verdict.violations[0]!.reason, /has not seen acknowledged write #\d+ \(put "2"\)/);
  // Even holding the last write's value: a version without it is a contradiction.
  const same = checkAcknowledgedWrites([put('b', '1', 'ok', 0, { n1: 1 })], finals([['b', '1']]), {
    finalVersions: versions([['b', { n2: 4 }]]),
  });
  assert.equal(same.ok, false);
});

test('an earlier write of unknown outcome that landed after the last acknowledged one is allowed when the final version shows it', () => {
  // The shape of soak seed 536: "0:9" timed out, "0:13" was acknowledged with {n5:3}, then
  // "0:9" landed on its coordinator with {n5:4}, causally after.
  const history = [put('a', '0:9', 'unknown'), put('a', '0:13', 'ok', 0, { n5: 3 })];
  const landed = checkAcknowledgedWrites(history, finals([['a', '0:9']]), {
    finalVersions: versions([['a', { n5: 4 }]]),
  });
  assert.equal(landed.ok, true, JSON.stringify(landed.violations));
  assert.match(
    landed.allowances[0]!.reason,
    /landed after it: the final version \{n5:4\} has seen \{n5:3\} and more/,
  );
  // The final version has seen nothing after "0:13": "0:9" cannot have replaced it.
  const notLanded = checkAcknowledgedWrites(history, finals([['a', '0:9']]), {
    finalVersions: versions([['a', { n5: 3 }]]),
  });
  assert.equal(notLanded.ok, false);
  assert.match(notLanded.violations[0]!.reason, /has seen nothing after/);
  // Without the final version nothing shows it landed after.
  assert.equal(checkAcknowledgedWrites(history, finals([['a', '0:9']])).ok, false);
});

test('a deleted key holds its tombstone: absent, with a version that has seen the delete', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), del('a', 'ok', 0, { n1: 2 })];
  const kept = checkAcknowledgedWrites(history, finals([['a', null]]), {
    finalVersions: versions([['a', { n1: 2 }]]),
  });
  assert.equal(kept.ok, true);
  const resurrected = checkAcknowledgedWrites(history, finals([['a', '1']]), {
    finalVersions: versions([['a', { n1: 2 }]]),
  });
  assert.equal(resurrected.ok, false);
});

// Under siblings, given every value kept (`finalSiblings`).

const siblingsOf = (entries: [string, string[]][]): Map<string, readonly string[]> =>
  new Map(entries);

function judgeSiblings(
  history: Operation[],
  key: string,
  kept: string[],
  finalVersion: Version,
): ReturnType<typeof checkAcknowledgedWrites> {
  return checkAcknowledgedWrites(history, finals([[key, kept[0] ?? null]]), {
    policy: 'siblings',
    finalVersions: versions([[key, finalVersion]]),
    finalSiblings: siblingsOf([[key, kept]]),
  });
}

test('under siblings, an acknowledged write concurrent with the last one is kept beside it, and the verdict says why', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n2: 1 })];
  const verdict = judgeSiblings(history, 'a', ['2', '1'], { n1: 1, n2: 1 });
  assert.equal(verdict.ok, true, JSON.stringify(verdict.violations));
  assert.match(verdict.allowances[0]!.reason, /concurrent .* both are kept/);
});

test('under siblings, a value the last acknowledged write superseded must not come back', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n1: 2 })];
  const verdict = judgeSiblings(history, 'a', ['2', '1'], { n1: 2 });
  assert.equal(verdict.ok, false);
  assert.match(verdict.violations[0]!.reason, /came back .* superseded it/);
});

test('under siblings, the last acknowledged write missing from the values kept is a loss, unless an unknown write may have superseded it', () => {
  const lost = judgeSiblings(
    [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n2: 1 })],
    'a',
    ['1'],
    { n1: 1, n2: 1 },
  );
  assert.equal(lost.ok, false);
  assert.match(lost.violations[0]!.reason, /is not among the values kept/);
  const superseded = judgeSiblings(
    [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'unknown')],
    'a',
    ['2'],
    { n1: 2 },
  );
  assert.equal(superseded.ok, true, JSON.stringify(superseded.violations));
  assert.match(superseded.allowances[0]!.reason, /unknown outcome/);
});

test('under siblings, a value never written, or written by a failed write, is refused', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'failed')];
  assert.match(
    judgeSiblings(history, 'a', ['1', '9'], { n1: 1 }).violations[0]!.reason,
    /never written/,
  );
  assert.match(
    judgeSiblings(history, 'a', ['1', '2'], { n1: 1 }).violations[0]!.reason,
    /failed, yet its value is kept/,
  );
});

test('under siblings, the final version must still have seen every acknowledged write', () => {
  const history = [put('a', '1', 'ok', 0, { n1: 1 }), put('a', '2', 'ok', 0, { n1: 2 })];
  const verdict = judgeSiblings(history, 'a', ['2'], { n1: 1 });
  assert.equal(verdict.ok, false);
  assert.match(verdict.violations[0]!.reason, /has not seen acknowledged/);
});
