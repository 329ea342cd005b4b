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

/** Status and headers an adapter should answer with for an error that escaped a handler. */
export function errorResponseFor(
  error: unknown,
): { status: number; headers: Record<string, string>; body: string } | null {
  if (error instanceof StoreUnavailableError || error instanceof SessionLockTimeoutError) {
    return {
      status: 503,
      headers: {
        "retry-after": String(error.retryAfter),
        "content-type": "application/json; charset=utf-8",
        "cache-control": "no-store",
      },
      body: JSON.stringify({
        error: error.code === "E_SESSION_LOCKED" ? "session_locked" : "session_store_unavailable",
        message: error.message,
      }),
    };
  }
  return null;
}
