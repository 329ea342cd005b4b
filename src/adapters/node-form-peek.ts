import type { IncomingMessage } from "node:http";
import {
  armDeadline,
  BODY_CONSUMED,
  CsrfBodyError,
  checkDeclaredLength,
  DEFAULT_FORM_LIMITS,
  type FormLimits,
  formKind,
  readFormField,
  timeoutError,
  tooLarge,
} from "../core/csrf-form.js";
import { requestHeader } from "./node-headers.js";

/**
 * Reading one form field for the CSRF check on a Node request stream (Express, Fastify) without
 * taking the body away from the app's own parsers: a bounded peek whose bytes are put back.
 */

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
  const peek: BodyPeek = { bytes: undefined };
  return (name) => fieldOf(req, parsed, limits, peek, name);
}

/** The bytes of a request's body once read for the CSRF check, shared by its field reads. */
export interface BodyPeek {
  bytes: Promise<Uint8Array> | undefined;
}

/**
 * One field for {@link nodeFormField}. No `async`: a form post's check calls it once, and the
 * promise machinery of an async function was most of what it allocated.
 */
export function fieldOf(
  req: IncomingMessage,
  parsed: () => unknown,
  limits: FormLimits,
  peek: BodyPeek,
  name: string,
): Promise<unknown> {
  try {
    const contentType = requestHeader(req, "content-type");
    const kind = formKind(contentType);
    if (kind === null) return Promise.resolve(undefined);
    const body = parsed();
    if (isRecord(body) && (req.readableEnded || Object.hasOwn(body, name))) {
      const value = Object.hasOwn(body, name) ? body[name] : undefined;
      return Promise.resolve(kind === "multipart" ? unwrapField(value) : value);
    }
    if (req.readableEnded || req.readableFlowing === true)
      throw new CsrfBodyError("body_unreadable", BODY_CONSUMED);
    checkDeclaredLength(requestHeader(req, "content-length"), limits);
    peek.bytes ??= peekBody(req, limits);
    return peek.bytes.then((bytes) => readFormField(bytes, contentType, name));
  } catch (error) {
    return Promise.reject(error);
  }
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
    const cancel = armDeadline(limits.timeoutMs, () => fail(timeoutError(limits)));
    req.on("readable", onReadable);
    req.on("error", onGone);
    req.on("aborted", onGone);
    req.on("end", onEnd);
  });
}
