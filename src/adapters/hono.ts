import type { Context, MiddlewareHandler } from "hono";
import type { SessionEngine } from "../core/engine.js";
import { errorResponseFor, MissingMiddlewareError } from "../core/errors.js";
import type { Session } from "../core/session.js";
import { type CloakroomOptions, engineFrom } from "../setup.js";
import { applyCommit } from "./web.js";

declare module "hono" {
  interface ContextVariableMap {
    /** The request's session, set by cloakroom's `session()` middleware. */
    session: Session;
  }
}

/**
 * Hono middleware: opens the session lazily, and saves it before the response leaves. Store
 * failures become 503 with `Retry-After`.
 *
 * @example
 * ```ts
 * import { session, getSession } from "cloakroom/hono";
 * app.use(session({ configFile: "config.toml" }));
 * app.post("/login", async (c) => {
 *   const s = getSession(c);
 *   await s.insert("user_id", "alice");
 *   await s.cycleId();
 *   return c.redirect("/dashboard", 303);
 * });
 * ```
 */
export function session(options?: CloakroomOptions | SessionEngine): MiddlewareHandler {
  const engine = engineFrom(options);
  return async (c, next) => {
    const current = engine.open(c.req.header("cookie"));
    c.set("session", current);
    await next();
    const failure = c.error ? errorResponseFor(c.error) : null;
    if (failure)
      c.res = new Response(failure.body, { status: failure.status, headers: failure.headers });
    try {
      c.res = applyCommit(c.res, await engine.close(current, c.res.status));
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
      'app.use(session()) from "cloakroom/hono", before the routes that use it',
    );
  }
  return current;
}
