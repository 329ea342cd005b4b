/**
 * Reading one form field for the CSRF check without taking the body away from the app. Only
 * `application/x-www-form-urlencoded` and `multipart/form-data` bodies are read (media types compared
 * case-insensitively, RFC 9110 §8.3.1); a token is never taken from the query string, a cookie or any
 * other body type. The read is bounded in size and time, so a huge or stalled body cannot hold the
 * request or the process.
 */

import { DeadlineQueue } from "./deadlines.js";
import { equalsLower, isHttpSpace } from "./http-text.js";

/** Limits on the body read done for the CSRF check. */
export interface FormLimits {
  /** Most bytes read; a larger form is rejected (send the token in the header instead). */
  maxBytes: number;
  /** Longest wait for the whole body; a slower one is rejected. */
  timeoutMs: number;
}

/** 1 MiB and 30 s: far above any login or settings form, far below what could hurt the server. */
export const DEFAULT_FORM_LIMITS: Readonly<FormLimits> = Object.freeze({
  maxBytes: 1024 * 1024,
  timeoutMs: 30_000,
});

/** Why a form body could not be read for the check. */
export type FormBodyProblem = "body_too_large" | "body_timeout" | "body_unreadable";

/** Thrown by form readers; {@link verifyCsrf} turns it into a 403 with this reason. */
export class CsrfBodyError extends Error {
  readonly reason: FormBodyProblem;
  constructor(reason: FormBodyProblem, message: string) {
    super(message);
    this.name = "CsrfBodyError";
    this.reason = reason;
  }
}

const UTF8 = new TextDecoder();

const URLENCODED = "application/x-www-form-urlencoded";
const MULTIPART = "multipart/form-data";

/**
 * The form kind of a Content-Type header, or null for anything that is not a form. The media type
 * (before any `;`), without surrounding HTTP whitespace, compared case-insensitively. No copy of
 * the header is made: every checked request asks.
 */
export function formKind(
  contentType: string | null | undefined,
): "urlencoded" | "multipart" | null {
  if (typeof contentType !== "string") return null;
  if (contentType === URLENCODED) return "urlencoded";
  let end = contentType.indexOf(";");
  if (end === -1) end = contentType.length;
  let start = 0;
  while (start < end && isHttpSpace(contentType.charCodeAt(start))) start++;
  while (end > start && isHttpSpace(contentType.charCodeAt(end - 1))) end--;
  const length = end - start;
  if (length === URLENCODED.length && equalsLower(contentType, start, URLENCODED))
    return "urlencoded";
  if (length === MULTIPART.length && equalsLower(contentType, start, MULTIPART)) return "multipart";
  return null;
}

/**
 * One timer per distinct limit for every body read in flight (see {@link DeadlineQueue}), instead
 * of a `setTimeout` per request: arming and clearing one per form post was a visible share of the
 * check's cost. Limits come from configuration, so there are few of them.
 */
const queues = new Map<number, DeadlineQueue>();

/**
 * Call `expire` once `timeoutMs` have passed, unless the returned cancel runs first. Shared by the
 * body readers of every adapter (see {@link withinDeadline}).
 */
export function armDeadline(timeoutMs: number, expire: () => void): () => void {
  let queue = queues.get(timeoutMs);
  if (queue === undefined) {
    queue = new DeadlineQueue(timeoutMs);
    queues.set(timeoutMs, queue);
  }
  const deadline = queue.add(expire);
  return () => deadline.settle();
}

/** @internal The `body_timeout` refusal, for every body reader of the check. */
export function timeoutError(limits: FormLimits): CsrfBodyError {
  return new CsrfBodyError("body_timeout", `form body not received within ${limits.timeoutMs} ms`);
}

/** A promise that rejects with `body_timeout` after `limits.timeoutMs`, and its cancel. */
function deadline(limits: FormLimits): { expired: Promise<never>; cancel(): void } {
  let cancel = () => {};
  const expired = new Promise<never>((_, reject) => {
    cancel = armDeadline(limits.timeoutMs, () => reject(timeoutError(limits)));
  });
  return { expired, cancel };
}

/** Read a Web stream completely, failing past `limits`. Cancels the stream on failure. */
export async function readLimited(
  stream: ReadableStream<Uint8Array>,
  limits: FormLimits = DEFAULT_FORM_LIMITS,
): Promise<Uint8Array> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const timeout = deadline(limits);
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), timeout.expired]);
      if (done) break;
      total += value.byteLength;
      if (total > limits.maxBytes) throw tooLarge(limits);
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    if (error instanceof CsrfBodyError) throw error;
    throw new CsrfBodyError("body_unreadable", "form body could not be read");
  } finally {
    timeout.cancel();
  }
  return Buffer.concat(chunks);
}

/** @internal The `body_too_large` refusal, for every body reader of the check. */
export function tooLarge(limits: FormLimits): CsrfBodyError {
  return new CsrfBodyError(
    "body_too_large",
    `form body over ${limits.maxBytes} bytes; send the CSRF token in the header instead`,
  );
}

