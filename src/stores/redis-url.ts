import { createRequire } from "node:module";
import type { SessionConfig } from "../core/config.js";
import type { Logger } from "../core/engine.js";
import { ConfigError } from "../core/errors.js";
import {
  type NodeRedisClientLike,
  type NodeRedisClusterLike,
  type NodeRedisSentinelLike,
  type RedisClientLike,
  RedisStore,
} from "./redis.js";

/** What every node-redis client kind (client, cluster, sentinel) has and this factory uses. */
interface Owned {
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  connect(): Promise<unknown>;
  destroy(): unknown;
}
type OwnedClient = Owned & NodeRedisClientLike;
type OwnedCluster = Owned &
  NodeRedisClusterLike & {
    _slots?: { rediscover?(startWith: { options: Record<string, unknown> }): Promise<void> };
  };
type OwnedSentinel = Owned & NodeRedisSentinelLike;

interface NodeRedisModule {
  createClient(options: Record<string, unknown>): OwnedClient;
  createCluster(options: Record<string, unknown>): OwnedCluster;
  createSentinel(options: Record<string, unknown>): OwnedSentinel;
}

/** Longest pause between reconnect attempts: recovery is noticed within about this long. */
const MAX_RECONNECT_DELAY_MS = 2000;
/** A cluster re-reads its slot map at most this often while commands fail. */
const REDISCOVER_EVERY_MS = 250;

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

/** The Redis deployment the configuration describes. */
export type RedisTopology =
  | { kind: "node"; url: string }
  | { kind: "cluster"; nodes: string[] }
  | { kind: "sentinel"; sentinels: Array<{ host: string; port: number }>; name: string };

const hasCredentials = (url: string) => {
  const u = new URL(url);
  return u.username !== "" || u.password !== "";
};

/**
 * Which Redis the configuration points at: one node (`redis_url`), a Cluster
 * (`redis_cluster_nodes`) or Sentinel (`redis_sentinels` + `redis_sentinel_name`). Throws
 * {@link ConfigError} naming the key for a setup that is half there or given twice.
 */
export function redisTopologyOf(input: SessionConfig): RedisTopology {
  // A configuration built by hand (tests, older callers) may lack the newer keys: read them as unset.
  const config: SessionConfig = {
    ...input,
    redisClusterNodes: input.redisClusterNodes ?? [],
    redisSentinels: input.redisSentinels ?? [],
    redisWaitReplicas: input.redisWaitReplicas ?? 0,
    redisWaitTimeoutMs: input.redisWaitTimeoutMs ?? 500,
  };
  const given = [
    config.redisUrl !== undefined ? "redis_url" : "",
    config.redisClusterNodes.length > 0 ? "redis_cluster_nodes" : "",
    config.redisSentinels.length > 0 ? "redis_sentinels" : "",
  ].filter(Boolean);
  if (given.length > 1) {
    throw new ConfigError(
      `session.${given[1]}`,
      `is set together with ${given[0]}; set exactly one of redis_url (one node), redis_cluster_nodes (Cluster) or redis_sentinels (Sentinel)`,
    );
  }
  const sentinelAuth =
    config.redisSentinelPassword !== undefined
      ? "redis_sentinel_password"
      : config.redisSentinelUsername !== undefined
        ? "redis_sentinel_username"
        : undefined;
  if (given[0] !== "redis_sentinels") {
    const stray = config.redisSentinelName !== undefined ? "redis_sentinel_name" : sentinelAuth;
    if (stray !== undefined) {
      throw new ConfigError(
        "session.redis_sentinels",
        `is required with ${stray} (the sentinels' addresses, e.g. ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"])`,
      );
    }
  }
  if (config.redisUsername !== undefined && config.redisPassword === undefined) {
    throw new ConfigError("session.redis_password", "is required with redis_username");
  }
  if (config.redisSentinelUsername !== undefined && config.redisSentinelPassword === undefined) {
    throw new ConfigError(
      "session.redis_sentinel_password",
      "is required with redis_sentinel_username",
    );
  }
  const urls = config.redisUrl !== undefined ? [config.redisUrl] : config.redisClusterNodes;
  if (config.redisPassword !== undefined && urls.some(hasCredentials)) {
    throw new ConfigError(
      "session.redis_password",
      "is set while a Redis URL carries credentials too; keep them in one place",
    );
  }
  if (config.redisWaitReplicas > 0 && config.redisWaitTimeoutMs >= config.operationTimeoutMs) {
    throw new ConfigError(
      "session.redis_wait_timeout_ms",
      `got ${config.redisWaitTimeoutMs}; must be below operation_timeout_ms (${config.operationTimeoutMs}), or requests time out before the replicas answer`,
    );
  }
  if (given[0] === "redis_sentinels") {
    if (config.redisSentinelName === undefined) {
      throw new ConfigError(
        "session.redis_sentinel_name",
        "is required with redis_sentinels (the name in the sentinels' `sentinel monitor <name> …`)",
      );
    }
    const sentinels = config.redisSentinels.map((a) => {
      const at = a.lastIndexOf(":");
      return { host: a.slice(0, at).replace(/^\[(.*)\]$/, "$1"), port: Number(a.slice(at + 1)) };
    });
    return { kind: "sentinel", sentinels, name: config.redisSentinelName };
  }
  if (given[0] === "redis_cluster_nodes")
    return { kind: "cluster", nodes: config.redisClusterNodes };
  return { kind: "node", url: config.redisUrl as string };
}

