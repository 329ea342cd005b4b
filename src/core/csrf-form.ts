/**
 * Reading one form field for the CSRF check without taking the body away from the app. Only
 * `application/x-www-form-urlencoded` and `multipart/form-data` bodies are read (media types compared
 * case-insensitively, RFC 9110 §8.3.1); a token is never taken from the query string, a cookie or any
 * other body type. The read is bounded in size and time, so a huge or stalled body cannot hold the
 * request or the process.
 */

import { DeadlineQueue } from "./deadlines.js";

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

/** The form kind of a Content-Type header, or null for anything that is not a form. */
export function formKind(
  contentType: string | null | undefined,
): "urlencoded" | "multipart" | null {
  if (typeof contentType !== "string") return null;
  const essence = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  if (essence === "application/x-www-form-urlencoded") return "urlencoded";
  if (essence === "multipart/form-data") return "multipart";
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
export async function formFieldFromBytes(
  bytes: Uint8Array,
  contentType: string | null | undefined,
  name: string,
): Promise<unknown> {
  const kind = formKind(contentType);
  if (kind === null) return undefined;
  if (kind === "urlencoded") {
    // The same parser the Fetch spec uses for urlencoded bodies, without building a Response.
    const values = new URLSearchParams(UTF8.decode(bytes)).getAll(name);
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  }
  let form: FormData;
  try {
    const body = new Uint8Array(bytes);
    form = await new Response(body, {
      headers: { "content-type": contentType as string },
    }).formData();
  } catch {
    return undefined;
  }
  const values = form.getAll(name);
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
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
