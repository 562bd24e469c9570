// Stable error codes. Every error a client can see carries one of these; docs/ERRORS.md
// says what each means and what to do. Codes never change meaning once released.

export const ErrorCode = {
  KEY_TOO_LARGE: 'RINGKV_KEY_TOO_LARGE',
  KEY_EMPTY: 'RINGKV_KEY_EMPTY',
  VALUE_TOO_LARGE: 'RINGKV_VALUE_TOO_LARGE',
  NOT_AN_INTEGER: 'RINGKV_NOT_AN_INTEGER',
  INTEGER_OVERFLOW: 'RINGKV_INTEGER_OVERFLOW',
  UNKNOWN_KEYSPACE: 'RINGKV_UNKNOWN_KEYSPACE',
  KEYSPACE_EXISTS: 'RINGKV_KEYSPACE_EXISTS',
  INVALID_ARGUMENT: 'RINGKV_INVALID_ARGUMENT',
  INVALID_CONTEXT: 'RINGKV_INVALID_CONTEXT',
  OVERLOADED: 'RINGKV_OVERLOADED',
  UNAVAILABLE: 'RINGKV_UNAVAILABLE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface KvError {
  readonly code: ErrorCode;
  readonly message: string;
}

export function kvError(code: ErrorCode, message: string): KvError {
  return { code, message };
}
