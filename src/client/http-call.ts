// One HTTP exchange with one node, over node:http, and what became of it. The retry policy
// needs to know more than "it failed": a refused connection means the request never
// reached the node (safe to send a write elsewhere), while a timeout or a connection lost
// mid-request leaves the outcome unknown.
//
// Rules it keeps:
// - Connections are kept alive in one http.Agent per client, at most `socketsPerNodeMax`
//   per node (the agent's per-origin bound); requests beyond it wait in the agent's queue,
//   and that wait counts against their deadline.
// - One deadline covers the whole exchange: the wait for a socket, the request, and the
//   answer's last byte. A node that stalls mid-answer is a timeout.
// - An answer is read whole but bounded (ANSWER_BYTES_MAX); of its headers, only the two the
//   client uses (epoch and context) are picked out of the raw list.
// - The request path allocates no closure per request: the listeners are module functions
//   that find the exchange's state on the request or response they are called on.

import http from 'node:http';

/** Causes that happen before the request is written to any socket. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/**
 * Largest answer read: a get answers in JSON, with values in base64 at worst, and every
 * sibling carries its own value (values are at most 16 MiB each).
 */
export const ANSWER_BYTES_MAX = 256 * 1024 * 1024;
/** Connections kept to one node when the client is not told otherwise. */
export const SOCKETS_PER_NODE_DEFAULT = 64;
/** Destinations whose parsed host and port are remembered; the cache restarts beyond it. */
const DESTINATIONS_MAX = 1024;

const EPOCH_HEADER = 'x-ringkv-epoch';
const CONTEXT_HEADER = 'x-ringkv-context';

export interface CallRequest {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** `host:port` of the node, as in the ring document (IPv6 hosts in brackets). */
  readonly address: string;
  /** Path and query, already encoded. */
  readonly path: string;
  readonly headers: http.OutgoingHttpHeaders;
  readonly body?: Uint8Array;
  readonly timeoutMs: number;
}

export interface Answer {
  readonly kind: 'answered';
  readonly status: number;
  /** X-Ringkv-Epoch, or null when absent. */
  readonly epoch: string | null;
  /** X-Ringkv-Context, or null when absent. */
  readonly context: string | null;
  /** ETag (a strong key's version, quoted), or null when absent. */
  readonly etag: string | null;
  readonly body: Buffer;
}

export type CallOutcome =
  | Answer
  /** The request surely did not reach the node. */
  | { readonly kind: 'not-sent'; readonly cause: unknown }
  /** No whole answer within the deadline: the node may have acted on it. */
  | { readonly kind: 'timeout'; readonly cause: unknown }
  /** The connection failed after the request may have been sent. */
  | { readonly kind: 'lost'; readonly cause: unknown };

export interface Destination {
  readonly host: string;
  readonly port: number;
}

/** The state of one exchange, reached from the listeners through EXCHANGE. */
interface Exchange {
  readonly resolve: (outcome: CallOutcome) => void;
  readonly pool: NodeConnections;
  readonly timeoutMs: number;
  readonly request: http.ClientRequest;
  timer: ReturnType<typeof setTimeout> | null;
  chunks: Buffer[];
  bytes: number;
  settled: boolean;
}

const EXCHANGE = Symbol('ringkv exchange');

type Carrier = { [EXCHANGE]?: Exchange };

function exchangeOf(emitter: object): Exchange {
  const exchange = (emitter as Carrier)[EXCHANGE];
  if (exchange === undefined) throw new Error('an HTTP event without its exchange');
  return exchange;
}

function errorCodesOf(error: unknown): string[] {
  const codes: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || depth > 4) return;
    const code = (value as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    visit((value as { cause?: unknown }).cause, depth + 1);
    // Happy eyeballs tries every address of a name and reports them together.
    const errors = (value as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
  };
  visit(error, 0);
  return codes;
}

/** What a socket error says about whether the request left this process. */
export function classifyError(error: unknown): CallOutcome {
  const codes = errorCodesOf(error);
  if (codes.length > 0 && codes.every((code) => NOT_SENT_CODES.has(code))) {
    return { kind: 'not-sent', cause: error };
  }
  return { kind: 'lost', cause: error };
}

function settle(exchange: Exchange, outcome: CallOutcome): void {
  if (exchange.settled) return;
  exchange.settled = true;
  if (exchange.timer !== null) clearTimeout(exchange.timer);
  exchange.timer = null;
  exchange.pool.exchangeEnded();
  exchange.resolve(outcome);
}

function onDeadline(exchange: Exchange): void {
  exchange.timer = null;
  if (exchange.settled) return;
  const cause = new Error(`no whole answer within ${exchange.timeoutMs} ms`);
  settle(exchange, { kind: 'timeout', cause });
  // The socket may carry a late answer: it cannot go back to the pool.
  exchange.request.destroy(cause);
}

function onRequestError(this: http.ClientRequest, error: Error): void {
  const exchange = exchangeOf(this);
  settle(exchange, classifyError(error));
}

function onResponse(this: http.ClientRequest, response: http.IncomingMessage): void {
  const exchange = exchangeOf(this);
  (response as Carrier)[EXCHANGE] = exchange;
  response.on('data', onResponseData);
  response.on('end', onResponseEnd);
  response.on('error', onResponseError);
  response.on('close', onResponseClose);
}

