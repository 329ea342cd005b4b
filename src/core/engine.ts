import type { SessionConfig } from "./config.js";
import { readCookie } from "./cookie.js";
import type { StoreUnavailableError } from "./errors.js";
import type { ExpiryPolicy } from "./expiry.js";
import { isWellFormedId } from "./id.js";
import { type CommitResult, commit } from "./lifecycle.js";
import { Session } from "./session.js";
import { guardStore, type SessionStore, type StoreOperations } from "./store.js";

/** Where coatcheck reports problems it recovers from (corrupt records, store outages). */
export interface Logger {
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
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

  constructor(config: SessionConfig, store: SessionStore, options: EngineOptions = {}) {
    this.config = config;
    this.store = store;
    this.policy = {
      expirySecs: config.expirySecs,
      inactivityTimeoutSecs: config.inactivityTimeoutSecs,
    };
    this.logger = options.logger ?? console;
    this.now = options.now ?? Date.now;
    const ready = store.ready?.();
    if (ready) {
      const settle = () => {
        this.#warming = null;
      };
      this.#warming = ready.then(settle, settle);
    }
    this.guarded = guardStore(store, {
      timeoutMs: store.inProcess ? null : config.operationTimeoutMs,
      warming: () => this.#warming,
      report: (error) => this.logger.error(`[coatcheck] ${error.message}`, error.cause ?? ""),
    });
  }

  /**
   * Start a request's session from its Cookie header. Costs nothing: no store call happens until
   * the session is used. A missing, malformed, oversized or duplicated cookie means "no session".
   */
  open(cookieHeader: string | null | undefined): Session {
    const read = readCookie(cookieHeader, this.config.cookieName);
    const id = read.kind === "present" && isWellFormedId(read.value) ? read.value : null;
    return new Session(this, id);
  }

  /**
   * End a request: apply the decision table for a response with `status`, and return the headers to
   * add. Throws {@link StoreUnavailableError} when the save fails; answer 503 then.
   */
  commit(session: Session, status: number): Promise<CommitResult> {
    return commit(this, session, status);
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
