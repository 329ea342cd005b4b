import { Breaker } from "./breaker.js";
import type { SessionConfig } from "./config.js";
import { readCookie } from "./cookie.js";
import { ConfigError, type StoreUnavailableError } from "./errors.js";
import { EVENTS, publish, type StoreErrorKind } from "./events.js";
import type { ExpiryPolicy } from "./expiry.js";
import { generateId, isWellFormedId } from "./id.js";
import { type CommitResult, commit } from "./lifecycle.js";
import { BurstLimiter, consoleLogger, type Logger } from "./log.js";
import { Session } from "./session.js";
import { guardStore, hasUserIndex, type SessionStore, type StoreOperations } from "./store.js";
import {
  isHandle,
  listSessions,
  type RevokeReason,
  revokeSessions,
  type SessionListing,
} from "./user-index.js";

export type { LogFields, Logger } from "./log.js";

/** A recurring problem of one kind is logged once per this many ms, with a count of the rest. */
const BURST_WINDOW_MS = 10_000;

/** What {@link SessionEngine.ready} answers. */
export interface EngineHealth {
  /** The store answered in time. */
  ok: boolean;
  /** The circuit breaker's state: `closed` (normal), `open` (refusing), `probing`. */
  breaker: "closed" | "open" | "probing";
  /** Why not, when `ok` is false. */
  reason?: string;
}

/** Options of {@link SessionEngine} beyond the configuration. */
export interface EngineOptions {
  /** Clock in epoch ms; tests pass a fake one. */
  now?: () => number;
  logger?: Logger;
}

/**
 * The framework-free core: opens a {@link Session} from a Cookie header and, at the end of the
 * request, commits it and says which headers the response needs. Adapters are thin wrappers around
 * {@link SessionEngine.open} and {@link SessionEngine.commit}.
 */
export class SessionEngine {
  readonly config: SessionConfig;
  readonly store: SessionStore;
  readonly policy: ExpiryPolicy;
  readonly logger: Logger;
  readonly now: () => number;
  /** Monotonic ms, for waits; unaffected by a fake `now`. */
  readonly monotonic = () => performance.now();
  /**
   * @internal The store's operations behind the one timeout guard (none for an in-process store):
   * a failure or a late reply becomes a {@link StoreUnavailableError}, logged once.
   */
  readonly guarded: StoreOperations;
  /** The store's first-connection promise, until it settles. */
  #warming: Promise<void> | null = null;
  #closed: Promise<void> | null = null;
  /** Refuses store operations at once while the store stalls; null for in-process stores. */
  readonly #breaker: Breaker | null;
  /** One log line per kind of recurring problem per burst, not one per request during an outage. */
  readonly #bursts: BurstLimiter;

  constructor(config: SessionConfig, store: SessionStore, options: EngineOptions = {}) {
    this.config = config;
    this.store = store;
    this.policy = {
      expirySecs: config.expirySecs,
      inactivityTimeoutSecs: config.inactivityTimeoutSecs,
    };
    this.logger = options.logger ?? consoleLogger;
    this.now = options.now ?? Date.now;
    const ready = store.ready?.();
    if (ready) {
      const settle = () => {
        this.#warming = null;
      };
      this.#warming = ready.then(settle, settle);
    }
    this.#breaker =
      store.inProcess || config.breakerThreshold === 0
        ? null
        : new Breaker(
            {
              threshold: config.breakerThreshold,
              openMs: config.breakerOpenMs,
              maxOpenMs: Math.max(config.breakerOpenMs, config.breakerMaxOpenMs),
            },
            this.monotonic,
          );
    this.#bursts = new BurstLimiter(BURST_WINDOW_MS, this.monotonic);
    if (config.maxSessionsPerUser > 0 && !hasUserIndex(store)) {
      throw new ConfigError(
        "session.max_sessions_per_user",
        "needs a store that keeps a user index (memory, Redis, PostgreSQL); this one has none",
      );
    }
    this.guarded = guardStore(store, {
      timeoutMs: store.inProcess ? null : config.operationTimeoutMs,
      warming: () => this.#warming,
      breaker: this.#breaker,
      report: (error, operation, kind) => this.#reportStoreError(error, operation, kind),
    });
  }

