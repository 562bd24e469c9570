// The RESP port's request metrics: each command is counted once by outcome and timed,
// whether it is answered within its handler (a read, an error) or after its group's sync (a
// durable write), and commands that repeat in a pipeline add to one series.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { recordedConnection } from '../../helpers/recording-socket.ts';

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${arg.length}\r\n${arg}\r\n`).join('')}`;
}

/** The value of the metric line `name{labels}`, or undefined if there is none. */
function valueOf(rendered: string, line: string): number | undefined {
  const found = rendered.split('\n').find((text) => text.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

test('RESP commands are counted by outcome and timed, answered at once or after a sync', async () => {
  const { runtime, socket, metrics } = await recordedConnection('sync');
  try {
    // Durable SETs wait for their sync; the GET of another key and the failing INCR are
    // answered within their handlers, between the SETs.
    socket.emit(
      'data',
      Buffer.from(
        command('SET', 'k', 'v') +
          command('GET', 'other') +
          command('SET', 'k', 'w') +
          command('INCR', 'k') +
          command('SET', 'j', 'x'),
      ),
    );
    const expected = '+OK\r\n$-1\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n';
    for (let i = 0; i < 100 && socket.output !== expected; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(socket.output, expected);
    const rendered = metrics.render();
    const counted = (operation: string, outcome: string): number | undefined =>
      valueOf(
        rendered,
        `ringkv_requests_total{operation="${operation}",outcome="${outcome}",protocol="resp"}`,
      );
    assert.equal(counted('set', 'ok'), 3);
    assert.equal(counted('get', 'ok'), 1);
    assert.equal(counted('incr', 'error'), 1);
    // A series appears with its first request: no SET failed, no INCR succeeded.
    assert.equal(counted('set', 'error'), undefined);
    assert.equal(counted('incr', 'ok'), undefined);
    const timed = (operation: string): number | undefined =>
      valueOf(
        rendered,
        `ringkv_request_duration_seconds_count{operation="${operation}",protocol="resp"}`,
      );
    assert.equal(timed('set'), 3);
    assert.equal(timed('get'), 1);
    assert.equal(timed('incr'), 1);
    const setSeconds = valueOf(
      rendered,
      'ringkv_request_duration_seconds_sum{operation="set",protocol="resp"}',
    );
    assert.ok(setSeconds !== undefined && setSeconds >= 0 && setSeconds < 10, `${setSeconds}`);
  } finally {
    await runtime.close();
  }
});
