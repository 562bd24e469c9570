// Wire validation of the handoff messages: well-formed requests, pages and refusals are
// valid; a missing or extra field, a wrong type, a size past its bound, unordered entries or
// a next cursor that is not the last key are not; and validation never throws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { utf8 } from '../../../src/core/bytes.ts';
import { KEY_BYTES_CEILING } from '../../../src/core/limits.ts';
import {
  COUNT_KEYS_CEILING,
  HandoffMessageType,
  isHandoffReply,
  isPageRequestMessage,
  isValidHandoffMessage,
  PAGE_BYTES_CEILING,
  PAGE_KEYS_CEILING,
  PAGE_REPLY_BYTES_CEILING,
  TRANSFER_ID_LENGTH_MAX,
  type HandoffMessage,
} from '../../../src/core/handoff/messages.ts';

const { pageRequest, page, refusal } = HandoffMessageType;
const a = utf8('a');
const b = utf8('b');
const c = utf8('c');
const record = new Uint8Array([1, 0, 0]);

const VALID: readonly unknown[][] = [
  [pageRequest, 't1', 0, 0, null, 1, 1, null, 0, 0],
  [pageRequest, 't1', 0xffff_ffff, 0xffff, a, PAGE_KEYS_CEILING, PAGE_BYTES_CEILING, b, 10, 100],
  [page, 't1', null, [], null, null, 0, 0, null],
  [page, 't1', a, [[b, record]], null, null, 3, 30, null],
  [
    page,
    't1',
    a,
    [
      [b, record],
      [c, record],
    ],
    c,
    a,
    2,
    20,
    c,
  ],
  [refusal, 't1', null, 'unavailable'],
  [refusal, 't1', a, 'record-too-large'],
];

test('well-formed requests, pages and refusals are valid', () => {
  for (const message of VALID) assert.ok(isValidHandoffMessage(message), String(message[0]));
  const [request, , emptyPage, , , refused] = VALID as unknown as HandoffMessage[];
  assert.ok(isPageRequestMessage(request!) && !isHandoffReply(request!));
  assert.ok(isHandoffReply(emptyPage!) && isHandoffReply(refused!));
});

test('a message missing a field or carrying one more is invalid', () => {
  for (const message of VALID) {
    assert.ok(!isValidHandoffMessage(message.slice(0, -1)), `short ${String(message[0])}`);
    assert.ok(!isValidHandoffMessage([...message, 0]), `long ${String(message[0])}`);
  }
});

test('wrong types, sizes past their bounds and inconsistent pages are invalid', () => {
  const longId = 'x'.repeat(TRANSFER_ID_LENGTH_MAX + 1);
  const bigKey = new Uint8Array(KEY_BYTES_CEILING + 1);
  const invalid: unknown[] = [
    null,
    'hq',
    [],
    ['hz', 't1'],
    [pageRequest, '', 0, 0, null, 1, 1, null, 0, 0],
    [pageRequest, longId, 0, 0, null, 1, 1, null, 0, 0],
    [pageRequest, 't1', -1, 0, null, 1, 1, null, 0, 0],
    [pageRequest, 't1', 2 ** 32, 0, null, 1, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0x10000, null, 1, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, new Uint8Array(0), 1, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, bigKey, 1, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, 'a', 1, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, null, 0, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, null, PAGE_KEYS_CEILING + 1, 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, null, 1, 0, null, 0, 0],
    [pageRequest, 't1', 0, 0, null, 1, PAGE_BYTES_CEILING + 1, null, 0, 0],
    [pageRequest, 't1', 0, 0, null, 1, 1.5, null, 0, 0],
    [pageRequest, 't1', 0, 0, null, 1, 1, null, COUNT_KEYS_CEILING + 1, 0],
    // Entries out of order, repeated, not after the cursor, malformed, empty records.
    [
      page,
      't1',
      null,
      [
        [b, record],
        [a, record],
      ],
      a,
      null,
      0,
      0,
      null,
    ],
    [
      page,
      't1',
      null,
      [
        [a, record],
        [a, record],
      ],
      a,
      null,
      0,
      0,
      null,
    ],
    [page, 't1', b, [[a, record]], a, null, 0, 0, null],
    [page, 't1', null, [[a]], a, null, 0, 0, null],
    [page, 't1', null, [[a, new Uint8Array(0)]], a, null, 0, 0, null],
    [page, 't1', null, [[a, 'r']], a, null, 0, 0, null],
    [page, 't1', null, 'entries', null, null, 0, 0, null],
    // A next cursor that is not the last key; a page that is not the last but carries nothing.
    [
      page,
      't1',
      null,
      [
        [a, record],
        [b, record],
      ],
      a,
      null,
      0,
      0,
      null,
    ],
    [page, 't1', a, [], a, null, 0, 0, null],
    // A count that stopped short without counting, or went backwards.
    [page, 't1', null, [], null, null, 0, 0, a],
    [page, 't1', null, [], null, b, 1, 10, a],
    [page, 't1', null, [], null, null, -1, 0, null],
    [refusal, 't1', null, 'busy'],
    [refusal, 't1', 7, 'unavailable'],
  ];
  for (const message of invalid) {
    assert.ok(!isValidHandoffMessage(message), `accepted ${String(message)}`);
  }
});

test('a page past the reply byte ceiling or the key ceiling is invalid', () => {
  const half = new Uint8Array(PAGE_REPLY_BYTES_CEILING / 2);
  assert.ok(
    !isValidHandoffMessage([
      page,
      't1',
      null,
      [
        [a, half],
        [b, half],
      ],
      b,
      null,
      0,
      0,
      null,
    ]),
  );
  const many = Array.from({ length: PAGE_KEYS_CEILING + 1 }, (_, index) => [
    utf8(String(index).padStart(6, '0')),
    record,
  ]);
  const last = many[many.length - 1]![0];
  assert.ok(!isValidHandoffMessage([page, 't1', null, many, last, null, 0, 0, null]));
  assert.ok(isValidHandoffMessage([page, 't1', null, many.slice(1), last, null, 0, 0, null]));
});

test('validation never throws on arbitrary input', () => {
  const field = fc.oneof(
    fc.anything(),
    fc.constant(null),
    fc.uint8Array({ minLength: 1, maxLength: 4 }),
    fc.array(fc.array(fc.oneof(fc.uint8Array({ maxLength: 3 }), fc.anything()), { maxLength: 3 })),
    fc.constantFrom(...Object.values(HandoffMessageType)),
  );
  fc.assert(
    fc.property(fc.array(field, { maxLength: 11 }), fc.anything(), (fields, other) => {
      assert.equal(typeof isValidHandoffMessage(fields), 'boolean');
      assert.equal(typeof isValidHandoffMessage(other), 'boolean');
    }),
    { seed: 20250611, numRuns: 2_000 },
  );
});
