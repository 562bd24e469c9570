// The handoff pause holds strong keyspaces' copies too (docs/HANDOFF.md, "Rate and pause"):
// n4's handoff is paused before it joins a cluster holding a strong keyspace under a
// register workload; for PAUSE_HOLD_MS after the join is planned it rewrites nothing and the
// join cannot commit; once resumed the script of src/sim/strong-membership.ts goes on (the
// join, a crashing join, a replace, a leave and a remove) and every history must still be
// linearizable. The control watches the same window unpaused: n4 rewrites keys and reports
// a rate, so the window's checks can fail.
//
// Seeds 1..2 by default, about 1 s each; STRONG_PAUSE_SEEDS=1..20 (or "7", or "3,9,20..25")
// runs others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PAUSE_HOLD_MS, runStrongMembership } from '../../src/sim/strong-membership.ts';
import { seedsFrom } from './linearizable-swarm.ts';

const VARIABLE = 'STRONG_PAUSE_SEEDS';
const FILE = 'test/sim/strong-handoff-pause.test.ts';

function replay(seed: number): string {
  return `replay: ${VARIABLE}=${seed} npx node --test ${FILE}`;
}

test('a strong keyspace join paused on its receiver rewrites nothing and does not commit until resumed, then commits with every history linearizable', (t) => {
  for (const seed of seedsFrom(VARIABLE, 1, 2)) {
    const result = runStrongMembership({ seed, pauseFirstJoin: 'pause' });
    const window = result.pausedWindow;
    t.diagnostic(
      `seed ${seed}: ${result.operations} operations, paused window ${JSON.stringify(window)}; ` +
        result.changes.join(', '),
    );
    assert.ok(window !== null, `the paused window was watched (seed ${seed})`);
    assert.equal(window.keysRewritten, 0, `no rewrite while paused; ${replay(seed)}`);
    assert.equal(window.bytesMovedMax, 0, `no bytes moved while paused; ${replay(seed)}`);
    assert.equal(window.bytesPerSecondMax, 0, `no rate reported while paused; ${replay(seed)}`);
    assert.equal(window.committed, false, `no commit while paused; ${replay(seed)}`);
    assert.deepEqual(result.anomalies, [], `seed ${seed}; ${replay(seed)}`);
    assert.equal(result.changes.length, 5, `every change commits once resumed (seed ${seed})`);
    const join = Number(/^join n4: (\d+) ms/.exec(result.changes[0] ?? '')?.[1]);
    assert.ok(join > PAUSE_HOLD_MS, `the join took longer than the pause (seed ${seed})`);
  }
});

test('control: the same window unpaused sees the receiver rewrite keys and report a rate', (t) => {
  const result = runStrongMembership({ seed: 1, pauseFirstJoin: 'watch' });
  const window = result.pausedWindow;
  t.diagnostic(`seed 1 unpaused: ${JSON.stringify(window)}; ${result.changes.join(', ')}`);
  assert.ok(window !== null);
  assert.ok(window.keysRewritten > 0, 'unpaused, n4 rewrites keys in the window');
  assert.equal(window.committed, true, 'and the join commits within it');
  assert.ok(window.bytesMovedMax > 0, 'and its copies move bytes');
  assert.ok(window.bytesPerSecondMax > 0, 'its reported rate counts the register copies');
  assert.deepEqual(result.anomalies, []);
});
