import {
  type IncomingMessage,
  type OutgoingHttpHeaders,
  OutgoingMessage,
  ServerResponse,
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
  timeoutError,
  tooLarge,
} from "../core/csrf-form.js";
import type { CoatcheckResponse } from "../core/errors.js";
import type { Outcome, PipelineRequest } from "../core/pipeline.js";
import { socketFacts } from "../core/proxy.js";

/**
 * Pieces shared by the adapters that sit on Node's `http` objects (Express, Fastify): the request
 * as the pipeline's input, holding a response until the session is committed, and reading one form
 * field for the CSRF check without taking the body away from the app's own parsers.
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
  slot: HoldSlot,
): void {
  const methods = res as unknown as Record<string, unknown>;
  if (slot.hold !== undefined || (res as Partial<Held>)[HOLD] !== undefined) {
    // Held already (a second `session()` on the same request, a sub-app with its own): this hold
    // gets closures of its own and leaves the first hold where it is, whose methods are now this
    // hold's originals, so the two nest as separate layers.
    const hold = newHold(settle, methods);
    const outerSent = Object.getOwnPropertyDescriptor(res, "headersSent")?.get;
    Object.defineProperty(res, "headersSent", {
      configurable: true,
      get(this: ServerResponse) {
        return hold.state !== "open" || (outerSent ?? nativeHeadersSent).call(this);
      },
    });
    for (const [name, run] of RUN)
      methods[name] = function (this: Held, ...args: unknown[]) {
        return run(hold, this, args);
      };
    return;
  }
  if ((res.req as Partial<SlotCarrier> | undefined)?.[SLOT] === slot && canShare(res)) {
    // The shared methods on `ServerResponse.prototype` find this hold in the request's slot
    // (`res.req`); the originals are Node's.
    slot.hold = newHold(settle, NATIVE);
    return;
  }
  // A wrapper of the app's own is on the response (compression), or it is not a Node `http`
  // response: the methods become the response's own properties, in front of the wrapper, which
  // stays in the chain. Own properties, never a prototype of the response's own: Express swaps the
  // response's prototype on the way into and out of a mounted sub-app, which would drop them.
  (res as Held)[HOLD] = newHold(settle, methods);
  Object.defineProperty(res, "headersSent", HEADERS_SENT);
  for (const [name, method] of SHARED) methods[name] = method;
}

/**
 * The record an adapter keeps on each request under {@link SLOT} (Express: its middleware's
 * record). A response held through the methods shared on `ServerResponse.prototype` keeps its hold
 * there, found through `res.req`, so holding adds no property to the response: Express gives every
 * request and response a prototype of its own app, after which V8 makes a new hidden class for each
 * property added to that object (about 1.3 KB allocated, and a call into the runtime, each time).
 * An adapter that replaces the record (a second middleware) carries `hold` over.
 */
export interface HoldSlot {
  hold: object | undefined;
}

/** The symbol a request's {@link HoldSlot} is kept under. */
export const SLOT = Symbol("coatcheck.request");
type SlotCarrier = { [SLOT]: HoldSlot };

/** The shared hold of a response, from its request's slot (see {@link HoldSlot}). */
function sharedHold(res: ServerResponse): Hold | undefined {
  return (res.req as Partial<SlotCarrier> | undefined)?.[SLOT]?.hold as Hold | undefined;
}

type Methods = Record<string, unknown>;

/** A hold whose originals come from `from` (the response itself, or the prototype below ours). */
function newHold(
  settle: (status: number, header: (name: string) => string | undefined) => Promise<Outcome>,
  from: Methods,
): Hold {
  return {
    settle,
    writeHead: from.writeHead as (...args: unknown[]) => ServerResponse,
    write: from.write as (...args: unknown[]) => boolean,
    end: from.end as (...args: unknown[]) => ServerResponse,
    flushHeaders: from.flushHeaders as () => void,
    setHeader: from.setHeader as (...args: unknown[]) => unknown,
    appendHeader: from.appendHeader as (...args: unknown[]) => unknown,
    removeHeader: from.removeHeader as (...args: unknown[]) => unknown,
    queue: [],
    state: "open",
    ended: false,
    explicitStatus: undefined,
    owesDrain: false,
    ours: false,
  };
}

/** The names a hold takes over, and `headersSent`. */
const TAKEN = [
  "writeHead",
  "write",
  "end",
  "flushHeaders",
  "setHeader",
  "appendHeader",
  "removeHeader",
  "headersSent",
];

/**
 * Node's own methods, below the shared ones: looked up at each hold, so a method patched later on
 * `OutgoingMessage.prototype` (an APM agent) is the one called. `writeHead` is
 * `ServerResponse.prototype`'s own, kept from before the shared one replaced it.
 */
