import {
  CSRF_FAILED_EVENT,
  type CsrfRejection,
  type CsrfRequest,
  csrfApplies,
  ownOrigins,
  verifyCsrf,
} from "./csrf.js";
import type { SessionEngine } from "./engine.js";
import {
  type CoatcheckResponse,
  negotiate,
  type Refusal,
  type RenderRefusal,
  type RequestKind,
  refusalFor,
  requestKind,
} from "./errors.js";
import type { AccessGuard } from "./guard.js";
import { type CommitResult, commitNow } from "./lifecycle.js";
import { type ClientView, clientView, compileTrust } from "./proxy.js";
import { isIdle, OPENED_BY, type Session, seal, usageNow } from "./session.js";

/**
 * The one per-request pipeline every adapter runs: open the session from the Cookie header, check
 * CSRF, run guards and the lock, and, once the app has answered, commit and say what the response
 * needs. It knows no framework: an adapter hands it a {@link PipelineRequest} and turns its plain
 * answers ({@link CoatcheckResponse}, {@link Outcome}) into the framework's response.
 */

/** A request as the pipeline sees it. Adapters build one per request; nothing is read eagerly. */
export interface PipelineRequest {
  /** The method on the wire (never an override header or field). */
  method: string;
  /** The URL pathname as routed, without the query; `exempt_paths` match against it. */
  path: string;
  /** A request header by lower-case name, repeated headers joined; `undefined` when absent. */
  header(name: string): string | undefined;
  /**
   * The authority the request was addressed to when there is no `Host` header: `:authority` on
   * HTTP/2, or the URL's for frameworks that keep it there.
   */
  authority?(): string | undefined;
  /**
   * The value(s) of a form field of an urlencoded or multipart body, leaving the body to the app
   * (see `webFormField`, `formFieldFromBytes`); asked only by the CSRF check.
   */
  formField(name: string): Promise<unknown>;
  /**
   * The connection the request came on: the socket's remote address and whether it is TLS. Asked
   * at most once, only when the CSRF check or `secure = "auto"` needs it. Without it (or with an
   * unknown peer) the request counts as plain HTTP from no trusted proxy.
   */
  connection?(): { peer: string | undefined; encrypted: boolean };
}

/**
 * What the app's response needs once the session is committed: headers to set (replacing the
 * app's value) and to append (`Set-Cookie`, beside any cookie the app set). When `response` is not
 * null, the app's response is dropped and `response` is sent instead, with `append` added to it.
 */
export interface Outcome {
  response: CoatcheckResponse | null;
  set: Record<string, string>;
  append: ReadonlyArray<readonly [name: string, value: string]>;
}

/** Options of a {@link RequestPipeline}. */
export interface PipelineOptions {
  /** Replace the body of the 401/403/503 responses coatcheck writes (see {@link RenderRefusal}). */
  render?: RenderRefusal;
}

/**
 * The authority the request was addressed to: `Host`, or `:authority` on HTTP/2 (which has no
 * `Host`), or the URL's. Forwarded headers from trusted proxies and `public_origin` take its place
 * in the CSRF origin check (see {@link Exchange.clientView}).
 */
export function requestHost(request: PipelineRequest): string | undefined {
  return request.header("host") ?? request.authority?.();
}

/** Merge `tokens` into a `Vary` value; `undefined` when nothing needs to change. */
export function mergeVary(
  current: string | undefined,
  tokens: readonly string[],
): string | undefined {
  if (tokens.length === 0) return undefined;
  if (current === undefined || current.trim() === "") return joined(tokens);
  const have = (current ?? "")
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t.length > 0);
  if (have.includes("*")) return undefined;
  const missing = tokens.filter((t) => !have.includes(t.toLowerCase()));
  if (missing.length === 0) return undefined;
  return current?.trim() ? `${current}, ${missing.join(", ")}` : missing.join(", ");
}

/** `tokens` joined as a header value; the pipeline's few token lists are joined once each. */
function joined(tokens: readonly string[]): string {
  let text = JOINED.get(tokens);
  if (text === undefined) {
    text = tokens.join(", ");
    if (JOINED.size < 16) JOINED.set(tokens, text);
  }
  return text;
}
const JOINED = new Map<readonly string[], string>();

