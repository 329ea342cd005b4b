import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { HeaderTarget } from "./web.js";

/**
 * Pieces shared by the adapters that sit on Node's `http` objects (Express, Fastify): header
 * access and holding a response until the session is committed.
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
