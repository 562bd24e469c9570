// The one compliance suite of the peer transport contract (src/net/contract.ts), run by
// the TCP transport and by the simulator's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PeerError,
  type IncomingMessage,
  type PeerAddress,
  type PeerTransport,
  type TransportLimits,
} from '../../src/net/contract.ts';

export const TEST_LIMITS: TransportLimits = {
  frameBytesMax: 64 * 1024,
  queueMessagesMax: 100,
  queueBytesMax: 1024 * 1024,
};

export interface TransportHarness {
  /** A transport for `nodeId`, listening, with TEST_LIMITS. */
  create(nodeId: string, cluster?: { clusterId: string; secret: string }): Promise<PeerTransport>;
  addressOf(transport: PeerTransport): PeerAddress;
  /** An address where `nodeId` will listen once created with `createAt`. */
  reserve(nodeId: string): Promise<PeerAddress>;
  createAt(nodeId: string, address: PeerAddress): Promise<PeerTransport>;
  /** Lets time pass: real time over TCP, virtual time in simulation. */
  advance(ms: number): Promise<void>;
  dispose(): Promise<void>;
}

const CLUSTER = { clusterId: 'test-cluster', secret: 'shared secret' };

function collect(transport: PeerTransport): IncomingMessage[] {
  const received: IncomingMessage[] = [];
  transport.onMessage((incoming) => received.push(incoming));
  return received;
}

