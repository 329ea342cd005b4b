import type { FastifyInstance } from "fastify";
import { MissingMiddlewareError } from "../core/errors.js";
import type { Exchange } from "../core/pipeline.js";
import { assignOwnSession } from "./node-http.js";

/**
 * How the Fastify plugin attaches a request's exchange. `request.session` is an accessor on
 * Fastify's base request prototype, below every instance and scope: outside the plugin's scope it
 * throws {@link MissingMiddlewareError}, as `getSession` does. It shadows nothing: another
 * plugin's `decorateRequest("session", …)` (a getter, or a value Fastify assigns per request) lands
 * on its own scope's prototype or on the request itself and wins there.
 */

/**
 * Where a request's exchange is kept: a symbol-keyed property of the request. (A `WeakMap` with one
 * entry per request costs more in garbage collection than the rest of an untouched request.)
 */
const EXCHANGE = Symbol("coatcheck.exchange");

type Carrier = { [EXCHANGE]?: Exchange };

/** Attach the exchange the plugin's `onRequest` hook began for `request`. */
export function attachExchange(request: object, exchange: Exchange): void {
  (request as Carrier)[EXCHANGE] = exchange;
}

/** The exchange of a request the plugin's hooks have seen, or `undefined`. */
export function exchangeOfRequest(request: object): Exchange | undefined {
  return (request as Carrier)[EXCHANGE];
}

const HINT = 'await app.register(coatcheck) from "coatcheck/fastify", in this scope or a parent';

/** The request's exchange; throws a clear error when the plugin does not cover its route. */
export function exchangeFor(request: object): Exchange {
  const exchange = exchangeOfRequest(request);
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
