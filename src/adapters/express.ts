import type { ErrorRequestHandler, Request, RequestHandler } from "express";
import { type CsrfRequest, CsrfToken, csrfApplies, verifyCsrf } from "../core/csrf.js";
import type { SessionEngine } from "../core/engine.js";
import {
  errorResponseFor,
  MissingMiddlewareError,
  type SessionLockTimeoutError,
  type StoreUnavailableError,
} from "../core/errors.js";
import { type AccessGuard, accessGuard, type GuardOptions } from "../core/guard.js";
import { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import {
  holdUntilSettled,
  nodeFormField,
  nodeHeaders,
  pathOf,
  type Replacement,
  requestHeader,
} from "./node-http.js";
import { writeCommitHeaders } from "./web.js";

declare global {
  // Express types its request through this global namespace; augmenting it is the only way in.
  namespace Express {
    interface Request {
      /** The request's session, set by coatcheck's `session()` middleware. */
      session: Session;
    }
  }
}

const INTERNAL_ERROR: Replacement = {
  status: 500,
  headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" },
  body: "Internal Server Error",
};

/**
 * Express (4 and 5) middleware: opens the session lazily and saves it before the response's first
 * byte leaves, whichever way the response is sent (`res.send`, `res.json`, `res.redirect`,
 * `res.end`, streamed with `res.write` or piped). A 5xx response saves nothing. When the store
 * fails at that point, the response becomes a 503 with `Retry-After` instead.
 *
 * With `[session.csrf] enabled` (the default) it checks the CSRF token of every request but GET,
 * HEAD and OPTIONS before the route runs; a failed check answers 403 and saves nothing. The token
 * is read from the header, or from the form field of urlencoded and multipart bodies whether the
 * app's body parser (`express.urlencoded()`, multer) runs before or after this middleware.
 *
 * Errors thrown by handlers reach Express's error handlers, not this middleware: add
 * {@link sessionErrors} after your routes to answer store outages and lock timeouts with 503 and
 * `Retry-After` (Express's default handler answers 503, without `Retry-After`).
 *
 * @example
 * ```ts
 * import express from "express";
 * import { session, sessionErrors } from "coatcheck/express";
 * const app = express();
 * app.use(session({ configFile: "config.toml" }));
 * app.post("/login", async (req, res) => {
 *   await req.session.insert("user_id", "alice");
 *   await req.session.cycleId();
 *   res.redirect(303, "/dashboard");
 * });
 * app.use(sessionErrors());
 * ```
 */
export function session(options?: CoatcheckOptions | SessionEngine): RequestHandler {
  const engine = engineFrom(options);
  return (req, res, next) => {
    const current = engine.open(req.headers.cookie);
    req.session = current;
    let discard = false;
    holdUntilSettled(res, async (status) => {
      try {
        if (discard) {
          // Rejected before the handler: release a lock, save nothing (the 5xx row).
          await engine.commit(current, 500);
          return null;
        }
        writeCommitHeaders(nodeHeaders(res), await engine.commit(current, status));
        return null;
      } catch (error) {
        const unavailable = errorResponseFor(error);
        if (unavailable) return unavailable;
        engine.logger.error("[coatcheck] session commit failed", error);
        return INTERNAL_ERROR;
      }
    });
    if (!csrfApplies(engine, req.method)) {
      next();
      return;
    }
    verifyCsrf(engine, current, csrfRequestOf(req)).then(
      (rejection) => {
        if (rejection === null) {
          next();
          return;
        }
        discard = true;
        res.status(rejection.status).set(rejection.headers).send(rejection.body);
      },
      (error: unknown) => {
        const unavailable = errorResponseFor(error);
        if (unavailable === null) {
          next(error);
          return;
        }
        discard = true;
        res.status(unavailable.status).set(unavailable.headers).send(unavailable.body);
      },
    );
  };
}

/**
 * The request as the CSRF check sees it. The path is the full pathname (`originalUrl`), so
 * `exempt_paths` mean the same whatever the middleware is mounted on.
 */
function csrfRequestOf(req: Request): CsrfRequest {
  return {
    method: req.method,
    path: pathOf(req.originalUrl),
    header: (name) => requestHeader(req, name),
    formField: nodeFormField(req, () => (req as { body?: unknown }).body),
  };
}

/**
 * Express error middleware: answers {@link StoreUnavailableError} and {@link SessionLockTimeoutError}
 * from handlers with 503, `Retry-After` and a JSON body; passes every other error on. Register it
 * after your routes (and before your own error handler).
 */
export function sessionErrors(): ErrorRequestHandler {
  return (error, _req, res, next) => {
    const failure = errorResponseFor(error);
    if (failure === null || res.headersSent) {
      next(error);
      return;
    }
    res.status(failure.status).set(failure.headers).send(failure.body);
  };
}

/**
 * Route-level middleware: serialise requests on one session (read-modify-write routes such as a
 * cart). Place it after `session()` and before the handler. A lock that cannot be taken within
 * `lock_timeout_ms` reaches the error handlers as a {@link SessionLockTimeoutError} (503).
 */
export function sessionLock(): RequestHandler {
  return (req, _res, next) => {
    const current = sessionOrNext(req, next);
    if (current === null) return;
    current.lock().then(() => next(), next);
  };
}

/** The session, or null after handing the missing-middleware error to Express's `next`. */
function sessionOrNext(req: Request, next: (error: unknown) => void): Session | null {
  try {
    return getSession(req);
  } catch (error) {
    next(error);
    return null;
  }
}

/**
 * The request's {@link CsrfToken}, for rendering: `(await getCsrfToken(req)).asHiddenField()`. Each
 * render is masked afresh; the session is created only when a token is rendered.
 */
export function getCsrfToken(req: Request): Promise<CsrfToken> {
  return CsrfToken.from(getSession(req));
}

/** The request's session; throws a clear error when `session()` does not cover this route. */
export function getSession(req: Request): Session {
  const current = (req as { session?: unknown }).session;
  if (!(current instanceof Session)) {
    throw new MissingMiddlewareError(
      "Express",
      'app.use(session()) from "coatcheck/express", before the routes that use it',
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
 * app.get("/dashboard", requireAuth(), async (req, res) => {
 *   const auth = await AuthSession.open(req.session);
 *   res.send(`Welcome, ${escapeHtml(auth.userId() ?? "")}!`);
 * });
 * ```
 */
export function requireAuth(options?: GuardOptions): RequestHandler {
  return guardMiddleware(accessGuard(options));
}

/**
 * Route middleware for role-based access: like {@link requireAuth}, and a signed-in
 * user without the role gets 403. With several roles any one is enough; pass `{ all: true }` to
 * require every one.
 *
 * @example
 * ```ts
 * app.get("/admin", requireRole("admin"), (req, res) => res.send("Admin dashboard"));
 * ```
 */
export function requireRole(
  roles: string | readonly string[],
  options?: GuardOptions & { all?: boolean },
): RequestHandler {
  return guardMiddleware(accessGuard({ ...options, roles }));
}

function guardMiddleware(guard: AccessGuard): RequestHandler {
  return (req, res, next) => {
    const current = sessionOrNext(req, next);
    if (current === null) return;
    guard(current, {
      method: req.method,
      accept: req.get("accept"),
      hxRequest: req.get("hx-request"),
    }).then((denied) => {
      if (denied === null) next();
      else res.status(denied.status).set(denied.headers).send(denied.body);
    }, next);
  };
}
