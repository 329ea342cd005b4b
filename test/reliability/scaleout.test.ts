import { afterAll, beforeAll, expect, test } from "vitest";
import type { AppProcess } from "../../scripts/reliability/lib.js";
import { startInstances } from "../../scripts/reliability/scaleout-checks.js";
import { type RedisServer, startRedisServer } from "../support/redis.js";
import { describeScaleoutChecks } from "../support/scaleout-suite.js";

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

describeScaleoutChecks(() => bases, { clients: 8, keys: 90 });

test("no app process exited or leaked an unhandled rejection", () => {
  expect(apps.map((a) => a.exits)).toEqual([[], [], []]);
});