const NATIVE: Methods = {};

let shared = false;
let lastProto: object | null = null;
let lastShares = false;

/**
 * Whether `res` can be held through the methods shared on `ServerResponse.prototype`, which find
 * each response's hold in its request's slot (see {@link HoldSlot}). Adding seven methods to each response as its own properties
 * cost more CPU than the rest of a session read. Shared on Node's own prototype, they are in the
 * chain of every response, whatever prototype Express (any copy of it) gives the response on the
 * way into a sub-app. Not when the response has methods of its own in front (a wrapper), when a
 * prototype between it and Node's defines one of them, or when it is not an `http` response.
 */
function canShare(res: ServerResponse): boolean {
  for (const name of TAKEN) if (Object.hasOwn(res, name)) return false;
  const proto = Object.getPrototypeOf(res) as object | null;
  if (proto !== lastProto) {
    let ok = false;
    for (let p = proto; p !== null; p = Object.getPrototypeOf(p)) {
      if (p === ServerResponse.prototype) {
        ok = true;
        break;
      }
      if (TAKEN.some((name) => Object.hasOwn(p as object, name))) break;
    }
    lastProto = proto;
    lastShares = ok;
  }
  if (lastShares && !shared) share();
  return lastShares;
}

/** Put the held methods and `headersSent` on `ServerResponse.prototype`, once per process. */
function share(): void {
  shared = true;
  const level = ServerResponse.prototype as unknown as Methods;
  const below = Object.getPrototypeOf(level) as Methods;
  const nativeWriteHead = level.writeHead;
  for (const [name, run] of RUN) {
    const original = () =>
      (name === "writeHead" ? nativeWriteHead : below[name]) as (...a: unknown[]) => unknown;
    Object.defineProperty(NATIVE, name, { get: original });
    Object.defineProperty(level, name, {
      configurable: true,
      writable: true,
      value: function (this: Held, ...args: unknown[]) {
        const hold = sharedHold(this);
        return hold === undefined ? original().apply(this, args) : run(hold, this, args);
      },
    });
  }
  Object.defineProperty(level, "headersSent", {
    configurable: true,
    get(this: Held) {
      const hold = sharedHold(this);
      return (hold !== undefined && hold.state !== "open") || nativeHeadersSent.call(this);
    },
  });
}

const HOLD = Symbol("coatcheck.hold");

/** The state of one held response (see {@link holdUntilSettled}). */
interface Hold {
  readonly settle: (
    status: number,
    header: (name: string) => string | undefined,
  ) => Promise<Outcome>;
  readonly writeHead: (...args: unknown[]) => ServerResponse;
  readonly write: (...args: unknown[]) => boolean;
  readonly end: (...args: unknown[]) => ServerResponse;
  readonly flushHeaders: () => void;
  readonly setHeader: (...args: unknown[]) => unknown;
  readonly appendHeader: (...args: unknown[]) => unknown;
  readonly removeHeader: (...args: unknown[]) => unknown;
  readonly queue: Deferred[];
  state: "open" | "held" | "settling" | "passed" | "replaced";
  ended: boolean;
  explicitStatus: number | undefined;
  owesDrain: boolean;
  /** Our own header writes (Node's setters call each other through the response). */
  ours: boolean;
}
type Held = ServerResponse & { [HOLD]: Hold };

const HEADERS_SENT: PropertyDescriptor = {
  configurable: true,
  get(this: Held) {
    return this[HOLD].state !== "open" || nativeHeadersSent.call(this);
  },
};

type Run = (hold: Hold, res: Held, args: unknown[]) => unknown;

function headerSetter(pick: (hold: Hold) => (...args: unknown[]) => unknown): Run {
  return (hold, res, args) => {
    if (hold.state !== "open" && hold.state !== "passed" && !hold.ours) throw headersError();
    return pick(hold).apply(res, args);
  };
}

function heldWriteHead(hold: Hold, res: Held, args: unknown[]): ServerResponse {
  if (hold.state === "passed") return hold.writeHead.apply(res, args);
  if (hold.state === "replaced" || hold.ended) return res;
  const status = Number(args[0]);
  let message: string | undefined;
  let headers = args[1];
  if (typeof headers === "string") {
    message = headers;
    headers = args[2];
  }
  // Node gives writeHead's headers precedence over setHeader's; applying them now keeps that,
  // and lets the commit's headers (Cache-Control, Vary) be merged with them afterwards.
  if (hold.state === "open") applyHeaders(res, headers);
  hold.explicitStatus = status;
  hold.queue.push({ kind: "writeHead", status, message });
  if (hold.state === "open") hold.state = "held";
  return res;
}

