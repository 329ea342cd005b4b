import { afterAll, beforeAll, expect, test } from "vitest";
import { type AppProcess, headersOf, login } from "../../scripts/reliability/lib.js";
import {
  logoutEverywhere,
  parallelKeys,
  parallelLockedCounter,
  roundRobinCounters,
  startInstances,
} from "../../scripts/reliability/scaleout-checks.js";
import { createTestDatabase, type TestDatabase } from "../support/postgres.js";

/**
 * Scale-out on PostgreSQL: three app processes on their own loopback ports, `storage = "postgres"`
 * on one database of this run's own (the three race to create its tables at start-up), requests
 * spread round-robin by the client.
 */

let db: TestDatabase;
let apps: AppProcess[] = [];
let bases: string[] = [];
const everyApp: AppProcess[] = [];

async function start() {
  apps = await startInstances({ POSTGRES_URL: db.url }, 3);
  everyApp.push(...apps);
  bases = apps.map((a) => a.base);
}

beforeAll(async () => {
  db = await createTestDatabase("scaleout");
  await start();
}, 90_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.stop()));
  await db?.drop();
  expect(everyApp.flatMap((a) => a.unhandled)).toEqual([]);
});

test("a counter incremented round-robin through three processes ends at the exact count", {
  timeout: 60_000,
}, async () => {
  const run = await roundRobinCounters(bases, 6, 15, 60);
  expect(run.failed).toEqual({});
  expect(run.ok).toBe(6 * 15);
  expect(run.wrong).toBe(0);
  expect(run.perInstance.every((n) => n === 30)).toBe(true);
});

test("parallel writes of different keys through three processes: none lost", {
  timeout: 60_000,
}, async () => {
  expect(await parallelKeys(bases, 60)).toEqual({ requests: 60, failed: 0, lost: 0 });
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
  expect(r.writesAfter).toEqual([403, 403]);
  expect(r.resurrected).toBe(false);
});

test("a session survives restarting every app process", { timeout: 90_000 }, async () => {
  const v = await login(bases[0] as string, "stays");
  await Promise.all(apps.map((a) => a.stop()));
  expect(apps.map((a) => a.exits.length)).toEqual([1, 1, 1]);
  await start();
  const seen = await Promise.all(
    bases.map(async (b) => {
      const r = await fetch(`${b}/whoami`, { headers: headersOf(v) });
      return `${r.status} ${await r.text()}`;
    }),
  );
  expect(seen).toEqual(["200 stays", "200 stays", "200 stays"]);
});
