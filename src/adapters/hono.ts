import type { Context, MiddlewareHandler } from "hono";
import { type CsrfRequest, CsrfToken, csrfApplies, verifyCsrf } from "../core/csrf.js";
import { BODY_CONSUMED, CsrfBodyError, webFormField } from "../core/csrf-form.js";
import type { SessionEngine } from "../core/engine.js";
import { errorResponseFor, MissingMiddlewareError } from "../core/errors.js";
import { type AccessGuard, accessGuard, type GuardOptions } from "../core/guard.js";
import type { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import { applyCommit } from "./web.js";

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
 * answers 403 and saves nothing. Register it before `methodOverride` and body-reading middleware.
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
export function session(options?: CoatcheckOptions | SessionEngine): MiddlewareHandler {
  const engine = engineFrom(options);
  return async (c, next) => {
    const current = engine.open(c.req.header("cookie"));
    c.set("session", current);
    if (csrfApplies(engine, c.req.method)) {
      const rejected = await csrfGate(engine, current, c);
      if (rejected) return rejected;
    }
    await next();
    const failure = c.error ? errorResponseFor(c.error) : null;
    if (failure)
      c.res = new Response(failure.body, { status: failure.status, headers: failure.headers });
    try {
      const response = applyCommit(c.res, await engine.commit(current, c.res.status));
      // Hono's `res` setter copies the whole response; assign only when applyCommit had to copy.
      if (response !== c.res) c.res = response;
    } catch (error) {
      const unavailable = errorResponseFor(error);
      if (!unavailable) throw error;
      c.res = new Response(unavailable.body, {
        status: unavailable.status,
        headers: unavailable.headers,
      });
    }
  };
}

/** The CSRF check; a response when the request must stop here (403, or 503 if the store failed). */
async function csrfGate(
  engine: SessionEngine,
  current: Session,
  c: Context,
): Promise<Response | null> {
  let rejection: Awaited<ReturnType<typeof verifyCsrf>>;
  try {
    rejection = await verifyCsrf(engine, current, csrfRequestOf(c));
  } catch (error) {
    const unavailable = errorResponseFor(error);
    if (!unavailable) throw error;
    return new Response(unavailable.body, {
      status: unavailable.status,
      headers: unavailable.headers,
    });
  }
  if (rejection === null) return null;
  return new Response(rejection.body, { status: rejection.status, headers: rejection.headers });
}

/**
 * The request as the CSRF check sees it. The form is read from a clone of the body, so
 * `c.req.parseBody()`, `c.req.formData()`, `c.req.text()` and `c.req.raw` all still work in the
 * handler.
 */
function csrfRequestOf(c: Context): CsrfRequest {
  const raw = c.req.raw;
  return {
    method: c.req.method,
    path: c.req.path,
    // `app.request()` and HTTP/2 may carry no Host header; the URL always has the authority.
    header: (name) =>
      c.req.header(name) ?? (name.toLowerCase() === "host" ? new URL(c.req.url).host : undefined),
    formField: webFormField(raw.headers, () => {
      if (!raw.bodyUsed) return raw.clone().body;
      // An earlier middleware read it through `c.req`: Hono keeps a copy, use that.
      return new ReadableStream<Uint8Array>({
        async start(controller) {
          try {
            controller.enqueue(new Uint8Array(await c.req.arrayBuffer()));
            controller.close();
          } catch {
            controller.error(new CsrfBodyError("body_unreadable", BODY_CONSUMED));
          }
        },
      });
    }),
  };
}

/**
 * The request's {@link CsrfToken}, for rendering: `(await getCsrfToken(c)).asHiddenField()`. Each
 * render is masked afresh; the session is created only when a token is rendered.
 */
export function getCsrfToken(c: Context): Promise<CsrfToken> {
  return CsrfToken.from(getSession(c));
}

/**
 * Route-level middleware: serialise requests on one session (read-modify-write routes such as a
 * cart). Place it after `session()`.
 */
export function sessionLock(): MiddlewareHandler {
  return async (c, next) => {
    try {
      await getSession(c).lock();
    } catch (error) {
      const busy = errorResponseFor(error);
      if (!busy) throw error;
      return new Response(busy.body, { status: busy.status, headers: busy.headers });
    }
    await next();
  };
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

/**
 * Route middleware for protected routes: signed-out users never reach the handler. A
 * page navigation is redirected (303) to `loginUrl` (default `/login`), an htmx request gets 401
 * with `HX-Redirect`, an API call (JSON `Accept`) gets 401 JSON. Place it after `session()`.
 *
 * @example
 * ```ts
 * app.get("/dashboard", requireAuth(), async (c) => {
 *   const auth = await AuthSession.open(getSession(c));
 *   return c.html(`Welcome, ${escapeHtml(auth.userId() ?? "")}!`);
 * });
 * ```
 */
export function requireAuth(options?: GuardOptions): MiddlewareHandler {
  return guardMiddleware(accessGuard(options));
}

/**
 * Route middleware for role-based access: like {@link requireAuth}, and a signed-in
 * user without the role gets 403. With several roles any one is enough; pass `{ all: true }` to
 * require every one.
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
  return guardMiddleware(accessGuard({ ...options, roles }));
}

function guardMiddleware(guard: AccessGuard): MiddlewareHandler {
  return async (c, next) => {
    const denied = await guard(getSession(c), {
      method: c.req.method,
      accept: c.req.header("accept"),
      hxRequest: c.req.header("hx-request"),
    });
    if (denied)
      return new Response(denied.body, { status: denied.status, headers: denied.headers });
    await next();
  };
}
