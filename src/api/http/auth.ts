// Bearer-token access control. When the node has a password, a request must carry
// `Authorization: Bearer <password>`. The comparison takes the same time whatever the
// token: both sides are hashed to equal-length digests first, so neither the content nor
// the length of the password leaks through timing.

import { createHash, timingSafeEqual } from 'node:crypto';

const BEARER_PATTERN = /^Bearer +(.*)$/i;

function digest(bytes: Buffer): Buffer {
  return createHash('sha256').update(bytes).digest();
}

export class BearerCheck {
  private readonly expectedDigest: Buffer;

  constructor(password: string) {
    this.expectedDigest = digest(Buffer.from(password, 'utf8'));
  }

  /** Whether an Authorization header value carries the password. */
  accepts(header: string | undefined): boolean {
    if (header === undefined) return false;
    const match = BEARER_PATTERN.exec(header);
    if (match === null) return false;
    // Node hands header values over as latin1, one char per byte: recover the bytes sent,
    // so a UTF-8 password sent as UTF-8 matches.
    const given = digest(Buffer.from(match[1]!, 'latin1'));
    return timingSafeEqual(given, this.expectedDigest);
  }
}
