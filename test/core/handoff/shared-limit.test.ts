// The node's handoff rate limit and pause cover every kind of copy (docs/HANDOFF.md, "Rate
// and pause"): the host divides the limit evenly among its streamed copies and the register
// copies and chain pre-copies it is told of (stand-ins here), forwards a pause to them, and
// counts the bytes they move in the rate it reports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initialMap } from '../../../src/core/cluster/cluster-map.ts';
import { addStandby, planJoin } from '../../../src/core/cluster/membership.ts';
import { HandoffHost, type OtherCopies } from '../../../src/core/handoff/handoff-host.ts';
import { EMPTY_STORE, mapOf, member } from './host-fixtures.ts';

/** Register copies as the handoff host sees them: three active, moving what a test says. */
class FakeRegisterCopies implements OtherCopies {
  activeCopies = 3;
  bytesMoved = 0;
  rate = -1;
  paused = false;
  readonly registerCopies = { count: 3, done: 0 };
  copyStatus() {
    return { transfers: [], waiting: 0 };
  }
  setCopyRate(bytesPerSecond: number): void {
    this.rate = bytesPerSecond;
  }
  setCopiesPaused(paused: boolean): void {
    this.paused = paused;
  }
}

/** n4 joins three members holding the default (eventual) keyspace: it receives copies. */
function joinPlanned() {
  const map = initialMap('c', 16, [member(1), member(2), member(3)]);
  return mapOf(planJoin(mapOf(addStandby(map, member(4))), member(4)));
}

test('the limit is shared evenly among streamed copies, register copies and chain pre-copies, and a pause reaches them all', () => {
  const planned = joinPlanned();
  const keyspaces = new Map(planned.keyspaces.map((keyspace) => [keyspace.id, keyspace]));
  const host = new HandoffHost('n4', EMPTY_STORE, { startDelayMs: 0 });
  const registers = new FakeRegisterCopies();
  const precopies = new FakeRegisterCopies();
  precopies.activeCopies = 2;
  host.otherCopies = registers;
  host.precopies = precopies;
  host.setRate(1_200);
  assert.equal(registers.rate, 240, 'with no streamed copy, five other copies share it');
  assert.equal(precopies.rate, 240, 'chain pre-copies included');
  host.sync(planned, (id) => keyspaces.get(id), 0);
  host.tick(0, () => true);
  const streamed = host.status(0).transfers.length;
  assert.ok(streamed > 0, 'streamed copies run too');
  const share = 1_200 / (streamed + 5);
  assert.equal(registers.rate, share, 'each copy of every kind has one share');
  assert.equal(precopies.rate, share);
  registers.activeCopies = 0;
  precopies.activeCopies = 0;
  host.tick(10, () => true);
  assert.equal(registers.rate, 1_200 / streamed, 'shares are recomputed on every tick');
  host.setPaused(true, 20);
  assert.equal(registers.paused, true);
  assert.equal(precopies.paused, true);
  assert.ok(host.status(20).transfers.every((transfer) => transfer.state === 'paused'));
  host.setPaused(false, 30);
  assert.equal(registers.paused, false);
  assert.equal(precopies.paused, false);
  host.setRate(0);
  assert.equal(registers.rate, 0, 'no limit: none for them either');
});

test('the rate a node reports counts the bytes its register copies move', () => {
  const planned = joinPlanned();
  const keyspaces = new Map(planned.keyspaces.map((keyspace) => [keyspace.id, keyspace]));
  const host = new HandoffHost('n4', EMPTY_STORE, { startDelayMs: 60_000 });
  const registers = new FakeRegisterCopies();
  host.otherCopies = registers;
  host.sync(planned, (id) => keyspaces.get(id), 0);
  // 5,000 bytes every 100 ms for 10 s: 50,000 B/s, while no streamed copy has started yet.
  for (let nowMs = 0; nowMs <= 10_000; nowMs += 100) {
    host.tick(nowMs, () => true);
    registers.bytesMoved += 5_000;
  }
  const rate = host.status(10_000).bytesPerSecond;
  assert.ok(Math.abs(rate - 50_000) <= 2_500, `reported ${rate} B/s, 50,000 moved per second`);
  assert.equal(host.stats(10_000).handoff_bytes_per_second, Math.round(rate));
});
