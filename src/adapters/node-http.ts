import {
  type IncomingMessage,
  type OutgoingHttpHeaders,
  OutgoingMessage,
  type ServerResponse,
} from "node:http";
import {
  armDeadline,
  BODY_CONSUMED,
  CsrfBodyError,
  checkDeclaredLength,
  DEFAULT_FORM_LIMITS,
  type FormLimits,
  formFieldFromBytes,
  formKind,
} from "../core/csrf-form.js";
import type { CoatcheckResponse } from "../core/errors.js";
import type { Outcome, PipelineRequest } from "../core/pipeline.js";
import { socketFacts } from "../core/proxy.js";

/**
 * Pieces shared by the adapters that sit on Node's `http` objects (Express, Fastify): the request
 * as the pipeline's input, holding a response until the session is committed, and reading one form
 * field for the CSRF check without taking the body away from the app's own parsers.
 */

/** A header value as one string (repeated values joined), or undefined. */
export function headerText(
  value: number | string | readonly string[] | undefined,
): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** One request header as a single string (repeated headers joined), or undefined. */
export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  return headerText(req.headers[name.toLowerCase()]);
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
 * `originalUrl`, Fastify's `url`); `parsed` returns the app's parsed body, if any. On HTTP/2 the
 * authority is the `:authority` pseudo-header.
 */
export function nodeRequest(
  req: IncomingMessage,
  target: string,
  parsed: () => unknown,
): PipelineRequest {
  let field: ((name: string) => Promise<unknown>) | undefined;
  return {
    method: req.method ?? "GET",
    path: pathOf(target),
    header: (name) => requestHeader(req, name),
    authority: () => requestHeader(req, ":authority"),
    connection: () => socketFacts(req.socket),
    formField: (name) => {
      field ??= nodeFormField(req, parsed);
      return field(name);
    },
  };
}

type Deferred =
  | { kind: "writeHead"; status: number; message: string | undefined }
  | { kind: "write" | "end" | "flushHeaders"; args: unknown[] };

const nativeHeadersSent = Object.getOwnPropertyDescriptor(OutgoingMessage.prototype, "headersSent")
  ?.get as (this: ServerResponse) => boolean;

function headersError(): Error {
  return Object.assign(new Error("Cannot set headers after they are sent to the client"), {
    code: "ERR_HTTP_HEADERS_SENT",
  });
}

/**
 * Hold everything that would put bytes on the wire (`writeHead`, `write`, `end`, `flushHeaders`)
 * until `settle(status, header)` has run, so the session is saved and its headers added before the
 * first byte leaves. This covers `res.send`, `res.json`, `res.redirect`, `res.end`, piped and
 * streamed bodies and responses ended early, because all of them go through these four methods.
 *
 * Once output is held, the response behaves as if its headers were sent: `headersSent` is true and
 * the app's header setters throw `ERR_HTTP_HEADERS_SENT`, so the `if (res.headersSent)` idiom of
 * error handlers works, and after `end` nothing more is queued. While held, `write` returns `false`
 * so a streaming source waits for `drain` instead of buffering without bound. When the outcome
 * carries a response, it is sent instead of whatever the app queued, with none of the app's headers.
 */
