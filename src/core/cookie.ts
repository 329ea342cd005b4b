/**
 * Reading the one cookie we care about, and writing Set-Cookie values. Parsing never throws.
 *
 * RFC 6265 §5.2 leaves duplicate names to the client; an attacker who can set a cookie on a sibling
 * subdomain (or a path-scoped one) can shadow ours, so a name seen twice is treated as no cookie at
 * all rather than guessing which one is real.
 */

/** What the request's Cookie header says about one cookie name. */
export type CookieRead =
  | { kind: "absent" }
  | { kind: "present"; value: string }
  | { kind: "duplicate" };

/** The answers without a value, shared (read, never changed). */
const ABSENT: CookieRead = Object.freeze({ kind: "absent" });
const DUPLICATE: CookieRead = Object.freeze({ kind: "duplicate" });

/** Longest Cookie header we look at; browsers send at most ~8 kB per cookie, 4 kB is typical. */
const MAX_HEADER = 64 * 1024;

const SP = 0x20;
const HTAB = 0x09;
const EQUALS = 0x3d;

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/**
 * Find `name` in a Cookie header. Names are compared exactly, after trimming only SP and HTAB around
 * each pair (RFC 6265 §5.2 `OWS`): `String.prototype.trim` would also drop NBSP, VT, FF and other
 * Unicode spaces, so a sibling subdomain could plant `\u00a0session_id=…` and have it read as ours.
 * One pass over the header, whatever its number of pairs.
 */
export function readCookie(header: string | null | undefined, name: string): CookieRead {
  if (typeof header !== "string" || header.length === 0) return ABSENT;
  // A header this large is an attack or a broken client: never trust anything in it.
  if (header.length > MAX_HEADER) return DUPLICATE;
  let found: string | undefined;
  const n = header.length;
  let start = 0;
  while (start <= n) {
    let end = header.indexOf(";", start);
    if (end === -1) end = n;
    // The first "=" of this pair only: never search past its ";" (that made parsing quadratic).
    let eq = start;
    while (eq < end && header.charCodeAt(eq) !== EQUALS) eq++;
    if (eq < end) {
      let nameStart = start;
      let nameEnd = eq;
      while (nameStart < nameEnd && isOws(header.charCodeAt(nameStart))) nameStart++;
      while (nameEnd > nameStart && isOws(header.charCodeAt(nameEnd - 1))) nameEnd--;
      if (nameEnd - nameStart === name.length && header.startsWith(name, nameStart)) {
        if (found !== undefined) return DUPLICATE;
        let valueStart = eq + 1;
        let valueEnd = end;
        while (valueStart < valueEnd && isOws(header.charCodeAt(valueStart))) valueStart++;
        while (valueEnd > valueStart && isOws(header.charCodeAt(valueEnd - 1))) valueEnd--;
        found = header.slice(valueStart, valueEnd);
      }
    }
    start = end + 1;
  }
  return found === undefined ? ABSENT : { kind: "present", value: found };
}

/** Attributes of the session cookie, already validated by the configuration. */
export interface CookieAttributes {
  path: string;
  domain?: string | undefined;
  secure: boolean;
  httpOnly: boolean;
  sameSite: "strict" | "lax" | "none";
}

const SAME_SITE = { strict: "Strict", lax: "Lax", none: "None" } as const;

/**
 * Serialise a Set-Cookie value. `maxAge` in seconds; `undefined` makes a browser-session cookie;
 * `0` expires the cookie now (it is also given an Expires in the past for old clients).
 */
export function serializeCookie(
  name: string,
  value: string,
  attributes: CookieAttributes,
  maxAge: number | undefined,
): string {
  let out = `${name}=${value}; Path=${attributes.path}`;
  if (attributes.domain) out += `; Domain=${attributes.domain}`;
  if (maxAge !== undefined) {
    out += `; Max-Age=${Math.max(0, Math.floor(maxAge))}`;
    if (maxAge <= 0) out += "; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
  }
  if (attributes.httpOnly) out += "; HttpOnly";
  if (attributes.secure) out += "; Secure";
  out += `; SameSite=${SAME_SITE[attributes.sameSite]}`;
  return out;
}