const CSRF_VARY = ["Origin", "Sec-Fetch-Site"] as const;
const COOKIE_VARY = ["Cookie"] as const;
const NO_VARY: readonly string[] = [];
const COOKIE_CSRF_VARY = ["Cookie", ...CSRF_VARY] as const;
/** The `append` of an outcome with nothing to append (shared: outcomes are only read). */
const NO_APPEND: ReadonlyArray<readonly [string, string]> = Object.freeze([]);
/** `check()`'s answer when there is nothing to check (shared: a settled promise is only read). */
const NO_REFUSAL: Promise<null> = Promise.resolve(null);
/** The outcome of a second finish: nothing to add (read, never changed). */
const NOTHING_MORE: Outcome = Object.freeze({
  response: null,
  set: Object.freeze({}),
  append: NO_APPEND,
});
const PUBLIC_POLICY = /(^|[,\s])(public|s-maxage)\b/i;
const REDIRECT = new Set([301, 302, 303, 307, 308]);
/** Routes warned about once; bounded so a crawler over many paths cannot grow it. */
const MAX_WARNED = 1000;

const INTERNAL: Refusal = {
  status: 500,
  error: "internal_error",
  title: "Internal Server Error",
  message: "The session could not be saved.",
};

/** The message of a CSRF rejection, from its JSON form (the check is asked for JSON, see below). */
function csrfRefusal(rejection: CsrfRejection): Refusal {
  let message = "CSRF check failed.";
  try {
    const parsed = JSON.parse(rejection.body) as { message?: unknown };
    if (typeof parsed.message === "string") message = parsed.message;
  } catch {
    // Keep the generic message.
  }
  return {
    status: 403,
    error: "csrf_validation_failed",
    title: "Form not accepted",
    hint: "This form has expired or was not sent from this site. Go back, reload the page and try again.",
    message,
    detail: { reason: rejection.reason },
    event: CSRF_FAILED_EVENT,
  };
}

/** The exchange a session was opened by, for route-level middleware (guards, the lock). */
export function exchangeOf(session: Session): Exchange | undefined {
  // The session's own slot, not a `WeakMap`: one entry per request made garbage collection take
  // most of an untouched request's CPU time.
  const owner = session[OPENED_BY];
  return owner instanceof Exchange ? owner : undefined;
}

/**
 * Built once per app by an adapter, around one engine. {@link RequestPipeline.begin} starts a
 * request.
 */
export class RequestPipeline {
  readonly engine: SessionEngine;
  readonly render: RenderRefusal | undefined;
  /** @internal `trust_proxy`, compiled once. */
  readonly trusted: (address: string | undefined, hop: number) => boolean;
  readonly #warned = new Set<string>();

  constructor(engine: SessionEngine, options: PipelineOptions = {}) {
    this.engine = engine;
    this.render = options.render;
    this.trusted = compileTrust(engine.config.trustProxy);
  }

  /** Start one request: the session is opened (lazily, no store call yet). */
  begin(request: PipelineRequest): Exchange {
    return new Exchange(this, request);
  }

  /** @internal One warning per route whose public cache policy covers a session-specific page. */
  warnPublic(route: string, policy: string): void {
    if (this.#warned.has(route) || this.#warned.size >= MAX_WARNED) return;
    this.#warned.add(route);
    this.engine.logger.warn(
      {},
      `${route} renders a CSRF token or flash messages under "Cache-Control: ${policy}": a shared cache may hand this page to other users; use "private" or "no-store"`,
    );
  }
}

/**
 * The CSRF check's view of a pipeline request. A class, not an object literal: a literal with a
 * getter costs about a microsecond and a half to create, every checked request.
 */
class CheckedRequest implements CsrfRequest {
  readonly method: string;
  readonly path: string;
  readonly #request: PipelineRequest;
  readonly #exchange: Exchange;
  #expected: readonly string[] | undefined;

  constructor(request: PipelineRequest, exchange: Exchange) {
    this.method = request.method;
    this.path = request.path;
    this.#request = request;
    this.#exchange = exchange;
  }

  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    if (lower === "host") return requestHost(this.#request);
    // The check shapes its answer by these two; the pipeline shapes every answer itself.
    if (lower === "accept" || lower === "hx-request") return undefined;
    return this.#request.header(lower);
  }

  formField(name: string): Promise<unknown> {
    return this.#request.formField(name);
  }

  /** Asked only when the request has an Origin or a Referer to compare. */
  get expectedOrigins(): readonly string[] {
    this.#expected ??= this.#exchange.expectedOrigins();
    return this.#expected;
  }
}

/** One request going through the pipeline. */
export class Exchange {
  /** The request's session. */
  readonly session: Session;
  readonly #pipeline: RequestPipeline;
  readonly #request: PipelineRequest;
  #kind: RequestKind | undefined;
  #view: ClientView | undefined;
  /** The CSRF check ran: the answer depends on Origin and Sec-Fetch-Site. */
  #checked = false;
  /** Refused before the handler: save nothing. */
  #refused = false;
  #finished = false;
  /** coatcheck's answer to an error that escaped the handler; it replaces the app's response. */
  #failure: CoatcheckResponse | null = null;

