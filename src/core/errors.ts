/**
 * The few errors coatcheck throws. Each carries a stable `code`, an actionable message and, where
 * there is one, the underlying `cause`.
 */
export class CoatcheckError extends Error {
  /** Stable machine-readable code, e.g. `E_CONFIG`. */
  readonly code: string;
  /** The HTTP status an adapter answers with when this error escapes a handler. */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** Invalid configuration. Thrown at start-up, never on a request. */
export class ConfigError extends CoatcheckError {
  /** The configuration key at fault, e.g. `session.same_site`. */
  readonly key: string;
  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super("E_CONFIG", 500, `coatcheck config: ${key}: ${message}`, options);
    this.key = key;
  }
}

/** The session store failed or timed out. Adapters answer 503 with `Retry-After`. */
export class StoreUnavailableError extends CoatcheckError {
  /** Seconds the client is told to wait before retrying. */
  readonly retryAfter: number;
  constructor(message: string, options?: { cause?: unknown; retryAfter?: number }) {
    super("E_STORE_UNAVAILABLE", 503, `coatcheck: session store unavailable: ${message}`, options);
    this.retryAfter = options?.retryAfter ?? 1;
  }
}

/** The per-session lock could not be taken within the configured wait. Adapters answer 503. */
export class SessionLockTimeoutError extends CoatcheckError {
  readonly retryAfter = 1;
  constructor(waitedMs: number) {
    super(
      "E_SESSION_LOCKED",
      503,
      `coatcheck: session is locked by another request; gave up after ${waitedMs} ms (raise lock_timeout_ms or shorten the locked handler)`,
    );
  }
}

/**
 * The session was changed after its request was committed (the response's headers were already
 * decided), e.g. from a streamed body callback or a timer. The change could reach neither the store
 * nor the cookie, so it is refused rather than dropped.
 */
export class SessionCommittedError extends CoatcheckError {
  constructor(operation: string) {
    super(
      "E_SESSION_COMMITTED",
      500,
      `coatcheck: session.${operation}() after the response was committed; the change would be lost. Await every session change before the response is sent (not in a streamed body or a later callback)`,
    );
  }
}

/**
 * A session value was refused: JSON cannot carry it unchanged (a `Map`, `NaN`, `undefined` inside
 * an object…), or it is over a configured size or depth limit. The message names the key.
 */
export class SessionValueError extends CoatcheckError {
  /** The session key of the refused value. */
  readonly key: string;
  constructor(key: string, message: string) {
    super("E_SESSION_VALUE", 500, `coatcheck: session value for "${key}" ${message}`);
    this.key = key;
  }
}

/**
 * `login()` was refused: the user already has `max_sessions_per_user` live sessions and
 * `session_limit_action = "refuse"`. Nobody was signed in and the session is unchanged. Catch it
 * on the sign-in route and tell the user to sign out elsewhere first (unhandled, it answers 403).
 */
export class SessionLimitError extends CoatcheckError {
  /** The configured limit. */
  readonly limit: number;
  constructor(limit: number) {
    super(
      "E_SESSION_LIMIT",
      403,
      `coatcheck: this user already has ${limit} live sessions (max_sessions_per_user); sign out of another one first`,
    );
    this.limit = limit;
  }
}

/**
 * The store cannot serve the per-user session index (listing and revoking a user's sessions, the
 * per-user limit). The memory, Redis and PostgreSQL stores can; a custom store needs
 * {@link UserIndexStore}.
 */
export class IndexUnsupportedError extends CoatcheckError {
  constructor() {
    super(
      "E_INDEX_UNSUPPORTED",
      500,
      "coatcheck: this session store keeps no per-user index (indexPut/indexRemove/indexList/peek), so a user's sessions cannot be listed, revoked or limited; use the memory, Redis or PostgreSQL store, or implement UserIndexStore",
    );
  }
}

/** A handler asked for the session on a route that the session middleware does not cover. */
export class MissingMiddlewareError extends CoatcheckError {
  constructor(framework: string, hint: string) {
    super(
      "E_SESSION_NOT_READY",
      500,
      `coatcheck: session not found on this request. Register the coatcheck ${framework} middleware before this route: ${hint}`,
    );
  }
}

// Responses coatcheck writes itself (403, 401, 503). Every one is described as a Refusal first,
// then shaped for the caller in one place, so the three kinds of answer look alike everywhere.

/** A response coatcheck writes: status, headers and body. Adapters send it as it is. */
export interface CoatcheckResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Why coatcheck answers a request itself, before the answer is shaped for the caller. */
export interface Refusal {
  status: number;
  /** Stable code, the `error` field of the JSON answer: `csrf_validation_failed`, `unauthenticated`… */
  error: string;
  /** One sentence for the user (HTML, htmx) or the developer (JSON). */
  message: string;
  /** Short heading of the HTML page. */
  title: string;
  /** What a person can do about it, shown on the HTML page above the message. */
  hint?: string;
  /** More fields of the JSON answer, and the detail of the htmx event. */
  detail?: Record<string, string | number>;
  /** A page navigation is sent here (303) instead; htmx gets `HX-Redirect`. */
  redirect?: string;
  /** htmx event fired through `HX-Trigger`, with {@link Refusal.detail}. */
  event?: string;
  /** Seconds for `Retry-After`. */
  retryAfter?: number;
}

