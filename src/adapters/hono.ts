import type { Context, MiddlewareHandler } from "hono";
import { CsrfToken } from "../core/csrf.js";
import type { SessionEngine } from "../core/engine.js";
import { type CoatcheckResponse, MissingMiddlewareError } from "../core/errors.js";
import { accessGuard, type GuardOptions } from "../core/guard.js";
import {
  type Exchange,
  exchangeOf,
  type PipelineOptions,
  type PipelineRequest,
  RequestPipeline,
} from "../core/pipeline.js";
import type { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import { applyOutcome, cachedFormField, toResponse } from "./web.js";

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
  return async (c, next) => {
    const exchange = pipeline.begin(requestOf(c));
    c.set("session", exchange.session);
    const refused = await exchange.check();
    if (refused !== null) return finish(c, exchange, toResponse(refused));
    await next();
    const failure = c.error ? exchange.failure(c.error) : null;
    await finish(c, exchange, failure ? toResponse(failure) : c.res);
  };
}

async function finish(c: Context, exchange: Exchange, response: Response): Promise<Response> {
  const outcome = await exchange.finish(
    response.status,
    (name) => response.headers.get(name) ?? undefined,
  );
  const out = applyOutcome(response, outcome);
  if (out !== c.res) {
    // Hono's `res` setter merges the previous response's headers into the new one; clear it first.
    c.res = undefined;
    c.res = out;
  }
  return out;
}

function requestOf(c: Context): PipelineRequest {
  return {
    method: c.req.method,
    path: c.req.path,
    header: (name) => c.req.header(name),
    // `app.request()` and HTTP/2 carry no Host header; the URL always has the authority.
    authority: () => new URL(c.req.url).host,
    formField: cachedFormField(c.req, c.req.header("content-type")),
  };
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
function step(run: (exchange: Exchange) => Promise<Response | null>): MiddlewareHandler {
  return async (c, next) => {
    const current = getSession(c);
    const refused = await run(exchangeOf(current) as Exchange);
    if (refused !== null) return refused;
    await next();
  };
}

const respond = (answer: CoatcheckResponse | null) => (answer === null ? null : toResponse(answer));

/**
 * Route-level middleware: serialise requests on one session (read-modify-write routes such as a
 * cart). Place it after `session()`.
 */
export function sessionLock(): MiddlewareHandler {
  return step(async (exchange) => respond(await exchange.lock()));
}

/**
 * Route middleware for "Protected Routes": signed-out users never reach the handler. A page
 * navigation is redirected (303) to `loginUrl` (default `/login`), an htmx request gets 401 with
 * `HX-Redirect`, an API call gets 401 JSON. Place it after `session()`.
 *
 * @example
 * ```ts
 * app.get("/dashboard", requireAuth(), async (c) => {
 *   const auth = await AuthSession.open(getSession(c));
 *   return c.html(`Welcome, ${escapeHtml(auth.userId())}!`);
 * });
 * ```
 */
export function requireAuth(options?: GuardOptions): MiddlewareHandler {
  const guard = accessGuard(options);
  return step(async (exchange) => respond(await exchange.guard(guard)));
}

/**
 * Route middleware for "Role-Based Access": like {@link requireAuth}, and a signed-in user without
 * the role gets 403. With several roles any one is enough; pass `{ all: true }` to require every one.
 *
 * @example
 * ```ts
 * app.get("/admin", requireRole("admin"), (c) => c.html("Admin dashboard"));
 * ```
 */
export function requireRole(
  roles: string | readonly string[],
  options?: GuardOptions & { all?: boolean },
): MiddlewareHandler {
  const guard = accessGuard({ ...options, roles });
  return step(async (exchange) => respond(await exchange.guard(guard)));
}
