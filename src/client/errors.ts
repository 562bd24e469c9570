// The one error type the client throws. A server error keeps the server's stable code
// (`RINGKV_*`, docs/ERRORS.md) and its HTTP status; failures found by the client itself
// carry the client codes below (no `RINGKV_` prefix, so a code says where it came from),
// with a null status unless a node's answer was the trouble (BAD_RESPONSE). Codes never
// change meaning; docs/CLIENT.md says what each means.

export const ClientErrorCode = {
  /** A write was sent but no answer came (timeout, connection lost): it may or may not have been applied. */
  UNKNOWN_OUTCOME: 'UNKNOWN_OUTCOME',
  /** No node could be reached within the retries; for a write, it surely was not applied. */
  UNREACHABLE: 'UNREACHABLE',
  /** A read got no answer within `timeoutMs` on every attempt. */
  TIMEOUT: 'TIMEOUT',
  /** A node answered something that is not the HTTP API's shape (not JSON, missing fields). */
  BAD_RESPONSE: 'BAD_RESPONSE',
  /** An argument or option the client refuses before sending anything. */
  INVALID_OPTION: 'INVALID_OPTION',
  /** The client was closed. */
  CLOSED: 'CLOSED',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** The server's code for a keyspace that does not exist; the client raises it too. */
export const UNKNOWN_KEYSPACE_CODE = 'RINGKV_UNKNOWN_KEYSPACE';

export interface RingkvErrorDetails {
  /** The HTTP status of the server's answer; null when the error is the client's own. */
  readonly status?: number | null;
  /** The node that answered or failed last, when one was tried. */
  readonly nodeId?: string | null;
  /** How many requests were sent before giving up. */
  readonly attempts?: number;
  readonly cause?: unknown;
}

export class RingkvError extends Error {
  /** `RINGKV_*` from a server, or a ClientErrorCode. */
  readonly code: string;
  readonly status: number | null;
  readonly nodeId: string | null;
  readonly attempts: number;

  constructor(code: string, message: string, details: RingkvErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RingkvError';
    this.code = code;
    this.status = details.status ?? null;
    this.nodeId = details.nodeId ?? null;
    this.attempts = details.attempts ?? 0;
  }

  /** True when the code is one of the node's (`RINGKV_*`), even if the client raised it. */
  get fromServer(): boolean {
    return this.code.startsWith('RINGKV_');
  }
}

export function isRingkvError(error: unknown, code?: string): error is RingkvError {
  return error instanceof RingkvError && (code === undefined || error.code === code);
}