  /** @internal Made by {@link RequestPipeline.begin}. */
  constructor(pipeline: RequestPipeline, request: PipelineRequest) {
    this.#pipeline = pipeline;
    this.#request = request;
    this.session = pipeline.engine.open(request.header("cookie"));
    this.session[OPENED_BY] = this;
  }

  /** {@link Exchange.check} has work to do: CSRF is on and the method is not GET, HEAD or OPTIONS. */
  get checks(): boolean {
    return csrfApplies(this.#pipeline.engine, this.#request.method);
  }

  /** How the caller is answered (page, htmx, api), from `HX-Request` and `Accept`. */
  get kind(): RequestKind {
    this.#kind ??= requestKind(this.#request.header("hx-request"), this.#request.header("accept"));
    return this.#kind;
  }

  /**
   * How the client reached the first trusted proxy (or this server, without one): its protocol
   * and host. Forwarded headers count only from peers `trust_proxy` trusts. Computed once.
   */
  clientView(): ClientView {
    if (this.#view === undefined) {
      const request = this.#request;
      const connection = request.connection?.() ?? { peer: undefined, encrypted: false };
      this.#view = clientView(this.#pipeline.trusted, {
        peer: connection.peer,
        encrypted: connection.encrypted,
        host: requestHost(request),
        header: (name) => request.header(name),
      });
    }
    return this.#view;
  }

  /** @internal The origins the CSRF check expects: `public_origin`, else the client view's. */
  expectedOrigins(): readonly string[] {
    const { config } = this.#pipeline.engine;
    if (config.publicOrigin.length > 0) return config.publicOrigin;
    const view = this.clientView();
    return ownOrigins(view.host, view.protocol, config.secure);
  }

  /**
   * The CSRF check, for every method but GET, HEAD and OPTIONS. `null` to go on; otherwise the
   * response to send instead of running the handler (403, or 503 when the store failed), and
   * nothing of this request is saved.
   */
  check(): Promise<CoatcheckResponse | null> {
    const { engine } = this.#pipeline;
    const request = this.#request;
    if (!csrfApplies(engine, request.method)) return NO_REFUSAL;
    this.#checked = true;
    // Chained, not awaited: every checked request runs this (see `findProblem` in csrf.ts).
    return verifyCsrf(engine, this.session, new CheckedRequest(request, this)).then(
      (rejection) => {
        if (rejection === null) return null;
        this.#refused = true;
        return this.#respond(csrfRefusal(rejection));
      },
      (error: unknown) => {
        const unavailable = this.failure(error);
        if (unavailable === null) throw error;
        this.#refused = true;
        return unavailable;
      },
    );
  }

  /** Run an auth guard (`requireAuth`, `requireRole`): `null` to go on, or the response to send. */
  async guard(guard: AccessGuard): Promise<CoatcheckResponse | null> {
    try {
      const refusal = await guard(this.session);
      return refusal === null ? null : this.#respond(refusal);
    } catch (error) {
      const unavailable = this.failure(error);
      if (unavailable === null) throw error;
      return unavailable;
    }
  }

  /** Take the session lock (`sessionLock`): `null` once held, or the 503 to send. */
  async lock(): Promise<CoatcheckResponse | null> {
    try {
      await this.session.lock();
      return null;
    } catch (error) {
      const busy = this.failure(error);
      if (busy === null) throw error;
      return busy;
    }
  }

  /**
   * The response for an error that escaped the handler: 503 with `Retry-After` for a store outage
   * or a lock timeout; `null` for errors that are the app's. Once given, {@link Exchange.finish}
   * answers with it whatever the app's error handler sent.
   */
  failure(error: unknown): CoatcheckResponse | null {
    const refusal = refusalFor(error);
    if (refusal === null) return null;
    this.#failure = this.#respond(refusal);
    return this.#failure;
  }

