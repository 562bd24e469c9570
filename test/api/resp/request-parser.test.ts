// The RESP request parser: any split of valid input into chunks parses to the same
// commands; malformed input fails with a ProtocolError and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError, RequestParser } from '../../../src/api/resp/request-parser.ts';

function encode(command: Buffer[]): Buffer {
  return Buffer.concat([
    Buffer.from(`*${command.length}\r\n`),
    ...command.flatMap((arg) => [Buffer.from(`$${arg.length}\r\n`), arg, Buffer.from('\r\n')]),
  ]);
}

function parseAll(parser: RequestParser, chunks: Buffer[]): Buffer[][] {
  const commands: Buffer[][] = [];
  for (const chunk of chunks)
    parser.feed(chunk, (args) => commands.push(args.map((arg) => Buffer.from(arg))));
  return commands;
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let last = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(last, point));
    last = point;
  }
  chunks.push(bytes.subarray(last));
  return chunks;
}

const commandArbitrary = fc.array(
  fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
  {
    minLength: 1,
    maxLength: 5,
  },
);

test('commands split into arbitrary chunks parse back exactly, binary-safe', () => {
  fc.assert(
    fc.property(
      fc.array(commandArbitrary, { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (commands, cuts) => {
        const bytes = Buffer.concat(commands.map(encode));
        const parsed = parseAll(new RequestParser(1024), split(bytes, cuts));
        assert.deepEqual(parsed, commands);
      },
    ),
  );
});

test('random bytes yield commands or a ProtocolError, never another failure', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.array(fc.nat(), { maxLength: 5 }),
      (bytes, cuts) => {
        try {
          parseAll(new RequestParser(1024), split(Buffer.from(bytes), cuts));
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error));
        }
      },
    ),
  );
});

test('inline commands split on spaces and honour quotes', () => {
  const parsed = parseAll(new RequestParser(1024), [Buffer.from('SET k "hello world"\r\nPING\n')]);
  assert.deepEqual(
    parsed.map((args) => args.map(String)),
    [['SET', 'k', 'hello world'], ['PING']],
  );
});

test('malformed frames are protocol errors', () => {
  const cases = [
    ['a bulk length of 2^40', `*1\r\n$${2 ** 40}\r\n`],
    ['a negative bulk length', '*1\r\n$-5\r\n'],
    ['a multibulk length over the limit', `*${2 ** 21}\r\n`],
    ['a missing $', '*1\r\n:5\r\n'],
    ['a bulk without its CRLF', '*1\r\n$3\r\nabcXY'],
    ['a non-numeric length', '*x\r\n'],
    ['unbalanced quotes', 'SET "abc\r\n'],
  ] as const;
  for (const [name, input] of cases) {
    assert.throws(
      () => parseAll(new RequestParser(1024), [Buffer.from(input)]),
      ProtocolError,
      name,
    );
  }
  assert.throws(
    () => parseAll(new RequestParser(1024), [Buffer.from('*1\r\n$2000\r\n')]),
    ProtocolError,
    'over the bulk limit',
  );
});

test('a truncated frame waits for more bytes and completes', () => {
  const parser = new RequestParser(1 << 20);
  const bytes = encode([Buffer.from('SET'), Buffer.from('k'), Buffer.alloc(100_000, 7)]);
  const commands: Buffer[][] = [];
  for (let offset = 0; offset < bytes.length; offset += 1000) {
    parser.feed(bytes.subarray(offset, offset + 1000), (args) => commands.push(args));
    if (offset + 1000 < bytes.length) assert.equal(commands.length, 0);
  }
  assert.equal(commands.length, 1);
  assert.equal(commands[0]![2]!.length, 100_000);
});