function onResponseData(this: http.IncomingMessage, chunk: Buffer): void {
  const exchange = exchangeOf(this);
  if (exchange.settled) return;
  exchange.bytes += chunk.length;
  if (exchange.bytes > ANSWER_BYTES_MAX) {
    const cause = new Error(`an answer longer than ${ANSWER_BYTES_MAX} bytes`);
    settle(exchange, { kind: 'lost', cause });
    exchange.request.destroy(cause);
    return;
  }
  exchange.chunks.push(chunk);
}

function onResponseEnd(this: http.IncomingMessage): void {
  const exchange = exchangeOf(this);
  if (exchange.settled) return;
  const chunks = exchange.chunks;
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, exchange.bytes);
  let epoch: string | null = null;
  let context: string | null = null;
  let etag: string | null = null;
  const raw = this.rawHeaders;
  for (let index = 0; index + 1 < raw.length; index += 2) {
    const name = raw[index]!;
    // Both names are 14 and 16 characters; compare case-insensitively only on a length match.
    if (name.length === EPOCH_HEADER.length && name.toLowerCase() === EPOCH_HEADER) {
      epoch = raw[index + 1]!;
    } else if (name.length === CONTEXT_HEADER.length && name.toLowerCase() === CONTEXT_HEADER) {
      context = raw[index + 1]!;
    } else if (name.length === 4 && name.toLowerCase() === 'etag') {
      etag = raw[index + 1]!;
    }
  }
  settle(exchange, {
    kind: 'answered',
    status: this.statusCode ?? 0,
    epoch,
    context,
    etag,
    body,
  });
}

function onResponseError(this: http.IncomingMessage, error: Error): void {
  settle(exchangeOf(this), { kind: 'lost', cause: error });
}

function onResponseClose(this: http.IncomingMessage): void {
  const exchange = exchangeOf(this);
  if (exchange.settled) return;
  settle(exchange, { kind: 'lost', cause: new Error('the connection closed mid-answer') });
}

export function parseAddress(address: string): Destination {
  const colon = address.lastIndexOf(':');
  const port = Number(address.slice(colon + 1));
  let host = address.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (colon <= 0 || !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new Error(`'${address}' is not host:port`);
  }
  return { host, port };
}

/** The kept-alive connections of one client to every node it talks to. */
export class NodeConnections {
  private readonly agent: http.Agent;
  private readonly destinations = new Map<string, Destination>();
  private inFlight = 0;
  private closed = false;

  constructor(socketsPerNodeMax: number) {
    if (!(Number.isSafeInteger(socketsPerNodeMax) && socketsPerNodeMax >= 1)) {
      throw new Error(`socketsPerNodeMax ${socketsPerNodeMax} is not a positive integer`);
    }
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: socketsPerNodeMax,
      maxFreeSockets: socketsPerNodeMax,
      // The most recently used socket is the least likely to have been closed by the node.
      scheduling: 'lifo',
    });
  }

  /** Sends the request and reads the whole answer; never throws, never rejects. */
  call(request: CallRequest): Promise<CallOutcome> {
    let destination: Destination;
    try {
      destination = this.destinationOf(request.address);
    } catch (error) {
      return Promise.resolve({ kind: 'not-sent', cause: error });
    }
    const { promise, resolve } = Promise.withResolvers<CallOutcome>();
    let outgoing: http.ClientRequest;
    try {
      outgoing = http.request({
        agent: this.agent,
        host: destination.host,
        port: destination.port,
        method: request.method,
        path: request.path,
        headers: request.headers,
      });
    } catch (error) {
      // Node refuses some paths and header values before any socket is touched.
      return Promise.resolve({ kind: 'not-sent', cause: error });
    }
    const exchange: Exchange = {
      resolve,
      pool: this,
      timeoutMs: request.timeoutMs,
      request: outgoing,
      timer: null,
      chunks: [],
      bytes: 0,
      settled: false,
    };
    this.inFlight++;
    (outgoing as Carrier)[EXCHANGE] = exchange;
    outgoing.on('response', onResponse);
    outgoing.on('error', onRequestError);
    exchange.timer = setTimeout(onDeadline, request.timeoutMs, exchange);
    if (request.body === undefined) outgoing.end();
    else outgoing.end(request.body);
    return promise;
  }

  /**
   * Closes the idle connections now and the others as their exchanges end; requests in
   * flight finish.
   */
  close(): void {
    this.closed = true;
    if (this.inFlight === 0) this.agent.destroy();
  }

  /** Called once per exchange when it settles. */
  exchangeEnded(): void {
    this.inFlight--;
    if (this.inFlight < 0) throw new Error('more exchanges ended than started');
    if (this.closed && this.inFlight === 0) {
      // Let the answer's socket reach the pool first, so that it is closed too.
      setImmediate(destroyAgent, this.agent);
    }
  }

  private destinationOf(address: string): Destination {
    let destination = this.destinations.get(address);
    if (destination === undefined) {
      destination = parseAddress(address);
      if (this.destinations.size >= DESTINATIONS_MAX) this.destinations.clear();
      this.destinations.set(address, destination);
    }
    return destination;
  }
}

function destroyAgent(agent: http.Agent): void {
  agent.destroy();
}
