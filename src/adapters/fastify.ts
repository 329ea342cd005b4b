import type {
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from "fastify";
import fp from "fastify-plugin";
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
import { nodeFormField, pathOf, requestHeader } from "./node-http.js";
import type { HeaderTarget } from "./web.js";
import { writeCommitHeaders } from "./web.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's session, set by the coatcheck plugin. */
    session: Session;
  }
}

/**
 * Options of the Fastify plugin: coatcheck options, or `{ engine }` to share one engine between
 * apps.
 */
export type CoatcheckFastifyOptions = CoatcheckOptions & { engine?: SessionEngine };

const CLOSED = Symbol("coatcheck.closed");
const FAILURE = Symbol("coatcheck.failure");
const DISCARD = Symbol("coatcheck.discard");

interface RequestState {
  [CLOSED]?: boolean;
  /** Rejected before the handler (CSRF, or the store failed during the check): save nothing. */
  [DISCARD]?: boolean;
  [FAILURE]?: ReturnType<typeof errorResponseFor>;
}

function replyHeaders(reply: FastifyReply): HeaderTarget {
  return {
    get: (name) => {
      const value = reply.getHeader(name);
      if (value === undefined) return undefined;
      return Array.isArray(value) ? value.join(", ") : String(value);
    },
    set: (name, value) => {
      reply.header(name, value);
    },
    // Fastify appends to an existing Set-Cookie by itself; no other header is appended.
    append: (name, value) => {
      reply.header(name, value);
    },
  };
}

const plugin: FastifyPluginCallback<CoatcheckFastifyOptions> = (fastify, options, done) => {
  const { engine: given, ...rest } = options;
  // Fastify's own registration options are not coatcheck configuration.
  const { prefix, logLevel, logSerializers, ...config } = rest as CoatcheckOptions &
    Record<"prefix" | "logLevel" | "logSerializers", unknown>;
  let engine: SessionEngine;
  try {
    engine = given ?? engineFrom(config);
  } catch (error) {
    done(error as Error);
    return;
  }

  fastify.decorateRequest("session", null as unknown as Session);
  if (!given) fastify.addHook("onClose", () => engine.close());

  fastify.addHook("onRequest", (request, _reply, next) => {
    request.session = engine.open(request.headers.cookie);
    next();
  });

  // After body parsing, so a form parsed by @fastify/formbody (or @fastify/multipart with
  // attachFieldsToBody) is read from request.body; an unparsed multipart stream is copied and put back.
  fastify.addHook("preHandler", async (request, reply) => {
    if (!csrfApplies(engine, request.method)) return;
    let answer: { status: number; headers: Record<string, string>; body: string } | null;
    try {
      answer = await verifyCsrf(engine, request.session, csrfRequestOf(request));
    } catch (error) {
      answer = errorResponseFor(error);
      if (answer === null) throw error;
    }
    if (answer === null) return;
    (request as RequestState)[DISCARD] = true;
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });

  fastify.addHook("onError", (request, _reply, error, next) => {
    const failure = errorResponseFor(error);
    if (failure) (request as RequestState)[FAILURE] = failure;
    next();
  });

  fastify.addHook("onSend", async (request, reply, payload) => {
    const state = request as RequestState;
    const failure = state[FAILURE];
    // The error handler (the app's or Fastify's) chose the body; the 503's headers are ours.
    if (failure && reply.statusCode === failure.status) {
      for (const [name, value] of Object.entries(failure.headers))
        if (name !== "content-type") reply.header(name, value);
    }
    if (state[CLOSED]) return payload;
    state[CLOSED] = true;
    try {
      if (state[DISCARD]) {
        // Release a lock, save nothing: the 5xx row of the decision table.
        await engine.commit(request.session, 500);
        return payload;
      }
      writeCommitHeaders(
        replyHeaders(reply),
        await engine.commit(request.session, reply.statusCode),
      );
      return payload;
    } catch (error) {
      const unavailable = errorResponseFor(error);
      if (!unavailable) throw error;
      const stream = payload as { destroy?: () => void } | null;
      if (typeof stream?.destroy === "function") stream.destroy();
      reply.removeHeader("content-length");
      reply.code(unavailable.status).headers(unavailable.headers);
      return unavailable.body;
    }
  });

  // A hijacked reply (reply.hijack(), writes to reply.raw) skips onSend: release the lock and save
  // nothing, as for a 5xx.
  fastify.addHook("onResponse", (request, _reply, next) => {
    const state = request as RequestState;
    if (!state[CLOSED] && request.session instanceof Session) {
      state[CLOSED] = true;
      engine.commit(request.session, 500).catch(() => {});
    }
    next();
  });

  done();
};