  #reportStoreError(error: StoreUnavailableError, operation: string, kind: StoreErrorKind): void {
    publish(EVENTS.storeError, () => ({ operation, kind, message: error.message }));
    this.logBurst("error", `store:${kind}`, error.message, error.cause);
  }

  /**
   * @internal Log a problem that recurs under load (a store outage, a wave of CSRF rejections) at
   * most once per 10 s for each `key`, saying how many were left out since the last line.
   */
  logBurst(level: "warn" | "error", key: string, message: string, detail?: unknown): void {
    const suppressed = this.#bursts.admit(key);
    if (suppressed === null) return;
    const more = suppressed > 0 ? ` (${suppressed} similar since the last report)` : "";
    this.logger[level](detail === undefined ? {} : { err: detail }, `${message}${more}`);
  }

  /**
   * A readiness check for your orchestrator's probe: `{ ok: true }` when the store answers within
   * `operation_timeout_ms`, else `{ ok: false, reason }`. It never throws and never takes longer
   * than the operation timeout. While the breaker is open (the store stalled and has not answered
   * a probe yet) it answers `ok: false` at once, without touching the store. It reads a random id
   * that names no session, so it changes nothing.
   *
   * @example
   * ```ts
   * app.get("/ready", async (c) => {
   *   const health = await engine.ready();
   *   return c.json(health, health.ok ? 200 : 503);
   * });
   * ```
   */
  async ready(): Promise<EngineHealth> {
    const breaker = this.#breaker?.state ?? "closed";
    try {
      await this.guarded.load(generateId(), this.now());
      return { ok: true, breaker: this.#breaker?.state ?? "closed" };
    } catch (error) {
      return { ok: false, breaker, reason: (error as Error).message };
    }
  }

  /**
   * The live sessions of `userId`, newest sign-in first (`current` is always false here): for admin
   * tools and background jobs. In a request, use `AuthSession.listSessions()`.
   *
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  listUserSessions(userId: string): Promise<SessionListing[]> {
    return listSessions(this, userId, null);
  }

  /**
   * End the session of `userId` named by `handle`: its next request, on any instance, is
   * anonymous. Returns `false` when no live session of that user has the handle (a malformed
   * handle, or another user's, revokes nothing). `reason` is what `coatcheck:session:revoked`
   * reports (default `"admin"`).
   *
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  async revokeUserSession(
    userId: string,
    handle: string,
    options: { reason?: RevokeReason } = {},
  ): Promise<boolean> {
    if (!isHandle(handle)) return false;
    const reason = options.reason ?? "admin";
    return (await revokeSessions(this, userId, { handles: [handle] }, reason)) > 0;
  }

  /**
   * End every session of `userId`, or every one but `exceptHandle`'s (e.g. on a password reset, an
   * account lock). Returns how many were ended. `reason` is what `coatcheck:session:revoked`
   * reports (default `"all"`).
   *
   * @throws IndexUnsupportedError when the store keeps no user index.
   */
  revokeUserSessions(
    userId: string,
    options: { exceptHandle?: string; reason?: RevokeReason } = {},
  ): Promise<number> {
    const keep = options.exceptHandle ?? null;
    return revokeSessions(this, userId, { allExcept: keep }, options.reason ?? "all");
  }

  /**
   * Start a request's session from its Cookie header. Costs nothing: no store call happens until
   * the session is used. A missing, malformed, oversized or duplicated cookie means "no session".
   */
  open(cookieHeader: string | null | undefined): Session {
    const read = readCookie(cookieHeader, this.config.cookieName);
    if (read.kind === "absent") return new Session(this, null);
    if (read.kind === "present" && isWellFormedId(read.value)) return new Session(this, read.value);
    const reason = read.kind === "duplicate" ? "duplicate" : "malformed";
    publish(EVENTS.cookieRejected, () => ({ reason }));
    return new Session(this, null);
  }

  /**
   * End a request: apply the decision table for a response with `status`, and return the headers to
   * add. Throws {@link StoreUnavailableError} when the save fails; answer 503 then. With
   * `secure = "auto"`, `overHttps` says whether the request came over HTTPS (asked only when a
   * cookie is set; without it the cookie is not `Secure`).
   */
  commit(session: Session, status: number, overHttps?: () => boolean): Promise<CommitResult> {
    return commit(this, session, status, overHttps);
  }

  /**
   * Shut down: close the store, which releases what coatcheck opened itself (the Redis client built
   * from `redis_url`, the memory store's records). A client you created and passed to
   * `new RedisStore(client)` stays open: close it yourself. Call it once your server has stopped
   * taking requests; calling it again returns the same promise. The Fastify plugin calls it in
   * `onClose` for the engine it built.
   *
   * @example
   * ```ts
   * const engine = createSessionEngine({ configFile: "config.toml" });
   * app.use(session(engine));
   * const server = app.listen(3000);
   * process.on("SIGTERM", () => server.close(() => void engine.close()));
   * ```
   */
  close(): Promise<void> {
    this.#closed ??= Promise.resolve(this.store.close?.()).then(() => {});
    return this.#closed;
  }
}
