import type { Cluster } from "ioredis";
import type { createCluster } from "redis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { generateId } from "../../src/core/id.js";
import type { SessionStore } from "../../src/core/store.js";
import { RedisStore } from "../../src/stores/redis.js";
import { describeStoreConformance } from "../conformance/store-suite.js";
import { engineHarness } from "../support/engine-harness.js";
import { LateStore } from "../support/late-store.js";
import { type RedisServer, uniquePrefix } from "../support/redis.js";
import {
  type ClusterClients,
  type ClusterTopology,
  clusterClients,
  startCluster,
} from "../support/topology.js";

/**
 * The store conformance suite on a three-master Redis Cluster that this file starts on loopback
 * ports from the redis-server binary, and stops afterwards.
 */

let topology: ClusterTopology;
let nodes: RedisServer[] = [];
let node: ReturnType<typeof createCluster>;
let io: Cluster;
let clients: ClusterClients;

beforeAll(async () => {
  topology = await startCluster({ replicas: 0, timeoutMs: 5000 });
  nodes = topology.nodes;
  clients = await clusterClients(topology);
  ({ node, io } = clients);
}, 60_000);

afterAll(async () => {
  await clients?.close();
  await topology?.dispose();
});

const ttlOf = async (store: SessionStore, id: string) => {
  const ttl = await io.pttl((store as RedisStore).keyOf(id));
  return ttl === -2 ? null : ttl;
};

describeStoreConformance(
  "RedisStore on Redis Cluster (node-redis createCluster)",
  () => new RedisStore(node, { keyPrefix: uniquePrefix("cluster-node") }),
  { ttlOf, userIndex: true },
);
describeStoreConformance(
  "RedisStore on Redis Cluster (ioredis Cluster)",
  () => new RedisStore(io, { keyPrefix: uniquePrefix("cluster-io") }),
  { ttlOf, userIndex: true },
);

describe("Redis Cluster layout", () => {
  test("a session's record and lock share one slot; sessions spread over the masters", async () => {
    const store = new RedisStore(io, { keyPrefix: "layout:" });
    const slots = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const key = store.keyOf(generateId());
      const slot = Number(await nodes[0]?.cli("CLUSTER", "KEYSLOT", key));
      expect(Number(await nodes[0]?.cli("CLUSTER", "KEYSLOT", `${key}:lock`))).toBe(slot);
      slots.add(Math.floor(slot / (16384 / 3)));
    }
    expect(slots.size).toBeGreaterThan(1);
  });
});

describe("cycleId across cluster slots with late replies", () => {
  test("a claim whose reply is late costs a retry, not the session, though old and new ids live on different nodes", async () => {
    const late = new LateStore(new RedisStore(io, { keyPrefix: uniquePrefix("cluster-late") }));
    const h = engineHarness(late, { operationTimeoutMs: 250 });
    const id = await h.seed({ user: "alice" });
    late.lateOnce("claim");
    await expect(h.request(id, (s) => s.cycleId())).rejects.toBeInstanceOf(StoreUnavailableError);
    await late.idle();
    expect(await h.contents(id)).toEqual({ user: "alice" });
    const retry = await h.request(id, (s) => s.cycleId());
    expect(await h.contents(retry.cookieId as string)).toEqual({ user: "alice" });
    expect(await h.contents(id)).toEqual({});
  });
});
