// `ringkv get|put|del|scan|status`: talk to a running node over HTTP.

import { parseArgs } from 'node:util';
import { UsageError } from '../options.ts';

const COMMON_HELP = `Common options:
  --url URL          node's HTTP address (default http://127.0.0.1:6480; env RINGKV_URL)
  --keyspace NAME    keyspace (default 'default')
  --password PW      client password (env RINGKV_PASSWORD)
  --help             show this help
`;

export const CLIENT_HELP: Record<string, string> = {
  get: `Usage: ringkv get KEY [options]\n\nPrints the value of KEY to stdout, raw. A missing key prints nothing and exits 1.\n\n${COMMON_HELP}`,
  put: `Usage: ringkv put KEY VALUE [--ttl MS] [options]\n\nStores VALUE under KEY; VALUE '-' reads the value from stdin.\n  --ttl MS           expire the key after MS milliseconds\n\n${COMMON_HELP}`,
  del: `Usage: ringkv del KEY [options]\n\nDeletes KEY. Prints 'deleted' or 'not found'.\n\n${COMMON_HELP}`,
  scan: `Usage: ringkv scan [--prefix P] [--limit N] [options]\n\nPrints every key (one a line), paging through the keyspace.\n  --prefix P         only keys that start with P\n  --limit N          at most N keys in all\n\n${COMMON_HELP}`,
  status: `Usage: ringkv status [options]\n\nPrints the node's status as JSON.\n\n${COMMON_HELP}`,
};

export interface Target {
  readonly url: string;
  readonly keyspace: string;
  readonly password: string | undefined;
}

export async function request(
  target: Target,
  method: string,
  path: string,
  body?: Buffer,
): Promise<Response> {
  const headers: Record<string, string> = {};
  if (target.password !== undefined) headers.authorization = `Bearer ${target.password}`;
  if (body !== undefined) headers['content-type'] = 'application/octet-stream';
  try {
    return await fetch(new URL(path, target.url), {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    });
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause?.message ?? (error as Error).message;
    throw new Error(`cannot reach ${target.url}: ${cause}`, { cause: error });
  }
}

export async function failure(response: Response): Promise<Error> {
  const text = await response.text();
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code !== undefined)
      return new Error(`${parsed.error.code}: ${parsed.error.message ?? ''}`);
  } catch {
    // not JSON: report the raw text
  }
  return new Error(`HTTP ${response.status}: ${text}`);
}

function keyPath(target: Target, key: string): string {
  return `/v1/kv/${encodeURIComponent(target.keyspace)}/${encodeURIComponent(key)}`;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function clientCommand(name: string, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      keyspace: { type: 'string', default: 'default' },
      password: { type: 'string' },
      ttl: { type: 'string' },
      prefix: { type: 'string' },
      limit: { type: 'string' },
      help: { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(CLIENT_HELP[name]!);
    return 0;
  }
  const target: Target = {
    url: values.url ?? process.env.RINGKV_URL ?? 'http://127.0.0.1:6480',
    keyspace: values.keyspace!,
    password: values.password ?? process.env.RINGKV_PASSWORD,
  };
  const expectPositionals = (count: number): void => {
    if (positionals.length !== count)
      throw new UsageError(
        `ringkv ${name} takes ${count} argument(s), got ${positionals.length}\n\n${CLIENT_HELP[name]!}`,
      );
  };
  switch (name) {
    case 'get': {
      expectPositionals(1);
      const response = await request(target, 'GET', keyPath(target, positionals[0]!));
      if (response.status === 404) {
        const error = await failure(response);
        process.stderr.write(`${error.message}\n`);
        return 1;
      }
      if (!response.ok) throw await failure(response);
      process.stdout.write(Buffer.from(await response.arrayBuffer()));
      return 0;
    }
    case 'put': {
      expectPositionals(2);
      const value = positionals[1] === '-' ? await readStdin() : Buffer.from(positionals[1]!);
      let path = keyPath(target, positionals[0]!);
      if (values.ttl !== undefined) {
        if (!/^\d+$/.test(values.ttl) || Number(values.ttl) <= 0)
          throw new UsageError('--ttl takes a positive number of milliseconds');
        path += `?ttlMs=${values.ttl}`;
      }
      const response = await request(target, 'PUT', path, value);
      if (!response.ok) throw await failure(response);
      process.stdout.write('OK\n');
      return 0;
    }
    case 'del': {
      expectPositionals(1);
      const response = await request(target, 'DELETE', keyPath(target, positionals[0]!));
      if (!response.ok) throw await failure(response);
      const body = (await response.json()) as { deleted: boolean };
      process.stdout.write(body.deleted ? 'deleted\n' : 'not found\n');
      return body.deleted ? 0 : 1;
    }
    case 'scan': {
      expectPositionals(0);
      const total = values.limit === undefined ? Infinity : Number(values.limit);
      if (values.limit !== undefined && !(Number.isSafeInteger(total) && total > 0))
        throw new UsageError('--limit takes a positive integer');
      let cursor: string | null = null;
      let printed = 0;
      do {
        const query = new URLSearchParams({ limit: String(Math.min(1000, total - printed)) });
        if (values.prefix !== undefined) query.set('prefix', values.prefix);
        if (cursor !== null) query.set('cursor', cursor);
        const response = await request(
          target,
          'GET',
          `/v1/kv/${encodeURIComponent(target.keyspace)}?${query}`,
        );
        if (!response.ok) throw await failure(response);
        const page = (await response.json()) as {
          keys: string[];
          cursor: string | null;
          keyEncoding?: string;
        };
        // A page with a key that is not UTF-8 comes base64url-encoded: print the raw bytes.
        for (const key of page.keys) {
          const bytes =
            page.keyEncoding === 'base64' ? Buffer.from(key, 'base64url') : Buffer.from(key);
          process.stdout.write(Buffer.concat([bytes, Buffer.from('\n')]));
        }
        printed += page.keys.length;
        cursor = page.cursor;
      } while (cursor !== null && printed < total);
      return 0;
    }
    case 'status': {
      expectPositionals(0);
      const response = await request(target, 'GET', '/v1/status');
      if (!response.ok) throw await failure(response);
      process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
      return 0;
    }
  }
  throw new UsageError(`unknown command ${name}`);
}
