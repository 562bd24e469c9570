// The requester: writes to the head and reads to the tail of the newest configuration it
// knows, the same request id through every resend and retarget, and only answers or the
// deadline end a request.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import { foundingChainConfig, withoutMember } from '../../../src/core/chain/chain-config.ts';
import type { ChainReply } from '../../../src/core/chain/messages.ts';
import { ChainRequester, DEFAULT_REQUESTER_OPTIONS } from '../../../src/core/chain/requester.ts';

const FOUNDING = foundingChainConfig(1, ['a', 'b', 'c']);
const PUT = {
  kind: 'write',
  operation: { kind: 'put', key: utf8('k'), value: utf8('v') },
} as const;

function requester(): ChainRequester {
  const made = new ChainRequester({
    ...DEFAULT_REQUESTER_OPTIONS,
    selfId: 'client',
    resendIntervalMs: 100,
  });
  made.learnConfig(FOUNDING);
  return made;
}

function reply(requestId: number, body: ChainReply, epoch = 1) {
  return { type: 'reply', partition: 1, epoch, requestId, reply: body };
}

test('a write goes to the head and a read to the tail, under the configuration’s epoch', () => {
  const client = requester();
  client.submit(1, PUT, 0, 1000);
  client.submit(1, { kind: 'read', key: utf8('k') }, 0, 1000);
  const { sends } = client.takeOutput();
  assert.deepEqual(
    sends.map((send) => [send.to, send.message.type, send.message.epoch]),
    [
      ['a', 'write', 1],
      ['c', 'read', 1],
    ],
  );
});

test('an unanswered request is sent again under the same id, and a refusal sends it to the new head at once', () => {
  const client = requester();
  const requestId = client.submit(1, PUT, 0, 1000)!;
  client.takeOutput();
  assert.equal(client.tick(50).sends.length, 0, 'not yet');
  const resent = client.tick(100).sends;
  assert.equal(resent.length, 1);
  assert.equal(resent[0]!.message.type === 'write' && resent[0]!.message.requestId, requestId);
  const newer = withoutMember(FOUNDING, 'a');
  const output = client.receive(
    'a',
    reply(requestId, { status: 'refused', config: newer }, 2),
    120,
  );
  assert.equal(output.sends[0]?.to, 'b');
  assert.equal(output.sends[0]?.message.epoch, 2);
  assert.equal(output.completions.length, 0, 'a refusal does not end a request');
  const done = client.receive(
    'c',
    reply(
      requestId,
      {
        status: 'written',
        outcome: { kind: 'done', applied: true, version: 1, value: null },
      },
      2,
    ),
    130,
  );
  assert.deepEqual(
    done.completions.map((completion) => [
      completion.requestId,
      completion.outcome,
      completion.answeredBy,
    ]),
    [[requestId, 'ok', 'c']],
  );
  assert.equal(client.outstanding, 0);
});

test('a request past its deadline ends unknown; an error outcome ends failed', () => {
  const client = requester();
  const timedOut = client.submit(1, PUT, 0, 300)!;
  const failing = client.submit(
    1,
    { kind: 'write', operation: { kind: 'incr', key: utf8('k'), delta: 1 } },
    0,
    1000,
  )!;
  client.takeOutput();
  const failed = client.receive(
    'c',
    reply(failing, {
      status: 'written',
      outcome: { kind: 'error', code: 'RINGKV_NOT_AN_INTEGER', message: 'no' },
    }),
    10,
  );
  assert.equal(failed.completions[0]?.outcome, 'failed');
  const late = client.tick(300);
  assert.deepEqual(
    late.completions.map((completion) => [completion.requestId, completion.outcome]),
    [[timedOut, 'unknown']],
  );
  const stray = client.receive('c', reply(timedOut, { status: 'retry', reason: 'behind' }), 310);
  assert.equal(stray.completions.length, 0);
  assert.equal(client.unmatchedReplies, 1);
});

test('a requester keeps no more writes outstanding per partition than a chain remembers', () => {
  const client = new ChainRequester({
    ...DEFAULT_REQUESTER_OPTIONS,
    selfId: 'client',
    writesPerPartitionMax: 2,
  });
  client.learnConfig(FOUNDING);
  assert.ok(client.submit(1, PUT, 0, 1000) !== null);
  assert.ok(client.submit(1, PUT, 0, 1000) !== null);
  assert.equal(client.submit(1, PUT, 0, 1000), null, 'a third must wait');
  assert.ok(
    client.submit(1, { kind: 'read', key: utf8('k') }, 0, 1000) !== null,
    'reads are not limited so',
  );
});

test('a partition without a configuration, or a silent one, makes the requester ask for the map', () => {
  const client = new ChainRequester({ ...DEFAULT_REQUESTER_OPTIONS, selfId: 'client' });
  client.submit(9, PUT, 0, 5000);
  assert.deepEqual(client.takeOutput().configWanted, [9]);
  const known = requester();
  known.submit(1, PUT, 0, 5000);
  known.takeOutput();
  assert.deepEqual(known.tick(DEFAULT_REQUESTER_OPTIONS.configRefreshAfterMs).configWanted, [1]);
});

test('malformed replies are dropped and counted', () => {
  const client = requester();
  client.submit(1, PUT, 0, 1000);
  client.takeOutput();
  for (const junk of [
    null,
    {},
    reply(1, { status: 'written' } as unknown as ChainReply),
    { type: 'read' },
  ]) {
    assert.equal(client.receive('c', junk, 1).completions.length, 0);
  }
  assert.equal(client.malformedDropped, 4);
});
