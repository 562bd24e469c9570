// The server's flush queue: the connections queued in one pass flush together, back to back
// and in the order they queued, and a flush that queues again runs in the next pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlushQueue } from '../../../src/api/resp/flush-queue.ts';

const nextPass = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('flushes queued in one pass run back to back, in order, at its end', async () => {
  const queue = new FlushQueue();
  const ran: string[] = [];
  queue.add(() => ran.push('a'));
  // An immediate queued between two flushes runs after both: the flushes share one.
  setImmediate(() => ran.push('other'));
  queue.add(() => ran.push('b'));
  queue.add(() => ran.push('c'));
  assert.deepEqual(ran, [], 'nothing runs before the end of the pass');
  await nextPass();
  assert.deepEqual(ran, ['a', 'b', 'c', 'other']);
});

test('a flush that queues again runs in the next pass, once', async () => {
  const queue = new FlushQueue();
  const ran: string[] = [];
  let again = true;
  const flush = (): void => {
    ran.push('flush');
    if (again) {
      again = false;
      queue.add(flush);
    }
  };
  queue.add(flush);
  await nextPass();
  assert.deepEqual(ran, ['flush']);
  await nextPass();
  assert.deepEqual(ran, ['flush', 'flush']);
  await nextPass();
  assert.deepEqual(ran, ['flush', 'flush'], 'nothing left queued');
});
