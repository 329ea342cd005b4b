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

/** Longest Cookie header we look at; browsers send at most ~8 kB per cookie, 4 kB is typical. */
const MAX_HEADER = 64 * 1024;

/** Find `name` in a Cookie header. Names are compared exactly, after trimming optional spaces. */
export function readCookie(header: string | null | undefined, name: string): CookieRead {
  if (typeof header !== "string" || header.length === 0) return { kind: "absent" };
  // A header this large is an attack or a broken client: never trust anything in it.
  if (header.length > MAX_HEADER) return { kind: "duplicate" };
  let found: string | undefined;
  let start = 0;
  while (start <= header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const eq = header.indexOf("=", start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) {
      if (found !== undefined) return { kind: "duplicate" };
      found = header.slice(eq + 1, end).trim();
    }
    start = end + 1;
  }
  return found === undefined ? { kind: "absent" } : { kind: "present", value: found };
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
