import { randomBytes, timingSafeEqual } from "node:crypto";
import type { CsrfConfig } from "./config.js";
import { CsrfBodyError, type FormBodyProblem } from "./csrf-form.js";
import type { SessionEngine } from "./engine.js";
import { SessionLockTimeoutError, StoreUnavailableError } from "./errors.js";
import { EVENTS, publish } from "./events.js";
import { CSRF_SECRET_KEY, engineOf, renderSecret, type Session } from "./session.js";

/**
 * CSRF protection: the synchronizer-token pattern (OWASP CSRF Prevention Cheat Sheet), with
 * `Sec-Fetch-Site` and `Origin` checks added on top (never instead).
 *
 * - One secret per session, `token_length` random bytes, stored under {@link CSRF_SECRET_KEY}. It is
 *   created only when a page renders a token, so a page without a form creates no session; it rotates
 *   with `cycleId()` (login, logout) and `destroy()`.
 * - Every rendered token is the secret XOR a fresh one-time pad, sent as base64url(pad ‖ masked):
 *   no two renders look alike, so a compressed response (BREACH) leaks nothing about the secret, and
 *   the secret itself never appears in a response. All renders verify.
 * - Every method but exactly `GET`, `HEAD` and `OPTIONS` is checked, whatever the Content-Type: the
 *   content-type bypasses of CVE-2024-43787 and CVE-2024-48913 came from checking only "form-like"
 *   requests. The method is the one on the wire; override headers and `_method` fields are never read.
 */

/** The framework-neutral view of a request that {@link verifyCsrf} needs. Adapters build one. */
export interface CsrfRequest {
  /** The method as received (any case). */
  method: string;
  /** The URL pathname, matched against `exempt_paths`. */
  path: string;
  /** A request header by case-insensitive name; repeated headers joined as the framework does. */
  header(name: string): string | undefined;
  /**
   * Value(s) of a form field from an urlencoded or multipart body, without consuming the body for
   * the app; `undefined` when the body is not a form or the field is absent. May throw
   * {@link CsrfBodyError} for a body too large, too slow or already consumed.
   */
  formField(name: string): Promise<unknown>;
  /**
   * The origins this site is reached at, when the caller knows them better than `Host` does (the
   * request pipeline: `public_origin`, or how the client reached the first trusted proxy). Without
   * it they are derived from `Host`: `https://<Host>`, and `http://<Host>` unless `secure = true`.
   */
  expectedOrigins?: readonly string[];
}

/** A failed check, ready to send. The handler must not run and the session must not be saved. */
export interface CsrfRejection {
  status: 403;
  headers: Record<string, string>;
  body: string;
  /** Machine-readable cause, also in the HTMX event detail; see {@link CsrfFailureReason}. */
  reason: CsrfFailureReason;
}

/** Why a request failed the check. */
export type CsrfFailureReason =
  | "no_session"
  | "token_missing"
  | "token_not_string"
  | "token_malformed"
  | "token_mismatch"
  | "cross_site"
  | "origin_null"
  | "origin_mismatch"
  | "referer_mismatch"
  | "request_unreadable"
  | FormBodyProblem;

/** The event an HTMX page can listen to: `document.body.addEventListener("coatcheck:csrf-failed", …)`. */
export const CSRF_FAILED_EVENT = "coatcheck:csrf-failed";

const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** `token_length` bounds from the configuration table. */
const MIN_SECRET_BYTES = 16;
const MAX_SECRET_BYTES = 128;
/** A 128-byte secret masks to 256 bytes, 342 characters; anything longer is not looked at. */
const MAX_TOKEN_CHARS = 342;

/** The 6-bit value of a base64url character (one the alphabet test let through). */
function sextet(c: number): number {
  if (c >= 0x61) return c - 0x61 + 26; // a-z
  if (c >= 0x41) return c === 0x5f ? 63 : c - 0x41; // A-Z, "_"
  return c === 0x2d ? 62 : c - 0x30 + 52; // "-", 0-9
}

/**
 * @internal Exact base64url without padding, and the canonical encoding of its bytes (one
 * spelling per token): no dangling character, and the bits past the last whole byte are zero.
 * Checked on the text, with no second encoding to compare. Exported for its test.
 */
export function decodeBase64url(text: string): Buffer | null {
  if (text.length === 0 || !BASE64URL.test(text)) return null;
  const rest = text.length % 4;
  if (rest === 1) return null;
  if (rest !== 0) {
    const unused = rest === 2 ? 0x0f : 0x03;
    if ((sextet(text.charCodeAt(text.length - 1)) & unused) !== 0) return null;
  }
  return Buffer.from(text, "base64url");
}

