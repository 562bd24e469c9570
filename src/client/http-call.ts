// One HTTP request to one node, with a deadline, and what became of it. The retry policy
// needs to know more than "it failed": a refused connection means the request never
// reached the node (safe to send a write elsewhere), while a timeout or a connection lost
// mid-request leaves the outcome unknown. Node's fetch (undici) keeps connections alive
// between requests by default, so each node costs one handshake, not one per request.

/** Causes that happen before the request is written to any socket. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

export interface CallRequest {
  readonly method: 'GET' | 'PUT' | 'DELETE';
  /** `http://host:port/path?query`. */
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
  readonly timeoutMs: number;
}

export type CallOutcome =
  | {
      readonly kind: 'answered';
      readonly status: number;
      readonly headers: Headers;
      readonly body: Uint8Array;
    }
  /** The request surely did not reach the node. */
  | { readonly kind: 'not-sent'; readonly cause: unknown }
  /** No whole answer within the deadline: the node may have acted on it. */
  | { readonly kind: 'timeout'; readonly cause: unknown }
  /** The connection failed after the request may have been sent. */
  | { readonly kind: 'lost'; readonly cause: unknown };

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

function classify(error: unknown, signal: AbortSignal): CallOutcome {
  if (signal.aborted) return { kind: 'timeout', cause: error };
  const codes = errorCodesOf(error);
  if (codes.length > 0 && codes.every((code) => NOT_SENT_CODES.has(code))) {
    return { kind: 'not-sent', cause: error };
  }
  return { kind: 'lost', cause: error };
}

/** Sends the request and reads the whole answer; never throws. */
export async function callNode(request: CallRequest): Promise<CallOutcome> {
  const signal = AbortSignal.timeout(request.timeoutMs);
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      signal,
      ...(request.body === undefined ? {} : { body: request.body }),
    });
    // The deadline covers the body too: a node that stalls mid-answer is a timeout.
    const body = new Uint8Array(await response.arrayBuffer());
    return { kind: 'answered', status: response.status, headers: response.headers, body };
  } catch (error) {
    return classify(error, signal);
  }
}
