import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyReply } from "fastify";
import { MissingMiddlewareError } from "../core/errors.js";
import { Exchange, type Outcome, type RequestPipeline } from "../core/pipeline.js";
import { headerText } from "./node-headers.js";
import { assignOwnSession, nodeRequest } from "./node-request.js";

/**
 * How the Fastify plugin attaches a request's exchange. The plugin's `onRequest` hook only marks
 * the request as covered ({@link cover}); the exchange is opened at the session's first use
 * (`request.session`, `getSession`, `getCsrfToken`, a guard, the lock), or at once when the CSRF
 * check runs, so a route that never uses its session pays two property stores.
 *
 * `request.session` is an accessor on Fastify's base request prototype, below every instance and
 * scope: outside the plugin's scope it throws {@link MissingMiddlewareError}, as `getSession` does.
 * It shadows nothing: another plugin's `decorateRequest("session", …)` (a getter, or a value Fastify
 * assigns per request) lands on its own scope's prototype or on the request itself and wins there.
 */

/**
 * Where a request's exchange is kept, under symbols (a `WeakMap` with one entry per request costs
 * more in garbage collection than the rest of an untouched request): the pipeline until the
 * exchange is opened, then the exchange; and the reply, until the plugin's `onSend` has run.
 */
const EXCHANGE = Symbol("coatcheck.exchange");
const REPLY = Symbol("coatcheck.reply");

/** What the plugin reads of a request and its reply (HTTP/2's raw objects have the same parts). */
export interface Covered {
  readonly raw: IncomingMessage;
  readonly url: string;
}
interface Reply {
  readonly raw: NodeJS.EventEmitter;
}
type Carrier = { [EXCHANGE]?: Exchange | RequestPipeline; [REPLY]?: Reply | null };
/** The raw response of an open exchange, until the plugin's `onSend` has run. */
type Watched = NodeJS.EventEmitter & { [EXCHANGE]?: Exchange | undefined };

const NO_BODY = () => undefined;
const NO_HEADER = () => undefined;

/** Mark `request` as covered by `pipeline` (the plugin's `onRequest` hook); nothing is opened. */
export function cover(request: object, reply: Reply, pipeline: RequestPipeline): void {
  (request as Carrier)[EXCHANGE] = pipeline;
  (request as Carrier)[REPLY] = reply;
}

/** The request's exchange, opened now if it is not yet; `undefined` outside the plugin's scope. */
export function use(request: object): Exchange | undefined {
  const slot = (request as Carrier)[EXCHANGE];
  if (slot === undefined || slot instanceof Exchange) return slot;
  const { raw, url } = request as Covered;
  const exchange = slot.begin(nodeRequest(raw, url, NO_BODY));
  (request as Carrier)[EXCHANGE] = exchange;
  const reply = (request as Carrier)[REPLY];
  if (reply === undefined || reply === null) {
    // First used once `onSend` has run: nothing more is saved, and changes throw.
    exchange.finishIdle();
  } else {
    // A hijacked reply (or one written on `reply.raw`) skips `onSend`: once it has finished,
    // release the lock and save nothing.
    (reply.raw as Watched)[EXCHANGE] = exchange;
    reply.raw.on("finish", released);
  }
  return exchange;
}

function released(this: Watched): void {
  const exchange = this[EXCHANGE];
  if (exchange === undefined) return;
  this[EXCHANGE] = undefined;
  if (!exchange.finishIdle()) void exchange.finish(500, NO_HEADER);
}

/**
 * The plugin's `onSend`: the request's exchange if it was opened (it is finished now, so the
 * response's `finish` no longer needs to), else `undefined`; a first use after this finds the
 * session finished.
 */
export function sending(request: object, reply: Reply): Exchange | undefined {
  const slot = (request as Carrier)[EXCHANGE];
  if (slot instanceof Exchange) {
    (reply.raw as Watched)[EXCHANGE] = undefined;
    return slot;
  }
  if (slot !== undefined) (request as Carrier)[REPLY] = null;
  return undefined;
}

/**
 * The plugin's `onSend` for an exchange with work to do: commit, then put the outcome on the reply.
 * What throws once the commit is done goes to `next` as the error, as Fastify does for an async
 * `onSend` hook: `next` runs the hooks after this one and writes the head, which Node refuses with
 * a throw (a header value such as a non-Latin-1 filename), and the rejection of this chain has no
 * other handler.
 */
export function finishReply(
  exchange: Exchange,
  reply: FastifyReply,
  payload: unknown,
  next: (error: Error | null, payload?: unknown) => void,
): void {
  const header = (name: string) => headerText(reply.getHeader(name));
  const ended = exchange.end(reply.statusCode, header);
  // A commit without store work ends at once: the reply goes on in the same turn.
  if (ended instanceof Promise)
    ended.then((outcome) => deliver(outcome, reply, payload, next), next);
  else deliver(ended, reply, payload, next);
}

/** Put the outcome on the reply and go on with Fastify's send (see {@link finishReply}). */
function deliver(
  outcome: Outcome,
  reply: FastifyReply,
  payload: unknown,
  next: (error: Error | null, payload?: unknown) => void,
): void {
  try {
    const { response: answer } = outcome;
    if (answer !== null) {
      (payload as { destroy?: () => void } | null)?.destroy?.();
      for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
      reply.code(answer.status).headers(answer.headers);
    } else {
      reply.headers(outcome.set);
    }
    // Fastify appends a repeated Set-Cookie instead of replacing it.
    for (const [name, value] of outcome.append) reply.header(name, value);
    next(null, answer?.body ?? payload);
  } catch (error) {
    next(error as Error);
  }
}

const HINT = 'await app.register(coatcheck) from "coatcheck/fastify", in this scope or a parent';

/** The request's exchange; throws a clear error when the plugin does not cover its route. */
export function exchangeFor(request: object): Exchange {
  const exchange = use(request);
  if (exchange) return exchange;
  throw new MissingMiddlewareError("Fastify", HINT);
}

const accessor: PropertyDescriptor = {
  configurable: true,
  get(this: object) {
    return exchangeFor(this).session;
  },
  // A value decorator of another plugin is assigned per request: it becomes the request's own.
  set: assignOwnSession,
};

/** Put the `request.session` accessor on the base request prototype of `fastify`'s server. */
export function guardRequests(fastify: FastifyInstance): void {
  const key = Object.getOwnPropertySymbols(fastify).find(
    (s) => s.description === "fastify.Request",
  );
  let proto =
    (key && (fastify as unknown as Record<symbol, { prototype?: object }>)[key]?.prototype) ?? null;
  while (proto !== null && Object.getPrototypeOf(proto) !== Object.prototype)
    proto = Object.getPrototypeOf(proto) as object | null;
  if (proto !== null && !Object.hasOwn(proto, "session"))
    Object.defineProperty(proto, "session", accessor);
}
