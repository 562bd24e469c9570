// The reply writer's byte-level encodings against the same replies built as strings: bulk
// strings of any length (the header's digits), array headers, +OK, across slab changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplyWriter } from '../../../src/api/resp/reply-writer.ts';

const reply = fc.oneof(
  fc.record({ bulk: fc.nat({ max: 100_000 }) }),
  fc.record({ array: fc.nat() }),
  fc.record({ ok: fc.constant(true) }),
);

test('bulk headers, array headers and +OK encode as their text', () => {
  fc.assert(
    fc.property(fc.array(reply, { maxLength: 60, size: 'max' }), (replies) => {
      const writer = new ReplyWriter();
      const chunks: Buffer[] = [];
      let expected = '';
      for (const [i, r] of replies.entries()) {
        if ('bulk' in r) {
          const value = Buffer.alloc(r.bulk, 0x61 + (i % 26));
          writer.bulk(value);
          expected += `$${r.bulk}\r\n${value.toString('latin1')}\r\n`;
        } else if ('array' in r) {
          writer.arrayHeader(r.array);
          expected += `*${r.array}\r\n`;
        } else {
          writer.ok();
          expected += '+OK\r\n';
        }
        // Taken now and then, as the connection does: later replies go to fresh bytes.
        if (i % 7 === 6) chunks.push(Buffer.from(writer.take() ?? Buffer.alloc(0)));
      }
      chunks.push(Buffer.from(writer.take() ?? Buffer.alloc(0)));
      assert.equal(Buffer.concat(chunks).toString('latin1'), expected);
    }),
    { seed: 17, numRuns: 200, endOnFailure: true },
  );
});

test('a negative or fractional count is refused, not encoded as garbage', () => {
  const writer = new ReplyWriter();
  assert.throws(() => writer.arrayHeader(-1), /non-negative integer/);
  assert.throws(() => writer.arrayHeader(1.5), /non-negative integer/);
  assert.equal(writer.take(), null);
});
