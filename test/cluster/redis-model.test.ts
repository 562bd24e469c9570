// Any node serves any key: one ioredis client per node of a three-node cluster, a seeded
// sequence of single-client string commands each sent to a node picked at random, one at a
// time, and every reply compared with a plain in-test model of a Redis string store. With
// every node up, W=2 and R=2 of N=3, a command that starts after the previous one's reply
// must see its effect whichever node it enters by.
//
// A mismatch names the seed, the step and the commands before it; replay with
// RINGKV_TEST_SEED=<seed>.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Prng } from '../../src/core/prng.ts';
import { TestCluster } from './cluster-harness.ts';

const SEED = Number(process.env.RINGKV_TEST_SEED ?? Date.now() % 1_000_000);
const STEPS = 500;
const KEYS = Array.from({ length: 10 }, (_, index) => `model:${index}`);
const WORDS = ['a', 'bc', 'hello', '0', '7', '42', '-3', '007', ''];
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const NOT_AN_INTEGER = 'error: not an integer';
const HISTORY_SHOWN = 12;

let cluster: TestCluster | null = null;
const clients: Redis[] = [];
after(async () => {
  for (const client of clients) client.disconnect();
  await cluster?.close();
});

/** Redis's integer rule: canonical decimal of a signed 64-bit value. */
function redisInteger(text: string): bigint | null {
  if (!/^(0|-?[1-9][0-9]*)$/.test(text)) return null;
  const value = BigInt(text);
  return value < INT64_MIN || value > INT64_MAX ? null : value;
}

/** The model: what a single Redis would answer, and its state after. */
class StringStore {
  readonly values = new Map<string, string>();

  increment(key: string, by: bigint): unknown {
    const current = this.values.get(key) ?? '0';
    const parsed = redisInteger(current);
    if (parsed === null) return NOT_AN_INTEGER;
    const next = parsed + by;
    if (next < INT64_MIN || next > INT64_MAX) return NOT_AN_INTEGER;
    this.values.set(key, next.toString());
    return Number(next);
  }

  count(keys: readonly string[]): number {
    return keys.filter((key) => this.values.has(key)).length;
  }
}

interface Operation {
  readonly text: string;
  readonly send: (client: Redis) => Promise<unknown>;
  readonly apply: (model: StringStore) => unknown;
}

function distinctKeys(prng: Prng, count: number): string[] {
  const chosen = new Set<string>();
  while (chosen.size < count) chosen.add(prng.pick(KEYS));
  return [...chosen];
}

function randomOperation(prng: Prng): Operation {
  const key = prng.pick(KEYS);
  const word = prng.pick(WORDS);
  switch (prng.below(13)) {
    case 0:
    case 1:
      return {
        text: `SET ${key} '${word}'`,
        send: (client) => client.set(key, word),
        apply: (model) => (model.values.set(key, word), 'OK'),
      };
    case 2: {
      const condition = prng.pick(['NX', 'XX'] as const);
      return {
        text: `SET ${key} '${word}' ${condition}`,
        send: (client) =>
          condition === 'NX' ? client.set(key, word, 'NX') : client.set(key, word, 'XX'),
        apply: (model) => {
          if (model.values.has(key) !== (condition === 'XX')) return null;
          model.values.set(key, word);
          return 'OK';
        },
      };
    }
    case 3:
    case 4:
      return {
        text: `GET ${key}`,
        send: (client) => client.get(key),
        apply: (model) => model.values.get(key) ?? null,
      };
    case 5: {
      const keys = distinctKeys(prng, prng.between(1, 3));
      return {
        text: `DEL ${keys.join(' ')}`,
        send: (client) => client.del(...keys),
        apply: (model) => keys.filter((each) => model.values.delete(each)).length,
      };
    }
    case 6:
      return {
        text: `INCR ${key}`,
        send: (client) => client.incr(key),
        apply: (model) => model.increment(key, 1n),
      };
    case 7: {
      const by = prng.between(-50, 50);
      return {
        text: `INCRBY ${key} ${by}`,
        send: (client) => client.incrby(key, by),
        apply: (model) => model.increment(key, BigInt(by)),
      };
    }
    case 8:
      return {
        text: `APPEND ${key} '${word}'`,
        send: (client) => client.append(key, word),
        apply: (model) => {
          const next = (model.values.get(key) ?? '') + word;
          model.values.set(key, next);
          return Buffer.byteLength(next);
        },
      };
    case 9: {
      // EXISTS counts a key named twice twice, as Redis does.
      const keys = Array.from({ length: prng.between(1, 3) }, () => prng.pick(KEYS));
      return {
        text: `EXISTS ${keys.join(' ')}`,
        send: (client) => client.exists(...keys),
        apply: (model) => model.count(keys),
      };
    }
    case 10: {
      const keys = distinctKeys(prng, prng.between(1, 3));
      if (prng.chance(0.5)) {
        const values = keys.map(() => prng.pick(WORDS));
        const pairs = keys.flatMap((each, index) => [each, values[index]!]);
        return {
          text: `MSET ${pairs.map((part) => `'${part}'`).join(' ')}`,
          send: (client) => client.mset(...pairs),
          apply: (model) => {
            keys.forEach((each, index) => model.values.set(each, values[index]!));
            return 'OK';
          },
        };
      }
      return {
        text: `MGET ${keys.join(' ')}`,
        send: (client) => client.mget(...keys),
        apply: (model) => keys.map((each) => model.values.get(each) ?? null),
      };
    }
    case 11:
      return {
        text: `GETDEL ${key}`,
        send: (client) => client.getdel(key),
        apply: (model) => {
          const value = model.values.get(key) ?? null;
          model.values.delete(key);
          return value;
        },
      };
    default:
      return {
        text: `STRLEN ${key}`,
        send: (client) => client.strlen(key),
        apply: (model) => Buffer.byteLength(model.values.get(key) ?? ''),
      };
  }
}

async function replyOf(operation: Operation, client: Redis): Promise<unknown> {
  try {
    return await operation.send(client);
  } catch (error) {
    const message = (error as Error).message;
    return /not an integer or out of range/.test(message) ? NOT_AN_INTEGER : `error: ${message}`;
  }
}

test('ioredis against different nodes agrees with a model of one Redis', async (context) => {
  context.diagnostic(`seed ${SEED}; replay with RINGKV_TEST_SEED=${SEED}`);
  const running = await TestCluster.start({ nodeCount: 3, storage: 'memory' });
  cluster = running;
  for (const node of running.nodes) {
    const client = new Redis({
      port: node.respPort,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    clients.push(client);
    await client.connect();
  }
  const prng = new Prng(SEED);
  const model = new StringStore();
  const history: string[] = [];
  for (let step = 0; step < STEPS; step++) {
    const operation = randomOperation(prng);
    const nodeIndex = prng.below(clients.length);
    const expected = operation.apply(model);
    const actual = await replyOf(operation, clients[nodeIndex]!);
    history.push(`${step}: ${operation.text} on node${nodeIndex + 1} -> ${JSON.stringify(actual)}`);
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      assert.fail(
        `seed ${SEED} step ${step}: ${operation.text} on node${nodeIndex + 1} answered ` +
          `${JSON.stringify(actual)}, the model says ${JSON.stringify(expected)}\n` +
          `last steps:\n${history.slice(-HISTORY_SHOWN).join('\n')}`,
      );
    }
  }
  // The final state, read key by key through every node, is the model's.
  for (const client of clients) {
    assert.deepEqual(
      await client.mget(...KEYS),
      KEYS.map((key) => model.values.get(key) ?? null),
      `seed ${SEED}: final state`,
    );
  }
});
