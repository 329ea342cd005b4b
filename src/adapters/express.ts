import type { ErrorRequestHandler, Request, RequestHandler, Response } from "express";
import { CsrfToken, csrfApplies } from "../core/csrf.js";
import type { SessionEngine } from "../core/engine.js";
import type {
  CoatcheckResponse,
  SessionLockTimeoutError,
  StoreUnavailableError,
} from "../core/errors.js";
import { accessGuard, type GuardOptions } from "../core/guard.js";
import { type Exchange, type PipelineOptions, RequestPipeline } from "../core/pipeline.js";
import type { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import { attach, MISSING, type Opener, use } from "./express-request.js";
import { nodeRequest } from "./node-request.js";

declare global {
  // Express types its request through this global namespace; augmenting it is the only way in.
  namespace Express {
    interface Request {
      session: Session; // set by coatcheck's session() middleware
    }
  }
}

/**
 * Express (4 and 5) middleware: opens the session lazily and saves it before the response's first
 * byte leaves, however it is sent (`send`, `json`, `redirect`, `end`, streamed or piped); a 5xx
 * saves nothing, a store failure at that point becomes a 503 with `Retry-After`. Once output has
 * started, `res.headersSent` is true, as without coatcheck. A route that never uses the session
 * pays nothing for it. With CSRF enabled (the default) every request but GET, HEAD and OPTIONS is
 * checked before the route runs (403 on failure); the form field is found whether the body parser
 * runs before or after this middleware. Add {@link sessionErrors} after your routes for store
 * outages and lock timeouts thrown by handlers.
 *
 * @example `app.use(session({ configFile: "config.toml" }))`, routes, then `app.use(sessionErrors())`
 */
export function session(
  options?: CoatcheckOptions | SessionEngine,
  responses?: PipelineOptions,
): RequestHandler {
  const pipeline = new RequestPipeline(engineFrom(options), responses);
  // `originalUrl`: `exempt_paths` mean the same whatever the middleware is mounted on.
  const open = (req: Request, method: string) =>
    pipeline.begin(
      nodeRequest(req, req.originalUrl, () => (req as { body?: unknown }).body, method),
    );
  return (req, res, next) => {
    attach(req, res, open as Opener, req.method);
    if (!csrfApplies(pipeline.engine, req.method)) {
      next();
      return;
    }
    (use(req) as Exchange).check().then((refused) => {
      if (refused === null) next();
      else send(res, refused);
    }, next);
  };
}

function send(res: Response, answer: CoatcheckResponse): void {
  res.status(answer.status).set(answer.headers).send(answer.body);
}

/** Run one pipeline step on the route; its response, if any, answers the request instead. */
function step(run: (exchange: Exchange) => Promise<CoatcheckResponse | null>): RequestHandler {
  return (req, res, next) => {
    let exchange: Exchange;
    try {
      exchange = exchangeFor(req);
    } catch (error) {
      next(error);
      return;
    }
    run(exchange).then((refused) => (refused === null ? next() : send(res, refused)), next);
  };
}

/**
 * Error middleware: answers {@link StoreUnavailableError} and {@link SessionLockTimeoutError} from
 * handlers with 503 and `Retry-After`; passes other errors on. Register it after your routes.
 */
export function sessionErrors(): ErrorRequestHandler {
  return (error, req, res, next) => {
    const failure = use(req)?.failure(error) ?? null;
    if (failure === null || res.headersSent) next(error);
    else send(res, failure);
  };
}

/** Route middleware: serialise requests on one session (a cart); 503 after `lock_timeout_ms`. */
export function sessionLock(): RequestHandler {
  return step((exchange) => exchange.lock());
}

/** The request's session; throws a clear error when `session()` does not cover this route. */
export function getSession(req: Request): Session {
  return exchangeFor(req).session;
}

function exchangeFor(req: Request): Exchange {
  const exchange = use(req);
  if (exchange === undefined) throw MISSING();
  return exchange;
}

/** The request's {@link CsrfToken}, for rendering: `(await getCsrfToken(req)).asHiddenField()`. */
export function getCsrfToken(req: Request): Promise<CsrfToken> {
  return CsrfToken.from(getSession(req));
}

/** Route middleware: signed-out users get 303 to `loginUrl` (htmx: `HX-Redirect`; API: 401). */
export function requireAuth(options?: GuardOptions): RequestHandler {
  const guard = accessGuard(options);
  return step((exchange) => exchange.guard(guard));
}

/** Like {@link requireAuth}, and 403 without one of `roles` (every one with `{ all: true }`). */
export function requireRole(
  roles: string | readonly string[],
  options?: GuardOptions & { all?: boolean },
): RequestHandler {
  const guard = accessGuard({ ...options, roles });
  return step((exchange) => exchange.guard(guard));
}
