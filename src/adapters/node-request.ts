import type { IncomingMessage } from "node:http";
import { DEFAULT_FORM_LIMITS } from "../core/csrf-form.js";
import type { PipelineRequest } from "../core/pipeline.js";
import { socketFacts } from "../core/proxy.js";
import { type BodyPeek, fieldOf } from "./node-form-peek.js";
import { requestHeader } from "./node-headers.js";

/**
 * A Node request (Express, Fastify) as the pipeline's input, and the `session` setter both
 * adapters put on their request prototypes. The response's hold is in `node-hold.ts`, the form
 * field for the CSRF check in `node-form-peek.ts`.
 */

/**
 * The setter of coatcheck's `session` accessor on request prototypes: a value that another
 * middleware or plugin assigns becomes that request's own property, as it would be without
 * coatcheck.
 */
export function assignOwnSession(this: object, value: unknown): void {
  Object.defineProperty(this, "session", {
    value,
    writable: true,
    configurable: true,
    enumerable: true,
  });
}

/**
 * The path of a request target, as sent (no decoding, no normalisation: `//x` stays `//x`, as the
 * router sees it), without the query.
 */
export function pathOf(target: string): string {
  const end = target.indexOf("?");
  return end === -1 ? target : target.slice(0, end);
}

/**
 * A Node request as the pipeline's input. `target` is the request target the router saw (Express's
 * `originalUrl`, Fastify's `url`); `parsed` returns the app's parsed body, if any; `method` is the
 * method on the wire, when the request is read later than it arrived (a method override may have
 * changed `req.method` since). On HTTP/2 the authority is the `:authority` pseudo-header.
 */
export function nodeRequest(
  req: IncomingMessage,
  target: string,
  parsed: () => unknown,
  method: string = req.method ?? "GET",
): PipelineRequest {
  return new NodeRequest(req, target, parsed, method);
}

/** One object per request, its methods on the prototype (no closures per request). */
class NodeRequest implements PipelineRequest {
  readonly method: string;
  readonly path: string;
  readonly #req: IncomingMessage;
  readonly #parsed: () => unknown;
  /** The body's bytes once the CSRF check has peeked at it (see {@link fieldOf}). */
  readonly #peek: BodyPeek = { bytes: undefined };

  constructor(req: IncomingMessage, target: string, parsed: () => unknown, method: string) {
    this.method = method;
    this.path = pathOf(target);
    this.#req = req;
    this.#parsed = parsed;
  }

  header(name: string): string | undefined {
    return requestHeader(this.#req, name);
  }

  authority(): string | undefined {
    return requestHeader(this.#req, ":authority");
  }

  connection(): { peer: string | undefined; encrypted: boolean } {
    return socketFacts(this.#req.socket);
  }

  formField(name: string): Promise<unknown> {
    return fieldOf(this.#req, this.#parsed, DEFAULT_FORM_LIMITS, this.#peek, name);
  }
}