  /**
   * End the request at no cost when nothing used the session and no check ran: seal it (later
   * changes throw, as after any commit) and answer true; the response then needs nothing. False
   * when {@link Exchange.finish} has work to do (or already ran).
   */
  finishIdle(): boolean {
    if (this.#finished || this.#checked || this.#failure !== null || !isIdle(this.session))
      return false;
    this.#finished = true;
    seal(this.session);
    return true;
  }

  /**
   * End the request: commit the session for a response with `status` (a 5xx saves nothing) and
   * say what that response needs. `header` reads the app's response headers, so the app's own
   * `Vary`, `Cache-Control` and htmx headers are respected. Only the first call commits; later
   * calls (a framework's fallback hook) change nothing.
   */
  finish(status: number, header: (name: string) => string | undefined): Promise<Outcome> {
    return Promise.resolve(this.end(status, header));
  }

  /**
   * {@link Exchange.finish}, with the outcome itself (no promise) when the commit has no store
   * work: a read that changed nothing, or a session nobody touched. An adapter that goes on in
   * the same turn saves the request a promise and a turn of the microtask queue. Never throws;
   * what would fail comes as a rejected promise.
   */
  end(status: number, header: (name: string) => string | undefined): Outcome | Promise<Outcome> {
    const { engine } = this.#pipeline;
    if (this.#finished) return NOTHING_MORE;
    this.#finished = true;
    let committing: CommitResult | Promise<CommitResult>;
    try {
      committing = commitNow(
        engine,
        this.session,
        this.#refused ? 500 : (this.#failure?.status ?? status),
        () => this.clientView().protocol === "https",
      );
    } catch (error) {
      return this.#uncommitted(error);
    }
    if (!(committing instanceof Promise)) {
      try {
        return this.#outcome(committing, status, header);
      } catch (error) {
        // As the promise path: an app's header reader that throws rejects the finish.
        return Promise.reject(error);
      }
    }
    // Chained, not awaited: every request whose commit has store work ends here.
    return committing.then(
      (result) => this.#outcome(result, status, header),
      (error: unknown) => this.#uncommitted(error),
    );
  }

  /** The commit failed: 503 for a store outage, else a logged 500. */
  #uncommitted(error: unknown): Outcome {
    const unavailable = this.failure(error);
    if (unavailable === null)
      this.#pipeline.engine.logger.error({ err: error }, "session commit failed");
    return { response: unavailable ?? this.#respond(INTERNAL), set: {}, append: [] };
  }

  /** What the response needs after a commit that answered `result`. */
  #outcome(
    result: CommitResult,
    status: number,
    header: (name: string) => string | undefined,
  ): Outcome {
    if (this.#failure !== null) return { response: this.#failure, set: {}, append: [] };
    const usage = usageNow(this.session);
    const set: Record<string, string> = {};
    let append: ReadonlyArray<readonly [string, string]> = NO_APPEND;
    const byCookie = usage.loaded || result.setCookie !== undefined;
    const varyOn = this.#checked
      ? byCookie
        ? COOKIE_CSRF_VARY
        : CSRF_VARY
      : byCookie
        ? COOKIE_VARY
        : NO_VARY;
    const vary = mergeVary(header("vary"), varyOn);
    if (vary !== undefined) set.vary = vary;
    if (result.setCookie !== undefined) {
      // A response that sets or clears the cookie is never stored by any cache.
      append = [["set-cookie", result.setCookie]];
      set["cache-control"] = "no-store";
    } else if (usage.tokenRendered || usage.flashConsumed) {
      const policy = header("cache-control");
      if (policy === undefined) set["cache-control"] = "no-store";
      else if (PUBLIC_POLICY.test(policy))
        this.#pipeline.warnPublic(`${this.#request.method} ${this.#request.path}`, policy);
    }
    if (usage.rotated && !this.#refused && status < 500 && this.kind === "htmx")
      return this.#afterRotation(status, header, { response: null, set, append });
    return { response: null, set, append };
  }

  /**
   * The session id and CSRF secret changed under an htmx page (login, logout): the page's token is
   * dead. htmx reloads the page on `HX-Refresh`, so it renders a new one. A redirect would be
   * followed by the browser before htmx sees any header, so it becomes `HX-Redirect` instead.
   */
  #afterRotation(
    status: number,
    header: (name: string) => string | undefined,
    outcome: Outcome,
  ): Outcome {
    if (header("hx-redirect") ?? header("hx-location") ?? header("hx-refresh")) return outcome;
    const location = header("location");
    if (REDIRECT.has(status) && location !== undefined) {
      const vary = outcome.set.vary ?? header("vary");
      return {
        ...outcome,
        response: {
          status: 200,
          headers: {
            "cache-control": "no-store",
            ...(vary !== undefined ? { vary } : {}),
            "hx-redirect": location,
          },
          body: "",
        },
        set: {},
      };
    }
    return { ...outcome, set: { ...outcome.set, "hx-refresh": "true" } };
  }

  #respond(refusal: Refusal): CoatcheckResponse {
    return negotiate(refusal, this.kind, this.#pipeline.render);
  }
}
