import {
  BODY_CONSUMED,
  CsrfBodyError,
  checkDeclaredLength,
  formKind,
  readFormField,
  readLimited,
  withinDeadline,
} from "../core/csrf-form.js";
import type { CoatcheckResponse } from "../core/errors.js";
import type { Outcome } from "../core/pipeline.js";

/** Translating the pipeline's answers into Web `Response`s (Hono, and any fetch-style framework). */

/** A response coatcheck writes, as a fresh `Response`: no header of the app's can be in it. */
export function toResponse(answer: CoatcheckResponse): Response {
  return new Response(answer.status === 303 || answer.body === "" ? null : answer.body, {
    status: answer.status,
    headers: answer.headers,
  });
}

function write(headers: Headers, outcome: Outcome): void {
  for (const [name, value] of Object.entries(outcome.set)) headers.set(name, value);
  for (const [name, value] of outcome.append) headers.append(name, value);
}

/**
 * The app's response with the commit's headers, or coatcheck's replacement. Headers are set and
 * appended one by one on the response itself: other cookies stay beside the session cookie and the
 * app's other headers stay as they are. Immutable headers (`fetch()` results, `Response.redirect`)
 * throw on the first write; the response is then copied once and the same writes applied to the copy.
 */
export function applyOutcome(response: Response, outcome: Outcome): Response {
  if (outcome.response !== null) {
    const replacement = toResponse(outcome.response);
    write(replacement.headers, { ...outcome, set: {} });
    return replacement;
  }
  if (outcome.append.length === 0 && Object.keys(outcome.set).length === 0) return response;
  try {
    write(response.headers, outcome);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    write(copy.headers, outcome);
    return copy;
  }
}

/** A request with a body cache, as Hono's `c.req` has: a body read through it stays readable. */
export interface CachingRequest {
  readonly raw: Request;
  /** Body key → the promise of that reading (typed loosely: Hono declares the settled values). */
  bodyCache: object;
  arrayBuffer(): Promise<ArrayBuffer>;
}

type BodyCache = Partial<Record<"arrayBuffer" | "text" | "formData", Promise<unknown>>>;

/**
 * The form field through the request's own body cache, so the handler (and any middleware before
 * or after) still reads the body through it, whoever read it first. No `Request.clone()`: a
 * declared body is read with `arrayBuffer()` (which @hono/node-server reads straight from the
 * socket), an undeclared one as a bounded stream, and either is left in the cache.
 */
export function cachedFormField(
  req: CachingRequest,
  contentType: string | undefined,
): (name: string) => Promise<unknown> {
  let form: Promise<FormData | Uint8Array | null> | undefined;
  // Chained, not awaited: every checked form post runs this.
  return (name) => {
    form ??= readForm(req, contentType);
    return form.then((body) => {
      if (body === null) return undefined;
      if (body instanceof Uint8Array) return readFormField(body, contentType, name);
      const values = body.getAll(name);
      return values.length <= 1 ? values[0] : values;
    });
  };
}

function readForm(
  req: CachingRequest,
  contentType: string | undefined,
): Promise<FormData | Uint8Array | null> {
  try {
    if (formKind(contentType) === null) return NO_FORM;
    const cache = req.bodyCache as BodyCache;
    if (cache.formData) return withinDeadline(cache.formData as Promise<FormData>);
    if (cache.arrayBuffer)
      return withinDeadline(cache.arrayBuffer as Promise<ArrayBuffer>).then(asBytes);
    if (cache.text) return withinDeadline(cache.text as Promise<string>).then(encodeText);
    if (req.raw.bodyUsed) throw new CsrfBodyError("body_unreadable", BODY_CONSUMED);
    const declared = req.raw.headers.get("content-length") ?? undefined;
    checkDeclaredLength(declared);
    if (declared === undefined) return readStreamed(req, contentType);
    return withinDeadline(req.arrayBuffer()).then((buffer) => {
      const bytes = new Uint8Array(buffer);
      giveBack(req.raw, bytes, contentType);
      return bytes;
    });
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A body without Content-Length: read as a bounded stream, then left in the cache. */
async function readStreamed(req: CachingRequest, contentType: string | undefined) {
  const body = req.raw.body;
  const bytes = new Uint8Array(body === null ? new Uint8Array(0) : await readLimited(body));
  (req.bodyCache as BodyCache).arrayBuffer = Promise.resolve(bytes.buffer);
  giveBack(req.raw, bytes, contentType);
  return bytes;
}

const NO_FORM: Promise<null> = Promise.resolve(null);
const asBytes = (buffer: ArrayBuffer) => new Uint8Array(buffer);
const encodeText = (text: string) => TEXT.encode(text);

const READERS = ["arrayBuffer", "blob", "bytes", "formData", "json", "text"] as const;

/** Where a given-back request keeps the bytes the check read, and their Content-Type. */
const GIVEN = Symbol("coatcheck.body");
type GivenBack = Request & { [GIVEN]: { bytes: Uint8Array; contentType: string | undefined } };

function copyOf(raw: GivenBack): Response {
  const { bytes, contentType } = raw[GIVEN];
  return new Response(
    bytes.slice(),
    contentType ? { headers: { "content-type": contentType } } : {},
  );
}

/** The readers of a given-back request, on a prototype shared by every request of its kind. */
const GIVEN_BACK: PropertyDescriptorMap = {
  body: {
    configurable: true,
    get(this: GivenBack) {
      return copyOf(this).body;
    },
  },
  bodyUsed: { configurable: true, value: false },
  clone: {
    configurable: true,
    value(this: GivenBack) {
      const { bytes } = this[GIVEN];
      return new Request(this.url, {
        method: this.method,
        headers: this.headers,
        body: bytes.slice(),
      });
    },
  },
};
for (const reader of READERS) {
  GIVEN_BACK[reader] = {
    configurable: true,
    value(this: GivenBack) {
      return (copyOf(this)[reader] as () => unknown)();
    },
  };
}

/** One given-back prototype per request prototype (a handful per process). */
const givenBackProtos = new Map<object | null, object>();

/**
 * The check read the raw request's body; give the app a raw request that reads the same bytes
 * (`c.req.raw.text()`, `.formData()`, `.clone()`, `.body`), so nothing downstream can tell. The
 * request gets a prototype with those readers in front of its own, instead of nine properties of
 * its own per request.
 */
function giveBack(raw: Request, bytes: Uint8Array, contentType: string | undefined): void {
  const base = Object.getPrototypeOf(raw) as object | null;
  let proto = givenBackProtos.get(base);
  if (proto === undefined) {
    proto = Object.create(base, GIVEN_BACK) as object;
    givenBackProtos.set(base, proto);
  }
  (raw as GivenBack)[GIVEN] = { bytes, contentType };
  Object.setPrototypeOf(raw, proto);
}

const TEXT = new TextEncoder();