/** How a caller is answered: a browser page load, an htmx request, or a program (JSON). */
export type RequestKind = "page" | "htmx" | "api";

/**
 * htmx first (`HX-Request: true`); then a browser, whose `Accept` names HTML on every navigation
 * and form post; everyone else (`application/json`, `*\/*`, no `Accept`) is a program and gets JSON.
 */
export function requestKind(
  hxRequest: string | null | undefined,
  accept: string | null | undefined,
): RequestKind {
  if (hxRequest?.trim().toLowerCase() === "true") return "htmx";
  return /text\/html|application\/xhtml\+xml/i.test(accept ?? "") ? "page" : "api";
}

/** The app's hook for the body of the responses coatcheck writes; `undefined` keeps coatcheck's. */
export type RenderRefusal = (
  refusal: Refusal,
  kind: RequestKind,
) => { body: string; contentType: string } | undefined;

/** Numeric character references for the five characters that matter in HTML text and attributes. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(refusal: Refusal): string {
  const title = escapeHtml(refusal.title);
  const hint = refusal.hint === undefined ? "" : `<p>${escapeHtml(refusal.hint)}</p>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${refusal.status} ${title}</title></head><body><h1>${title}</h1>${hint}<p><small>${escapeHtml(refusal.message)}</small></p></body></html>`;
}

const TEXT = "text/plain; charset=utf-8";

/**
 * Shape a refusal for the caller. Every answer is `no-store` and varies on the headers that chose
 * its shape. A page gets a short HTML page (or a 303 to `redirect`); htmx gets the message as text
 * with `HX-Reswap: none` (nothing on the page is replaced) and, where there is one, `HX-Redirect` or
 * an `HX-Trigger` event; a program gets JSON `{ error, message, …detail }`.
 */
export function negotiate(
  refusal: Refusal,
  kind: RequestKind,
  render?: RenderRefusal,
): CoatcheckResponse {
  const headers: Record<string, string> = {
    "cache-control": "no-store",
    vary: "Accept, HX-Request",
  };
  if (refusal.retryAfter !== undefined) headers["retry-after"] = String(refusal.retryAfter);
  let status = refusal.status;
  let body: string;
  let contentType: string | undefined;
  if (kind === "page" && refusal.redirect !== undefined) {
    status = 303;
    headers.location = refusal.redirect;
    body = "";
  } else if (kind === "htmx") {
    if (refusal.redirect !== undefined) headers["hx-redirect"] = refusal.redirect;
    else headers["hx-reswap"] = "none";
    if (refusal.event !== undefined)
      headers["hx-trigger"] = JSON.stringify({ [refusal.event]: refusal.detail ?? {} });
    body = refusal.message;
    contentType = TEXT;
  } else if (kind === "page") {
    body = page(refusal);
    contentType = "text/html; charset=utf-8";
  } else {
    body = JSON.stringify({
      error: refusal.error,
      message: refusal.message,
      ...refusal.detail,
      ...(refusal.redirect !== undefined ? { login: refusal.redirect } : {}),
    });
    contentType = "application/json; charset=utf-8";
  }
  const custom = render?.(refusal, kind);
  if (custom !== undefined) {
    body = custom.body;
    contentType = custom.contentType;
  }
  if (contentType !== undefined) headers["content-type"] = contentType;
  return { status, headers, body };
}

/** The refusal for an error that escaped a handler: store outage or lock timeout (503), else null. */
export function refusalFor(error: unknown): Refusal | null {
  if (error instanceof StoreUnavailableError || error instanceof SessionLockTimeoutError) {
    const locked = error instanceof SessionLockTimeoutError;
    return {
      status: 503,
      error: locked ? "session_locked" : "session_store_unavailable",
      title: "Service Unavailable",
      message: locked
        ? "This session is busy with another request. Try again in a moment."
        : "Sessions are unavailable right now. Try again in a moment.",
      detail: { retryAfter: error.retryAfter },
      event: "coatcheck:unavailable",
      retryAfter: error.retryAfter,
    };
  }
  return null;
}

/**
 * The response for an error that escaped a handler ({@link StoreUnavailableError},
 * {@link SessionLockTimeoutError}: 503 with `Retry-After`), shaped for `kind`; null for any other
 * error.
 */
export function errorResponseFor(
  error: unknown,
  kind: RequestKind = "api",
  render?: RenderRefusal,
): CoatcheckResponse | null {
  const refusal = refusalFor(error);
  return refusal === null ? null : negotiate(refusal, kind, render);
}