async function until(
  harness: TransportHarness,
  condition: () => boolean,
  what: string,
  stepMs = 5,
  stepsMax = 400,
): Promise<void> {
  for (let step = 0; step < stepsMax && !condition(); step++) await harness.advance(stepMs);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

function peersOf(
  harness: TransportHarness,
  ...transports: PeerTransport[]
): Map<string, PeerAddress> {
  return new Map(transports.map((t) => [t.nodeId, harness.addressOf(t)]));
}

export function runTransportCompliance(name: string, makeHarness: () => TransportHarness): void {
  test(`${name}: messages arrive intact and in order, both ways`, async () => {
    const harness = makeHarness();
    try {
      const a = await harness.create('a');
      const b = await harness.create('b');
      const peers = peersOf(harness, a, b);
      a.setPeers(peers);
      b.setPeers(peers);
      const atA = collect(a);
      const atB = collect(b);
      const payload = { bytes: new Uint8Array([0, 255, 7]), nested: [1, 'two', { three: 3 }] };
      for (let i = 0; i < 50; i++) assert.equal(a.send('b', { i, payload }), 'queued');
      assert.equal(b.send('a', 'hello'), 'queued');
      await until(harness, () => atB.length === 50 && atA.length === 1, 'delivery');
      assert.deepEqual(
        atB.map((m) => (m.message as { i: number }).i),
        [...Array(50).keys()],
      );
      const first = atB[0]!;
      assert.equal(first.from, 'a');
      assert.equal(first.respond, null);
      const got = (first.message as { payload: typeof payload }).payload;
      // Byte strings arrive as Uint8Array (Node Buffers): same bytes, not the same class.
      assert.ok(got.bytes instanceof Uint8Array);
      assert.deepEqual(Buffer.from(got.bytes), Buffer.from(payload.bytes));
      assert.deepEqual(got.nested, payload.nested);
      assert.equal(atA[0]!.message, 'hello');
    } finally {
      await harness.dispose();
    }
  });

  test(`${name}: pipelined requests are matched to their answers by request id`, async () => {
    const harness = makeHarness();
    try {
      const a = await harness.create('a');
      const b = await harness.create('b');
      const peers = peersOf(harness, a, b);
      a.setPeers(peers);
      b.setPeers(peers);
      // b answers in reverse order of arrival, once it has all of them.
      const held: IncomingMessage[] = [];
      b.onMessage((incoming) => {
        held.push(incoming);
        if (held.length === 20) {
          for (const request of held.reverse())
            request.respond!({ doubled: 2 * (request.message as number) });
        }
      });
      const answers = [...Array(20).keys()].map((n) => a.request('b', n, 5000));
      let settled: unknown[] | null = null;
      void Promise.all(answers).then((values) => (settled = values));
      await until(harness, () => settled !== null, 'answers');
      assert.deepEqual(
        settled,
        [...Array(20).keys()].map((n) => ({ doubled: 2 * n })),
      );
    } finally {
      await harness.dispose();
    }
  });

  test(`${name}: a request nobody answers times out; bad sends are refused with a reason`, async () => {
    const harness = makeHarness();
    try {
      const a = await harness.create('a');
      const b = await harness.create('b');
      const peers = peersOf(harness, a, b);
      a.setPeers(peers);
      b.setPeers(peers);
      b.onMessage(() => {}); // never answers
      let failure: unknown = null;
      a.request('b', 'anyone?', 50).catch((error: unknown) => (failure = error));
      await until(harness, () => failure !== null, 'the timeout');
      assert.ok(failure instanceof PeerError);
      assert.equal(failure.code, 'timeout');
      assert.equal(a.send('nobody', 1), 'unknown-peer');
      assert.equal(a.send('b', new Uint8Array(TEST_LIMITS.frameBytesMax + 1)), 'too-large');
      await assert.rejects(
        a.request('nobody', 1, 100),
        (error: PeerError) => error.code === 'unknown-peer',
      );
    } finally {
      await harness.dispose();
    }
  });

  test(`${name}: the queue toward an absent peer is bounded, and drains when it comes`, async () => {
    const harness = makeHarness();
    try {
      const a = await harness.create('a');
      const address = await harness.reserve('late');
      a.setPeers(
        new Map([
          ['late', address],
          ['a', harness.addressOf(a)],
        ]),
      );
      const results = [];
      for (let i = 0; i < TEST_LIMITS.queueMessagesMax + 10; i++) results.push(a.send('late', i));
      assert.equal(results.filter((r) => r === 'queued').length, TEST_LIMITS.queueMessagesMax);
      assert.equal(results[results.length - 1], 'queue-full');
      const late = await harness.createAt('late', address);
      const received = collect(late);
      await until(harness, () => received.length === TEST_LIMITS.queueMessagesMax, 'the queue', 20);
      assert.deepEqual(
        received.map((m) => m.message),
        [...Array(TEST_LIMITS.queueMessagesMax).keys()],
      );
      assert.equal(a.send('late', 'more'), 'queued');
    } finally {
      await harness.dispose();
    }
  });

  test(`${name}: a node of another cluster or with another secret cannot deliver`, async () => {
    const harness = makeHarness();
    try {
      const a = await harness.create('a');
      const wrongSecret = await harness.create('x', { ...CLUSTER, secret: 'guessed' });
      const otherCluster = await harness.create('y', { ...CLUSTER, clusterId: 'elsewhere' });
      const received = collect(a);
      const peers = peersOf(harness, a, wrongSecret, otherCluster);
      for (const t of [a, wrongSecret, otherCluster]) t.setPeers(peers);
      wrongSecret.send('a', 'let me in');
      otherCluster.send('a', 'let me in');
      await harness.advance(300);
      assert.deepEqual(received, []);
    } finally {
      await harness.dispose();
    }
  });

  test(`${name}: after close, sends are refused and waiting requests fail`, async () => {
    const harness = makeHarness();
    try {
      const a = await harness.create('a');
      const b = await harness.create('b');
      const peers = peersOf(harness, a, b);
      a.setPeers(peers);
      b.setPeers(peers);
      b.onMessage(() => {});
      const waiting = a.request('b', 'hold on', 60_000);
      await harness.advance(20);
      await a.close();
      await assert.rejects(waiting, (error: PeerError) => error.code === 'closed');
      assert.equal(a.send('b', 1), 'closed');
    } finally {
      await harness.dispose();
    }
  });
}

export { CLUSTER };
