import type { Context, MiddlewareHandler, Next } from "hono";
import { CsrfToken } from "../core/csrf.js";
import type { SessionEngine } from "../core/engine.js";
import { type CoatcheckResponse, MissingMiddlewareError } from "../core/errors.js";
import { accessGuard, type GuardOptions } from "../core/guard.js";
import {
  type Exchange,
  exchangeOf,
  type Outcome,
  type PipelineOptions,
  RequestPipeline,
} from "../core/pipeline.js";
import type { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import { HonoRequest } from "./hono-request.js";
import { applyOutcome, toResponse } from "./web.js";

export { sessionErrors } from "./hono-errors.js";

declare module "hono" {
  interface ContextVariableMap {
    /** The request's session, set by coatcheck's `session()` middleware. */
    session: Session;
  }
}

/**
 * Hono middleware: opens the session lazily, and saves it before the response leaves. Store
 * failures become 503 with `Retry-After`. With `[session.csrf] enabled` (the default) it checks the
 * CSRF token of every request but GET, HEAD and OPTIONS before any handler runs; a failed check
 * answers 403 and saves nothing. A form body read for the check stays in Hono's body cache, so read
 * it in the handler through `c.req` (`parseBody()`, `formData()`, `text()`), not `c.req.raw`.
 *
 * @example
 * ```ts
 * import { session, getSession } from "coatcheck/hono";
 * app.use(session({ configFile: "config.toml" }));
 * app.post("/login", async (c) => {
 *   const s = getSession(c);
 *   await s.insert("user_id", "alice");
 *   await s.cycleId();
 *   return c.redirect("/dashboard", 303);
 * });
 * ```
 */
export function session(
  options?: CoatcheckOptions | SessionEngine,
  responses?: PipelineOptions,
): MiddlewareHandler {
  const pipeline = new RequestPipeline(engineFrom(options), responses);
  // Not an async function: a suspended one costs every request about a kilobyte more than `then`.
  return (c, next) => {
    const exchange = pipeline.begin(new HonoRequest(c));
    c.set("session", exchange.session);
    if (exchange.checks) return checked(c, next, exchange);
    return next().then(() => after(c, exchange));
  };
}

function checked(c: Context, next: Next, exchange: Exchange): Promise<Response | undefined> {
  return exchange
    .check()
    .then((refused) =>
      refused !== null
        ? finish(c, exchange, toResponse(refused))
        : next().then(() => after(c, exchange)),
    );
}

function after(c: Context, exchange: Exchange): Response | Promise<Response> | undefined {
  if (c.error) exchange.failure(c.error);
  return exchange.finishIdle() ? undefined : finish(c, exchange, c.res);
}

function finish(c: Context, exchange: Exchange, response: Response): Response | Promise<Response> {
  const ended = exchange.end(response.status, (name) => response.headers.get(name) ?? undefined);
  // A commit without store work ends at once: no promise, no turn of the microtask queue.
  if (!(ended instanceof Promise)) return answer(c, response, ended);
  return ended.then((outcome) => answer(c, response, outcome));
}

/** The response with the outcome applied, made the context's response. */
function answer(c: Context, response: Response, outcome: Outcome): Response {
  const out = applyOutcome(response, outcome);
  if (out !== c.res) {
    // Hono's `res` setter merges the previous response's headers into the new one; clear it.
    c.res = undefined;
    c.res = out;
  }
  return out;
}

/**
 * The request's {@link CsrfToken}, for rendering: `(await getCsrfToken(c)).asHiddenField()`. Each
 * render is masked afresh; the session is created only when a token is rendered.
 */
export function getCsrfToken(c: Context): Promise<CsrfToken> {
  return CsrfToken.from(getSession(c));
}

/** The request's session; throws a clear error when `session()` does not cover this route. */
export function getSession(c: Context): Session {
  const current = c.get("session") as Session | undefined;
  if (current === undefined) {
    throw new MissingMiddlewareError(
      "Hono",
      'app.use(session()) from "coatcheck/hono", before the routes that use it',
    );
  }
  return current;
}

/** Run one pipeline step on the route; its response, if any, answers the request instead. */
function step(run: (exchange: Exchange) => Promise<CoatcheckResponse | null>): MiddlewareHandler {
  return async (c, next) => {
    const refused = await run(exchangeOf(getSession(c)) as Exchange);
    if (refused !== null) return toResponse(refused);
    await next();
  };
}

/** Route middleware: serialise requests on one session (a cart); 503 after `lock_timeout_ms`. */
export function sessionLock(): MiddlewareHandler {
  return step((exchange) => exchange.lock());
}

/**
 * Route middleware: signed-out users never reach the handler; a page navigation gets 303 to
 * `loginUrl` (default `/login`), htmx 401 with `HX-Redirect`, an API call 401 JSON.
 */
export function requireAuth(options?: GuardOptions): MiddlewareHandler {
  const guard = accessGuard(options);
  return step((exchange) => exchange.guard(guard));
}

/** Like {@link requireAuth}, and 403 without one of `roles` (every one with `{ all: true }`). */
export function requireRole(
  roles: string | readonly string[],
  options?: GuardOptions & { all?: boolean },
): MiddlewareHandler {
  const guard = accessGuard({ ...options, roles });
  return step((exchange) => exchange.guard(guard));
}
