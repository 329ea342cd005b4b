import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import {
  BODY_CONSUMED,
  CsrfBodyError,
  DEFAULT_FORM_LIMITS,
  type FormLimits,
  formFieldFromBytes,
  formKind,
} from "../core/csrf-form.js";
import type { HeaderTarget } from "./web.js";

/**
 * Pieces shared by the adapters that sit on Node's `http` objects (Express, Fastify): header
 * access, holding a response until the session is committed, and reading one form field for the
 * CSRF check without taking the body away from the app's own parsers.
 */

/** Status, headers and body of a response that replaces the app's (503 on a failed commit). */
export interface Replacement {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function headerText(value: number | string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** A Node response as a {@link HeaderTarget}. */
export function nodeHeaders(res: ServerResponse): HeaderTarget {
  return {
    get: (name) => headerText(res.getHeader(name)),
    set: (name, value) => {
      res.setHeader(name, value);
    },
    append: (name, value) => {
      res.appendHeader(name, value);
    },
  };
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

type Deferred =
  | { kind: "writeHead"; status: number; message: string | undefined }
  | { kind: "write" | "end" | "flushHeaders"; args: unknown[] };

/**
 * Hold everything that would put bytes on the wire (`writeHead`, `write`, `end`, `flushHeaders`)
 * until `settle(status)` has run, so the session is saved and its Set-Cookie added before the first
 * byte leaves. This covers `res.send`, `res.json`, `res.redirect`, `res.end`, piped and streamed
 * bodies and responses ended early, because all of them go through these four methods.
 *
 * `settle` resolves to `null` to let the response through, or to a {@link Replacement} (a 503 when
 * the store failed), which is sent instead of whatever the app queued. While held, `write` returns
 * `false` so a streaming source waits for `drain` instead of buffering without bound.
 */
export function holdUntilSettled(
  res: ServerResponse,
  settle: (status: number) => Promise<Replacement | null>,
): void {
  // Captured from the response itself, so wrappers installed earlier (compression) stay in the chain.
  const writeHead = res.writeHead as (...args: unknown[]) => ServerResponse;
  const write = res.write as (...args: unknown[]) => boolean;
  const end = res.end as (...args: unknown[]) => ServerResponse;
  const flushHeaders = res.flushHeaders;
  const queue: Deferred[] = [];
  let state: "open" | "settling" | "passed" | "replaced" = "open";
  let explicitStatus: number | undefined;
  let owesDrain = false;

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

  const replace = (replacement: Replacement) => {
    state = "replaced";
    queue.length = 0;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    writeHead.call(res, replacement.status, replacement.headers);
    end.call(res, replacement.body);
  };

  const start = () => {
    if (state !== "open") return;
    state = "settling";
    settle(explicitStatus ?? res.statusCode).then(
      (replacement) => (replacement ? replace(replacement) : release()),
      (error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  };

  res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
    if (state === "passed") return writeHead.apply(res, args);
    if (state === "replaced") return res;
    const status = Number(args[0]);
    let message: string | undefined;
    let headers = args[1];
    if (typeof headers === "string") {
      message = headers;
      headers = args[2];
    }
    // Node gives writeHead's headers precedence over setHeader's; applying them now keeps that,
    // and lets the commit's headers (Cache-Control, Vary) be merged with them afterwards.
    applyHeaders(res, headers);
    explicitStatus = status;
    queue.push({ kind: "writeHead", status, message });
    return res;
  } as typeof res.writeHead;

  res.write = function (this: ServerResponse, ...args: unknown[]) {
    if (state === "passed") return write.apply(res, args);
    if (state === "replaced") return false;
    queue.push({ kind: "write", args });
    owesDrain = true;
    start();
    return false;
  } as typeof res.write;

  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (state === "passed") return end.apply(res, args);
    if (state === "replaced") return res;
    queue.push({ kind: "end", args });
    start();
    return res;
  } as typeof res.end;

  res.flushHeaders = function (this: ServerResponse) {
    if (state === "passed") return flushHeaders.call(res);
    if (state === "replaced") return;
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
    if (Number(requestHeader(req, "content-length") ?? "0") > limits.maxBytes)
      throw tooLarge(limits);
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
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (): Buffer => {
      clearTimeout(timer);
      req.off("readable", onReadable);
      req.off("error", onGone);
      req.off("aborted", onGone);
      const bytes = Buffer.concat(chunks);
      if (bytes.length > 0 && !req.destroyed) req.unshift(bytes);
      return bytes;
    };
    const fail = (error: CsrfBodyError) => {
      stop();
      reject(error);
    };
    const onGone = () => fail(new CsrfBodyError("body_unreadable", "form body could not be read"));
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
    const timer = setTimeout(
      () =>
        fail(
          new CsrfBodyError("body_timeout", `form body not received within ${limits.timeoutMs} ms`),
        ),
      limits.timeoutMs,
    );
    req.on("readable", onReadable);
    req.on("error", onGone);
    req.on("aborted", onGone);
  });
}