/** Reports an outage once when it starts and once when it ends, not on every failed attempt. */
function outageLog(logger: Logger) {
  let down = false;
  return {
    failed(error: unknown) {
      if (down) return;
      down = true;
      const reason = error instanceof Error ? error.message : String(error);
      logger.error(
        {},
        `Redis connection failed (${reason}); session requests answer 503 until it is back`,
      );
    },
    restored() {
      if (!down) return;
      down = false;
      logger.warn({}, "Redis connection restored");
    },
  };
}

/**
 * Build the store for `storage = "redis"`, owning a node-redis client built from the
 * configuration: `createClient` for `redis_url`, `createCluster` for `redis_cluster_nodes`,
 * `createSentinel` for `redis_sentinels` (see {@link redisTopologyOf}).
 *
 * Every client fails fast rather than queue (`disableOfflineQueue`): a request during an outage
 * fails with 503 instead of waiting for a connection that may never come; a Sentinel client holds
 * commands while it looks up a new primary, which the engine cuts off at `operation_timeout_ms`.
 * Connecting happens in the background and reconnects never give up. A cluster re-reads its slot
 * map when commands fail (node-redis alone only does on MOVED), so a promoted replica is found.
 * The store's `close()` destroys the client.
 *
 * Throws {@link ConfigError} at start-up when the `redis` package is not installed or the Redis
 * keys are incomplete.
 *
 * @param load Module loader; tests pass one that fails.
 */
export function redisStoreFromConfig(
  config: SessionConfig,
  logger: Logger,
  load: (name: string) => unknown = createRequire(import.meta.url),
): RedisStore {
  const topology = redisTopologyOf(config);
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
  const log = outageLog(logger);
  const socket = {
    connectTimeout: Math.max(1000, config.operationTimeoutMs),
    reconnectStrategy: reconnectDelay,
  };
  const auth = {
    ...(config.redisUsername !== undefined ? { username: config.redisUsername } : {}),
    ...(config.redisPassword !== undefined ? { password: config.redisPassword } : {}),
  };
  const built = build(redis, topology, config, socket, auth, log);
  // Rejects only when the client is destroyed before it ever connected; "error" reports the rest.
  const connected = built.connect();
  connected.catch(() => {});
  return new RedisStore(built.client, {
    ready: connected,
    keyPrefix: config.keyPrefix,
    logger,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    onClose: async () => {
      await built.close();
    },
  });
}

interface Built {
  client: RedisClientLike;
  connect(): Promise<unknown>;
  close(): unknown;
}

function build(
  redis: NodeRedisModule,
  topology: RedisTopology,
  config: SessionConfig,
  socket: Record<string, unknown>,
  auth: Record<string, string>,
  log: ReturnType<typeof outageLog>,
): Built {
  if (topology.kind === "node") {
    const client = redis.createClient({
      url: topology.url,
      ...auth,
      disableOfflineQueue: true,
      socket,
    });
    client.on("error", (error) => log.failed(error));
    client.on("ready", () => log.restored());
    return {
      client,
      connect: () => client.connect(),
      close: () => client.destroy(),
    };
  }
  if (topology.kind === "cluster") return buildCluster(redis, topology.nodes, socket, auth, log);
  return buildSentinel(redis, topology, config, socket, auth, log);
}

