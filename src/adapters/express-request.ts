import type { Response } from "express";
import expressModule from "express";
import { MissingMiddlewareError } from "../core/errors.js";
import type { Exchange } from "../core/pipeline.js";
import { type HoldSlot, holdUntilSettled, SLOT } from "./node-hold.js";
import { assignOwnSession } from "./node-request.js";

/**
 * How the Express middleware attaches a request's exchange: `req.session` is an accessor on the
 * request prototype, and the exchange is opened and the response held for the commit only once the
 * session is first used (`req.session`, `getSession`, `getCsrfToken`, a guard, the lock or the CSRF
 * check), so a route that never uses it pays one property store.
 */

export const MISSING = (): MissingMiddlewareError =>
  new MissingMiddlewareError(
    "Express",
    'app.use(session()) from "coatcheck/express", before the routes that use it',
  );

/**
 * Opens a request's exchange (one function per middleware, shared by its requests); `method` is
 * `req.method` as the middleware saw it, before any method override.
 */
export type Opener = (req: object, method: string) => Exchange;

/**
 * What the middleware attaches to a request; the exchange is opened at the session's first use.
 * One object per request, under node-hold's `SLOT`, where the response's hold is kept too.
 */
class Attached implements HoldSlot {
  exchange: Exchange | undefined = undefined;
  hold: object | undefined = undefined;
  constructor(
    public open: Opener,
    public res: Response,
    public method: string,
  ) {}
}
type Carrier = { [SLOT]?: Attached };

/**
 * express-session asks `req.session` for "is there a session yet?" before it sets its own; it
 * must read `undefined` there, in any app of the process. Asked only on the error path.
 */
function askedByExpressSession(): boolean {
  const stack = new Error().stack ?? "";
  return /[\\/]express-session[\\/]/.test(stack);
}

/**
 * The request's exchange, or undefined outside the middleware; the first use opens it and holds
 * the response for the commit.
 */
export function use(req: object): Exchange | undefined {
  const attached = (req as Carrier)[SLOT];
  if (attached === undefined) return undefined;
  if (attached.exchange !== undefined) return attached.exchange;
  const exchange = attached.open(req, attached.method);
  attached.exchange = exchange;
  const { res } = attached;
  // Used only once output has left: commit now (nothing to save yet), so later changes throw.
  if (res.headersSent) void exchange.finish(res.statusCode, () => undefined);
  else holdUntilSettled(res, (status, header) => exchange.end(status, header), attached);
  return exchange;
}

const accessor: PropertyDescriptor = {
  configurable: true,
  get(this: object) {
    const exchange = use(this);
    if (exchange !== undefined) return exchange.session;
    if (askedByExpressSession()) return undefined;
    throw MISSING();
  },
  // Another middleware assigning `req.session` gets a plain property, as without coatcheck.
  set: assignOwnSession,
};

/** Put the `req.session` accessor on `proto`'s chain (Express 4 and 5 have their own prototypes). */
export function guardPrototype(proto: object | null): void {
  for (let p = proto; p !== null; p = Object.getPrototypeOf(p)) {
    if (Object.getOwnPropertyDescriptor(p, "session")?.get === accessor.get) return;
  }
  if (proto !== null && !Object.hasOwn(proto, "session"))
    Object.defineProperty(proto, "session", accessor);
}
guardPrototype(expressModule.request);

/** The last request prototype seen (one per app); checked again only when another app's comes. */
let guarded: object | null = null;

/**
 * Attach the middleware to the request: `open` makes its exchange at the session's first use. A
 * second `session()` on the same request (a sub-app's) takes the record over and keeps its hold.
 */
export function attach(req: object, res: Response, open: Opener, method: string): void {
  const proto = Object.getPrototypeOf(req) as object | null;
  if (proto !== guarded) {
    guardPrototype(proto);
    guarded = proto;
  }
  const attached = (req as Carrier)[SLOT];
  if (attached === undefined) {
    (req as Carrier)[SLOT] = new Attached(open, res, method);
    return;
  }
  attached.open = open;
  attached.res = res;
  attached.method = method;
  attached.exchange = undefined;
}