/** The last secret decoded, and its text: a session's posts decode the same secret each time. */
let lastSecret: { text: string; bytes: Buffer } | null = null;

/** The stored secret, or null when absent or not something this module wrote. */
function secretFrom(value: unknown): Buffer | null {
  if (typeof value !== "string" || value.length > MAX_TOKEN_CHARS) return null;
  if (lastSecret !== null && lastSecret.text === value) return lastSecret.bytes;
  const bytes = decodeBase64url(value);
  if (bytes === null || bytes.length < MIN_SECRET_BYTES || bytes.length > MAX_SECRET_BYTES)
    return null;
  // Callers only read it (`matches`), so the cached bytes are never changed.
  lastSecret = { text: value, bytes };
  return bytes;
}

function mask(secret: Buffer): string {
  const n = secret.length;
  const out = Buffer.alloc(n * 2);
  randomBytes(n).copy(out, 0);
  for (let i = 0; i < n; i++) out[n + i] = (secret[i] as number) ^ (out[i] as number);
  return out.toString("base64url");
}

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

/**
 * The CSRF token of one request's session, for rendering into forms and pages. Each call of
 * {@link CsrfToken.token} (and of the HTML helpers) returns a freshly masked token; all of them
 * verify until the secret rotates.
 *
 * @example
 * ```ts
 * const csrf = await CsrfToken.from(session);
 * html`<form method="post" action="/submit">${raw(csrf.asHiddenField())}…</form>`;
 * ```
 */
export class CsrfToken {
  readonly #session: Session;
  readonly #config: CsrfConfig;

  private constructor(session: Session, config: CsrfConfig) {
    this.#session = session;
    this.#config = config;
  }

  /**
   * The token object for `session`. Loads the session (one store read at most) but creates
   * nothing: the secret is made, and the session saved, only when a token is rendered.
   */
  static async from(session: Session): Promise<CsrfToken> {
    await session.load();
    return new CsrfToken(session, engineOf(session).config.csrf);
  }

  /**
   * Drop the session's CSRF secret so that every token rendered before stops verifying; the next
   * rendered token uses a new one. `cycleId()` and `destroy()` (hence `login`/`logout`) already do
   * this. `length` is accepted for compatibility with `regenerate(session, 32)` call sites: the secret length is
   * always `token_length` from the configuration; a value outside its 16–128 range is a mistake and
   * throws a `RangeError`.
   */
  static async regenerate(session: Session, length?: number): Promise<void> {
    if (
      length !== undefined &&
      !(Number.isInteger(length) && length >= MIN_SECRET_BYTES && length <= MAX_SECRET_BYTES)
    ) {
      throw new RangeError(
        `coatcheck: CsrfToken.regenerate length must be an integer from ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} (token_length decides the actual length)`,
      );
    }
    await session.remove(CSRF_SECRET_KEY);
  }

