// Redis glob patterns (KEYS, SCAN MATCH): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x` escapes,
// matched on bytes. Iterative with backtracking to the last star, so it runs in
// O(pattern × key) and cannot blow the stack on hostile patterns.

export function globMatches(pattern: Uint8Array, subject: Uint8Array): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < subject.length) {
    if (p < pattern.length) {
      const c = pattern[p]!;
      if (c === 0x2a /* * */) {
        while (p < pattern.length && pattern[p] === 0x2a) p++;
        if (p === pattern.length) return true;
        starP = p;
        starS = s;
        continue;
      }
      const step = matchOne(pattern, p, subject[s]!);
      if (step > 0) {
        p += step;
        s++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    starS++;
    s = starS;
  }
  while (p < pattern.length && pattern[p] === 0x2a) p++;
  return p === pattern.length;
}

/** If the pattern element at `p` matches `byte`, its length in the pattern; else 0. */
function matchOne(pattern: Uint8Array, p: number, byte: number): number {
  const c = pattern[p]!;
  if (c === 0x3f /* ? */) return 1;
  if (c === 0x5c /* \ */ && p + 1 < pattern.length) return pattern[p + 1] === byte ? 2 : 0;
  if (c !== 0x5b /* [ */) return c === byte ? 1 : 0;
  let i = p + 1;
  const negate = pattern[i] === 0x5e; /* ^ */
  if (negate) i++;
  let matched = false;
  while (i < pattern.length && pattern[i] !== 0x5d /* ] */) {
    if (pattern[i] === 0x5c && i + 1 < pattern.length) {
      if (pattern[i + 1] === byte) matched = true;
      i += 2;
    } else if (
      i + 2 < pattern.length &&
      pattern[i + 1] === 0x2d /* - */ &&
      pattern[i + 2] !== 0x5d
    ) {
      let low = pattern[i]!;
      let high = pattern[i + 2]!;
      if (low > high) [low, high] = [high, low];
      if (byte >= low && byte <= high) matched = true;
      i += 3;
    } else {
      if (pattern[i] === byte) matched = true;
      i++;
    }
  }
  // An unterminated class: Redis treats the end of pattern as the end of the class.
  const length = Math.min(i, pattern.length - 1) - p + 1;
  return matched !== negate ? Math.max(length, 1) : 0;
}
