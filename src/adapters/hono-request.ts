import type { Socket } from "node:net";
import type { Context } from "hono";
import { equalsLower, isHttpSpace } from "../core/http-text.js";
import type { PipelineRequest } from "../core/pipeline.js";
import { socketFacts } from "../core/proxy.js";
import { cachedFormField } from "./web.js";

/** What @hono/node-server passes as `c.env.incoming`: the Node request (HTTP/1 or HTTP/2). */
interface NodeIncoming {
  rawHeaders?: unknown;
  socket?: Socket;
}

/** The pipeline's view of a Hono request: one object, its methods on the prototype. */
export class HonoRequest implements PipelineRequest {
  readonly method: string;
  readonly path: string;
  readonly #c: Context;
  /** The Node request's header list, when the app runs on @hono/node-server. */
  readonly #raw: readonly string[] | undefined;
  #field: ((name: string) => Promise<unknown>) | undefined;

  constructor(c: Context) {
    const req = c.req;
    this.method = req.method;
    this.path = req.path;
    this.#c = c;
    const raw = (c.env as { incoming?: NodeIncoming } | undefined)?.incoming?.rawHeaders;
    this.#raw = Array.isArray(raw) ? raw : undefined;
  }

  /**
   * On @hono/node-server the header comes from the Node request's own list: asking the Web
   * request builds a `Headers` object of every header, which a request that never reads its
   * headers (most of them) otherwise does without. The same value `Headers.get` gives.
   */
  header(name: string): string | undefined {
    const raw = this.#raw;
    return raw === undefined ? this.#c.req.header(name) : rawHeader(raw, name);
  }

  /** `app.request()` and HTTP/2 carry no Host header; the URL always has the authority. */
  authority(): string | undefined {
    return new URL(this.#c.req.url).host;
  }

  /** @hono/node-server puts the Node request in `c.env.incoming`; elsewhere there is no socket. */
  connection(): { peer: string | undefined; encrypted: boolean } {
    const env = this.#c.env as { incoming?: NodeIncoming } | undefined;
    return socketFacts(env?.incoming?.socket);
  }

  formField(name: string): Promise<unknown> {
    this.#field ??= cachedFormField(this.#c.req, this.header("content-type"));
    return this.#field(name);
  }
}

/**
 * Header `name` (lower case) of a Node `rawHeaders` list, as `Headers.get` reads it: names
 * compared without case, values trimmed of spaces and tabs, repeated headers joined by ", "
 * (`Cookie` by "; ").
 * HTTP/2 pseudo-headers (`:authority`) start with a colon and never match a header name.
 */
export function rawHeader(raw: readonly string[], name: string): string | undefined {
  let out: string | undefined;
  const separator = name === "cookie" ? "; " : ", ";
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const candidate = raw[i] as string;
    if (candidate.length !== name.length || !equalsLower(candidate, 0, name)) continue;
    const value = trimOws(String(raw[i + 1]));
    out = out === undefined ? value : `${out}${separator}${value}`;
  }
  return out;
}

/** Without the leading and trailing HTTP whitespace `Headers` strips (no copy when there is none). */
function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isHttpSpace(value.charCodeAt(start))) start++;
  while (end > start && isHttpSpace(value.charCodeAt(end - 1))) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}
