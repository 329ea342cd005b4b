import { Cluster } from "ioredis";
import { describe, expect, test } from "vitest";
import { loadConfig, type SessionOptions } from "../core/config.js";
import { ConfigError } from "../core/errors.js";
import { RedisStore } from "./redis.js";
import { redisStoreFromConfig, redisTopologyOf } from "./redis-url.js";

/** Which Redis the configuration describes, and the start-up errors of half-configured setups. */

const topology = (options: SessionOptions, env: Record<string, string> = {}) =>
  redisTopologyOf(loadConfig({ options: { storage: "redis", ...options }, env }));

function keyOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.key;
    throw error;
  }
  throw new Error("no ConfigError");
}

describe("redis topology from configuration", () => {
  test("one node, a cluster, Sentinel", () => {
    expect(topology({ redisUrl: "redis://h:6379" })).toEqual({
      kind: "node",
      url: "redis://h:6379",
    });
    expect(
      topology({}, { COATCHECK_SESSION__REDIS_CLUSTER_NODES: "redis://a:7000,redis://b:7001" }),
    ).toEqual({ kind: "cluster", nodes: ["redis://a:7000", "redis://b:7001"] });
    expect(
      topology(
        {},
        {
          COATCHECK_SESSION__REDIS_SENTINELS: "10.0.0.1:26379, [::1]:26380",
          COATCHECK_SESSION__REDIS_SENTINEL_NAME: "main",
        },
      ),
    ).toEqual({
      kind: "sentinel",
      name: "main",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "::1", port: 26380 },
      ],
    });
  });

  test.each<[string, SessionOptions, string]>([
    [
      "sentinels without the primary's name",
      { redisSentinels: ["a:1"] },
      "session.redis_sentinel_name",
    ],
    [
      "a primary's name without sentinels",
      { redisUrl: "redis://h", redisSentinelName: "m" },
      "session.redis_sentinels",
    ],
    [
      "sentinel auth without sentinels",
      { redisUrl: "redis://h", redisSentinelPassword: "x" },
      "session.redis_sentinels",
    ],
    [
      "a URL and cluster nodes",
      { redisUrl: "redis://h", redisClusterNodes: ["redis://a:1"] },
      "session.redis_cluster_nodes",
    ],
    [
      "cluster nodes and sentinels",
      { redisClusterNodes: ["redis://a:1"], redisSentinels: ["a:1"], redisSentinelName: "m" },
      "session.redis_sentinels",
    ],
    [
      "a username without a password",
      { redisUrl: "redis://h", redisUsername: "app" },
      "session.redis_password",
    ],
    [
      "a sentinel username without a password",
      { redisSentinels: ["a:1"], redisSentinelName: "m", redisSentinelUsername: "s" },
      "session.redis_sentinel_password",
    ],
    [
      "a password twice",
      { redisUrl: "redis://:p@h", redisPassword: "q" },
      "session.redis_password",
    ],
    [
      "a WAIT timeout past the operation timeout",
      { redisUrl: "redis://h", redisWaitReplicas: 1, redisWaitTimeoutMs: 1000 },
      "session.redis_wait_timeout_ms",
    ],
  ])("%s: ConfigError naming the key", (_name, options, key) => {
    expect(keyOf(() => topology(options))).toBe(key);
  });

  test("storage = redis needs redis_url, redis_cluster_nodes or redis_sentinels", () => {
    expect(keyOf(() => loadConfig({ options: { storage: "redis" }, env: {} }))).toBe(
      "session.redis_url",
    );
  });

  test("redis_wait_replicas refuses an ioredis Cluster (it sends WAIT to a random node)", () => {
    const io = new Cluster([{ host: "127.0.0.1", port: 1 }], { lazyConnect: true });
    expect(keyOf(() => new RedisStore(io, { waitReplicas: 1 }))).toBe(
      "session.redis_wait_replicas",
    );
    expect(new RedisStore(io)).toBeInstanceOf(RedisStore);
    io.disconnect();
  });
});

test("a Sentinel client whose first connection gave up is replaced until one connects; close destroys it", async () => {
  const made: string[] = [];
  const destroyed: number[] = [];
  const fake = {
    createSentinel(options: { name: string }) {
      const n = made.push(options.name);
      return {
        on() {},
        getMasterNode: () => undefined,
        sendCommand: async () => null,
        connect: () =>
          n === 1 ? Promise.reject(new Error("no sentinel answered")) : Promise.resolve(),
        destroy: async () => {
          destroyed.push(n);
        },
      };
    },
  };
  const errors: string[] = [];
  const store = redisStoreFromConfig(
    loadConfig({
      options: { storage: "redis", redisSentinels: ["127.0.0.1:1"], redisSentinelName: "main" },
      env: {},
    }),
    { error: (_f: unknown, m: string) => errors.push(m), warn() {} },
    () => fake,
  );
  await store.ready();
  expect(made).toEqual(["main", "main"]);
  expect(errors.join("\n")).toMatch(/no sentinel answered/);
  await store.close();
  expect(destroyed).toEqual([1, 2]); // the one that gave up, then the store's own on close
});

test.each<[string, SessionOptions]>([
  ["createClient", { redisUrl: "redis://127.0.0.1:1" }],
  ["createCluster", { redisClusterNodes: ["redis://127.0.0.1:1", "redis://127.0.0.1:2"] }],
  ["createSentinel", { redisSentinels: ["127.0.0.1:1"], redisSentinelName: "main" }],
])(
  "%s: built without offline queue, reconnecting by itself, destroyed by close",
  async (kind, options) => {
    const calls: Array<{ kind: string; options: Record<string, unknown> }> = [];
    let destroyed = 0;
    const make = (k: string) => (o: Record<string, unknown>) => {
      calls.push({ kind: k, options: o });
      return {
        on() {},
        masters: [],
        getMasterNode: () => undefined,
        sendCommand: async () => null,
        connect: async () => {},
        destroy: async () => {
          destroyed++;
        },
      };
    };
    const fake = {
      createClient: make("createClient"),
      createCluster: make("createCluster"),
      createSentinel: make("createSentinel"),
    };
    const config = loadConfig({ options: { storage: "redis", ...options }, env: {} });
    const store = redisStoreFromConfig(config, { error() {}, warn() {} }, () => fake);
    await store.ready();
    expect(calls.map((c) => c.kind)).toEqual([kind]);
    const o = calls[0]?.options as Record<string, Record<string, unknown>>;
    const client =
      kind === "createCluster" ? o.defaults : kind === "createSentinel" ? o.nodeClientOptions : o;
    expect(client?.disableOfflineQueue).toBe(true);
    const socket = client?.socket as { reconnectStrategy?: (n: number) => number };
    expect(socket.reconnectStrategy?.(50)).toBeGreaterThan(0);
    await store.close();
    expect(destroyed).toBe(1);
  },
);
