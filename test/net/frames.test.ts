import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeFrame, FrameDecoder, FrameError } from '../../src/net/frames.ts';

test('frames: any cut of the stream into chunks gives back the same frames', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(4), fc.oneof(fc.string(), fc.integer(), fc.uint8Array())), {
        maxLength: 20,
      }),
      fc.array(fc.nat(64), { maxLength: 30 }),
      (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map((body) => encodeFrame(body)));
        const decoder = new FrameDecoder(1 << 20);
        const decoded: unknown[][] = [];
        let offset = 0;
        for (const cut of cuts) {
          decoded.push(...decoder.push(stream.subarray(offset, offset + cut)));
          offset = Math.min(stream.length, offset + cut);
        }
        decoded.push(...decoder.push(stream.subarray(offset)));
        assert.equal(decoded.length, bodies.length);
        decoded.forEach((body, i) => {
          const [type, payload] = bodies[i]!;
          assert.equal(body[0], type);
          if (payload instanceof Uint8Array) {
            assert.deepEqual(Buffer.from(body[1] as Uint8Array), Buffer.from(payload));
          } else assert.equal(body[1], payload);
        });
      },
    ),
    { numRuns: 300, seed: 7 },
  );
});

test('frames: oversized, undecodable or untyped frames are errors', () => {
  const oversized = Buffer.alloc(4);
  oversized.writeUInt32BE(1001, 0);
  assert.throws(() => new FrameDecoder(1000).push(oversized), FrameError);
  const garbage = Buffer.from([0, 0, 0, 1, 0xc1]); // 0xc1 is never used in msgpack
  assert.throws(() => new FrameDecoder(1000).push(garbage), FrameError);
  assert.throws(() => new FrameDecoder(1000).push(encodeFrame(['not a type'])), FrameError);
});
