// HTTP errors: every error leaves as JSON `{ error: { code, message } }` with a stable code
// (docs/ERRORS.md) and the status that code maps to.

import { ErrorCode, type KvError } from '../../core/errors.ts';

export const HttpErrorCode = {
  UNAUTHORIZED: 'RINGKV_UNAUTHORIZED',
  NOT_FOUND: 'RINGKV_NOT_FOUND',
  BAD_REQUEST: 'RINGKV_BAD_REQUEST',
  PRECONDITION_FAILED: 'RINGKV_PRECONDITION_FAILED',
  INTERNAL: 'RINGKV_INTERNAL',
} as const;

const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.KEY_TOO_LARGE]: 414,
  [ErrorCode.KEY_EMPTY]: 400,
  [ErrorCode.VALUE_TOO_LARGE]: 413,
  [ErrorCode.NOT_AN_INTEGER]: 409,
  [ErrorCode.INTEGER_OVERFLOW]: 409,
  [ErrorCode.UNKNOWN_KEYSPACE]: 404,
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.INVALID_CONTEXT]: 400,
  [ErrorCode.OVERLOADED]: 503,
  [ErrorCode.UNAVAILABLE]: 503,
  [HttpErrorCode.UNAUTHORIZED]: 401,
  [HttpErrorCode.NOT_FOUND]: 404,
  [HttpErrorCode.BAD_REQUEST]: 400,
  [HttpErrorCode.PRECONDITION_FAILED]: 412,
  [HttpErrorCode.INTERNAL]: 500,
};

export class HttpError extends Error {
  readonly code: string;
  readonly statusCode: number;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.statusCode = STATUS_BY_CODE[code] ?? 500;
  }

  static from(error: KvError): HttpError {
    return new HttpError(error.code, error.message);
  }

  body(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
