// The proposer while a register's acceptors change (docs/PAXOS.md, "Acceptor changes"):
// every phase needs a majority of the current set and a majority of the next (checked
// against a naive reference on random answer sets), a quorum read answers only when both
// majorities agree, a promise cached under one set is not spent under the joint one, and an
// operation an acceptor fences retries with the newer acceptors the node gives it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../../src/core/bytes.ts';
import { Prng } from '../../../src/core/prng.ts';
import { INITIAL_FLOORS, stepAcceptor } from '../../../src/core/paxos/acceptor.ts';
import type { AcceptorKeyState } from '../../../src/core/paxos/acceptor.ts';
import { defaultProposerConfig } from '../../../src/core/paxos/config.ts';
import { PaxosMessageType } from '../../../src/core/paxos/messages.ts';
import {
  Proposer,
  type AcceptorConfiguration,
  type OperationOutcome,
  type ProposerOutput,
  type ProposerSend,
} from '../../../src/core/paxos/proposer.ts';
import type { Command } from '../../../src/core/paxos/register.ts';

const KEY = utf8('k');

/** Acceptors in memory; requests wait in a queue the test delivers to those it chooses. */
class Stage {
  readonly proposer = new Proposer(
    'p',
    defaultProposerConfig(['p'], { phaseTimeoutMs: 100, attemptsMax: 3 }),
    new Prng(3),
  );
  readonly states = new Map<string, AcceptorKeyState>();
  readonly outcomes = new Map<number, OperationOutcome>();
  queue: ProposerSend[] = [];
  /** Acceptors that refuse every request as fenced at this epoch. */
  readonly fencedAt = new Map<string, number>();
  nowMs = 0;
  private nextId = 1;

  submit(command: Command, acceptors: AcceptorConfiguration): number {
    const id = this.nextId++;
    this.take(this.proposer.submit(id, KEY, command, this.nowMs, acceptors));
    return id;
  }

  /** Delivers every queued request to the acceptors in `to` (the rest are lost). */
  deliver(to: ReadonlySet<string>): void {
    for (let rounds = 0; rounds < 20 && this.queue.length > 0; rounds++) {
      const queue = this.queue;
      this.queue = [];
      for (const send of queue) {
        if (!to.has(send.to)) continue;
        const fence = this.fencedAt.get(send.to);
        if (fence !== undefined && (send.epoch ?? 0) < fence) {
          const reply = [PaxosMessageType.fenced, send.message[1], fence];
          this.take(this.proposer.receive(send.to, reply, this.nowMs));
          continue;
        }
        const output = stepAcceptor(send.message, () => this.states.get(send.to), INITIAL_FLOORS);
        assert.ok(output !== null);
        if (output.write.kind === 'put') this.states.set(send.to, output.write.state);
        this.take(this.proposer.receive(send.to, output.reply, this.nowMs));
      }
    }
  }

  tick(ms: number): void {
    this.nowMs += ms;
    this.take(this.proposer.tick(this.nowMs));
  }

  private take(output: ProposerOutput): void {
    this.queue.push(...output.sends);
    for (const completion of output.completions) {
      this.outcomes.set(completion.operationId, completion.outcome);
    }
  }
}

const CURRENT = ['a', 'b', 'c'];
const NEXT = ['c', 'd', 'e'];
const JOINT: AcceptorConfiguration = { ids: CURRENT, nextIds: NEXT, epoch: 5 };
const ALL = ['a', 'b', 'c', 'd', 'e'];

function majorityOf(set: readonly string[], answering: ReadonlySet<string>): boolean {
  return set.filter((id) => answering.has(id)).length > set.length / 2;
}

test('property: under joint acceptors a write completes exactly when the acceptors answering hold a majority of each set (naive reference)', () => {
  fc.assert(
    fc.property(fc.subarray(ALL), (answering) => {
      const stage = new Stage();
      const id = stage.submit({ kind: 'put', value: utf8('v') }, JOINT);
      const set = new Set(answering);
      stage.deliver(set);
      const expected = majorityOf(CURRENT, set) && majorityOf(NEXT, set);
      assert.equal(stage.outcomes.get(id)?.kind === 'ok', expected, `answering ${answering}`);
      // Every request of the operation went to both sets, under the configuration's epoch.
      assert.ok(stage.queue.every((send) => send.epoch === 5));
    }),
    { seed: 20_241_123, numRuns: 64 },
  );
});

