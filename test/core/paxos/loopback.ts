// A hand-driven stage for proposer tests: in-memory acceptors that apply each write at once,
// queues of messages in both directions that a test delivers, drops or duplicates one by
// one, and the outcomes of every operation. No clock: the test sets nowMs and ticks.
import assert from 'node:assert/strict';
import { bytesToKeyString, utf8 } from '../../../src/core/bytes.ts';
import { Prng } from '../../../src/core/prng.ts';
import { INITIAL_FLOORS, stepAcceptor } from '../../../src/core/paxos/acceptor.ts';
import type { AcceptorFloors, AcceptorKeyState } from '../../../src/core/paxos/acceptor.ts';
import { defaultProposerConfig } from '../../../src/core/paxos/config.ts';
import type { ProposerConfig } from '../../../src/core/paxos/config.ts';
import { Proposer } from '../../../src/core/paxos/proposer.ts';
import type {
  OperationOutcome,
  ProposerOutput,
  ProposerSend,
} from '../../../src/core/paxos/proposer.ts';
import type { Command } from '../../../src/core/paxos/register.ts';

export interface Reply {
  readonly from: string;
  readonly to: string;
  readonly message: unknown;
}

export class Loopback {
  readonly acceptorIds: readonly string[];
  readonly config: ProposerConfig;
  readonly stored = new Map<string, Map<string, AcceptorKeyState>>();
  readonly floors = new Map<string, AcceptorFloors>();
  readonly outcomes = new Map<number, OperationOutcome>();
  readonly proposers = new Map<string, Proposer>();
  requests: (ProposerSend & { readonly from: string })[] = [];
  replies: Reply[] = [];
  nowMs = 0;
  private nextOperationId = 1;

  constructor(acceptorCount = 3, overrides: Partial<ProposerConfig> = {}) {
    this.acceptorIds = Array.from({ length: acceptorCount }, (_, i) => `a${i}`);
    this.config = defaultProposerConfig(this.acceptorIds, {
      phaseTimeoutMs: 100,
      attemptsMax: 4,
      ...overrides,
    });
    for (const id of this.acceptorIds) {
      this.stored.set(id, new Map());
      this.floors.set(id, INITIAL_FLOORS);
    }
    this.addProposer('p1');
  }

  addProposer(id: string, seed = 7): Proposer {
    const proposer = new Proposer(id, this.config, new Prng(seed));
    this.proposers.set(id, proposer);
    return proposer;
  }

  proposer(id = 'p1'): Proposer {
    const proposer = this.proposers.get(id);
    assert.ok(proposer !== undefined, `${id} is a proposer here`);
    return proposer;
  }

  submit(command: Command, key = 'k', proposerId = 'p1'): number {
    const operationId = this.nextOperationId++;
    this.take(
      proposerId,
      this.proposer(proposerId).submit(operationId, utf8(key), command, this.nowMs),
    );
    return operationId;
  }

  purge(key = 'k', proposerId = 'p1'): number {
    const operationId = this.nextOperationId++;
    this.take(proposerId, this.proposer(proposerId).purge(operationId, utf8(key), this.nowMs));
    return operationId;
  }

  tick(nowMs: number, proposerId = 'p1'): void {
    this.nowMs = nowMs;
    this.take(proposerId, this.proposer(proposerId).tick(nowMs));
  }

  /** Delivers the queued requests that pass `filter` (all by default); drops none. */
  deliverRequests(filter: (send: ProposerSend) => boolean = () => true): void {
    const now = this.requests.filter(filter);
    this.requests = this.requests.filter((send) => !filter(send));
    for (const send of now) this.acceptorReceive(send.to, send.from, send.message);
  }

  dropRequests(filter: (send: ProposerSend) => boolean = () => true): void {
    this.requests = this.requests.filter((send) => !filter(send));
  }

  deliverReplies(filter: (reply: Reply) => boolean = () => true): void {
    const now = this.replies.filter(filter);
    this.replies = this.replies.filter((reply) => !filter(reply));
    for (const reply of now) {
      this.take(reply.to, this.proposer(reply.to).receive(reply.from, reply.message, this.nowMs));
    }
  }

  /** Delivers everything, both ways, until nothing is in flight. */
  settle(): void {
    for (let round = 0; round < 100; round++) {
      if (this.requests.length === 0 && this.replies.length === 0) return;
      this.deliverRequests();
      this.deliverReplies();
    }
    assert.fail('messages still in flight after 100 rounds');
  }

  /** Delivers everything and ticks `proposerId` every 5 ms until the operation completes. */
  runUntilDone(operationId: number, proposerId = 'p1'): OperationOutcome {
    for (let step = 0; step < 1_000 && !this.outcomes.has(operationId); step++) {
      this.settle();
      if (!this.outcomes.has(operationId)) this.tick(this.nowMs + 5, proposerId);
    }
    return this.outcome(operationId);
  }

  outcome(operationId: number): OperationOutcome {
    const outcome = this.outcomes.get(operationId);
    assert.ok(outcome !== undefined, `operation ${operationId} completed`);
    return outcome;
  }

  keyState(acceptorId: string, key = 'k'): AcceptorKeyState | undefined {
    return this.stored.get(acceptorId)!.get(bytesToKeyString(utf8(key)));
  }

  setKeyState(acceptorId: string, state: AcceptorKeyState, key = 'k'): void {
    this.stored.get(acceptorId)!.set(bytesToKeyString(utf8(key)), state);
  }

  acceptorReceive(acceptorId: string, from: string, message: unknown): void {
    const stored = this.stored.get(acceptorId)!;
    const output = stepAcceptor(
      message,
      (key) => stored.get(bytesToKeyString(key)),
      this.floors.get(acceptorId)!,
    );
    assert.ok(output !== null, 'proposers send well-formed requests');
    const write = output.write;
    if (write.kind === 'put') stored.set(bytesToKeyString(write.key), write.state);
    if (write.kind === 'purge') {
      stored.delete(bytesToKeyString(write.key));
      this.floors.set(acceptorId, write.floors);
    }
    this.replies.push({ from: acceptorId, to: from, message: output.reply });
  }

  private take(proposerId: string, output: ProposerOutput): void {
    for (const send of output.sends) this.requests.push({ ...send, from: proposerId });
    for (const completion of output.completions) {
      assert.ok(!this.outcomes.has(completion.operationId), 'an operation completes once');
      this.outcomes.set(completion.operationId, completion.outcome);
    }
  }
}

export function okOutcome(outcome: OperationOutcome): Extract<OperationOutcome, { kind: 'ok' }> {
  assert.equal(outcome.kind, 'ok', `expected ok, got ${JSON.stringify(outcome)}`);
  return outcome as Extract<OperationOutcome, { kind: 'ok' }>;
}