export function holdUntilSettled(
  res: ServerResponse,
  settle: (status: number, header: (name: string) => string | undefined) => Promise<Outcome>,
): void {
  // Captured from the response itself, so wrappers installed earlier (compression) stay in the chain.
  const writeHead = res.writeHead as (...args: unknown[]) => ServerResponse;
  const write = res.write as (...args: unknown[]) => boolean;
  const end = res.end as (...args: unknown[]) => ServerResponse;
  const flushHeaders = res.flushHeaders;
  const setHeader = res.setHeader.bind(res);
  const appendHeader = res.appendHeader.bind(res);
  const removeHeader = res.removeHeader.bind(res);
  const queue: Deferred[] = [];
  let state: "open" | "held" | "settling" | "passed" | "replaced" = "open";
  let ended = false;
  let explicitStatus: number | undefined;
  let owesDrain = false;
  /** Our own header writes (Node's setters call each other through the response). */
  let ours = false;

  Object.defineProperty(res, "headersSent", {
    configurable: true,
    get: () => state !== "open" || nativeHeadersSent.call(res),
  });
  for (const [name, original] of [
    ["setHeader", setHeader],
    ["appendHeader", appendHeader],
    ["removeHeader", removeHeader],
  ] as const) {
    (res as unknown as Record<string, unknown>)[name] = (...args: [string, never]) => {
      if (state !== "open" && state !== "passed" && !ours) throw headersError();
      return (original as (...a: unknown[]) => unknown)(...args);
    };
  }

  const apply = (outcome: Outcome, replacing?: CoatcheckResponse) => {
    ours = true;
    try {
      if (replacing !== undefined) {
        for (const name of res.getHeaderNames()) removeHeader(name);
        for (const [name, value] of Object.entries(replacing.headers)) setHeader(name, value);
      } else {
        for (const [name, value] of Object.entries(outcome.set)) setHeader(name, value);
      }
      for (const [name, value] of outcome.append) appendHeader(name, value);
    } finally {
      ours = false;
    }
  };

  const release = () => {
    state = "passed";
    for (const call of queue) {
      if (call.kind === "writeHead") {
        if (call.message === undefined) writeHead.call(res, call.status);
        else writeHead.call(res, call.status, call.message);
      } else if (call.kind === "write") {
        write.apply(res, call.args);
      } else if (call.kind === "end") {
        end.apply(res, call.args);
      } else {
        flushHeaders.call(res);
      }
    }
    queue.length = 0;
    if (owesDrain && !res.writableNeedDrain && !res.writableEnded) res.emit("drain");
  };

  const replace = (outcome: Outcome, answer: CoatcheckResponse) => {
    state = "replaced";
    queue.length = 0;
    if (nativeHeadersSent.call(res)) {
      res.destroy();
      return;
    }
    apply(outcome, answer);
    writeHead.call(res, answer.status);
    end.call(res, answer.body);
  };

  const hold = () => {
    if (state === "open") state = "held";
  };

  const start = () => {
    if (state !== "open" && state !== "held") return;
    state = "settling";
    settle(explicitStatus ?? res.statusCode, (name) => headerText(res.getHeader(name))).then(
      (outcome) => {
        if (outcome.response !== null) return replace(outcome, outcome.response);
        apply(outcome);
        release();
      },
      (error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  };

  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (state === "passed") return writeHead.apply(res, args);
    if (state === "replaced" || ended) return res;
    const status = Number(args[0]);
    let message: string | undefined;
    let headers = args[1];
    if (typeof headers === "string") {
      message = headers;
      headers = args[2];
    }
    // Node gives writeHead's headers precedence over setHeader's; applying them now keeps that,
    // and lets the commit's headers (Cache-Control, Vary) be merged with them afterwards.
    if (state === "open") applyHeaders(res, headers);
    explicitStatus = status;
    queue.push({ kind: "writeHead", status, message });
    hold();
    return res;
  } as typeof res.writeHead;

  res.write = function (this: ServerResponse, ...args: unknown[]) {
    if (state === "passed") return write.apply(res, args);
    if (state === "replaced" || ended) return false;
    queue.push({ kind: "write", args });
    owesDrain = true;
    start();
    return false;
  } as typeof res.write;

  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (state === "passed") return end.apply(res, args);
    if (state === "replaced" || ended) return res;
    ended = true;
    queue.push({ kind: "end", args });
    start();
    return res;
  } as typeof res.end;

  res.flushHeaders = function (this: ServerResponse) {
    if (state === "passed") return flushHeaders.call(res);
    if (state === "replaced" || ended) return;
    queue.push({ kind: "flushHeaders", args: [] });
    start();
  };
}

function applyHeaders(res: ServerResponse, headers: unknown): void {
  if (headers === undefined || headers === null) return;
  if (Array.isArray(headers)) {
    if (Array.isArray(headers[0])) {
      for (const [name, value] of headers as [string, string][]) res.appendHeader(name, value);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2)
        res.appendHeader(String(headers[i]), headers[i + 1] as string);
    }
    return;
  }
  for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
    if (value !== undefined) res.setHeader(name, value);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Buffer.isBuffer(value);
}

/** `@fastify/multipart` with `attachFieldsToBody: true` wraps each field as `{ type, value }`. */
function unwrapField(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(unwrapField);
  if (isRecord(value) && value.type === "field") return value.value;
  return value;
}

/**
 * A `formField(name)` for the CSRF check on a Node request, which leaves the body to the app:
 *
 * - when the app's parser has read the body already (`express.urlencoded()`, multer or
 *   `@fastify/formbody` before the check), the field comes from `parsed()` (`req.body`);
 * - when nobody has read it yet (a parser registered after the middleware, multer on the route,
 *   `@fastify/multipart`), the body is copied (at most `limits.maxBytes`, within
 *   `limits.timeoutMs`) and the copy is put back with `unshift`, so that parser still reads the
 *   whole body, byte for byte.
 *
 * Only urlencoded and multipart bodies carry the field (see `formKind`).
 */
