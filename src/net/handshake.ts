// Mutual authentication of two peers by a shared cluster secret, without sending it.
//
// Each side opens with HELLO (cluster id, its node id, a fresh random nonce). On the other's
// HELLO, each side checks the cluster id and answers PROOF = HMAC-SHA256(secret, cluster id,
// own id, the other's nonce, own nonce). Each checks the proof it receives against the same
// formula with the roles swapped. A proof binds the prover's id and both fresh nonces, so it
// cannot be replayed on another connection or reflected back as the other side's.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const NONCE_BYTES = 32;

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function proofOf(
  secret: string,
  clusterId: string,
  proverId: string,
  verifierNonce: Uint8Array,
  proverNonce: Uint8Array,
): Buffer {
  const hmac = createHmac('sha256', secret);
  // Length-prefixed fields: no two different tuples hash the same bytes.
  for (const field of [Buffer.from(clusterId), Buffer.from(proverId), verifierNonce, proverNonce]) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(field.length, 0);
    hmac.update(length).update(field);
  }
  return hmac.digest();
}

export function proofMatches(expected: Buffer, received: unknown): boolean {
  return (
    received instanceof Uint8Array &&
    received.length === expected.length &&
    timingSafeEqual(expected, received)
  );
}
