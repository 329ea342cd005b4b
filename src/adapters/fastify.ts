import type {
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
  RawServerBase,
  RouteGenericInterface,
} from "fastify";
import fp from "fastify-plugin";
import { CsrfToken, csrfApplies } from "../core/csrf.js";
import type { SessionEngine } from "../core/engine.js";
import type { CoatcheckResponse } from "../core/errors.js";
import { accessGuard, type GuardOptions } from "../core/guard.js";
import { type Exchange, type PipelineOptions, RequestPipeline } from "../core/pipeline.js";
import type { Session } from "../core/session.js";
import { type CoatcheckOptions, engineFrom } from "../setup.js";
import { cover, exchangeFor, finishReply, guardRequests, sending, use } from "./fastify-request.js";

declare module "fastify" {
  interface FastifyRequest {
    readonly session: Session; // set by the coatcheck plugin
  }
}

/** Plugin options: coatcheck options or a shared `{ engine }`, and `render` for refusals. */
export type CoatcheckFastifyOptions = CoatcheckOptions &
  PipelineOptions & { engine?: SessionEngine };

/** A request of any Fastify server, HTTP/1.1 or HTTP/2 (`http2: true`). */
export type AnyRequest = FastifyRequest<RouteGenericInterface, RawServerBase>;

const send = (reply: FastifyReply, answer: CoatcheckResponse) =>
  reply.code(answer.status).headers(answer.headers).send(answer.body);

const REGISTERED = Symbol.for("coatcheck.registered");
const TWICE =
  "coatcheck: the plugin is already registered on this scope or a parent scope; register it once " +
  "per scope (sibling scopes may each register their own)";

type Registration = CoatcheckFastifyOptions &
  Record<"prefix" | "logLevel" | "logSerializers", unknown>;

const plugin: FastifyPluginCallback<CoatcheckFastifyOptions> = (fastify, options, done) => {
  // Fastify's own registration options are not coatcheck configuration.
  const { engine, render, prefix, logLevel, logSerializers, ...config } = options as Registration;
  // Two registrations on one route would each open a session there, and the outer one's would
  // never be saved or closed: refuse the second at startup. Sibling scopes may each have one.
  if (fastify.hasDecorator(REGISTERED)) return done(new Error(TWICE));
  fastify.decorate(REGISTERED, true);
  let pipeline: RequestPipeline;
  try {
    pipeline = new RequestPipeline(engine ?? engineFrom(config), render ? { render } : {});
  } catch (error) {
    done(error as Error);
    return;
  }

  guardRequests(fastify);
  if (!engine) fastify.addHook("onClose", () => pipeline.engine.close()); // only one it built

  // Before any body parser; a form body is peeked (bounded) and put back for the parser. Without
  // a check to run, the session is opened at its first use.
  fastify.addHook("onRequest", (request, reply, next) => {
    cover(request, reply, pipeline);
    if (!csrfApplies(pipeline.engine, request.raw.method ?? "GET")) next();
    else check(use(request) as Exchange, reply, next);
  });

  fastify.addHook("onError", async (request, _reply, error) => {
    use(request)?.failure(error);
  });

  fastify.addHook("onSend", (request, reply, payload, next) => {
    const exchange = sending(request, reply);
    if (exchange === undefined || exchange.finishIdle()) next(null, payload);
    else finishReply(exchange, reply, payload, next);
  });
  done();
};

// The check runs apart from its hook, as `finishReply` does for `onSend`: a hook that makes closures
// pays for their context on every request, also on one that never makes them.

function check(exchange: Exchange, reply: FastifyReply, next: (error?: Error) => void): void {
  exchange.check().then((refused) => {
    if (refused === null) next();
    else send(reply, refused);
  }, next);
}

/**
 * The Fastify 5 plugin (wrapped with `fastify-plugin`): opens the session lazily and saves it in
 * `onSend`, before the reply leaves; a 5xx saves nothing, a store failure answers 503 with
 * `Retry-After`. With CSRF enabled (the default) an `onRequest` hook checks every request but GET,
 * HEAD and OPTIONS before any body parser runs (403 on failure). Works with `http2: true`.
 *
 * An engine the plugin built is closed in `onClose`; one passed as `{ engine }` stays yours.
 * @example `await app.register(coatcheck, { configFile: "config.toml" })`
 */
export const coatcheck = fp(plugin, { fastify: "5.x", name: "coatcheck" });
export default coatcheck;

/** A route-level `onRequest` hook running one pipeline step; its response answers instead. */
function step(run: (exchange: Exchange) => Promise<CoatcheckResponse | null>) {
  return (async (request, reply) => {
    const refused = await run(exchangeFor(request));
    if (refused !== null) return send(reply, refused);
  }) as onRequestAsyncHookHandler;
}

/** `onRequest` hook: serialise requests on one session (a cart); 503 after `lock_timeout_ms`. */
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