export function nodeFormField(
  req: IncomingMessage,
  parsed: () => unknown,
  limits: FormLimits = DEFAULT_FORM_LIMITS,
): (name: string) => Promise<unknown> {
  let bytes: Promise<Uint8Array> | undefined;
  const contentType = requestHeader(req, "content-type");
  return async (name) => {
    const kind = formKind(contentType);
    if (kind === null) return undefined;
    const body = parsed();
    if (isRecord(body) && (req.readableEnded || Object.hasOwn(body, name))) {
      const value = Object.hasOwn(body, name) ? body[name] : undefined;
      return kind === "multipart" ? unwrapField(value) : value;
    }
    if (req.readableEnded || req.readableFlowing === true)
      throw new CsrfBodyError("body_unreadable", BODY_CONSUMED);
    checkDeclaredLength(requestHeader(req, "content-length"), limits);
    bytes ??= peekBody(req, limits);
    return formFieldFromBytes(await bytes, contentType, name);
  };
}

function tooLarge(limits: FormLimits): CsrfBodyError {
  return new CsrfBodyError(
    "body_too_large",
    `form body over ${limits.maxBytes} bytes; send the CSRF token in the header instead`,
  );
}

/**
 * Read the whole body without consuming it: paused-mode reads, then `unshift` in the same tick as
 * the last read, before the stream can emit `end`. Whatever happens (too large, too slow), the bytes
 * read so far are put back, so the app's parser is never short of a byte.
 */
function peekBody(req: IncomingMessage, limits: FormLimits): Promise<Uint8Array> {
  const length = requestHeader(req, "content-length");
  const declared = length !== undefined && /^\d+$/.test(length) ? Number(length) : null;
  if (declared === 0) return Promise.resolve(new Uint8Array(0));
  // Most form posts arrive in the packet of their headers: Node's parser pushes the body right
  // after the request event, so one microtask later it is buffered whole and is read and put back
  // at once, with no listener and no timer.
  const now = buffered(req, declared, limits);
  if (now !== null) return Promise.resolve(now);
  return Promise.resolve().then(
    () => buffered(req, declared, limits) ?? listen(req, declared, limits),
  );
}

/** The whole declared body when it is buffered already (read, then put back), else null. */
function buffered(
  req: IncomingMessage,
  declared: number | null,
  limits: FormLimits,
): Buffer | null {
  if (declared === null || declared > limits.maxBytes || req.readableLength < declared) return null;
  if (req.destroyed || req.readableEnded || req.readableFlowing === true) return null;
  const bytes = req.read() as Buffer | null;
  if (bytes === null) return null;
  req.unshift(bytes);
  return bytes.length >= declared ? bytes : null;
}

/** Wait for the rest of the body in paused mode, within the limits; see {@link peekBody}. */
function listen(
  req: IncomingMessage,
  declared: number | null,
  limits: FormLimits,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (): Buffer => {
      cancel();
      req.off("readable", onReadable);
      req.off("error", onGone);
      req.off("aborted", onGone);
      req.off("end", onEnd);
      const bytes = Buffer.concat(chunks);
      if (bytes.length > 0 && !req.destroyed && !req.readableEnded) req.unshift(bytes);
      return bytes;
    };
    const fail = (error: CsrfBodyError) => {
      stop();
      reject(error);
    };
    const onGone = () => fail(new CsrfBodyError("body_unreadable", "form body could not be read"));
    // A body shorter than declared (or undeclared, on a stand-in without `complete`) ends here.
    const onEnd = () => resolve(stop());
    const onReadable = () => {
      for (;;) {
        const chunk = req.read() as Buffer | null;
        if (chunk === null) break;
        chunks.push(chunk);
        total += chunk.length;
        if (total > limits.maxBytes) return fail(tooLarge(limits));
      }
      // `complete` on a Node request; the declared length also covers stand-ins such as Fastify's
      // inject, which have no `complete`.
      if (req.complete === true || (declared !== null && total >= declared)) resolve(stop());
    };
    const cancel = armDeadline(limits.timeoutMs, () =>
      fail(
        new CsrfBodyError("body_timeout", `form body not received within ${limits.timeoutMs} ms`),
      ),
    );
    req.on("readable", onReadable);
    req.on("error", onGone);
    req.on("aborted", onGone);
    req.on("end", onEnd);
  });
}
