/**
 * Expiry arithmetic, shared by the engine and every store (DESIGN §3).
 *
 * A record carries its own deadlines so that any store, and any app instance, can enforce them
 * without knowing the configuration that created it:
 * - `absoluteAt`: hard cap, epoch ms (0 = none; only when `expiry_secs = 0` and an idle timeout is set);
 * - `idleMs`: idle timeout in ms (0 = none), renewed by loads (see {@link IDLE_RENEWAL_FRACTION}).
 */

/** Browsers cap cookie lifetimes at 400 days (RFC 6265bis §5.5); so do we, for the override too. */
export const MAX_LIFETIME_SECS = 400 * 24 * 60 * 60;
/** How long a browser-session record (`expiry_secs = 0`) lives when no idle timeout is set. */
export const BROWSER_SESSION_FALLBACK_SECS = 86_400;

/** Metadata persisted with each record. Short names: it is stored once per session. */
export interface SessionMeta {
  /** Created, epoch ms. */
  createdAt: number;
  /** Absolute deadline, epoch ms; 0 = none. */
  absoluteAt: number;
  /** Idle timeout, ms; 0 = none. */
  idleMs: number;
  /** Per-session lifetime override in seconds (remember-me); absent = the configured one. */
  maxAgeSecs?: number;
}

/** The lifetime settings the engine derives from configuration. */
export interface ExpiryPolicy {
  expirySecs: number;
  inactivityTimeoutSecs: number;
}

/** Metadata for a session created (or given a new lifetime) at `now`. */
export function newMeta(policy: ExpiryPolicy, now: number, maxAgeSecs?: number): SessionMeta {
  const idleMs = policy.inactivityTimeoutSecs * 1000;
  let lifetime: number;
  if (maxAgeSecs !== undefined) lifetime = maxAgeSecs;
  else if (policy.expirySecs > 0) lifetime = policy.expirySecs;
  else lifetime = idleMs > 0 ? 0 : BROWSER_SESSION_FALLBACK_SECS;
  const meta: SessionMeta = {
    createdAt: now,
    absoluteAt: lifetime > 0 ? now + lifetime * 1000 : 0,
    idleMs,
  };
  if (maxAgeSecs !== undefined) meta.maxAgeSecs = maxAgeSecs;
  return meta;
}

/**
 * When a record touched at `now` dies: the earlier of its absolute deadline and `now + idle`.
 * Every store sets its own TTL from this on each load and write.
 */
export function deadlineOf(meta: SessionMeta, now: number): number {
  const idle = meta.idleMs > 0 ? now + meta.idleMs : Number.POSITIVE_INFINITY;
  const absolute = meta.absoluteAt > 0 ? meta.absoluteAt : Number.POSITIVE_INFINITY;
  return Math.min(idle, absolute);
}

/**
 * A load renews a record's idle deadline only when the renewal would move it later by more than
 * this fraction of the idle timeout, so most reads of a busy session write nothing. A session
 * therefore expires between `idleMs × (1 − fraction)` and `idleMs` after its last request. Writes
 * always set the exact deadline.
 */
export const IDLE_RENEWAL_FRACTION = 0.1;

/**
 * Whether a load at `now` renews a record whose stored deadline is `stored`: true when the renewed
 * deadline (`deadlineOf`, capped) is later than `stored` by more than
 * {@link IDLE_RENEWAL_FRACTION} of the idle timeout. Every store applies this same rule.
 */
export function renewsIdle(idleMs: number, stored: number, renewed: number): boolean {
  return idleMs > 0 && renewed - stored > idleMs * IDLE_RENEWAL_FRACTION;
}

/** Cookie Max-Age in seconds for a session, or `undefined` for a browser-session cookie. */
export function cookieMaxAge(
  policy: ExpiryPolicy,
  meta: SessionMeta,
  now: number,
): number | undefined {
  if (meta.maxAgeSecs === undefined && policy.expirySecs === 0) return undefined;
  if (meta.absoluteAt === 0) return undefined;
  return Math.max(1, Math.ceil((meta.absoluteAt - now) / 1000));
}

/** Clamp a requested lifetime override to (0, 400 days]. Non-finite or non-positive → `undefined`. */
export function clampLifetime(secs: number): number | undefined {
  if (!Number.isFinite(secs) || secs <= 0) return undefined;
  return Math.min(Math.floor(secs), MAX_LIFETIME_SECS);
}

/** How far ahead of this server's clock another instance's clock may be (NTP keeps it far smaller). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

/**
 * Why stored metadata cannot have been written by an engine at or before `now`, or `null` when it
 * is plausible: created beyond the clock skew in the future, no deadline at all, or a deadline
 * beyond the 400-day cap. Such a record is corrupt (forged or damaged) and is never served.
 */
export function metaProblem(meta: SessionMeta, now: number): string | null {
  const limit = now + CLOCK_SKEW_MS;
  const cap = MAX_LIFETIME_SECS * 1000;
  const valid = (n: unknown) => typeof n === "number" && Number.isFinite(n) && n >= 0;
  if (!valid(meta.createdAt) || !valid(meta.absoluteAt) || !valid(meta.idleMs))
    return "metadata is not three non-negative numbers";
  if (meta.createdAt > limit) return "created in the future";
  if (meta.absoluteAt === 0 && meta.idleMs === 0) return "no deadline";
  if (meta.absoluteAt > limit + cap) return "a deadline beyond 400 days";
  if (meta.idleMs > cap) return "an idle timeout beyond 400 days";
  if (
    meta.maxAgeSecs !== undefined &&
    !(valid(meta.maxAgeSecs) && meta.maxAgeSecs <= MAX_LIFETIME_SECS)
  )
    return "a lifetime override beyond 400 days";
  return null;
}