/** Refuse a body whose declared `Content-Length` is over the limit before reading a byte of it. */
export function checkDeclaredLength(
  contentLength: string | null | undefined,
  limits: FormLimits = DEFAULT_FORM_LIMITS,
): void {
  if (Number(contentLength ?? "0") > limits.maxBytes) throw tooLarge(limits);
}

/**
 * Wait for a body read that the framework does itself (its length already checked), within
 * `limits.timeoutMs`; any failure becomes a {@link CsrfBodyError}.
 */
export function withinDeadline<T>(
  read: Promise<T>,
  limits: FormLimits = DEFAULT_FORM_LIMITS,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cancel = armDeadline(limits.timeoutMs, () => reject(timeoutError(limits)));
    read.then(
      (value) => {
        cancel();
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        reject(
          error instanceof CsrfBodyError
            ? error
            : new CsrfBodyError("body_unreadable", "form body could not be read"),
        );
      },
    );
  });
}

/**
 * The value(s) of field `name` in a form body: `undefined` when absent or not a form, the value when
 * it occurs once (a string, or a `File` for a file part), an array when it repeats. Never throws: a
 * malformed body reads as "absent", which the check rejects.
 */
export function formFieldFromBytes(
  bytes: Uint8Array,
  contentType: string | null | undefined,
  name: string,
): Promise<unknown> {
  return Promise.resolve(readFormField(bytes, contentType, name));
}

/**
 * @internal {@link formFieldFromBytes} with an urlencoded body's answer given at once (no promise):
 * the readers of the check call it inside a promise chain of their own.
 */
export function readFormField(
  bytes: Uint8Array,
  contentType: string | null | undefined,
  name: string,
): unknown {
  const kind = formKind(contentType);
  if (kind === null) return undefined;
  if (kind === "urlencoded") return urlencodedField(UTF8.decode(bytes), name);
  return multipartField(bytes, contentType as string, name);
}

async function multipartField(bytes: Uint8Array, contentType: string, name: string) {
  let form: FormData;
  try {
    const body = new Uint8Array(bytes);
    form = await new Response(body, { headers: { "content-type": contentType } }).formData();
  } catch {
    return undefined;
  }
  const values = form.getAll(name);
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

/** `%` and `+`: a part of an urlencoded body holding neither reads as itself. */
function needsDecoding(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 || c === 0x2b) return true;
  }
  return false;
}

/** One name or value of an urlencoded body, decoded as `URLSearchParams` decodes it. */
function decodePart(text: string, start: number, end: number): string {
  const raw = text.slice(start, end);
  if (!needsDecoding(text, start, end)) return raw;
  // A part holds no "&", so it is the only pair here, and "=" after the first one is its value's.
  return new URLSearchParams(`x=${raw}`).get("x") as string;
}

/**
 * The value(s) of `name` in an urlencoded body, as `new URLSearchParams(text).getAll(name)` gives
 * them (one value, an array when it repeats, `undefined` when absent), without parsing the pairs
 * of other names: only a name that could be `name` is decoded, and only its value is copied.
 */
export function urlencodedField(text: string, name: string): string | string[] | undefined {
  let found: string | string[] | undefined;
  const n = text.length;
  let start = 0;
  while (start < n) {
    let end = text.indexOf("&", start);
    if (end === -1) end = n;
    if (end > start) {
      let eq = text.indexOf("=", start);
      if (eq === -1 || eq > end) eq = end;
      const plain = !needsDecoding(text, start, eq);
      const same = plain
        ? eq - start === name.length && text.startsWith(name, start)
        : decodePart(text, start, eq) === name;
      if (same) {
        const value = eq < end ? decodePart(text, eq + 1, end) : "";
        if (found === undefined) found = value;
        else if (typeof found === "string") found = [found, value];
        else found.push(value);
      }
    }
    start = end + 1;
  }
  return found;
}

/** Message for a body that an earlier middleware consumed before the check could read it. */
export const BODY_CONSUMED =
  "the form body was consumed before the CSRF check; register the session middleware before body parsers, or send the token in the header";

/**
 * A `formField` for {@link CsrfRequest} over Web request parts. `openBody` returns a stream the
 * check may consume (a clone of the request body, so the app still reads the original), or null for
 * a request without a body; it throws {@link CsrfBodyError} when the body is gone already. The body
 * is read at most once per request, and only when asked.
 */
export function webFormField(
  headers: Headers,
  openBody: () => ReadableStream<Uint8Array> | null,
  limits: FormLimits = DEFAULT_FORM_LIMITS,
): (name: string) => Promise<unknown> {
  let bytes: Promise<Uint8Array | null> | undefined;
  const contentType = headers.get("content-type");
  const read = async (): Promise<Uint8Array | null> => {
    if (formKind(contentType) === null) return null;
    checkDeclaredLength(headers.get("content-length"), limits);
    const body = openBody();
    return body === null ? new Uint8Array(0) : readLimited(body, limits);
  };
  return async (name) => {
    bytes ??= read();
    const got = await bytes;
    return got === null ? undefined : formFieldFromBytes(got, contentType, name);
  };
}
