// Every limit the core enforces, in one place. docs/LIMITS.md lists them with the shell's.

export interface Limits {
  /** Largest key, in bytes. DESIGN fixes the ceiling at 8 KiB. */
  readonly keyBytesMax: number;
  /** Largest value, in bytes: 16 MiB at most, configurable lower. */
  readonly valueBytesMax: number;
  /** Most keys one SCAN or listing call returns. */
  readonly scanCountMax: number;
  /** Most keys in one multi-key request (MGET, MSET, DEL k1 k2 ...). */
  readonly keysPerRequestMax: number;
  /** Most expired keys purged per tick, so that expiry never stalls requests. */
  readonly expiryPurgePerTickMax: number;
}

export const KEY_BYTES_CEILING = 8 * 1024;
export const VALUE_BYTES_CEILING = 16 * 1024 * 1024;

export const DEFAULT_LIMITS: Limits = {
  keyBytesMax: KEY_BYTES_CEILING,
  valueBytesMax: VALUE_BYTES_CEILING,
  scanCountMax: 10_000,
  keysPerRequestMax: 10_000,
  expiryPurgePerTickMax: 1_000,
};