  /** A freshly masked token: base64url, safe in HTML attributes, headers and URLs. */
  token(): string {
    // Synchronous so templates can call it inline: the session was loaded by `from`, so the secret
    // is read (and, on first render, made) in the request's session. Read anew on every call:
    // `cycleId()`, `destroy()` or `regenerate()` in between must take effect.
    const text = renderSecret(
      this.#session,
      (stored) => secretFrom(parseJson(stored)) !== null,
      () => JSON.stringify(randomBytes(this.#config.tokenLength).toString("base64url")),
    );
    const secret = secretFrom(parseJson(text)) as Buffer;
    return mask(secret);
  }

  /** `<input type="hidden" name="_csrf" value="…">`, named after `form_field_name`. */
  asHiddenField(): string {
    return this.asHiddenFieldNamed(this.#config.formFieldName);
  }

  /** A hidden field with a custom name (escaped); the check reads only `form_field_name`. */
  asHiddenFieldNamed(name: string): string {
    return `<input type="hidden" name="${escapeAttribute(String(name))}" value="${escapeAttribute(this.token())}">`;
  }

  /** `<meta name="csrf-token" content="…">`, for HTMX and fetch (see the README's "CSRF and HTMX"). */
  asMetaTag(): string {
    return `<meta name="csrf-token" content="${escapeAttribute(this.token())}">`;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** True when the token's bytes unmask to `secret`. Constant time in the token's content. */
function matches(bytes: Buffer, secret: Buffer): boolean {
  const n = secret.length;
  if (bytes.length !== n * 2) return false;
  // Unmask in place: the bytes were decoded for this check only.
  for (let i = 0; i < n; i++) bytes[i] = (bytes[i] as number) ^ (bytes[n + i] as number);
  return timingSafeEqual(bytes.subarray(0, n), secret);
}

/** The token's bytes when it is well formed (canonical base64url of pad ‖ masked), else null. */
function tokenBytes(token: string): Buffer | null {
  if (token.length > MAX_TOKEN_CHARS) return null;
  const bytes = decodeBase64url(token);
  return bytes !== null &&
    bytes.length % 2 === 0 &&
    bytes.length >= MIN_SECRET_BYTES * 2 &&
    bytes.length <= MAX_SECRET_BYTES * 2
    ? bytes
    : null;
}

/** `exempt_paths` are prefixes on a segment boundary: `/api` covers `/api` and `/api/x`, not `/apix`. */
function isExempt(path: string, exempt: readonly string[]): boolean {
  for (const prefix of exempt) {
    if (path === prefix) return true;
    if (path.startsWith(prefix.endsWith("/") ? prefix : `${prefix}/`)) return true;
  }
  return false;
}

const HOST = /^[A-Za-z0-9.\-:[\]]+$/;

/** `ownOrigins` of recent hosts (a site answers under a few), keyed by scheme choice and host. */
const ORIGINS = new Map<string, readonly string[]>();
const MAX_CACHED_HOSTS = 64;

/**
 * The origins of a site reached at `host`: `https://<host>`, and `http://<host>` too unless the
 * request came over HTTPS (`protocol`) or cookies are always `Secure` (they only travel over HTTPS
 * then). Empty when `host` is missing or not a host. Normalized as browsers write `Origin`.
 */
export function ownOrigins(
  host: string | undefined,
  protocol: "http" | "https" | undefined,
  secure: boolean | "auto",
): readonly string[] {
  if (host === undefined || !HOST.test(host)) return NO_ORIGINS;
  const key = `${protocol === "https" || secure === true ? "s" : "-"}${host}`;
  const known = ORIGINS.get(key);
  if (known !== undefined) return known;
  // Frozen: every request to this host shares the one list.
  const out = Object.freeze(originsOf(host, protocol, secure));
  // Host is the client's to choose: the cache is bounded, and starts over when full.
  if (ORIGINS.size >= MAX_CACHED_HOSTS) ORIGINS.clear();
  ORIGINS.set(key, out);
  return out;
}

const NO_ORIGINS: readonly string[] = Object.freeze([]);

function originsOf(
  host: string,
  protocol: "http" | "https" | undefined,
  secure: boolean | "auto",
): string[] {
  const schemes = protocol === "https" || secure === true ? ["https:"] : ["https:", "http:"];
  const out: string[] = [];
  for (const scheme of schemes) {
    try {
      const origin = new URL(`${scheme}//${host}`).origin;
      if (origin !== "null") out.push(origin);
    } catch {
      // Not a host after all.
    }
  }
  return out;
}

/** A value from the request, fit to quote in a message: printable, short. */
function quoted(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, "?");
  return JSON.stringify(printable.length > 120 ? `${printable.slice(0, 120)}…` : printable);
}

/** What the origin check saw, for the message of its rejection. */
interface OriginSeen {
  reason: CsrfFailureReason;
  received?: string;
  expected: readonly string[];
}

/** `Sec-Fetch-Site` says `cross-site` (alone, or in a list a proxy joined). */
const CROSS_SITE = /(?:^|,)[ \t]*cross-site[ \t]*(?:,|$)/i;

/** The origins of this site; derived only for a header to compare (an Origin, else a Referer). */
function expectedOf(request: CsrfRequest, secure: boolean | "auto"): readonly string[] {
  return request.expectedOrigins ?? ownOrigins(request.header("host"), undefined, secure);
}

function originProblem(
  request: CsrfRequest,
  config: CsrfConfig,
  secure: boolean | "auto",
): OriginSeen | null {
  const origin = request.header("origin");
  if (origin !== undefined && config.trustedOrigins.includes(origin)) return null;
  if (origin !== undefined) {
    // Sandboxed frames, data: URLs and cross-origin redirects send "null": never a page of ours.
    if (origin.trim().toLowerCase() === "null")
      return { reason: "origin_null", expected: NO_ORIGINS };
    const own = expectedOf(request, secure);
    if (!own.includes(origin))
      return { reason: "origin_mismatch", received: quoted(origin), expected: own };
  }
  const site = request.header("sec-fetch-site");
  if (site !== undefined && CROSS_SITE.test(site))
    return { reason: "cross_site", expected: NO_ORIGINS };
  if (origin !== undefined || site !== undefined) return null;
  // Neither header (an old browser, or one that strips them): Referer is the last witness. A
  // missing one proves nothing (privacy settings drop it); the token still decides.
  const referer = request.header("referer");
  if (referer === undefined) return null;
  const own = expectedOf(request, secure);
  let from: string;
  try {
    const url = new URL(referer);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError("not a page");
    from = url.origin;
  } catch {
    return {
      reason: "referer_mismatch",
      received: "a Referer that is not an http(s) URL",
      expected: own,
    };
  }
  if (own.includes(from) || config.trustedOrigins.includes(from)) return null;
  // Only the Referer's origin is quoted: its path or query may hold anything.
  return { reason: "referer_mismatch", received: `Referer from ${quoted(from)}`, expected: own };
}

/** What the check found wrong, or null; a promise once it has to wait for the body or the store. */
type Problem = CsrfFailureReason | OriginSeen | null;

/**
 * The check, in the order that costs least: method, exempt path and origin from the headers, then
 * the token (header, else form field), then the session's secret. Chained rather than awaited:
 * every checked request runs it, and each suspended async function costs an allocation.
 */
function findProblem(
  engine: SessionEngine,
  session: Session,
  request: CsrfRequest,
): Problem | Promise<Problem> {
  const config = engine.config.csrf;
  if (typeof request.method === "string" && SAFE_METHODS.has(request.method)) return null;
  if (typeof request.path === "string" && isExempt(request.path, config.exemptPaths)) return null;
  const origin = originProblem(request, config, engine.config.secure);
  if (origin !== null) return origin;
  const header = request.header(config.headerName);
  // A header that is present decides, even when empty or wrong: it is never "rescued" by the field.
  if (header !== undefined) return againstSecret(session, header);
  // `Promise.resolve` hands a promise back as it is, and takes a plain value from other readers.
  return Promise.resolve(request.formField(config.formFieldName)).then((field) => {
    if (field === undefined) return "token_missing";
    if (typeof field !== "string") return "token_not_string";
    return againstSecret(session, field);
  });
}

/** The token compared with the session's secret (one store read at most). */
function againstSecret(session: Session, token: string): Problem | Promise<Problem> {
  const bytes = tokenBytes(token);
  if (bytes === null) return "token_malformed";
  return session.get(CSRF_SECRET_KEY).then((stored) => {
    const secret = secretFrom(stored);
    if (secret === null) return "no_session";
    return matches(bytes, secret) ? null : "token_mismatch";
  });
}

/** A failure while checking: store errors go on (503); any other means the request was unreadable. */
function problemOfError(error: unknown): Problem {
  if (error instanceof StoreUnavailableError || error instanceof SessionLockTimeoutError)
    throw error;
  return error instanceof CsrfBodyError ? error.reason : "request_unreadable";
}

const PASSED: Promise<null> = Promise.resolve(null);

/** "https://a or https://b", or a word when nothing could be derived. */
function expectedText(expected: readonly string[]): string {
  return expected.length === 0 ? "no origin (the request names no host)" : expected.join(" or ");
}

function messageFor(
  reason: CsrfFailureReason,
  config: CsrfConfig,
  seen: { received?: string; expected: readonly string[] } | undefined,
): string {
  switch (reason) {
    case "no_session":
      return "no session with a CSRF secret: load the page that renders the form first (are cookies blocked?)";
    case "token_missing":
      return `CSRF token missing: send it in the ${config.headerName} header or the ${config.formFieldName} form field`;
    case "token_not_string":
      return `the ${config.formFieldName} form field must occur once, as text`;
    case "token_malformed":
      return "CSRF token is malformed";
    case "token_mismatch":
      return "CSRF token does not match this session (expired, or rotated by login or logout): reload the page";
    case "cross_site":
      return "cross-site request refused";
    case "origin_null":
      return "request with Origin: null refused";
    case "origin_mismatch":
      return `Origin ${seen?.received ?? "(unknown)"} is neither this site nor a trusted origin; expected ${expectedText(seen?.expected ?? [])}`;
    case "referer_mismatch":
      return `request without Origin refused: ${seen?.received ?? "its Referer"} is neither this site nor a trusted origin; expected ${expectedText(seen?.expected ?? [])}`;
    case "request_unreadable":
      return "request could not be read for the CSRF check";
    case "body_too_large":
    case "body_timeout":
    case "body_unreadable":
      return `form body could not be checked for a CSRF token: send the token in the ${config.headerName} header`;
  }
}

const PAGE = (message: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>403 Forbidden</title></head><body><h1>Forbidden</h1><p>This form was not accepted: it has expired or it was not sent from this site. Go back, reload the page and try again.</p><p><small>${escapeAttribute(message)}</small></p></body></html>`;

/**
 * The 403 response for `reason`, shaped for the caller:
 * - `HX-Request: true` (HTMX): an `HX-Trigger` event {@link CSRF_FAILED_EVENT} with `{ reason }` as
 *   detail, and `HX-Reswap: none` so nothing on the page is replaced (htmx 4 swaps 4xx by default);
 * - `Accept` with `text/html` (a plain form post): a short HTML page;
 * - anyone else: JSON `{"error":"csrf_validation_failed","message":…}`.
 *
 * `seen` (origin and Referer rejections) names what was received and the origins expected.
 */
export function csrfRejection(
  request: Pick<CsrfRequest, "header">,
  reason: CsrfFailureReason,
  config: CsrfConfig,
  seen?: { received?: string; expected: readonly string[] },
): CsrfRejection {
  const message = messageFor(reason, config, seen);
  const base = { "cache-control": "no-store" };
  let hx: string | undefined;
  let accept: string | undefined;
  try {
    hx = request.header("hx-request");
    accept = request.header("accept");
  } catch {
    // A broken header accessor still gets the JSON answer.
  }
  if (hx?.trim().toLowerCase() === "true") {
    return {
      status: 403,
      headers: {
        ...base,
        "content-type": "text/plain; charset=utf-8",
        "hx-trigger": JSON.stringify({ [CSRF_FAILED_EVENT]: { reason } }),
        "hx-reswap": "none",
      },
      body: message,
      reason,
    };
  }
  if (accept?.toLowerCase().includes("text/html")) {
    return {
      status: 403,
      headers: { ...base, "content-type": "text/html; charset=utf-8" },
      body: PAGE(message),
      reason,
    };
  }
  return {
    status: 403,
    headers: { ...base, "content-type": "application/json; charset=utf-8" },
    body: JSON.stringify({ error: "csrf_validation_failed", message }),
    reason,
  };
}

/**
 * True when `verifyCsrf` has anything to check for a request with `method`: CSRF is enabled and
 * the method is not GET, HEAD or OPTIONS. Adapters ask first, so safe requests (most of them) pay
 * nothing for building a {@link CsrfRequest}.
 */
export function csrfApplies(engine: SessionEngine, method: string): boolean {
  return engine.config.csrf.enabled && !SAFE_METHODS.has(method);
}

/**
 * Check one request. Returns null when it may proceed, or the 403 to send instead: then the handler
 * must not run and the session must not be committed. The check only reads (at most one store read
 * to find the secret), so a rejected request changes nothing. Never throws on any request input;
 * store failures propagate as {@link StoreUnavailableError} / {@link SessionLockTimeoutError}, which
 * adapters answer with 503.
 */
export function verifyCsrf(
  engine: SessionEngine,
  session: Session,
  request: CsrfRequest,
): Promise<CsrfRejection | null> {
  if (!engine.config.csrf.enabled) return PASSED;
  let found: Problem | Promise<Problem>;
  try {
    found = findProblem(engine, session, request);
  } catch (error) {
    found = Promise.reject(error);
  }
  if (found === null) return PASSED;
  const rejected = (reason: Problem) =>
    reason === null ? null : rejectionOf(engine, request, reason);
  return Promise.resolve(found).then(rejected, (error: unknown) => rejected(problemOfError(error)));
}

/** The 403 for `reason`, published and logged (at most once per burst per reason). */
function rejectionOf(
  engine: SessionEngine,
  request: CsrfRequest,
  reason: CsrfFailureReason | OriginSeen,
): CsrfRejection {
  const config = engine.config.csrf;
  const why = typeof reason === "string" ? reason : reason.reason;
  const method = typeof request.method === "string" ? request.method.slice(0, 16) : "?";
  const path = typeof request.path === "string" ? request.path.slice(0, 200) : "?";
  publish(EVENTS.csrfRejected, () => ({ reason: why, method, path }));
  engine.logBurst("warn", `csrf:${why}`, `CSRF check refused ${method} ${path}: ${why}`);
  return typeof reason === "string"
    ? csrfRejection(request, reason, config)
    : csrfRejection(request, reason.reason, config, reason);
}
