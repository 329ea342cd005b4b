import { createSentinel } from "redis";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  clusterPrimary,
  demoOn,
  type FailoverResult,
  runFailover,
  sentinelPrimary,
  type Target,
} from "../../scripts/reliability/failover-lib.js";
import { RedisStore } from "../../src/stores/redis.js";
import { uniquePrefix } from "../support/redis.js";
import {
  type ClusterTopology,
  type SentinelTopology,
  startCluster,
  startSentinel,
} from "../support/topology.js";

/**
 * Failover under load, short version of `npm run reliability:failover`: a 3-primary Cluster with
 * one replica each and Sentinel (one primary, two replicas, three sentinels), started here on free
 * ports with failure detection at 1 s. The demo app, configured from the environment alone, serves
 * signed-in visitors and a stream of sign-ins while a primary is SIGKILLed. Every answer must be
 * 200, 303 or 503 (no hang, no 500), the killed slots must serve again by themselves, sessions on
 * the other primaries must never see a 503, and with `redis_wait_replicas` no sign-in that answered
 * 303 may be lost. No timing is asserted; every loop is bounded.
 */

let cluster: ClusterTopology;
let sentinel: SentinelTopology;
const closers: Array<() => Promise<void>> = [];

beforeAll(async () => {
  [cluster, sentinel] = await Promise.all([startCluster(), startSentinel()]);
}, 90_000);

afterAll(async () => {
  for (const close of closers) await close().catch(() => {});
  await Promise.all([cluster?.dispose(), sentinel?.dispose()]);
});

function demo(env: Record<string, string>, logger?: Parameters<typeof demoOn>[1]) {
  const d = demoOn(
    {
      COATCHECK_SESSION__KEY_PREFIX: uniquePrefix("failover"),
      // A busy CI machine must not turn a slow answer on a healthy primary into a 503.
      COATCHECK_SESSION__OPERATION_TIMEOUT_MS: "2000",
      ...env,
    },
    logger,
  );
  closers.push(() => d.store.close());
  return d;
}
const clusterEnv = () => ({ COATCHECK_SESSION__REDIS_CLUSTER_NODES: cluster.seeds.join(",") });
const sentinelEnv = () => ({
  COATCHECK_SESSION__REDIS_SENTINELS: sentinel.sentinels.join(","),
  COATCHECK_SESSION__REDIS_SENTINEL_NAME: sentinel.name,
});

/** 12 signed-in visitors and the sign-in stream; the kill after 1 s; 1 s more after recovery. */
async function failover(
  env: Record<string, string>,
  target: () => Promise<Target>,
): Promise<FailoverResult> {
  const { app, store } = demo(env);
  await store.ready();
  return runFailover({
    app,
    store,
    visitors: 12,
    leadMs: 1000,
    tailMs: 1000,
    limitMs: 30_000,
    target,
  });
}

function expectOnly200s303s503s(r: FailoverResult) {
  for (const t of [r.hit, r.other, r.signin]) {
    expect(t.bad, JSON.stringify(t.statuses)).toBe(0);
    for (const status of Object.keys(t.statuses)) expect(["200", "303", "503"]).toContain(status);
  }
}

describe("configured topologies", () => {
  test("a node-redis Sentinel client passed in works as the store's client", async () => {
    const client = createSentinel({
      name: sentinel.name,
      sentinelRootNodes: sentinel.sentinels.map((a) => ({
        host: "127.0.0.1",
        port: Number(a.split(":")[1]),
      })),
      nodeClientOptions: { disableOfflineQueue: true },
    });
    client.on("error", () => {});
    await client.connect();
    closers.push(() => client.destroy());
    const store = new RedisStore(client, { keyPrefix: uniquePrefix("sentinel-in") });
    const meta = { createdAt: Date.now(), absoluteAt: 0, idleMs: 60_000 };
    const now = Date.now();
    expect(
      await store.write("a".repeat(22), { set: { k: '"v"' }, del: [], meta }, "create", now),
    ).toBe(true);
    expect((await store.load("a".repeat(22), now))?.fields).toEqual({ k: '"v"' });
  });

  test("redis_wait_replicas beyond the replicas there are: new sessions answer 503, logged", async () => {
    const warnings: string[] = [];
    const { app } = demo(
      { ...clusterEnv(), COATCHECK_SESSION__REDIS_WAIT_REPLICAS: "2" },
      { error() {}, warn: (_f, m) => warnings.push(m) },
    );
    const res = await app.request("/login");
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).not.toBeNull();
    expect(warnings.join("\n")).toMatch(/acknowledged by 1 of 2 replicas/);
    // One replica each is what the cluster has: that many is durable, and a page is served.
    const ok = demo({ ...clusterEnv(), COATCHECK_SESSION__REDIS_WAIT_REPLICAS: "1" });
    expect((await ok.app.request("/login")).status).toBe(200);
  });
});

describe("a primary killed under load", () => {
  test("Cluster: only 200/303/503, the killed slots recover, other slots never see a 503", {
    timeout: 90_000,
  }, async () => {
    const r = await failover(clusterEnv(), () => clusterPrimary(cluster));
    console.log(`cluster failover: ${JSON.stringify(r)}`);
    expectOnly200s303s503s(r);
    expect(r.hit.first503).not.toBeNull(); // the kill was felt where it should be
    expect(r.recovered).toBe(true);
    expect(r.servedAtEnd + r.lostVisitors).toBe(12);
    expect(r.other.statuses["503"] ?? 0).toBe(0);
    expect(r.signIns.lost).toBe(r.signIns.lostHit); // only the killed slots can lose a record
  });

  test("Sentinel with redis_wait_replicas = 1: promotion answers 503 only, every 303 sign-in survives", {
    timeout: 90_000,
  }, async () => {
    const r = await failover(
      { ...sentinelEnv(), COATCHECK_SESSION__REDIS_WAIT_REPLICAS: "1" },
      () => sentinelPrimary(sentinel),
    );
    console.log(`sentinel failover (WAIT 1): ${JSON.stringify(r)}`);
    expectOnly200s303s503s(r);
    expect(r.hit.first503).not.toBeNull();
    expect(r.recovered).toBe(true);
    expect(r.signIns.before).toBeGreaterThan(0);
    expect(r.signIns.lost).toBe(0);
    expect(r.lostVisitors).toBe(0);
    expect(r.servedAtEnd).toBe(12);
  });
});