/** The request as the CSRF check sees it; the path is the pathname, without the query. */
function csrfRequestOf(request: FastifyRequest): CsrfRequest {
  return {
    method: request.method,
    path: pathOf(request.url),
    header: (name) => requestHeader(request.raw, name),
    formField: nodeFormField(request.raw, () => request.body),
  };
}

/**
 * The Fastify 5 plugin: opens the session lazily on every request of the scope it is registered
 * in (and its children: it is wrapped with `fastify-plugin`) and saves it in `onSend`, before the
 * response leaves, streamed replies included. A 5xx reply saves nothing; a store failure at that
 * point turns the reply into a 503 with `Retry-After`. A {@link StoreUnavailableError} or
 * {@link SessionLockTimeoutError} thrown by a handler becomes a 503 with `Retry-After` (the body is
 * your error handler's). Cookies are read from the header directly; `@fastify/cookie` is not
 * needed and can be registered beside it.
 *
 * With `[session.csrf] enabled` (the default) a `preHandler` hook checks the CSRF token of every
 * request but GET, HEAD and OPTIONS; a failed check answers 403, the handler does not run and
 * nothing is saved. The form field is read from `@fastify/formbody` or `@fastify/multipart` bodies.
 *
 * @example
 * ```ts
 * import Fastify from "fastify";
 * import { coatcheck } from "coatcheck/fastify";
 * const app = Fastify();
 * await app.register(coatcheck, { configFile: "config.toml" });
 * app.post("/login", async (request, reply) => {
 *   await request.session.insert("user_id", "alice");
 *   await request.session.cycleId();
 *   return reply.redirect("/dashboard", 303);
 * });
 * ```
 */
export const coatcheck = fp(plugin, { fastify: "5.x", name: "coatcheck" });
export default coatcheck;

/**
 * Route-level `onRequest` hook: serialise requests on one session (read-modify-write routes such as
 * a cart): `app.post("/cart", { onRequest: sessionLock() }, handler)`. A lock that cannot be taken
 * within `lock_timeout_ms` answers 503 with `Retry-After`.
 */
export function sessionLock(): onRequestAsyncHookHandler {
  return async (request) => {
    await getSession(request).lock();
  };
}

/**
 * The request's {@link CsrfToken}, for rendering: `(await getCsrfToken(request)).asHiddenField()`.
 * Each render is masked afresh; the session is created only when a token is rendered.
 */
export function getCsrfToken(request: FastifyRequest): Promise<CsrfToken> {
  return CsrfToken.from(getSession(request));
}

/** The request's session; throws a clear error when the plugin does not cover this route. */
export function getSession(request: FastifyRequest): Session {
  const current = (request as { session?: unknown }).session;
  if (!(current instanceof Session)) {
    throw new MissingMiddlewareError(
      "Fastify",
      'await app.register(coatcheck) from "coatcheck/fastify", in this route\'s scope or a parent of it',
    );
  }
  return current;
}

/**
 * Route-level `onRequest` hook for protected routes: signed-out users never reach the
 * handler. A page navigation is redirected (303) to `loginUrl` (default `/login`), an htmx request
 * gets 401 with `HX-Redirect`, an API call (JSON `Accept`) gets 401 JSON.
 *
 * @example
 * ```ts
 * app.get("/dashboard", { onRequest: requireAuth() }, async (request) => {
 *   const auth = await AuthSession.open(request.session);
 *   return `Welcome, ${escapeHtml(auth.userId() ?? "")}!`;
 * });
 * ```
 */
export function requireAuth(options?: GuardOptions): onRequestAsyncHookHandler {
  return guardHook(accessGuard(options));
}

/**
 * Route-level `onRequest` hook for role-based access: like {@link requireAuth}, and a
 * signed-in user without the role gets 403. With several roles any one is enough; pass
 * `{ all: true }` to require every one.
 *
 * @example
 * ```ts
 * app.get("/admin", { onRequest: requireRole("admin") }, async () => "Admin dashboard");
 * ```
 */
export function requireRole(
  roles: string | readonly string[],
  options?: GuardOptions & { all?: boolean },
): onRequestAsyncHookHandler {
  return guardHook(accessGuard({ ...options, roles }));
}

function guardHook(guard: AccessGuard): onRequestAsyncHookHandler {
  return async (request, reply) => {
    const hx = request.headers["hx-request"];
    const denied = await guard(getSession(request), {
      method: request.method,
      accept: request.headers.accept,
      hxRequest: Array.isArray(hx) ? hx[0] : hx,
    });
    if (denied !== null) return reply.code(denied.status).headers(denied.headers).send(denied.body);
  };
}
