/** Byte-level text helpers for header values: no copies, ASCII rules only, as HTTP defines them. */

/** HTTP whitespace: space, tab, LF, CR (what `Headers` strips and what media types are trimmed of). */
export function isHttpSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * `text` from `start` on begins with the lower-case `lower`, compared ASCII case-insensitively
 * (the caller checks lengths).
 */
export function equalsLower(text: string, start: number, lower: string): boolean {
  for (let j = 0; j < lower.length; j++) {
    let c = text.charCodeAt(start + j);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(j)) return false;
  }
  return true;
}
