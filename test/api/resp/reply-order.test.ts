// A connection whose client never stops pipelining: replies that finish out of order still
// leave in request order, and the queue of reply slots stays bounded even though some
// command is always waiting for its reply (the answered front of the queue is cut off).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import pino from 'pino';
import { detachedConnection } from '../../../src/api/resp/server.ts';
import type { ClientRequest } from '../../../src/core/requests.ts';
import { Metrics } from '../../../src/runtime/metrics.ts';
import type { NodeApi, ReplyCallback } from '../../../src/runtime/node-api.ts';
import { RecordingSocket } from '../../helpers/recording-socket.ts';

/** A node that holds every request until the test answers it. */
class HeldNode {
  readonly held: { key: string; onReply: ReplyCallback }[] = [];
  submit(request: ClientRequest, onReply: ReplyCallback): void {
    assert.equal(request.op, 'get');
    this.held.push({ key: Buffer.from(request.keys[0]!).toString('latin1'), onReply });
  }
  keyspaces(): [] {
    return [];
  }
}

function answer(entry: { key: string; onReply: ReplyCallback }): void {
  entry.onReply({
    ok: true,
    op: 'get',
    results: [{ value: Buffer.from(entry.key), siblings: [], context: null, expiresAtMs: null }],
  } as never);
}

const nextPass = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('replies leave in request order and the slot queue stays bounded under endless pipelining', async () => {
  const node = new HeldNode();
  const socket = new RecordingSocket();
  const connection = detachedConnection(socket as unknown as Socket, node as unknown as NodeApi, {
    metrics: new Metrics(),
    logger: pino({ level: 'silent' }),
    inputBytesMax: 1 << 20,
  });
  const commands = 6000;
  let expected = '';
  let heldMax = 0;
  for (let i = 0; i < commands; i++) {
    const key = `k${i}`;
    socket.emit('data', Buffer.from(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`));
    expected += `$${key.length}\r\n${key}\r\n`;
    // Keep a few commands waiting at all times, answered out of order: the newest of the
    // waiting ones first, then the oldest.
    if (node.held.length > 4) {
      answer(node.held.splice(node.held.length - 1, 1)[0]!);
      answer(node.held.shift()!);
      answer(node.held.shift()!);
    }
    heldMax = Math.max(heldMax, connection.slotsHeld);
    if (i % 64 === 0) await nextPass();
  }
  while (node.held.length > 0) answer(node.held.shift()!);
  await nextPass();
  assert.equal(socket.output, expected);
  assert.ok(heldMax <= 2 * 1024 + 8, `the slot queue held ${heldMax} slots`);
  assert.equal(connection.slotsHeld, 0);
});
