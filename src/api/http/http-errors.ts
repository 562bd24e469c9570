// HTTP errors. Every error leaves as JSON `{ error: { code, message } }` with a stable code
// (docs/ERRORS.md) and the status that code maps to. The node's codes come from
// src/core/errors.ts; the codes below are the HTTP layer's own. Codes never change meaning.

import { ErrorCode, type KvError } from '../../core/errors.ts';

export const HttpErrorCode = {
  /** Missing or wrong `Authorization: Bearer` token. */
  UNAUTHORIZED: 'RINGKV_UNAUTHORIZED',
  /** No live value under the key, or no such route. */
  NOT_FOUND: 'RINGKV_NOT_FOUND',
  /** The HTTP request itself is malformed: bad URL encoding, unknown parameter, bad header. */
  BAD_REQUEST: 'RINGKV_BAD_REQUEST',
  /** An `If-None-Match: *` or `If-Match: *` condition did not hold. */
  PRECONDITION_FAILED: 'RINGKV_PRECONDITION_FAILED',
  /** Request line and headers together exceed the server's header size limit. */
  HEADERS_TOO_LARGE: 'RINGKV_HEADERS_TOO_LARGE',
  /** The client took too long to send its request. */
  REQUEST_TIMEOUT: 'RINGKV_REQUEST_TIMEOUT',
  /** A bug: the server failed in a way it did not foresee. */
  INTERNAL: 'RINGKV_INTERNAL',
} as const;

export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/** The HTTP status of every code a client can receive. */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode | HttpErrorCode, number>> = {
  [ErrorCode.KEY_TOO_LARGE]: 414,
  [ErrorCode.KEY_EMPTY]: 400,
  [ErrorCode.VALUE_TOO_LARGE]: 413,
  // Not reachable over HTTP today (no increment route), mapped for completeness.
  [ErrorCode.NOT_AN_INTEGER]: 409,
  [ErrorCode.INTEGER_OVERFLOW]: 409,
  [ErrorCode.UNKNOWN_KEYSPACE]: 404,
  [ErrorCode.KEYSPACE_EXISTS]: 409,
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.INVALID_CONTEXT]: 400,
  [ErrorCode.OVERLOADED]: 503,
  [ErrorCode.UNAVAILABLE]: 503,
  [HttpErrorCode.UNAUTHORIZED]: 401,
  [HttpErrorCode.NOT_FOUND]: 404,
  [HttpErrorCode.BAD_REQUEST]: 400,
  [HttpErrorCode.PRECONDITION_FAILED]: 412,
  [HttpErrorCode.HEADERS_TOO_LARGE]: 431,
  [HttpErrorCode.REQUEST_TIMEOUT]: 408,
  [HttpErrorCode.INTERNAL]: 500,
};

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

export class HttpError extends Error {
  readonly code: ErrorCode | HttpErrorCode;
  readonly statusCode: number;

  constructor(code: ErrorCode | HttpErrorCode, message: string) {
    super(message);
    this.code = code;
    this.statusCode = STATUS_BY_CODE[code];
  }

  static from(error: KvError): HttpError {
    return new HttpError(error.code, error.message);
  }

  body(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

/** A fastify error (or anything thrown) as an HttpError; the caller logs unforeseen ones. */
export function toHttpError(
  error: unknown,
  valueBytesMax: number,
): { readonly httpError: HttpError; readonly foreseen: boolean } {
  if (error instanceof HttpError) return { httpError: error, foreseen: true };
  const fastifyError = error as { code?: unknown; statusCode?: unknown; message?: unknown };
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return {
      httpError: new HttpError(
        ErrorCode.VALUE_TOO_LARGE,
        `the value is larger than the limit of ${valueBytesMax} bytes`,
      ),
      foreseen: true,
    };
  }
  // Fastify's own client errors (bad content length, aborted body, ...) carry a 4xx status.
  if (
    typeof fastifyError.statusCode === 'number' &&
    fastifyError.statusCode >= 400 &&
    fastifyError.statusCode < 500
  ) {
    const message = typeof fastifyError.message === 'string' ? fastifyError.message : 'bad request';
    return { httpError: new HttpError(HttpErrorCode.BAD_REQUEST, message), foreseen: true };
  }
  return { httpError: new HttpError(HttpErrorCode.INTERNAL, 'internal error'), foreseen: false };
}

/**
 * The raw response for an error Node's HTTP parser raises before fastify sees a request
 * (the `clientError` event): there is no request object, so it is written to the socket.
 */
export function clientErrorResponse(errorCode: string | undefined): string {
  const httpError =
    errorCode === 'HPE_HEADER_OVERFLOW'
      ? new HttpError(
          HttpErrorCode.HEADERS_TOO_LARGE,
          'the request line and headers are too large (is the key over the key size limit?)',
        )
      : errorCode === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new HttpError(HttpErrorCode.REQUEST_TIMEOUT, 'the request was not received in time')
        : new HttpError(HttpErrorCode.BAD_REQUEST, 'the request is not valid HTTP/1.1');
  const body = JSON.stringify(httpError.body());
  const statusText =
    httpError.statusCode === 431
      ? 'Request Header Fields Too Large'
      : httpError.statusCode === 408
        ? 'Request Timeout'
        : 'Bad Request';
  return (
    `HTTP/1.1 ${httpError.statusCode} ${statusText}\r\n` +
    `Content-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}
