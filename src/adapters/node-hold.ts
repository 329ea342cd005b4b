import { type OutgoingHttpHeaders, OutgoingMessage, ServerResponse } from "node:http";
import type { CoatcheckResponse } from "../core/errors.js";
import type { Outcome } from "../core/pipeline.js";
import { headerText } from "./node-headers.js";

/**
 * Holding a Node `http` response (Express) until the session is committed, so its headers are
 * added before the first byte leaves: the methods shared on `ServerResponse.prototype`, or put on
 * a response of its own, and the per-request {@link HoldSlot} they find the hold in.
 */

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
 * Commits the session for the response's status, given a reader of its headers: the outcome, at
 * once when the commit has no store work.
 */
export type Settle = (
  status: number,
  header: (name: string) => string | undefined,
) => Outcome | Promise<Outcome>;

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
export function holdUntilSettled(res: ServerResponse, settle: Settle, slot: HoldSlot): void {
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
function newHold(settle: Settle, from: Methods): Hold {
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
  readonly settle: Settle;
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
  const settled = hold.settle(hold.explicitStatus ?? res.statusCode, (name) =>
    headerText(res.getHeader(name)),
  );
  // A commit without store work settles at once: the response goes out in the same call.
  if (!(settled instanceof Promise)) {
    proceed(res, hold, settled);
    return;
  }
  settled.then(
    (outcome) => proceed(res, hold, outcome),
    (error: unknown) => {
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    },
  );
}

/** Send what was queued with the outcome's headers, or the outcome's response instead. */
function proceed(res: Held, hold: Hold, outcome: Outcome): void {
  if (outcome.response !== null) {
    replace(res, hold, outcome, outcome.response);
    return;
  }
  apply(res, hold, outcome);
  try {
    release(res, hold);
  } catch (error) {
    refuseQueued(res, hold, outcome, error);
  }
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

/** The plain answer when the app's own held output cannot be written. */
const SERVER_ERROR = "Internal Server Error";

/**
 * The app's held output threw as it was let through after the commit (Node refused its status
 * code or status message): outside the handler, so no error handler of the app's can answer. When
 * nothing has gone out yet, a plain 500 with the commit's headers (the session was saved: its
 * cookie must reach the browser) and none of the app's; otherwise the connection is dropped, since
 * the response already started cannot be framed.
 */
function refuseQueued(res: Held, hold: Hold, outcome: Outcome, error: unknown): void {
  hold.queue.length = 0;
  if (nativeHeadersSent.call(res) || res.writableEnded) {
    res.destroy(error instanceof Error ? error : new Error(String(error)));
    return;
  }
  for (const name of res.getHeaderNames()) hold.removeHeader.call(res, name);
  apply(res, hold, outcome);
  // Node keeps a refused status message on the response: this head names its own.
  hold.writeHead.call(res, 500, SERVER_ERROR, {
    "content-type": "text/plain; charset=utf-8",
    "content-length": String(SERVER_ERROR.length),
    "cache-control": "no-store",
  });
  hold.end.call(res, SERVER_ERROR);
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
