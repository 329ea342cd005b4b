import type { Cluster } from "ioredis";
import type { createCluster } from "redis";
import { afterAll, beforeAll, expect, test } from "vitest";
import { RedisStore } from "../../src/stores/redis.js";
import { uniquePrefix } from "../support/redis.js";
import {
  type ClusterClients,
  type ClusterTopology,
  clusterClients,
  startCluster,
} from "../support/topology.js";
import { browser, usersApp, usersEngine } from "./app.js";
import { userIndexSuite } from "./suite.js";

/** The user index on a three-primary Redis Cluster this file starts and stops. */

let topology: ClusterTopology;
let node: ReturnType<typeof createCluster>;
let io: Cluster;
let clients: ClusterClients;

beforeAll(async () => {
  topology = await startCluster({ replicas: 0, timeoutMs: 5000 });
  clients = await clusterClients(topology);
  ({ node, io } = clients);
}, 60_000);

afterAll(async () => {
  await clients?.close();
  await topology?.dispose();
});

userIndexSuite("Redis Cluster (node-redis)", async () => {
  return new RedisStore(node, { keyPrefix: uniquePrefix("users-cluster") });
});
userIndexSuite("Redis Cluster (ioredis)", async () => {
  return new RedisStore(io, { keyPrefix: uniquePrefix("users-cluster-io") });
});

test("the user's index is a key in a slot of its own; revoking across slots works", async () => {
  const store = new RedisStore(node, { keyPrefix: uniquePrefix("users-slots") });
  const app = usersApp(usersEngine(store));
  const devices = [browser(app), browser(app), browser(app), browser(app)];
  for (const d of devices) await d.post("/login/zoe");
  const indexSlot = await topology.slotOf(store.indexKeyOf("zoe"));
  const recordSlots = await Promise.all(
    devices.map((d) => topology.slotOf(store.keyOf(d.jar.cookie.split("=")[1] as string))),
  );
  const tag = (key: string) => /\{([^}]+)\}/.exec(key)?.[1];
  const indexTag = tag(store.indexKeyOf("zoe"));
  expect(indexTag).toBeDefined();
  for (const d of devices) {
    expect(tag(store.keyOf(d.jar.cookie.split("=")[1] as string))).not.toBe(indexTag);
  }
  expect(new Set([...recordSlots, indexSlot]).size).toBeGreaterThan(2);
  const [first] = devices;
  expect(await first?.json("POST", "/revoke-others")).toEqual({ revoked: 3 });
  for (const d of devices.slice(1)) expect(await d.me()).toBeNull();
  expect(await first?.me()).toBe("zoe");
  expect(await io.zcard(store.indexKeyOf("zoe"))).toBe(1);
});
