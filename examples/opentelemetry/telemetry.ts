import { subscribe, unsubscribe } from "node:diagnostics_channel";
import type { Attributes, Meter } from "@opentelemetry/api";
import { EVENTS } from "coatcheck";

/**
 * Turn coatcheck's diagnostics_channel events into OpenTelemetry metrics. Call it once at start-up
 * with a meter from your SDK; it returns a function that unsubscribes.
 *
 * - `coatcheck.session.events` (counter, attribute `event`: created, loaded, saved, destroyed,
 *   cycled, revoked)
 * - `coatcheck.cookie.rejected` (counter, `reason`: malformed, duplicate, unknown): a sudden rise is
 *   someone guessing ids, worth a rate limit
 * - `coatcheck.csrf.rejected` (counter, `reason`, `method`)
 * - `coatcheck.store.errors` (counter, `operation`, `kind`: error, timeout, breaker-open)
 * - `coatcheck.lock.wait` (histogram, ms) and `coatcheck.lock.timeouts` (counter)
 */
export function instrumentCoatcheck(meter: Meter): () => void {
  const sessionEvents = meter.createCounter("coatcheck.session.events", {
    description: "Session lifecycle events",
  });
  const cookieRejected = meter.createCounter("coatcheck.cookie.rejected", {
    description: "Session cookies offered but not used",
  });
  const csrfRejected = meter.createCounter("coatcheck.csrf.rejected", {
    description: "Requests refused by the CSRF check",
  });
  const storeErrors = meter.createCounter("coatcheck.store.errors", {
    description: "Store operations that failed, timed out or were refused by the breaker",
  });
  const lockWait = meter.createHistogram("coatcheck.lock.wait", {
    description: "Time spent waiting for a session lock",
    unit: "ms",
  });
  const lockTimeouts = meter.createCounter("coatcheck.lock.timeouts", {
    description: "Requests that gave up waiting for a session lock",
  });

  const listeners: Array<[string, (message: unknown) => void]> = [
    [EVENTS.created, () => sessionEvents.add(1, { event: "created" })],
    [EVENTS.loaded, () => sessionEvents.add(1, { event: "loaded" })],
    [EVENTS.saved, () => sessionEvents.add(1, { event: "saved" })],
    [EVENTS.destroyed, () => sessionEvents.add(1, { event: "destroyed" })],
    [EVENTS.cycled, () => sessionEvents.add(1, { event: "cycled" })],
    [EVENTS.revoked, () => sessionEvents.add(1, { event: "revoked" })],
    [EVENTS.cookieRejected, (m) => cookieRejected.add(1, pick(m, "reason"))],
    [EVENTS.csrfRejected, (m) => csrfRejected.add(1, pick(m, "reason", "method"))],
    [EVENTS.storeError, (m) => storeErrors.add(1, pick(m, "operation", "kind"))],
    [EVENTS.lockWait, (m) => lockWait.record((m as { waitedMs: number }).waitedMs)],
    [EVENTS.lockTimeout, () => lockTimeouts.add(1)],
  ];
  for (const [name, listener] of listeners) subscribe(name, listener);
  return () => {
    for (const [name, listener] of listeners) unsubscribe(name, listener);
  };
}

/** The named string fields of an event message, as metric attributes (paths are left out: unbounded). */
function pick(message: unknown, ...keys: string[]): Attributes {
  const attributes: Attributes = {};
  for (const key of keys) {
    const value = (message as Record<string, unknown>)[key];
    if (typeof value === "string") attributes[key] = value;
  }
  return attributes;
}