function buildCluster(
  redis: NodeRedisModule,
  nodes: string[],
  socket: Record<string, unknown>,
  auth: Record<string, string>,
  log: ReturnType<typeof outageLog>,
): Built {
  // Credentials and TLS of the seed URLs apply to every node the cluster reports.
  const seed = new URL(nodes.find(hasCredentials) ?? (nodes[0] as string));
  const defaults = {
    ...(seed.username !== "" ? { username: decodeURIComponent(seed.username) } : {}),
    ...(seed.password !== "" ? { password: decodeURIComponent(seed.password) } : {}),
    ...auth,
    disableOfflineQueue: true,
    socket: { ...socket, ...(nodes.some((n) => n.startsWith("rediss:")) ? { tls: true } : {}) },
  };
  const cluster = redis.createCluster({ rootNodes: nodes.map((url) => ({ url })), defaults });
  let last = 0;
  const rediscover = () => {
    const now = performance.now();
    if (now - last < REDISCOVER_EVERY_MS) return;
    last = now;
    const url = nodes[Math.floor(Math.random() * nodes.length)] as string;
    cluster._slots?.rediscover?.({ options: { url } })?.catch(() => {});
  };
  // A new node client (a promoted replica) is up; an outage on one node is over when it is.
  cluster.on("node-ready", () => log.restored());
  cluster.on("node-error", (error) => {
    log.failed(error);
    rediscover();
  });
  const client: NodeRedisClusterLike = {
    get masters() {
      return cluster.masters;
    },
    async sendCommand(key, readonly, args) {
      try {
        return await cluster.sendCommand(key, readonly, args);
      } catch (error) {
        if (!(error instanceof Error) || !/^(NOSCRIPT|ERR|WRONGTYPE)/.test(error.message))
          rediscover();
        throw error;
      }
    },
  };
  cluster.on("error", (error) => log.failed(error));
  return {
    client,
    connect: () => connectUntilUp(() => cluster.connect()),
    close: () => cluster.destroy(),
  };
}

function buildSentinel(
  redis: NodeRedisModule,
  topology: Extract<RedisTopology, { kind: "sentinel" }>,
  config: SessionConfig,
  socket: Record<string, unknown>,
  auth: Record<string, string>,
  log: ReturnType<typeof outageLog>,
): Built {
  const options = {
    name: topology.name,
    sentinelRootNodes: topology.sentinels,
    // One pipelined connection to the primary: a WAIT follows its write on the same connection.
    masterPoolSize: 1,
    passthroughClientErrorEvents: true,
    nodeClientOptions: { ...auth, disableOfflineQueue: true, socket },
    sentinelClientOptions: {
      ...(config.redisSentinelUsername !== undefined
        ? { username: config.redisSentinelUsername }
        : {}),
      ...(config.redisSentinelPassword !== undefined
        ? { password: config.redisSentinelPassword }
        : {}),
      socket,
    },
  };
  const create = () => {
    const s = redis.createSentinel(options);
    s.on("error", (error) => log.failed(error));
    return s;
  };
  let sentinel = create();
  let closed = false;
  const client: NodeRedisSentinelLike = {
    getMasterNode: () => sentinel.getMasterNode(),
    async sendCommand(readonly, args) {
      const reply = await sentinel.sendCommand(readonly, args);
      log.restored();
      return reply;
    },
  };
  // A node-redis Sentinel whose first connection fails (no sentinel answers for a while) gives up
  // and cannot connect again: start over with a new one until one connects.
  const connect = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        await sentinel.connect();
        return;
      } catch (error) {
        if (closed) throw error;
        log.failed(error);
        Promise.resolve(sentinel.destroy()).catch(() => {});
        await new Promise((r) => setTimeout(r, reconnectDelay(attempt)));
        if (closed) throw error;
        sentinel = create();
      }
    }
  };
  return {
    client,
    connect,
    close: () => {
      closed = true;
      return sentinel.destroy();
    },
  };
}

/** A cluster's first connect fails when no seed answers; retry until one does. */
async function connectUntilUp(connect: () => Promise<unknown>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await connect();
      return;
    } catch (error) {
      if (error instanceof Error && /closed/i.test(error.message)) throw error;
      await new Promise((r) => setTimeout(r, reconnectDelay(attempt)));
    }
  }
}
