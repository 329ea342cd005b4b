import { afterAll, beforeAll, expect, test } from "vitest";
import type { AppProcess } from "../../scripts/reliability/lib.js";
import {
  logoutEverywhere,
  parallelKeys,
  parallelLockedCounter,
  roundRobinCounters,
  startInstances,
} from "../../scripts/reliability/scaleout-checks.js";
import { type RedisServer, startRedisServer } from "../support/redis.js";

/**
 * Scale-out, short version of `npm run reliability:scaleout`: three app processes on their own
 * loopback ports, one redis-server started here, requests spread round-robin by the client.
 */

let redis: RedisServer;
let apps: AppProcess[] = [];
let bases: string[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  apps = await startInstances(redis.url, 3, "scaleout:");
  bases = apps.map((a) => a.base);
}, 90_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await redis?.dispose();
  expect(apps.flatMap((a) => a.unhandled)).toEqual([]);
});

test("a counter incremented round-robin through three processes ends at the exact count", {
  timeout: 60_000,
}, async () => {
  const run = await roundRobinCounters(bases, 8, 15, 60);
  expect(run.failed).toEqual({});
  expect(run.ok).toBe(8 * 15);
  expect(run.wrong).toBe(0);
  expect(run.perInstance.every((n) => n === 40)).toBe(true);
});

test("parallel writes of different keys through three processes: none lost", {
  timeout: 60_000,
}, async () => {
  expect(await parallelKeys(bases, 90)).toEqual({ requests: 90, failed: 0, lost: 0 });
});

test("parallel locked increments through three processes: each count handed out once", {
  timeout: 60_000,
}, async () => {
  expect(await parallelLockedCounter(bases, 30)).toEqual({
    requests: 30,
    failed: 0,
    counter: 30,
    distinct: true,
  });
});

test("a logout through one process is refused by the other two at once", {
  timeout: 60_000,
}, async () => {
  const r = await logoutEverywhere(bases);
  expect(r.signedInEverywhere).toBe(true);
  expect(r.logoutStatus).toBe(200);
  expect(r.whoamiAfter).toEqual([401, 401]);
  // The old cookie no longer has a session, so its CSRF check fails before any write.
  expect(r.writesAfter).toEqual([403, 403]);
  expect(r.resurrected).toBe(false);
  expect(apps.map((a) => a.exits)).toEqual([[], [], []]);
});
