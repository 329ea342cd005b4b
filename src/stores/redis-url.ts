import { createRequire } from "node:module";
import type { SessionConfig } from "../core/config.js";
import type { Logger } from "../core/engine.js";
import { ConfigError } from "../core/errors.js";
import { type NodeRedisClientLike, RedisStore } from "./redis.js";

/** The part of node-redis's `createClient` result this factory uses. */
interface OwnedClient extends NodeRedisClientLike {
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "ready", listener: () => void): unknown;
  connect(): Promise<unknown>;
  destroy(): void;
}

interface NodeRedisModule {
  createClient(options: Record<string, unknown>): OwnedClient;
}

/** Longest pause between reconnect attempts: recovery is noticed within about this long. */
const MAX_RECONNECT_DELAY_MS = 2000;

/**
 * Exponential back-off capped at {@link MAX_RECONNECT_DELAY_MS}, with jitter so that many app
 * instances do not reconnect in lock-step. It never gives up: the store recovers by itself.
 */
export function reconnectDelay(retries: number): number {
  return (
    Math.min(50 * 2 ** Math.min(retries, 10), MAX_RECONNECT_DELAY_MS) +
    Math.floor(Math.random() * 100)
  );
}

/**
 * Build the store for `storage = "redis"`: a node-redis client from `redis_url`
 * (`redis://[user:pass@]host:port[/db]`, `rediss://` for TLS), owned by the store.
 *
 * The client never queues commands while disconnected (`disableOfflineQueue`): a request during an
 * outage fails at once with 503 instead of waiting for a connection that may never come. Connecting
 * happens in the background; requests before it is up get 503 too.
 *
 * Throws {@link ConfigError} at start-up when the `redis` package is not installed.
 *
 * @param load Module loader; tests pass one that fails.
 */
export function redisStoreFromConfig(
  config: SessionConfig,
  logger: Logger,
  load: (name: string) => unknown = createRequire(import.meta.url),
): RedisStore {
  let redis: NodeRedisModule;
  try {
    redis = load("redis") as NodeRedisModule;
  } catch (cause) {
    throw new ConfigError(
      "session.storage",
      'is "redis", which needs the "redis" package (node-redis): run `npm install redis`. ' +
        'Or pass `store: new RedisStore(client)` from "coatcheck/redis" with an ioredis client.',
      { cause },
    );
  }
  const client = redis.createClient({
    url: config.redisUrl,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: Math.max(1000, config.operationTimeoutMs),
      reconnectStrategy: reconnectDelay,
    },
  });
  // node-redis emits "error" on every failed attempt; report the outage once, and its end.
  let down = false;
  client.on("error", (error) => {
    if (down) return;
    down = true;
    logger.error(
      `[coatcheck] Redis connection failed (${error.message}); session requests answer 503 until it is back`,
    );
  });
  client.on("ready", () => {
    if (!down) return;
    down = false;
    logger.warn("[coatcheck] Redis connection restored");
  });
  // Rejects only when the client is destroyed before it ever connected; "error" reports the rest.
  const connected = client.connect();
  connected.catch(() => {});
  return new RedisStore(client, {
    ready: connected,
    keyPrefix: config.keyPrefix,
    logger,
    onClose: () => client.destroy(),
  });
}
