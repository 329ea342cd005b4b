import type {
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from "fastify";
import fp from "fastify-plugin";
import type { SessionEngine } from "../core/engine.js";
import {
  errorResponseFor,
  MissingMiddlewareError,
  type SessionLockTimeoutError,
  type StoreUnavailableError,
} from "../core/errors.js";
import { Session } from "../core/session.js";
import { type CloakroomOptions, engineFrom } from "../setup.js";
import type { HeaderTarget } from "./web.js";
import { writeCommitHeaders } from "./web.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's session, set by the cloakroom plugin. */
    session: Session;
  }
}

/**
 * Options of the Fastify plugin: cloakroom options, or `{ engine }` to share one engine between
 * apps.
 */
export type CloakroomFastifyOptions = CloakroomOptions & { engine?: SessionEngine };

const CLOSED = Symbol("cloakroom.closed");
const FAILURE = Symbol("cloakroom.failure");

interface RequestState {
  [CLOSED]?: boolean;
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

const plugin: FastifyPluginCallback<CloakroomFastifyOptions> = (fastify, options, done) => {
  const { engine: given, ...rest } = options;
  // Fastify's own registration options are not cloakroom configuration.
  const { prefix, logLevel, logSerializers, ...config } = rest as CloakroomOptions &
    Record<"prefix" | "logLevel" | "logSerializers", unknown>;
  let engine: SessionEngine;
  try {
    engine = given ?? engineFrom(config);
  } catch (error) {
    done(error as Error);
    return;
  }

  fastify.decorateRequest("session", null as unknown as Session);

  fastify.addHook("onRequest", (request, _reply, next) => {
    request.session = engine.open(request.headers.cookie);
    next();
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
      writeCommitHeaders(
        replyHeaders(reply),
        await engine.close(request.session, reply.statusCode),
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
      engine.close(request.session, 500).catch(() => {});
    }
    next();
  });

  done();
};

/**
 * The Fastify 5 plugin: opens the session lazily on every request of the scope it is registered
 * in (and its children: it is wrapped with `fastify-plugin`) and saves it in `onSend`, before the
 * response leaves, streamed replies included. A 5xx reply saves nothing; a store failure at that
 * point turns the reply into a 503 with `Retry-After`. A {@link StoreUnavailableError} or
 * {@link SessionLockTimeoutError} thrown by a handler becomes a 503 with `Retry-After` (the body is
 * your error handler's). Cookies are read from the header directly; `@fastify/cookie` is not
 * needed and can be registered beside it.
 *
 * @example
 * ```ts
 * import Fastify from "fastify";
 * import { cloakroom } from "cloakroom/fastify";
 * const app = Fastify();
 * await app.register(cloakroom, { configFile: "config.toml" });
 * app.post("/login", async (request, reply) => {
 *   await request.session.insert("user_id", "alice");
 *   await request.session.cycleId();
 *   return reply.redirect("/dashboard", 303);
 * });
 * ```
 */
export const cloakroom = fp(plugin, { fastify: "5.x", name: "cloakroom" });
export default cloakroom;

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

/** The request's session; throws a clear error when the plugin does not cover this route. */
export function getSession(request: FastifyRequest): Session {
  const current = (request as { session?: unknown }).session;
  if (!(current instanceof Session)) {
    throw new MissingMiddlewareError(
      "Fastify",
      'await app.register(cloakroom) from "cloakroom/fastify", in this route\'s scope or a parent of it',
    );
  }
  return current;
}
