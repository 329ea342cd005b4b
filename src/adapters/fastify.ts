import type {
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
  RawServerBase,
  RouteGenericInterface,
} from "fastify";
import fp from "fastify-plugin";
import { CsrfToken } from "../core/csrf.js";
import type { SessionEngine } from "../core/engine.js";
import { type CoatcheckResponse, MissingMiddlewareError } from "../core/errors.js";
import { accessGuard, type GuardOptions } from "../core/guard.js";
import { type Exchange, type PipelineOptions, RequestPipeline } from "../core/pipeline.js";
import type { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import { nodeRequest } from "./node-http.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's session, set by the coatcheck plugin. */
    readonly session: Session;
  }
}

/**
 * Options of the Fastify plugin: coatcheck options, or `{ engine }` to share one engine between
 * apps, and `render` for the body of the responses coatcheck writes.
 */
export type CoatcheckFastifyOptions = CoatcheckOptions & {
  engine?: SessionEngine;
} & PipelineOptions;

/** A request of any Fastify server, HTTP/1.1 or HTTP/2. */
type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>;

const exchanges = new WeakMap<AnyRequest, Exchange>();
const failures = new WeakMap<FastifyRequest, CoatcheckResponse>();

function exchangeFor(request: AnyRequest): Exchange {
  const exchange = exchanges.get(request);
  if (exchange === undefined) {
    throw new MissingMiddlewareError(
      "Fastify",
      'await app.register(coatcheck) from "coatcheck/fastify", in this route\'s scope or a parent of it',
    );
  }
  return exchange;
}

function send(reply: FastifyReply, answer: CoatcheckResponse): FastifyReply {
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}

const plugin: FastifyPluginCallback<CoatcheckFastifyOptions> = (fastify, options, done) => {
  const { engine: given, render, ...rest } = options;
  // Fastify's own registration options are not coatcheck configuration.
  const { prefix, logLevel, logSerializers, ...config } = rest as CoatcheckOptions &
    Record<"prefix" | "logLevel" | "logSerializers", unknown>;
  let pipeline: RequestPipeline;
  try {
    pipeline = new RequestPipeline(given ?? engineFrom(config), render ? { render } : {});
  } catch (error) {
    done(error as Error);
    return;
  }

  fastify.decorateRequest("session", {
    getter(this: FastifyRequest) {
      return exchangeFor(this).session;
    },
  });

  // The CSRF check runs here, before any body parser: a forged request is answered at once, and
  // a form body is peeked (bounded) and put back for the parser, which still reads every byte.
  fastify.addHook("onRequest", async (request, reply) => {
    const exchange = pipeline.begin(nodeRequest(request.raw, request.url, () => undefined));
    exchanges.set(request, exchange);
    const refused = await exchange.check();
    if (refused !== null) return send(reply, refused);
  });

  fastify.addHook("onError", (request, _reply, error, next) => {
    const failure = exchanges.get(request)?.failure(error);
    if (failure) failures.set(request, failure);
    next();
  });

  fastify.addHook("onSend", async (request, reply, payload) => {
    const exchange = exchanges.get(request);
    if (exchange === undefined) return payload;
    let replacement = failures.get(request) ?? null;
    const status = replacement?.status ?? reply.statusCode;
    const outcome = await exchange.finish(status, (name) => {
      const value = reply.getHeader(name);
      return Array.isArray(value)
        ? value.join(", ")
        : value === undefined
          ? undefined
          : String(value);
    });
    replacement = outcome.response ?? replacement;
    if (replacement !== null) {
      const stream = payload as { destroy?: () => void } | null;
      if (typeof stream?.destroy === "function") stream.destroy();
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
      send(reply, replacement);
    } else {
      reply.headers(outcome.set);
    }
    // Fastify appends a repeated Set-Cookie instead of replacing it.
    for (const [name, value] of outcome.append) reply.header(name, value);
    return replacement?.body ?? payload;
  });

  // A hijacked reply (reply.hijack(), writes to reply.raw) skips onSend: release the lock and save
  // nothing, as for a 5xx. Finishing twice does nothing.
  fastify.addHook("onResponse", async (request) => {
    await exchanges.get(request)?.finish(500, () => undefined);
  });

  done();
};

/**
 * The Fastify 5 plugin: opens the session lazily on every request of the scope it is registered
 * in (and its children: it is wrapped with `fastify-plugin`) and saves it in `onSend`, before the
 * response leaves, streamed replies included. A 5xx reply saves nothing; a store failure (at the
 * save, or thrown by a handler) answers 503 with `Retry-After`. With CSRF enabled (the default) an
 * `onRequest` hook checks every request but GET, HEAD and OPTIONS before any body parser runs; a
 * failed check answers 403. Works over HTTP/2 (`http2: true`). `@fastify/cookie` is not needed and
 * can be registered beside it.
 *
 * @example
 * ```ts
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

/** A route-level `onRequest` hook running one pipeline step; its response answers instead. */
function step(run: (exchange: Exchange) => Promise<CoatcheckResponse | null>) {
  const hook: onRequestAsyncHookHandler = async (request, reply) => {
    const refused = await run(exchangeFor(request));
    if (refused !== null) return send(reply, refused);
  };
  return hook;
}

/**
 * Route-level `onRequest` hook: serialise requests on one session (a cart):
 * `app.post("/cart", { onRequest: sessionLock() }, handler)`; 503 after `lock_timeout_ms`.
 */
export function sessionLock(): onRequestAsyncHookHandler {
  return step((exchange) => exchange.lock());
}

/** The request's session; throws a clear error when the plugin does not cover this route. */
export function getSession(request: AnyRequest): Session {
  return exchangeFor(request).session;
}

/** The request's {@link CsrfToken}: `(await getCsrfToken(request)).asHiddenField()`. */
export function getCsrfToken(request: AnyRequest): Promise<CsrfToken> {
  return CsrfToken.from(getSession(request));
}

/** `onRequest` hook: signed-out users get 303 to `loginUrl` (htmx: `HX-Redirect`; API: 401). */
export function requireAuth(options?: GuardOptions): onRequestAsyncHookHandler {
  const guard = accessGuard(options);
  return step((exchange) => exchange.guard(guard));
}

/** Like {@link requireAuth}, and 403 without one of `roles` (every one with `{ all: true }`). */
export function requireRole(
  roles: string | readonly string[],
  options?: GuardOptions & { all?: boolean },
): onRequestAsyncHookHandler {
  const guard = accessGuard({ ...options, roles });
  return step((exchange) => exchange.guard(guard));
}
