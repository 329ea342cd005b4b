import type { Socket } from "node:net";
import type { Context } from "hono";
import type { PipelineRequest } from "../core/pipeline.js";
import { socketFacts } from "../core/proxy.js";
import { cachedFormField } from "./web.js";

/** The pipeline's view of a Hono request: one object, its methods on the prototype. */
export class HonoRequest implements PipelineRequest {
  readonly method: string;
  readonly path: string;
  readonly #c: Context;
  #field: ((name: string) => Promise<unknown>) | undefined;

  constructor(c: Context) {
    this.method = c.req.method;
    this.path = c.req.path;
    this.#c = c;
  }

  header(name: string): string | undefined {
    return this.#c.req.header(name);
  }

  /** `app.request()` and HTTP/2 carry no Host header; the URL always has the authority. */
  authority(): string | undefined {
    return new URL(this.#c.req.url).host;
  }

  /** @hono/node-server puts the Node request in `c.env.incoming`; elsewhere there is no socket. */
  connection(): { peer: string | undefined; encrypted: boolean } {
    const env = this.#c.env as { incoming?: { socket?: Socket } } | undefined;
    return socketFacts(env?.incoming?.socket);
  }

  formField(name: string): Promise<unknown> {
    this.#field ??= cachedFormField(this.#c.req, this.#c.req.header("content-type"));
    return this.#field(name);
  }
}