function heldWrite(hold: Hold, res: Held, args: unknown[]): boolean {
  if (hold.state === "passed") return hold.write.apply(res, args);
  if (hold.state === "replaced" || hold.ended) return false;
  hold.queue.push({ kind: "write", args });
  hold.owesDrain = true;
  start(res, hold);
  return false;
}

function heldEnd(hold: Hold, res: Held, args: unknown[]): ServerResponse {
  if (hold.state === "passed") return hold.end.apply(res, args);
  if (hold.state === "replaced" || hold.ended) return res;
  hold.ended = true;
  hold.queue.push({ kind: "end", args });
  start(res, hold);
  return res;
}

function heldFlushHeaders(hold: Hold, res: Held): void {
  if (hold.state === "passed") {
    hold.flushHeaders.call(res);
    return;
  }
  if (hold.state === "replaced" || hold.ended) return;
  hold.queue.push({ kind: "flushHeaders", args: [] });
  start(res, hold);
}

/** What each held method does, given its hold. */
const RUN: ReadonlyArray<readonly [string, Run]> = Object.entries({
  setHeader: headerSetter((hold) => hold.setHeader),
  appendHeader: headerSetter((hold) => hold.appendHeader),
  removeHeader: headerSetter((hold) => hold.removeHeader),
  writeHead: heldWriteHead,
  write: heldWrite,
  end: heldEnd,
  flushHeaders: heldFlushHeaders,
} satisfies Record<string, Run>);

/** The same methods, shared by every response held once: they find the hold under HOLD. */
const SHARED = RUN.map(
  ([name, run]) =>
    [
      name,
      function (this: Held, ...args: unknown[]) {
        return run(this[HOLD], this, args);
      },
    ] as const,
);

/** The first write or end: settle, then send what was queued (or the outcome's response). */
function start(res: Held, hold: Hold): void {
  if (hold.state !== "open" && hold.state !== "held") return;
  hold.state = "settling";
  hold
    .settle(hold.explicitStatus ?? res.statusCode, (name) => headerText(res.getHeader(name)))
    .then(
      (outcome) => {
        if (outcome.response !== null) return replace(res, hold, outcome, outcome.response);
        apply(res, hold, outcome);
        release(res, hold);
      },
      (error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
}

function apply(res: Held, hold: Hold, outcome: Outcome, replacing?: CoatcheckResponse): void {
  hold.ours = true;
  try {
    if (replacing !== undefined) {
      for (const name of res.getHeaderNames()) hold.removeHeader.call(res, name);
      for (const [name, value] of Object.entries(replacing.headers))
        hold.setHeader.call(res, name, value);
    } else {
      for (const [name, value] of Object.entries(outcome.set))
        hold.setHeader.call(res, name, value);
    }
    for (const [name, value] of outcome.append) hold.appendHeader.call(res, name, value);
  } finally {
    hold.ours = false;
  }
}

function release(res: Held, hold: Hold): void {
  hold.state = "passed";
  for (const call of hold.queue) {
    if (call.kind === "writeHead") {
      if (call.message === undefined) hold.writeHead.call(res, call.status);
      else hold.writeHead.call(res, call.status, call.message);
    } else if (call.kind === "write") {
      hold.write.apply(res, call.args);
    } else if (call.kind === "end") {
      hold.end.apply(res, call.args);
    } else {
      hold.flushHeaders.call(res);
    }
  }
  hold.queue.length = 0;
  if (hold.owesDrain && !res.writableNeedDrain && !res.writableEnded) res.emit("drain");
}

function replace(res: Held, hold: Hold, outcome: Outcome, answer: CoatcheckResponse): void {
  hold.state = "replaced";
  hold.queue.length = 0;
  if (nativeHeadersSent.call(res)) {
    res.destroy();
    return;
  }
  apply(res, hold, outcome, answer);
  hold.writeHead.call(res, answer.status);
  hold.end.call(res, answer.body);
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
  const peek: BodyPeek = { bytes: undefined };
  return (name) => fieldOf(req, parsed, limits, peek, name);
}

/** The bytes of a request's body once read for the CSRF check, shared by its field reads. */
interface BodyPeek {
  bytes: Promise<Uint8Array> | undefined;
}

/**
 * One field for {@link nodeFormField}. No `async`: a form post's check calls it once, and the
 * promise machinery of an async function was most of what it allocated.
 */
function fieldOf(
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
    return peek.bytes.then((bytes) => formFieldFromBytes(bytes, contentType, name));
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