test('a quorum read that agrees on a majority of the current acceptors only writes back, so the value reaches a majority of the next', () => {
  const stage = new Stage();
  const put = stage.submit({ kind: 'put', value: utf8('v1') }, { ids: CURRENT, epoch: 4 });
  stage.deliver(new Set(CURRENT));
  assert.equal(stage.outcomes.get(put)?.kind, 'ok');
  const get = stage.submit({ kind: 'get' }, JOINT);
  stage.deliver(new Set(ALL));
  const outcome = stage.outcomes.get(get);
  assert.ok(outcome?.kind === 'ok' && !outcome.quorumRead, 'the read fell back to a write-back');
  assert.equal(
    outcome.current.bytes === null ? null : new TextDecoder().decode(outcome.current.bytes),
    'v1',
  );
  const holding = NEXT.filter((id) => (stage.states.get(id)?.value.bytes ?? null) !== null);
  assert.ok(holding.length >= 2, `v1 is on a majority of the next acceptors: ${holding.join(',')}`);
  // Now both majorities agree: the next get is a quorum read.
  const again = stage.submit({ kind: 'get' }, JOINT);
  stage.deliver(new Set(ALL));
  const second = stage.outcomes.get(again);
  assert.ok(second?.kind === 'ok' && second.quorumRead, 'agreed by both sets: a read alone');
});

test('a promise cached under the current acceptors is not spent under the joint ones', () => {
  const stage = new Stage();
  stage.submit({ kind: 'put', value: utf8('v1') }, { ids: CURRENT, epoch: 4 });
  stage.deliver(new Set(CURRENT));
  assert.equal(stage.proposer.cachedKeyCount, 1);
  const id = stage.submit({ kind: 'put', value: utf8('v2') }, JOINT);
  const first = stage.queue[0]?.message[0];
  assert.equal(first, PaxosMessageType.prepare, 'the joint operation prepares first');
  stage.deliver(new Set(ALL));
  const outcome = stage.outcomes.get(id);
  assert.ok(outcome?.kind === 'ok' && !outcome.oneRoundTrip);
});

test('an operation refused as fenced retries with the acceptors of the newer map and succeeds, without failing its client', () => {
  const stage = new Stage();
  for (const id of CURRENT) stage.fencedAt.set(id, 5);
  const id = stage.submit({ kind: 'put', value: utf8('v') }, { ids: CURRENT, epoch: 4 });
  // The node adopts the newer map meanwhile: retries take its acceptors.
  let lookups = 0;
  stage.proposer.configurationOf = () => {
    lookups++;
    return JOINT;
  };
  stage.deliver(new Set(ALL));
  assert.equal(stage.outcomes.get(id), undefined, 'fenced: not failed, waiting to retry');
  assert.ok(stage.proposer.stats.fenced >= 2);
  for (let step = 0; step < 20 && !stage.outcomes.has(id); step++) {
    stage.tick(10);
    stage.deliver(new Set(ALL));
  }
  const outcome = stage.outcomes.get(id);
  assert.ok(
    outcome?.kind === 'ok',
    `the retry under epoch 5 succeeded: ${JSON.stringify(outcome)}`,
  );
  assert.ok(lookups > 0, 'the retry asked for the newer acceptors');
});

test('without a newer map, a fenced operation fails after its attempts as unavailable, having written nothing', () => {
  const stage = new Stage();
  for (const id of CURRENT) stage.fencedAt.set(id, 5);
  stage.proposer.configurationOf = () => ({ ids: CURRENT, epoch: 4 });
  const id = stage.submit({ kind: 'put', value: utf8('v') }, { ids: CURRENT, epoch: 4 });
  for (let step = 0; step < 200 && !stage.outcomes.has(id); step++) {
    stage.deliver(new Set(ALL));
    stage.tick(10);
  }
  const outcome = stage.outcomes.get(id);
  assert.ok(outcome?.kind === 'error' && outcome.code === 'unavailable', JSON.stringify(outcome));
  assert.equal(outcome.mayHaveTakenEffect, false);
  assert.equal(stage.states.size, 0, 'no acceptor took anything');
});
