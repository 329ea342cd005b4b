import { loadConfig, type SessionConfig, type SessionOptions } from "./core/config.js";
import { type EngineOptions, type Logger, SessionEngine } from "./core/engine.js";
import { consoleLogger } from "./core/log.js";
import type { SessionStore } from "./core/store.js";
import { MemoryStore } from "./stores/memory.js";
import { postgresStoreFromConfig } from "./stores/postgres-url.js";
import { redisStoreFromConfig } from "./stores/redis-url.js";

/**
 * Everything an adapter needs to build a session engine: configuration (from `config.toml`, options
 * and the environment), an optional store, and engine options.
 */
export interface CoatcheckOptions extends SessionOptions, EngineOptions {
  /** Path of a `config.toml` holding a `[session]` table. */
  configFile?: string;
  /** A store instance; default: built from `storage` (memory, Redis from `redis_url`, PostgreSQL from `postgres_url`). */
  store?: SessionStore;
  /** Environment for `COATCHECK_SESSION__…` overrides; default `process.env`. */
  env?: Record<string, string | undefined>;
}

/**
 * Build a {@link SessionEngine} once, at start-up. Configuration problems throw here, never on a
 * request. Adapters call this for you; call it yourself to share one engine between apps.
 *
 * @example
 * ```ts
 * const engine = createSessionEngine({ configFile: "config.toml" });
 * ```
 */
export function createSessionEngine(options: CoatcheckOptions = {}): SessionEngine {
  const { configFile, store, env, now, logger, ...sessionOptions } = options;
  const log = logger ?? consoleLogger;
  // Configuration messages carry their own "[coatcheck]" prefix for people reading a console.
  const warn = (m: string) => log.warn({}, m.replace(/^\[coatcheck\] /, ""));
  const config = loadConfig({
    ...(configFile !== undefined ? { file: configFile } : {}),
    options: sessionOptions,
    ...(env !== undefined ? { env } : {}),
    warn,
  });
  if (
    store === undefined &&
    config.storage === "memory" &&
    (env ?? process.env).NODE_ENV === "production"
  ) {
    warn(
      '[coatcheck] WARNING: storage = "memory" with NODE_ENV=production. Sessions live in this process only: a restart signs everybody out, and several instances do not share them. Set storage = "redis" and redis_url.',
    );
  }
  return new SessionEngine(config, store ?? storeFor(config, log), {
    ...(now ? { now } : {}),
    ...(logger ? { logger } : {}),
  });
}

function storeFor(config: SessionConfig, logger: Logger): SessionStore {
  if (config.storage === "redis") return redisStoreFromConfig(config, logger);
  if (config.storage === "postgres") return postgresStoreFromConfig(config, logger);
  return new MemoryStore({ maxSessions: config.maxSessions });
}

/** Accept an engine or options: adapters take either. */
export function engineFrom(input: CoatcheckOptions | SessionEngine | undefined): SessionEngine {
  return input instanceof SessionEngine ? input : createSessionEngine(input);
}
