import { createHash } from "node:crypto";
import { channel } from "node:diagnostics_channel";

/**
 * What coatcheck does, published on `node:diagnostics_channel`. Subscribe with
 * `diagnostics_channel.subscribe(name, listener)`; the names are stable. Publishing checks
 * `hasSubscribers` first and builds nothing when nobody listens, so an app that does not subscribe
 * pays one property read per event.
 *
 * No message carries a session id, a cookie or a CSRF token. Sessions appear as `session`, a short
 * hash of the id: enough to follow one session through the events of a request, useless as a cookie.
 */
export const EVENTS = Object.freeze({
  /** A new session was stored. `{ session }` */
  created: "coatcheck:session:created",
  /** A request read its session from the store. `{ session, found }` (`found: false`: unknown or expired) */
  loaded: "coatcheck:session:loaded",
  /** A request's changes were written. `{ session, action }` */
  saved: "coatcheck:session:saved",
  /** A session was deleted by its own request (`destroy()`, emptied). `{ session }` */
  destroyed: "coatcheck:session:destroyed",
  /** A session got a new id. `{ from, to }` */
  cycled: "coatcheck:session:cycled",
  /**
   * A session was ended from elsewhere (by its user from another session, a password change, the
   * per-user limit, an admin). `{ session, reason }`, reason one of `user`, `others`,
   * `password-changed`, `limit`, `admin`, `all`.
   */
  revoked: "coatcheck:session:revoked",
  /** A request offered a session cookie that was not used. `{ reason }` */
  cookieRejected: "coatcheck:cookie:rejected",
  /** The CSRF check refused a request. `{ reason, method, path }` */
  csrfRejected: "coatcheck:csrf:rejected",
  /** A store operation failed, timed out, or was refused by the open breaker. `{ operation, kind, message }` */
  storeError: "coatcheck:store:error",
  /** A request waited for a session's lock. `{ session, waitedMs }` */
  lockWait: "coatcheck:lock:wait",
  /** A request gave up waiting for a session's lock. `{ session, waitedMs }` */
  lockTimeout: "coatcheck:lock:timeout",
});

/** The name of one of coatcheck's channels. */
export type EventName = (typeof EVENTS)[keyof typeof EVENTS];

/** Why a session cookie was not used. */
export type CookieRejection = "malformed" | "duplicate" | "unknown";

/** Why a store operation failed. */
export type StoreErrorKind = "error" | "timeout" | "breaker-open";

/** Message shapes, by channel. */
export interface EventMessages {
  "coatcheck:session:created": { session: string };
  "coatcheck:session:loaded": { session: string; found: boolean };
  "coatcheck:session:saved": { session: string; action: string };
  "coatcheck:session:destroyed": { session: string };
  "coatcheck:session:cycled": { from: string; to: string };
  "coatcheck:session:revoked": { session: string; reason: string };
  "coatcheck:cookie:rejected": { reason: CookieRejection };
  "coatcheck:csrf:rejected": { reason: string; method: string; path: string };
  "coatcheck:store:error": { operation: string; kind: StoreErrorKind; message: string };
  "coatcheck:lock:wait": { session: string; waitedMs: number };
  "coatcheck:lock:timeout": { session: string; waitedMs: number };
}

const channels = new Map(Object.values(EVENTS).map((name) => [name, channel(name)]));

/** True when someone listens on `name`: check before building a message. */
export function listening(name: EventName): boolean {
  return (channels.get(name) as ReturnType<typeof channel>).hasSubscribers;
}

/**
 * Publish on `name`. The message is built by `make` only when someone listens. A listener that
 * throws does not reach the request (diagnostics_channel reports it on the next tick as an
 * uncaught exception, as for any listener).
 */
export function publish<N extends EventName>(name: N, make: () => EventMessages[N]): void {
  const ch = channels.get(name) as ReturnType<typeof channel>;
  if (ch.hasSubscribers) ch.publish(make());
}

/**
 * A short, stable hash of a session id for logs and events: 12 hex characters of its SHA-256.
 * It tells two sessions apart and lets one be followed; it cannot be turned back into a cookie.
 */
export function idHash(id: string): string {
  return createHash("sha256").update(id).digest("hex").slice(0, 12);
}
